"""catsplit.relabel: each coarse clip's new sub label and its probability within the split."""

from __future__ import annotations

import numpy as np
import pytest

import catsplit
from catsplit import CatsplitError
from conftest import COARSE, HashEncoder, class_clips, compositional_head


@pytest.mark.parametrize("mode", ["flat", "hierarchical"])
def test_label_is_the_best_sub_and_probability_the_full_softmax_renormalised_over_the_subs(mode):
    head, subs, v, m = compositional_head(dim=16, seed=1)
    edited = catsplit.split(head, HashEncoder(), COARSE, subs, method="retrieval", mode=mode)
    rng = np.random.default_rng(0)
    x = np.concatenate([class_clips(v, m, s, 10, rng, 16) for s in subs])
    labels, p = catsplit.relabel(edited, x)
    cols = [edited.labels.index(s) for s in subs]
    full = edited.probs(x)[:, cols].astype(np.float64)
    within = full / full.sum(axis=1, keepdims=True)
    assert labels == [subs[j] for j in within.argmax(axis=1)]
    np.testing.assert_allclose(p, within.max(axis=1), rtol=1e-4, atol=1e-6)
    assert np.mean(np.array(labels) == np.repeat(subs, 10)) > 0.8  # the retrieval split already separates them
    chunked, p2 = catsplit.relabel(edited, [x[:7], x[7:]])
    assert chunked == labels and np.allclose(p2, p)


def test_errors():
    head, subs, _, _ = compositional_head(dim=16)
    with pytest.raises(CatsplitError, match="latest edit"):
        catsplit.relabel(head, np.zeros((3, 16), np.float32))
    edited = catsplit.split(head, None, COARSE, subs, method="coarse")
    with pytest.raises(CatsplitError, match=r"shape \[N, 16\]"):
        catsplit.relabel(edited, np.zeros((3, 4), np.float32))
