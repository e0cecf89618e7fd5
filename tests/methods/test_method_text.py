"""catsplit.methods.text: the 'text' baseline — a ridge map from label-text embeddings to rows (lambda by exact
leave-one-out error); on a text head, the sub labels' own embeddings."""


import numpy as np
import pytest

import catsplit
from catsplit import CatsplitError, Head
from conftest import HashEncoder

COARSE = "Pushing something"


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
