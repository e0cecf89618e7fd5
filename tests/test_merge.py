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


def test_similarity_gate_scales_unfamiliar_modifiers_down():
    head, subs, _, _ = compositional_head(dim=16)
    enc = HashEncoder()
    subs = subs[:2] + ["Pushing something in a zigzag"]  # the last modifier is unknown to the dictionary
    plain = catsplit.split(head, enc, COARSE, subs, method="retrieval")
    gated = catsplit.split(head, enc, COARSE, subs, method="retrieval", gate=0.2)
    c = head.row(COARSE).numpy()
    lam = gated.history[-1]["details"]["gate"]["lambda"]
    assert lam[0] == pytest.approx(1.0, abs=1e-5) and lam[2] < 0.5
    for j, s in enumerate(subs):
        np.testing.assert_allclose(gated.row(s).numpy() - c, lam[j] * (plain.row(s).numpy() - c), atol=1e-5)
    with pytest.raises(CatsplitError, match="'alignment' or 'retrieval'"):
        catsplit.split(head, enc, COARSE, subs, method="coarse", gate=0.2)
    with pytest.raises(CatsplitError, match="positive"):
        catsplit.split(head, enc, COARSE, subs, method="retrieval", gate=-1)
