"""catsplit.lowshot: finetune trains only the rows (and biases) of the latest split, on linear and text heads."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import catsplit
from catsplit import CatsplitError, FinetuneConfig, finetune
from catsplit.lowshot import SubRowScores
from conftest import MODIFIERS, compositional_head

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
    with pytest.raises(CatsplitError, match="latest edit is no edit; split first"):
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


@pytest.mark.parametrize("shots", [True, 0, -2, 1.5, "2"])
def test_bad_shots_are_refused(head16_and_subs, shots):
    head, subs = head16_and_subs
    edited = catsplit.split(head, None, COARSE, subs, method="coarse")
    with pytest.raises(CatsplitError, match="shots must be a positive integer"):
        catsplit.finetune(edited, np.ones((10, 16), np.float32), [subs[i % 5] for i in range(10)], shots=shots)


@pytest.mark.parametrize("mode", ["flat", "hierarchical"])
def test_text_head_finetune_trains_on_the_heads_own_scores(encoder, mode):
    labels = [lab for lab in compositional_head()[0].labels]
    th = catsplit.text_head(labels, encoder, templates=None, scale=1 / 0.07)
    subs = [f"{COARSE} {m}" for m in MODIFIERS[2:4]]  # "up", "onto something": texts the hash encoder tells apart
    new = catsplit.split(th, encoder, COARSE, subs, method="text", mode=mode)
    x = (5 * np.random.default_rng(0).standard_normal((30, th.dim))).astype(np.float32)  # norms far from 1
    xt = torch.from_numpy(x)
    table = new.tables[-1] if mode == "hierarchical" else new.tables[0]
    w = table.weight[-2:].float()
    z = SubRowScores(new, xt)(torch.arange(30), w, None)
    np.testing.assert_allclose(z.numpy(), new.logits(x), rtol=1e-4, atol=1e-4)


def test_text_head_finetune_improves_accuracy_on_its_training_clips(encoder):
    labels = [lab for lab in compositional_head()[0].labels]
    th = catsplit.text_head(labels, encoder, templates=None)
    subs = [f"{COARSE} {m}" for m in MODIFIERS[2:4]]  # "up", "onto something": texts the hash encoder tells apart
    new = catsplit.split(th, encoder, COARSE, subs, method="text")
    rng = np.random.default_rng(0)
    d = rng.standard_normal((2, th.dim))
    d /= np.linalg.norm(d, axis=1, keepdims=True)  # each sub's true direction, unrelated to its text
    y = np.arange(20) % 2
    x = (3 * d[y] + 0.3 * rng.standard_normal((20, th.dim))).astype(np.float32)
    names = np.array(subs)[y]
    tuned = catsplit.finetune(new, x, list(names), seed=0)
    before, after = np.mean(new.predict(x) == names), np.mean(tuned.predict(x) == names)
    assert after >= 0.9 and after > before


@pytest.mark.parametrize("mode", ["flat", "hierarchical"])
def test_finetune_of_a_keep_split_trains_the_rows_its_record_names(mode):
    """order="keep": the first sub's row sits where the coarse row was, not among the last k; finetune finds the
    rows by the record's subs, trains exactly those, and learns what it learns for the same split appended."""
    head, subs, v, m = compositional_head(dim=32, seed=1)
    keep = catsplit.split(head, None, COARSE, subs, method="coarse", mode=mode, order="keep")
    append = catsplit.split(head, None, COARSE, subs, method="coarse", mode=mode)
    x, y = _data(v, m, subs, 20, 0)
    config = FinetuneConfig(max_steps=40)
    tuned = finetune(keep, x, y, shots=5, seed=0, config=config)
    ti = 0 if mode == "flat" else 1
    trained = {keep.tables[ti].row(s) for s in subs}
    if mode == "flat":
        assert trained == {head.labels.index(COARSE), *range(head.num_classes, head.num_classes + len(subs) - 1)}
    for r in range(keep.tables[0].weight.shape[0]):
        same = _bits(tuned.tables[0].weight[r]) == _bits(keep.tables[0].weight[r])
        assert same != (mode == "flat" and r in trained), r
    assert tuned.labels == keep.labels
    reference = finetune(append, x, y, shots=5, seed=0, config=config)
    for s in subs:
        np.testing.assert_allclose(tuned.row(s).numpy(), reference.row(s).numpy(), rtol=1e-5, atol=1e-6)
    assert catsplit.unsplit(tuned, COARSE).equals(head)
