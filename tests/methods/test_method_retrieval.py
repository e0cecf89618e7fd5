"""catsplit.methods.retrieval: the paper's modifier retrieval — score, greedy one-to-one matching, w_c + m_entry."""

import math

import numpy as np
import pytest

import catsplit
from catsplit import CatsplitError, Head, RetrievalConfig
from catsplit.methods.dictionary import ModifierDictionary
from catsplit.methods.retrieval import greedy_match
from catsplit.structure import infer_structure
from catsplit.text import encode
from conftest import MODIFIERS

COARSE = "Pushing something"


def test_greedy_match_takes_global_maximum_first():
    scores = np.array([[0.9, 0.8, 0.1], [0.95, 0.2, 0.3]])
    # 0.95 (row 1 -> entry 0) is taken first, so row 0 gets its second choice
    assert greedy_match(scores) == [1, 0]


def test_greedy_match_is_one_to_one():
    scores = np.array([[0.9, 0.1, 0.5], [0.8, 0.7, 0.2], [0.95, 0.9, 0.85]])
    before = scores.copy()
    assert greedy_match(scores) == [2, 1, 0]  # 0.95 (row 2 -> 0), then 0.7 (row 1 -> 1), row 0 gets what is left
    assert np.array_equal(scores, before)  # the caller's scores are not changed
    assert greedy_match(np.zeros((2, 3))) == [0, 1]  # ties: lowest (row, entry) first
    with pytest.raises(CatsplitError, match="cannot match 3 subs one-to-one with 2 dictionary entries"):
        greedy_match(np.ones((3, 2)))


def test_retrieval_finds_the_shared_modifiers(encoder, head_and_subs):
    head, subs = head_and_subs
    new = catsplit.split(head, encoder, COARSE, subs, method="retrieval")
    matches = new.history[-1]["details"]["matches"]
    for s, mod in zip(subs, MODIFIERS):
        assert matches[s]["modifier"] == mod
    assert len({m["label"] for m in matches.values()}) == len(subs)


@pytest.mark.parametrize("alpha, beta", [(0.5, 0.5), (1.0, 0.0), (0.2, 0.9)])
def test_the_record_holds_each_subs_entry_and_score_and_rows_are_coarse_plus_its_vector(head_and_subs, encoder, alpha, beta):
    head, subs = head_and_subs
    new = catsplit.split(head, encoder, COARSE, subs, method="retrieval", config=RetrievalConfig(alpha=alpha, beta=beta))
    matches = new.history[-1]["details"]["matches"]
    assert list(matches) == subs
    others = [lab for lab in head.labels if lab != COARSE]
    d = ModifierDictionary(infer_structure(others), head.weight.numpy(), {lab: i for i, lab in enumerate(head.labels)})
    for s, mod in zip(subs, MODIFIERS):
        m = matches[s]
        assert set(m) == {"label", "modifier", "score"} and m["modifier"] == mod and m["label"].endswith(" " + mod)
        e = d.labels.index(m["label"])
        np.testing.assert_allclose(new.row(s).numpy(), head.row(COARSE).numpy() + d.vectors_of([e])[0], atol=1e-6)
        phi = encode(encoder, [mod, m["modifier"], s, m["label"]])
        assert m["score"] == pytest.approx(alpha * phi[0] @ phi[1] + beta * phi[2] @ phi[3], abs=1e-5)


@pytest.mark.parametrize("field, value", [("alpha", -0.1), ("beta", math.nan), ("alpha", "0.5"), ("alpha", True),
                                          ("beta", math.inf)])
def test_retrieval_config_refuses_bad_weights(field, value):
    with pytest.raises(CatsplitError, match=f"RetrievalConfig.{field} must be a finite number >= 0"):
        RetrievalConfig(**{field: value})


def test_retrieval_config_needs_one_weight_above_zero():
    with pytest.raises(CatsplitError, match="RetrievalConfig.alpha and beta cannot both be 0"):
        RetrievalConfig(alpha=0, beta=0)
    assert RetrievalConfig(alpha=0, beta=1) == RetrievalConfig(alpha=0.0, beta=1.0)


def test_retrieval_with_fewer_entries_than_subs(encoder):
    head = Head(weight=np.eye(3, dtype=np.float32), labels=["Pushing something", "Pulling a", "Pulling b"])
    subs = ["Pushing something a", "Pushing something b", "Pushing something c"]
    with pytest.raises(CatsplitError, match="3 subs but only 2 entries"):
        catsplit.split(head, encoder, "Pushing something", subs, method="retrieval")
