"""catsplit.methods.base: what a method returns, and the ties (subs the encoder cannot tell apart) it reports."""

import dataclasses

import numpy as np
import pytest

from catsplit.methods.base import NO_TIES, MethodResult, find_ties


def test_find_ties_reports_identical_and_nearly_identical_texts():
    c = np.sqrt(1 - 0.99**2)
    emb = np.array([[0, 0, 1], [0, 0, 1], [1, 0, 0], [0.99, c, 0]])  # unit rows; rows 2 and 3 at cosine 0.99
    subs = ["A left", "B left", "A up", "A upward"]
    (identical, close), details = find_ties(["left", "left", "up", "upward"], emb, subs)
    assert identical == [("A left", "B left", "left")]
    assert close == [("A up", "A upward", 0.99)]
    assert details == {"near_duplicates": [("A left", "B left", 1.0), ("A up", "A upward", 0.99)]}


def test_find_ties_finds_nothing_among_distinct_texts():
    emb = np.array([[1, 0, 0], [0.96, np.sqrt(1 - 0.96**2), 0], [0, 0, 1]])  # 0.96: below the 0.97 threshold
    ties, details = find_ties(["a", "b", "c"], emb, ["x a", "x b", "x c"])
    assert ties == ([], []) and details == {}


def test_a_method_result_defaults_to_no_details_and_no_ties():
    result = MethodResult(np.zeros((2, 3), np.float32))
    assert result.details == {} and result.ties == NO_TIES == ((), ())
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.rows = None
