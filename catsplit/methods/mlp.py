"""The MLP g: E -> D of modifier alignment (one hidden layer, GELU) and its training loop."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from catsplit.training import EmaEarlyStop, one_thread, step_budget


class ModifierMLP(torch.nn.Module):
    """g: E -> D, one hidden layer."""

    def __init__(self, dim_in: int, hidden: int, dim_out: int, generator: torch.Generator):
        super().__init__()
        self.fc1 = torch.nn.Linear(dim_in, hidden)
        self.fc2 = torch.nn.Linear(hidden, dim_out)
        with torch.no_grad():  # nn.Linear's default init, drawn from our own generator (global RNG untouched)
            for layer in (self.fc1, self.fc2):
                bound = 1.0 / math.sqrt(layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.uniform_(-bound, bound, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, E] -> [N, D]
        return self.fc2(torch.nn.functional.gelu(self.fc1(x)))



def fit_mlp(x: np.ndarray, y: np.ndarray, config: Any, seed: int) -> tuple[ModifierMLP, dict]:
    """Fit g on (x [n, E], y [n, D]) with AdamW + cosine schedule, early stopping on an EMA of the
    training cosine similarity (best weights restored). Deterministic for a given seed.

    Args:
        config: an AlignmentConfig (hidden, lr, weight_decay, batch_size, max_epochs, max_steps, ema,
            patience, min_delta); not imported here, so that alignment imports this module and not back.
    Returns:
        the fitted MLP (eval mode) and a summary of the run (epochs, best epoch, EMA, pairs).
    """
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    n = xt.shape[0]
    model = ModifierMLP(xt.shape[1], config.hidden, yt.shape[1], gen)
    # fused AdamW: the same update as the loop version, ~5x less overhead per step at this size
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True)
    _, total, epochs = step_budget(n, config.batch_size, config.max_epochs, config.max_steps)  # total: the cosine horizon
    stopper = EmaEarlyStop(config.ema, config.patience, config.min_delta, maximize=True)  # on the training cosine
    step = epoch = 0
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    with one_thread():  # tiny matrices: a second thread only spin-waits (catsplit.training.one_thread)
        for epoch in range(1, epochs + 1):
            order = torch.randperm(n, generator=gen)
            for start in range(0, n, config.batch_size):
                if step == total:
                    break
                idx = order[start : start + config.batch_size]
                opt.param_groups[0]["lr"] = config.lr * 0.5 * (1.0 + math.cos(math.pi * step / total))
                pred = model(xt[idx])  # [B, D]
                loss = torch.nn.functional.mse_loss(pred, yt[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                stopper.update(float(torch.nn.functional.cosine_similarity(pred.detach(), yt[idx], dim=1).mean()))
            if stopper.end_epoch(epoch):
                best_state = {k: v.clone() for k, v in model.state_dict().items()}
            elif stopper.stop:
                break
    model.load_state_dict(best_state)
    model.eval()
    info = {"epochs": epoch, "steps": step, "best_epoch": stopper.best_epoch, "train_cos_ema": round(stopper.best, 6), "pairs": n}
    return model, info

