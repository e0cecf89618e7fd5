"""catsplit.methods.dictionary: modifier vectors read off groups of existing labels (m_y = w_y - mean of its group)."""

import numpy as np
import pytest

import catsplit
from catsplit import CatsplitError, Head
from conftest import compositional_head

COARSE = "Pushing something"


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
