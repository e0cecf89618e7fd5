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


DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**16), st.sampled_from(["flat", "hierarchical"]), st.integers(1, 3), st.sampled_from(DTYPES),
       st.booleans(), st.booleans(), st.floats(0.0, 1.0))
def test_finetune_and_merge_keep_every_earlier_row_and_bias(seed, mode, shots, dtype, bias, prior, w):
    """Any dtype, with or without biases, after an earlier split: fine-tuning and merging the result
    with its zero-shot start change only the rows (and biases) of the latest split's subs."""
    base, subs, v, m = compositional_head(dim=8, seed=seed % 7, bias=bias)
    head = catsplit.Head(weight=base.weight.to(dtype), bias=None if base.bias is None else base.bias.to(dtype), labels=base.labels)
    if prior:  # an earlier flat split whose sub rows must stay as they are too
        head = catsplit.split(head, None, "Lifting something up", ["Lifting something up fast", "Lifting something up slowly"],
                              method="coarse")
    edited = catsplit.split(head, None, COARSE, subs, method="coarse", mode=mode)
    x, y = _data(v, m, subs, 3, seed, dim=8)
    tuned = finetune(edited, x, y, shots=shots, seed=seed, config=FinetuneConfig(max_steps=3))
    merged = catsplit.merge([edited, tuned], logits=[np.log(max(1 - w, 1e-9)), np.log(max(w, 1e-9))])
    for out in (tuned, merged):
        assert out.labels == edited.labels and out.dtype == dtype
        for lab in edited.labels:
            if lab in subs:
                continue
            ti, r = edited.locate(lab)
            assert _bits(out.tables[ti].weight[r]) == _bits(edited.tables[ti].weight[r]), lab
            if bias:
                assert _bits(out.tables[ti].bias[r : r + 1]) == _bits(edited.tables[ti].bias[r : r + 1]), lab
            else:
                assert out.tables[ti].bias is None
        assert catsplit.unsplit(out, COARSE).equals(head)


def test_finetune_config_is_validated():
    for bad in (dict(lr=0), dict(lr=float("nan")), dict(batch_size=0), dict(max_steps=1.5), dict(patience=True),
                dict(ema=1.0), dict(weight_decay=-1), dict(min_delta=float("inf"))):
        with pytest.raises(CatsplitError, match="FinetuneConfig"):
            FinetuneConfig(**bad)


def test_finetune_labels_as_indices_and_outside_the_label_space():
    head, subs, v, m = compositional_head(dim=32, seed=1)
    edited = catsplit.split(head, None, COARSE, subs, method="coarse")
    x, y = _data(v, m, subs, 2, 0)
    idx = [edited.labels.index(s) for s in y]
    assert finetune(edited, x, idx, seed=1, config=FinetuneConfig(max_epochs=2)).equals(
        finetune(edited, x, y, seed=1, config=FinetuneConfig(max_epochs=2)))
    with pytest.raises(CatsplitError, match="outside the head's"):
        finetune(edited, x, [len(edited.labels)] * len(y))
    with pytest.raises(CatsplitError, match="not in the head's label space"):
        finetune(edited, x, [COARSE] * len(y))  # the split label itself is gone from the label space
    with pytest.raises(CatsplitError, match="no training clip is labelled with a sub"):
        finetune(edited, x, ["Pulling something up"] * len(y))
