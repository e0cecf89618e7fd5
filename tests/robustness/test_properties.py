"""Property tests (hypothesis, >= 200 examples each) for the invariants the edits promise."""

import tempfile
from pathlib import Path

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import catsplit
from catsplit import Head, SplitConfig
from catsplit.methods.retrieval import greedy_match
from conftest import HashEncoder

PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ENCODER = HashEncoder(dim=16)
FAST = SplitConfig(max_epochs=2)  # alignment's training length does not matter to these invariants
COARSE = "Target thing"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@st.composite
def heads(draw, dtypes=tuple(DTYPES)):
    """A head with groups of fine labels ("verb0 thing mod1", ...) plus the coarse label, and k subs."""
    n_verbs = draw(st.integers(1, 3))
    n_mods = draw(st.integers(2, 4))
    labels = [f"verb{i} thing mod{j}" for i in range(n_verbs) for j in range(n_mods)]
    labels.insert(draw(st.integers(0, len(labels))), COARSE)
    dim = draw(st.integers(1, 8))
    elements = st.floats(-8, 8, width=32, allow_nan=False)
    w = draw(arrays(np.float32, (len(labels), dim), elements=elements))
    b = draw(st.one_of(st.none(), arrays(np.float32, (len(labels),), elements=elements)))
    dtype = DTYPES[draw(st.sampled_from(dtypes))]
    head = Head(weight=torch.from_numpy(w).to(dtype), bias=None if b is None else torch.from_numpy(b).to(dtype), labels=labels)
    k = draw(st.integers(2, n_verbs * n_mods if n_verbs > 1 else 2))
    subs = [f"{COARSE} mod{j}" if j < n_mods else f"{COARSE} new{j}" for j in range(k)]
    return head, subs


def bits(t: torch.Tensor) -> bytes:
    return t.contiguous().view(torch.uint8).numpy().tobytes()


methods = st.sampled_from(["coarse", "text", "retrieval", "alignment"])


def _split(head, subs, method, mode, seed=0):
    if method == "retrieval" and len(subs) > len(head.labels) - 1:
        method = "coarse"
    return catsplit.split(head, ENCODER, COARSE, subs, method=method, mode=mode, seed=seed, config=FAST)


@PROPS
@given(heads(), methods)
def test_flat_leaves_every_other_row_and_bias_bit_identical(hs, method):
    head, subs = hs
    new = _split(head, subs, method, "flat")
    others = [lab for lab in head.labels if lab != COARSE]
    assert list(new.labels) == others + subs  # label order kept, subs appended in order
    old_idx = [head.labels.index(lab) for lab in others]
    assert bits(new.weight[: len(others)]) == bits(head.weight[old_idx])
    if head.bias is not None:
        assert bits(new.bias[: len(others)]) == bits(head.bias[old_idx])
        ci = head.labels.index(COARSE)
        assert all(torch.equal(new.bias[len(others) + j], head.bias[ci]) for j in range(len(subs)))
    assert new.dtype == head.dtype


@PROPS
@given(heads(), methods, st.data())
def test_hierarchical_keeps_top1_unless_it_was_the_coarse_class(hs, method, data):
    head, subs = hs
    new = _split(head, subs, method, "hierarchical")
    n = data.draw(st.integers(1, 12))
    x = data.draw(arrays(np.float32, (n, head.dim), elements=st.floats(-50, 50, width=32, allow_nan=False)))
    before = head.predict(x)
    after = new.predict(x)
    kept = before != COARSE
    assert (after[kept] == before[kept]).all()
    # inputs that were the coarse class now go to one of its subs or to the runner-up
    assert set(after[~kept]) <= set(new.labels)


@PROPS
@given(heads(), methods, st.sampled_from(["flat", "hierarchical"]), st.integers(0, 2**31 - 1), st.booleans())
def test_unsplit_restores_the_head_bit_for_bit(hs, method, mode, seed, through_file):
    head, subs = hs
    new = _split(head, subs, method, mode, seed)
    if through_file:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "edited.safetensors"
            new.save(path)
            new = catsplit.load_head(path)
    back = catsplit.unsplit(new, COARSE)
    assert back.equals(head)
    assert back.labels == head.labels


@PROPS
@given(st.data())
def test_greedy_matching_is_one_to_one_and_greedy(data):
    k = data.draw(st.integers(1, 6))
    n = data.draw(st.integers(k, 10))
    scores = data.draw(arrays(np.float64, (k, n), elements=st.floats(-1, 1, allow_nan=False)))
    match = greedy_match(scores)
    assert len(set(match)) == k and all(0 <= e < n for e in match)
    # every pick was a maximum of what was left when it was taken
    rows, cols = set(range(k)), set(range(n))
    order = sorted(range(k), key=lambda j: -scores[j, match[j]])
    for j in order:
        best = max(scores[r, c] for r in rows for c in cols)
        assert scores[j, match[j]] == best
        rows.discard(j)
        cols.discard(match[j])


@PROPS
@given(heads(dtypes=("float32",)))
def test_retrieval_assigns_distinct_entries(hs):
    head, subs = hs
    if len(subs) > len(head.labels) - 1:
        return
    new = catsplit.split(head, ENCODER, COARSE, subs, method="retrieval")
    matched = [m["label"] for m in new.history[-1]["details"]["matches"].values()]
    assert len(set(matched)) == len(subs)


@PROPS
@given(heads(), methods, st.data())
def test_keep_moves_no_other_class_and_keeps_its_logits_bit_for_bit(hs, method, data):
    """order="keep", flat: every other class keeps its index, its row, its bias and its logits, bit for bit."""
    head, subs = hs
    if method == "retrieval" and len(subs) > len(head.labels) - 1:
        method = "coarse"
    new = catsplit.split(head, ENCODER, COARSE, subs, method=method, seed=0, config=FAST, order="keep")
    j = head.labels.index(COARSE)
    others = [i for i in range(head.num_classes) if i != j]
    assert [new.labels[i] for i in others] == [head.labels[i] for i in others]
    assert new.labels[j] == subs[0] and list(new.labels[head.num_classes :]) == subs[1:]
    assert bits(new.weight[others]) == bits(head.weight[others])
    if head.bias is not None:
        assert bits(new.bias[others]) == bits(head.bias[others])
    n = data.draw(st.integers(1, 12))
    x = data.draw(arrays(np.float32, (n, head.dim), elements=st.floats(-50, 50, width=32, allow_nan=False)))
    assert new.logits(x)[:, others].tobytes() == head.logits(x)[:, others].tobytes()
    assert catsplit.unsplit(new, COARSE).equals(head)


@PROPS
@given(heads(), methods, st.data())
def test_hierarchical_keep_moves_no_other_class_and_keeps_top1(hs, method, data):
    head, subs = hs
    if method == "retrieval" and len(subs) > len(head.labels) - 1:
        method = "coarse"
    new = catsplit.split(head, ENCODER, COARSE, subs, method=method, mode="hierarchical", config=FAST, order="keep")
    j = head.labels.index(COARSE)
    assert [lab for i, lab in enumerate(new.labels[: head.num_classes]) if i != j] == [lab for lab in head.labels if lab != COARSE]
    n = data.draw(st.integers(1, 12))
    x = data.draw(arrays(np.float32, (n, head.dim), elements=st.floats(-50, 50, width=32, allow_nan=False)))
    before, after = head.predict(x), new.predict(x)
    kept = before != COARSE
    assert (after[kept] == before[kept]).all()
    assert catsplit.unsplit(new, COARSE).equals(head)
