"""catsplit.methods.registry: the zero-shot methods by name, in registration order."""

import pytest

import catsplit
from catsplit import AlignmentConfig, CatsplitError, RetrievalConfig, TextConfig
from catsplit.methods import alignment, coarse, retrieval, text
from catsplit.methods.base import Method
from catsplit.methods.registry import METHODS, gate_methods, get_method

COARSE = "Pushing something"


def test_the_methods_in_registration_order():
    assert list(METHODS) == ["alignment", "retrieval", "text", "coarse"]
    for name, module in zip(METHODS, (alignment, retrieval, text, coarse)):
        assert METHODS[name] is module.METHOD and isinstance(module.METHOD, Method) and module.METHOD.name == name
    assert {name: m.config for name, m in METHODS.items()} == {
        "alignment": AlignmentConfig, "retrieval": RetrievalConfig, "text": TextConfig, "coarse": None}
    assert [name for name, m in METHODS.items() if m.needs_encoder] == ["alignment", "retrieval", "text"]
    assert all(m.summary and "\n" not in m.summary for m in METHODS.values())


def test_get_method_returns_the_record_or_lists_the_names():
    assert get_method("retrieval") is retrieval.METHOD
    for bad in ("magic", "Retrieval", None, 3):
        with pytest.raises(CatsplitError) as err:
            get_method(bad)
        assert f"unknown method {bad!r}; choose one of ['alignment', 'coarse', 'retrieval', 'text']" == str(err.value)


def test_gate_methods_are_those_whose_rows_are_coarse_plus_an_edit(head_and_subs, encoder):
    assert gate_methods() == ["alignment", "retrieval"]
    head, subs = head_and_subs
    for name in ("text", "coarse"):
        with pytest.raises(CatsplitError, match=f"needs method 'alignment' or 'retrieval', not '{name}'"):
            catsplit.split(head, encoder, COARSE, subs, method=name, gate=0.5)
