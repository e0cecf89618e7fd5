"""catsplit.merging: weight-space merging of heads with one label space (after MoTE)."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import catsplit
from catsplit import CatsplitError, SplitConfig
from conftest import HashEncoder, compositional_head

COARSE = "Pushing something"


def _bits(t):
    return t.contiguous().view(torch.uint8).numpy().tobytes()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.integers(2, 4), st.sampled_from(["flat", "hierarchical"]),
       st.one_of(st.none(), st.lists(st.floats(-3, 3), min_size=4, max_size=4)))
def test_merge_keeps_old_rows_and_identity(seed, n, mode, logits):
    head, subs, _, _ = compositional_head(dim=8, seed=seed % 5)
    enc = HashEncoder(dim=8)
    edits = [catsplit.split(head, enc, COARSE, subs, method="alignment", mode=mode, seed=seed + i,
                            config=SplitConfig(max_steps=2)) for i in range(n)]
    merged = catsplit.merge(edits, logits=None if logits is None else logits[:n])
    base_rows = head.num_classes - 1 if mode == "flat" else head.num_classes  # rows of table 0 all heads share
    old, new = edits[0].tables[0], merged.tables[0]
    assert _bits(new.weight[:base_rows]) == _bits(old.weight[:base_rows])
    assert _bits(new.bias[:base_rows]) == _bits(old.bias[:base_rows])
    same = catsplit.merge([edits[0]] * n)
    assert all(_bits(a.weight) == _bits(b.weight) and _bits(a.bias) == _bits(b.bias) for a, b in zip(same.tables, edits[0].tables))
    assert catsplit.unsplit(merged, COARSE).equals(head)


def test_merge_is_the_weighted_average():
    head, subs, _, _ = compositional_head(dim=16)
    enc = HashEncoder()
    a = catsplit.split(head, enc, COARSE, subs, method="coarse")
    b = catsplit.split(head, enc, COARSE, subs, method="retrieval")
    m = catsplit.merge([a, b], logits=[0.0, np.log(3.0)])  # weights 1/4, 3/4
    np.testing.assert_allclose(m.weight[-5:].numpy(), 0.25 * a.weight[-5:].numpy() + 0.75 * b.weight[-5:].numpy(), atol=1e-6)
    assert m.history[-1]["merge"]["weights"] == (0.25, 0.75)
    m2 = catsplit.merge([a, b], logits=[0.0, np.log(3.0)], tau=1e9)  # huge temperature: uniform
    np.testing.assert_allclose(m2.weight[-5:].numpy(), 0.5 * (a.weight[-5:] + b.weight[-5:]).numpy(), atol=1e-5)


def test_merge_errors():
    head, subs, _, _ = compositional_head(dim=16)
    enc = HashEncoder()
    a = catsplit.split(head, enc, COARSE, subs, method="coarse")
    b = catsplit.split(head, enc, COARSE, subs[:2], method="coarse")
    with pytest.raises(CatsplitError, match="another label space"):
        catsplit.merge([a, b])
    with pytest.raises(CatsplitError, match="two or more"):
        catsplit.merge([a])
    with pytest.raises(CatsplitError, match="one per head"):
        catsplit.merge([a, a], logits=[1.0])
    with pytest.raises(CatsplitError, match="tau"):
        catsplit.merge([a, a], logits=[1.0, 2.0], tau=0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(logits=["a", "b"]), "logits must be 2 finite numbers"),
    (dict(logits=[True, False]), "logits must be 2 finite numbers"),
    (dict(logits=[0, 1], tau="x"), "tau must be a positive number, got 'x'"),
    (dict(logits=[0, 1], tau=True), "tau must be a positive number"),
])
def test_merge_refuses_non_numeric_weights(head16_and_subs, kwargs, match):
    head, _ = head16_and_subs
    with pytest.raises(CatsplitError, match=match):
        catsplit.merge([head, head], **kwargs)


def test_merge_refuses_text_heads_with_different_scale_or_templates(encoder):
    a = catsplit.text_head(["a b", "c d"], encoder, scale=2.0)
    with pytest.raises(CatsplitError, match="scale 50.0, head #0 has 2.0"):
        catsplit.merge([a, catsplit.text_head(["a b", "c d"], encoder, scale=50.0)])
    with pytest.raises(CatsplitError, match="templates"):
        catsplit.merge([a, catsplit.text_head(["a b", "c d"], encoder, scale=2.0, templates=["{}"])])
    assert catsplit.merge([a, a]).equals(a)


def test_merge_of_keep_edits_keeps_their_order_and_refuses_another_order():
    head, subs, _, _ = compositional_head(dim=16)
    enc = HashEncoder()
    edits = [catsplit.split(head, enc, COARSE, subs, method="alignment", mode="hierarchical", order="keep", seed=s,
                            config=SplitConfig(max_steps=5)) for s in (0, 1)]
    merged = catsplit.merge(edits)
    assert merged.labels == edits[0].labels and merged.output_order == edits[0].output_order
    assert catsplit.unsplit(merged, COARSE).equals(head)
    appended = catsplit.split(head, enc, COARSE, subs, method="coarse", mode="hierarchical")  # same tables, other order
    with pytest.raises(CatsplitError, match="another label space or layout"):
        catsplit.merge([edits[0], appended])
