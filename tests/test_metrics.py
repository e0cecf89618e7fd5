"""catsplit.metrics: the paper's protocol for one split target — generality, locality, agreement."""

import math

import numpy as np
import pytest

import catsplit
from catsplit import CatsplitError, Head


def _heads():
    # 2-d features; original: a (x axis), b (y axis), c (-x); edited splits c into c1 (-x, +y) and c2 (-x, -y)
    original = Head(weight=np.array([[1.0, 0], [0, 1], [-1, 0]], np.float32), labels=["a", "b", "c"])
    edited = Head(weight=np.array([[1.0, 0], [0, 1], [-1, 0.5], [-1, -0.5]], np.float32), labels=["a", "b", "c1", "c2"])
    return original, edited


def test_generality_locality_agreement():
    original, edited = _heads()
    x = np.array([[-1, 0.2], [-1, -0.2], [-1, 0.3],  # clips of c: true c1, c2, c2 -> 2 of 3 right
                  [1, 0], [0, 1], [0.1, 1],           # a, b, b: all right before and after
                  [-2, 0.5]], np.float32)             # labelled b, but predicted c before and c1 after
    y = ["c1", "c2", "c2", "a", "b", "b", "b"]
    s = catsplit.evaluate(original, edited, x, y, coarse="c")
    assert s.n_split == 3 and s.correct_split == 2
    assert s.generality == pytest.approx(2 / 3)
    assert s.accuracy_original == pytest.approx(3 / 4) and s.accuracy_edited == pytest.approx(3 / 4)
    assert s.locality == pytest.approx(1.0)
    assert s.agreement == pytest.approx(1.0)  # c -> c1 counts as unchanged
    assert s["generality"] == s.generality
    # indices into the edited label space work the same
    s2 = catsplit.evaluate(original, edited, x, [edited.labels.index(t) for t in y], coarse="c")
    assert s2 == s


def test_locality_is_an_accuracy_ratio():
    original, _ = _heads()
    edited = Head(weight=np.array([[1.0, 0], [0, 1], [5, 0.5], [-1, -0.5]], np.float32), labels=["a", "b", "c1", "c2"])
    x = np.array([[1, 0], [0, 1]], np.float32)
    s = catsplit.evaluate(original, edited, x, ["a", "b"], coarse="c")
    assert s.locality == pytest.approx(0.5) and s.agreement == pytest.approx(0.5)
    assert math.isnan(s.generality)


def test_bad_evaluation_input():
    original, edited = _heads()
    x = np.zeros((2, 2), np.float32)
    with pytest.raises(CatsplitError, match="one label per feature row"):
        catsplit.evaluate(original, edited, x, ["a"], coarse="c")
    with pytest.raises(CatsplitError, match="neither head"):
        catsplit.evaluate(original, edited, x, ["a", "zzz"], coarse="c")
    with pytest.raises(CatsplitError, match="outside"):
        catsplit.evaluate(original, edited, x, [0, 9], coarse="c")
    with pytest.raises(CatsplitError, match="still an output label"):
        catsplit.evaluate(original, original, x, ["a", "b"], coarse="c")


def test_evaluate_refuses_clips_labelled_with_the_split_class(encoder, head_and_subs):
    head, subs = head_and_subs
    new = catsplit.split(head, encoder, "Pushing something", subs, method="coarse")
    with pytest.raises(CatsplitError, match="label each with its true sub"):
        catsplit.evaluate(head, new, np.zeros((1, head.dim), np.float32), ["Pushing something"], coarse="Pushing something")
