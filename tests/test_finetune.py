import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import catsplit
from catsplit import CatsplitError, FinetuneConfig, finetune
from conftest import MODIFIERS, HashEncoder, compositional_head

COARSE = "Pushing something"


def _data(v, m, subs, n, seed, dim=32):
    rng = np.random.default_rng(seed)
    x = np.concatenate([v["Pushing"] + m[mod] + 0.5 * rng.standard_normal((n, dim)) for mod in MODIFIERS]).astype(np.float32)
    return x, [s for s in subs for _ in range(n)]


def _bits(t):
    return t.contiguous().view(torch.uint8).numpy().tobytes()


@pytest.mark.parametrize("mode", ["flat", "hierarchical"])
def test_finetune_trains_only_the_sub_rows(mode):
    head, subs, v, m = compositional_head(dim=32, seed=1)
    edited = catsplit.split(head, None, COARSE, subs, method="coarse", mode=mode)
    x, y = _data(v, m, subs, 20, 0)
    tuned = finetune(edited, x, y, shots=5, seed=0)
    k = len(subs)
    if mode == "flat":
        assert _bits(tuned.weight[:-k]) == _bits(edited.weight[:-k]) and _bits(tuned.bias[:-k]) == _bits(edited.bias[:-k])
        assert not torch.equal(tuned.weight[-k:], edited.weight[-k:])
    else:
        assert _bits(tuned.tables[0].weight) == _bits(edited.tables[0].weight)
        assert not torch.equal(tuned.tables[1].weight, edited.tables[1].weight)
    x_test, y_test = _data(v, m, subs, 20, 1)
    before = catsplit.evaluate(head, edited, x_test, y_test, COARSE).generality
    after = catsplit.evaluate(head, tuned, x_test, y_test, COARSE).generality
    assert after > before + 0.3
    info = tuned.history[-1]["finetune"]
    assert info["clips"] == 5 * k and info["shots"] == 5
    assert catsplit.unsplit(tuned, COARSE).equals(head)  # still undoable
    assert finetune(edited, x, y, shots=5, seed=0).equals(tuned)  # deterministic per seed


def test_finetune_bad_input():
    head, subs, v, m = compositional_head(dim=32, seed=1)
    edited = catsplit.split(head, None, COARSE, subs, method="coarse")
    x, y = _data(v, m, subs, 3, 0)
    with pytest.raises(CatsplitError, match="too few"):
        finetune(edited, x, y, shots=4)
    with pytest.raises(CatsplitError, match="not in the head's label space"):
        finetune(edited, x, ["nope"] * len(y))
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(CatsplitError, match="NaN"):
        finetune(edited, bad, y)
    with pytest.raises(CatsplitError, match="no split"):
        finetune(head, x, ["Pulling something up"] * len(y))
    with pytest.raises(CatsplitError, match="one label per row"):
        finetune(edited, x, y[:-1])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**16), st.sampled_from(["flat", "hierarchical"]), st.integers(1, 3))
def test_finetune_never_touches_old_rows(seed, mode, shots):
    head, subs, v, m = compositional_head(dim=8, seed=seed % 7)
    edited = catsplit.split(head, None, COARSE, subs, method="coarse", mode=mode)
    x, y = _data(v, m, subs, 3, seed, dim=8)
    tuned = finetune(edited, x, y, shots=shots, seed=seed, config=FinetuneConfig(max_steps=3))
    old = edited.tables[0]
    new = tuned.tables[0]
    n_old = old.weight.shape[0] - (len(subs) if mode == "flat" else 0)
    assert _bits(new.weight[:n_old]) == _bits(old.weight[:n_old]) and _bits(new.bias[:n_old]) == _bits(old.bias[:n_old])
    assert tuned.labels == edited.labels


def test_text_head_split_appends_sub_embeddings():
    enc = HashEncoder()
    labels = ["Pushing something", "Pulling something left", "Pulling something right"]
    head = catsplit.text_head(labels, enc, templates=["a video of {}."], scale=10.0)
    assert head.kind == "text" and head.scale == 10.0
    subs = ["Pushing something left", "Pushing something right"]
    new = catsplit.split(head, enc, "Pushing something", subs, method="text")
    expected = enc(["a video of pushing something left.", "a video of pushing something right."])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(new.weight[-2:].numpy(), expected, atol=1e-6)
    x = np.random.default_rng(0).standard_normal((4, head.dim)).astype(np.float32)
    cos = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ new.weight.numpy().T
    np.testing.assert_allclose(new.logits(x), 10.0 * cos, rtol=1e-4, atol=1e-5)
    with pytest.raises(CatsplitError, match="positive"):
        catsplit.text_head(labels, enc, scale=0)
