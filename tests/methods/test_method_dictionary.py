"""catsplit.methods.dictionary: modifier vectors read off groups of existing labels (m_y = w_y - mean of its group)."""

import numpy as np
import pytest

import catsplit
from catsplit import CatsplitError, Head
from catsplit.methods.dictionary import ModifierDictionary
from catsplit.structure import infer_structure
from conftest import compositional_head

COARSE = "Pushing something"


def test_entries_prototypes_and_vectors():
    labels = ["Pull a left", "Pull a right", "Pull a up", "Lift b left", "Lift b right", "Spin"]
    matrix = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    d = ModifierDictionary(infer_structure(labels), matrix, {lab: i for i, lab in enumerate(labels)})
    assert len(d) == 5  # "Spin" is alone in its group: no entry
    assert d.group_names == ["Pull a", "Lift b"] and d.labels == labels[:5]
    assert d.groups == ["Pull a"] * 3 + ["Lift b"] * 2 and d.modifiers == ["left", "right", "up", "left", "right"]
    np.testing.assert_allclose(d.prototypes, np.stack([matrix[:3].mean(0), matrix[3:5].mean(0)]), rtol=1e-6)
    np.testing.assert_array_equal(d.member_rows, matrix[:5])
    np.testing.assert_allclose(d.vectors, matrix[:5] - d.prototypes[[0, 0, 0, 1, 1]], atol=1e-6)
    np.testing.assert_array_equal(d.vectors_of([4, 1]), d.vectors[[4, 1]])
    assert d.vectors_of([]).shape == (0, 4)


def test_no_group_of_two_means_an_empty_dictionary():
    d = ModifierDictionary(infer_structure(["Tearing paper", "Spinning a top"]), np.ones((2, 3), np.float32),
                           {"Tearing paper": 0, "Spinning a top": 1})
    assert len(d) == 0 and d.prototypes.shape == (0, 3) and d.vectors.shape == (0, 3)


def test_dictionary_vectors_agree_whichever_way_they_are_computed():
    from catsplit.methods.dictionary import ModifierDictionary
    from catsplit.structure import infer_structure

    head, _, _, _ = compositional_head(dim=33)
    labels = [lab for lab in head.labels if lab != COARSE]
    d = ModifierDictionary(infer_structure(labels), head.weight.numpy(), {lab: i for i, lab in enumerate(head.labels)})
    assert np.array_equal(d.vectors_of(list(range(len(d)))), d.vectors)  # retrieval's path == alignment's path


def test_no_dictionary(encoder):
    head = Head(weight=np.eye(4, dtype=np.float32), labels=["Pushing something", "Tearing paper", "Spinning a top", "Closing a door"])
    for method in ("retrieval", "alignment"):
        with pytest.raises(CatsplitError, match="groups=") as err:
            catsplit.split(head, encoder, "Pushing something", ["Pushing something left", "Pushing something right"], method=method)
        assert "alignment" in str(err.value) or "text" in str(err.value)
