"""catsplit.methods.retrieval: the paper's modifier retrieval — score, greedy one-to-one matching, w_c + m_entry."""


import numpy as np
import pytest

import catsplit
from catsplit import CatsplitError, Head
from catsplit.methods.retrieval import greedy_match
from conftest import MODIFIERS

COARSE = "Pushing something"


def test_greedy_match_takes_global_maximum_first():
    scores = np.array([[0.9, 0.8, 0.1], [0.95, 0.2, 0.3]])
    # 0.95 (row 1 -> entry 0) is taken first, so row 0 gets its second choice
    assert greedy_match(scores) == [1, 0]


def test_retrieval_finds_the_shared_modifiers(encoder, head_and_subs):
    head, subs = head_and_subs
    new = catsplit.split(head, encoder, COARSE, subs, method="retrieval")
    matches = new.history[-1]["details"]["matches"]
    for s, mod in zip(subs, MODIFIERS):
        assert matches[s]["modifier"] == mod
    assert len({m["label"] for m in matches.values()}) == len(subs)


def test_retrieval_with_fewer_entries_than_subs(encoder):
    head = Head(weight=np.eye(3, dtype=np.float32), labels=["Pushing something", "Pulling a", "Pulling b"])
    subs = ["Pushing something a", "Pushing something b", "Pushing something c"]
    with pytest.raises(CatsplitError, match="3 subs but only 2 entries"):
        catsplit.split(head, encoder, "Pushing something", subs, method="retrieval")
