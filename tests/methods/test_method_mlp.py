"""catsplit.methods.mlp: modifier alignment's MLP g: E -> D and its training loop."""

import numpy as np
import torch

from catsplit import AlignmentConfig
from catsplit.methods.mlp import ModifierMLP, fit_mlp


def test_the_mlp_is_initialised_from_its_own_generator():
    a = ModifierMLP(6, 16, 4, torch.Generator().manual_seed(1))
    b = ModifierMLP(6, 16, 4, torch.Generator().manual_seed(1))
    c = ModifierMLP(6, 16, 4, torch.Generator().manual_seed(2))
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.fc1.weight, c.fc1.weight)
    assert a(torch.zeros(3, 6)).shape == (3, 4)


def test_fit_mlp_learns_the_pairs_and_is_deterministic_per_seed():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 8)).astype(np.float32)
    y = (x @ rng.standard_normal((8, 5))).astype(np.float32)
    config = AlignmentConfig(hidden=64, lr=1e-2, max_steps=400)
    model, info = fit_mlp(x, y, config, seed=0)
    again, info_again = fit_mlp(x, y, config, seed=0)
    other, _ = fit_mlp(x, y, config, seed=1)
    assert info == info_again and info["pairs"] == 40 and info["steps"] <= 400 and not model.training
    with torch.no_grad():
        pred = model(torch.from_numpy(x))
        assert torch.equal(pred, again(torch.from_numpy(x))) and not torch.equal(pred, other(torch.from_numpy(x)))
    cos = torch.nn.functional.cosine_similarity(pred, torch.from_numpy(y), dim=1).mean()
    assert cos > 0.9 and info["train_cos_ema"] > 0.5
