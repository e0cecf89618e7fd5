"""catsplit.config: SplitConfig, the settings of every zero-shot method in one object — its checks name
`SplitConfig.<field>`, and each method reads its own config from it — and FinetuneConfig, fine-tuning's."""

import dataclasses
import math

import numpy as np
import pytest

import catsplit
from catsplit import AlignmentConfig, CatsplitError, FinetuneConfig, RetrievalConfig, SplitConfig, TextConfig
from catsplit.methods.registry import METHODS

COARSE = "Pushing something"


@pytest.mark.parametrize("field, value", [
    ("batch_size", 0), ("batch_size", 2.0), ("batch_size", True), ("hidden", 0), ("max_epochs", -1),
    ("max_steps", 0), ("patience", 0), ("ema", 1.0), ("ema", -0.1), ("ema", math.nan), ("lr", -1), ("lr", 0),
    ("lr", math.inf), ("weight_decay", -1e-3), ("min_delta", math.nan), ("alpha", math.nan), ("beta", -1),
    ("alpha", "0.5"), ("ridge_lambdas", ()), ("ridge_lambdas", (1.0, 0.0)), ("ridge_lambdas", (math.nan,)),
    ("ridge_lambdas", "1"), ("ridge_lambdas", 1.0),
])
def test_split_config_refuses_bad_values(field, value):
    with pytest.raises(CatsplitError, match=f"SplitConfig.{field}"):
        SplitConfig(**{field: value})


def test_split_config_valid_values_and_type(head16_and_subs, encoder):
    assert SplitConfig(ridge_lambdas=[1, 10]).ridge_lambdas == (1, 10)
    assert SplitConfig(alpha=0, beta=1).alpha == 0 and SplitConfig(lr=np.float32(0.01)).lr > 0
    with pytest.raises(CatsplitError, match="both be 0"):
        SplitConfig(alpha=0, beta=0)
    head, subs = head16_and_subs
    with pytest.raises(CatsplitError, match="config must be a catsplit.AlignmentConfig or catsplit.SplitConfig, got dict"):
        catsplit.split(head, encoder, COARSE, subs, config={"alpha": 1})
    edited = catsplit.split(head, None, COARSE, subs, method="coarse")
    with pytest.raises(CatsplitError, match="config must be a catsplit.FinetuneConfig, got dict"):
        catsplit.finetune(edited, np.ones((2, 16), np.float32), subs[:2], config={"lr": 1})


def test_finetune_config_is_validated():
    for bad in (dict(lr=0), dict(lr=float("nan")), dict(batch_size=0), dict(max_steps=1.5), dict(patience=True),
                dict(ema=1.0), dict(weight_decay=-1), dict(min_delta=float("inf"))):
        with pytest.raises(CatsplitError, match="FinetuneConfig"):
            FinetuneConfig(**bad)


@pytest.mark.parametrize("field, value", [
    ("lr", True), ("weight_decay", True), ("min_delta", False), ("ema", False), ("batch_size", True),
    ("lr", "0.1"), ("ema", math.nan), ("max_steps", 2.0),
])
def test_finetune_config_refuses_bools_like_split_config(field, value):
    # FinetuneConfig shares SplitConfig's validator: a bool is not a number (lr=True used to pass as 1)
    with pytest.raises(CatsplitError, match=f"FinetuneConfig.{field}"):
        FinetuneConfig(**{field: value})
    assert FinetuneConfig(batch_size=np.int64(8), lr=np.float32(0.01)).batch_size == 8


def test_for_method_returns_each_methods_own_config_with_this_objects_values():
    config = SplitConfig(alpha=0.7, beta=0.2, hidden=64, lr=0.01, weight_decay=0.0, batch_size=4, max_epochs=9,
                         max_steps=30, ema=0.5, patience=2, min_delta=0.01, ridge_lambdas=[0.5, 5.0])
    assert config.for_method("retrieval") == RetrievalConfig(alpha=0.7, beta=0.2)
    assert config.for_method("alignment") == AlignmentConfig(hidden=64, lr=0.01, weight_decay=0.0, batch_size=4,
                                                             max_epochs=9, max_steps=30, ema=0.5, patience=2,
                                                             min_delta=0.01)
    assert config.for_method("text") == TextConfig(ridge_lambdas=(0.5, 5.0))
    assert config.for_method("coarse") is None  # a method without settings
    assert {name: type(config.for_method(name)) for name in METHODS} == {
        "alignment": AlignmentConfig, "retrieval": RetrievalConfig, "text": TextConfig, "coarse": type(None)}
    with pytest.raises(CatsplitError, match="unknown method 'magic'"):
        config.for_method("magic")


def test_the_defaults_are_each_methods_own_defaults():
    for name, method in METHODS.items():
        assert SplitConfig().for_method(name) == (None if method.config is None else method.config())
    fields = {f.name for f in dataclasses.fields(SplitConfig)}
    for method in METHODS.values():  # every field of a method's config is a SplitConfig field
        if method.config is not None:
            assert {f.name for f in dataclasses.fields(method.config)} <= fields


def test_split_config_is_frozen():
    config = SplitConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.alpha = 1.0


def test_split_reads_the_chosen_methods_fields_from_a_split_config(head_and_subs, encoder):
    head, subs = head_and_subs
    via_split_config = catsplit.split(head, encoder, COARSE, subs, method="retrieval", config=SplitConfig(alpha=1.0, beta=0.0))
    via_own_config = catsplit.split(head, encoder, COARSE, subs, method="retrieval", config=RetrievalConfig(alpha=1.0, beta=0.0))
    assert via_split_config.equals(via_own_config)
    matches = via_split_config.history[-1]["details"]["matches"]
    assert all(m["score"] == pytest.approx(1.0) for m in matches.values())  # beta = 0: the modifier texts alone
    default = catsplit.split(head, encoder, COARSE, subs, method="retrieval").history[-1]["details"]["matches"]
    assert all(m["score"] < 1.0 for m in default.values())  # beta = 0.5: the label texts count too
