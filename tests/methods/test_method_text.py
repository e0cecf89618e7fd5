"""catsplit.methods.text: the 'text' baseline — a ridge map from label-text embeddings to rows (lambda by exact
leave-one-out error); on a text head, the sub labels' own embeddings."""

import math

import numpy as np
import pytest

import catsplit
from catsplit import CatsplitError, Head, SplitConfig, TextConfig
from catsplit.methods.text import choose_lambda, fit_ridge
from catsplit.text import encode
from conftest import HashEncoder, compositional_head

COARSE = "Pushing something"


def test_fit_ridge_is_the_closed_form():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((20, 5)), rng.standard_normal((20, 3))
    for lam in (1e-3, 1.0, 50.0):
        want = np.linalg.solve(x.T @ x + lam * np.eye(5), x.T @ y)
        np.testing.assert_allclose(fit_ridge(x, y, lam), want, atol=1e-10)


def test_choose_lambda_takes_the_smallest_leave_one_out_error():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((15, 6))
    y = x @ rng.standard_normal((6, 2)) + 0.5 * rng.standard_normal((15, 2))
    grid = (1e-3, 1e-1, 1.0, 10.0, 1000.0)

    def loo(lam):  # refit without each row in turn
        return np.mean([np.sum((x[i] @ fit_ridge(np.delete(x, i, 0), np.delete(y, i, 0), lam) - y[i]) ** 2) for i in range(15)])

    assert choose_lambda(x, y, grid, seed=0) == min(grid, key=loo)
    assert choose_lambda(x, y, (7.0,), seed=0) == 7.0  # one value: nothing to choose


def test_the_ridge_map_predicts_rows_that_are_linear_in_the_label_embeddings():
    enc = HashEncoder(dim=4)
    head, subs, _, _ = compositional_head()
    labels = list(head.labels)
    r, b0 = np.random.default_rng(2).standard_normal((4, 6)), np.random.default_rng(3).standard_normal(6)
    linear = Head(weight=(encode(enc, labels) @ r + b0).astype(np.float32), labels=labels)  # row = phi(label) R + b0
    new = catsplit.split(linear, enc, COARSE, subs[2:], method="text", config=SplitConfig(ridge_lambdas=(1e-9,)))
    np.testing.assert_allclose(new.weight[-3:].numpy(), encode(enc, subs[2:]) @ r + b0, atol=1e-4)
    assert new.history[-1]["details"]["ridge_lambda"] == 1e-9


def test_the_recorded_lambda_is_one_of_the_grid(head_and_subs, encoder):
    head, subs = head_and_subs
    grid = (0.01, 1.0, 100.0)
    new = catsplit.split(head, encoder, COARSE, subs[2:], method="text", config=TextConfig(ridge_lambdas=grid))
    assert new.history[-1]["details"]["ridge_lambda"] in grid
    with pytest.raises(CatsplitError, match="at least 2 other labels"):
        catsplit.split(Head(weight=np.eye(2, dtype=np.float32), labels=["a x", "b"]), encoder, "b", ["b 1", "b 2"], method="text")


@pytest.mark.parametrize("value", [(), (1.0, 0.0), (math.nan,), (-1.0,), "1", 1.0, (True,)])
def test_text_config_refuses_bad_grids(value):
    with pytest.raises(CatsplitError, match="TextConfig.ridge_lambdas"):
        TextConfig(ridge_lambdas=value)
    assert TextConfig(ridge_lambdas=[1, 10]).ridge_lambdas == (1, 10)


def test_text_head_split_appends_sub_embeddings():
    enc = HashEncoder()
    labels = ["Pushing something", "Pulling something left", "Pulling something right"]
    head = catsplit.text_head(labels, enc, templates=["a video of {}."], scale=10.0)
    assert head.kind == "text" and head.scale == 10.0
    subs = ["Pushing something left", "Pushing something right"]
    new = catsplit.split(head, enc, "Pushing something", subs, method="text")
    expected = enc(["a video of pushing something left.", "a video of pushing something right."])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(new.weight[-2:].numpy(), expected, atol=1e-6)
    x = np.random.default_rng(0).standard_normal((4, head.dim)).astype(np.float32)
    cos = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ new.weight.numpy().T
    np.testing.assert_allclose(new.logits(x), 10.0 * cos, rtol=1e-4, atol=1e-5)
    with pytest.raises(CatsplitError, match="positive"):
        catsplit.text_head(labels, enc, scale=0)


def test_text_method_on_a_big_head_refuses_a_negative_seed(encoder):
    labels = [f"label {i} thing" for i in range(4200)]
    big = Head(weight=np.random.default_rng(0).standard_normal((4200, 4)).astype(np.float32), labels=labels)
    with pytest.raises(CatsplitError, match="seed"):
        catsplit.split(big, encoder, "label 0 thing", ["label 0 thing a", "label 0 thing b"], method="text", seed=-1)


@pytest.mark.parametrize("mode", ["flat", "hierarchical"])
def test_a_text_head_split_by_an_encoder_of_another_dimension_names_the_encoder(mode):
    labels = ["Lifting something up", "Lifting something down", "Pushing something"]
    th = catsplit.text_head(labels, HashEncoder(dim=16))
    with pytest.raises(CatsplitError, match="text encoder gives 24-dimensional embeddings.*16-dimensional"):
        catsplit.split(th, HashEncoder(dim=24), "Pushing something", ["Pushing something left", "Pushing something right"],
                       method="text", mode=mode)
