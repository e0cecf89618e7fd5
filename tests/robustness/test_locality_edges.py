"""Hierarchical locality at the edges of float32, in Python (hypothesis, 1,000 examples per property in CI).

Features and weights up to float32's largest finite value, rows that tie or differ by one ulp: hierarchical heads
score without NaN, and every input whose original top-1 is not the split class keeps it, bit-exactly. A longer run:

    CATSPLIT_EDGE_EXAMPLES=10000 .venv/bin/python -m pytest -q tests/robustness/test_locality_edges.py
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given

from edges import EDGE, MAX, hierarchical_edits

import catsplit
from catsplit.head import make_table


@EDGE
@given(hierarchical_edits())
def test_hierarchical_scores_have_no_nan_for_finite_inputs_and_weights(case):
    head = case.edited
    logp = head.logits(case.x)
    probs = head.probs(case.x)
    assert not np.isnan(logp).any() and not np.isnan(probs).any()
    assert (logp <= 0).all() and np.isfinite(logp.max(axis=1)).all()  # log-probabilities; -inf only below float32's range
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # the same from a torch input, and the float64 table logits cannot overflow: |x| |w| D <= 4 MAX^2 << float64's range
    assert torch.equal(head.logits(torch.from_numpy(case.x)), torch.from_numpy(logp))


@EDGE
@given(hierarchical_edits())
def test_every_top1_but_the_split_class_is_kept_exactly(case):
    before = case.original.predict(case.x)
    after = case.edited.predict(case.x)
    kept = before != case.coarse
    assert (after[kept] == before[kept]).all(), list(zip(before[kept], after[kept]))
    assert case.coarse not in after  # a gate is no output label


def test_a_sub_row_that_overflows_float32_gives_no_nan_and_keeps_other_predictions():
    """The case the issue found: a large finite feature makes a sub row's float32 logit inf, the sub table NaN,
    and the argmax of the log-probabilities took the NaN sub over the earlier edit's prediction."""
    head = catsplit.Head(weight=np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32), labels=["a", "b", "c"])
    first = catsplit.split(head, None, "c", ["c0", "c1"], method="coarse", mode="hierarchical")
    second = catsplit.split(first, None, "b", ["b0", "b1"], method="coarse", mode="hierarchical")
    table = second.tables[-1]
    big = make_table(np.array([[MAX, MAX], [-MAX, 1.0]], np.float32), None, table.labels, table.parent)
    second = second.evolve(tables=second.tables[:-1] + (big,))
    x = np.array([[1e30, 1e30], [3e38, -1.0], [1.0, 2.0], [-1.0, 3e38]], np.float32)
    assert not np.isnan(second.logits(x)).any() and not np.isnan(second.probs(x)).any()
    # rows 0 and 2: the gate c is the base top-1 and the log-probabilities decide (b0's float32 logit is inf);
    # row 1: a ties with c in float32 (3e38 - 1 rounds to 3e38) and comes first; row 3 was b and goes to a sub
    assert first.predict(x).tolist() == ["c0", "a", "c0", "b"]
    assert second.predict(x).tolist() == ["c0", "a", "c0", "b0"]
