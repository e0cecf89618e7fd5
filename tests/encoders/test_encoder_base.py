"""catsplit.encoders.base: what every built-in encoder shares — batching, order, truncation, input checks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catsplit.encoders import MiniLMEncoder, default_text_encoder
from catsplit.errors import CatsplitError
from minilm_reference import LONG, SHORT, TEXTS, encode_quiet


@pytest.fixture(scope="module")
def enc() -> MiniLMEncoder:
    return default_text_encoder()


def test_batching_does_not_change_embeddings(enc: MiniLMEncoder) -> None:
    together = encode_quiet(enc, TEXTS)  # one batch, padded to the longest text
    alone = np.concatenate([encode_quiet(enc, [t]) for t in TEXTS])  # no padding at all
    np.testing.assert_allclose(together, alone, atol=1e-5)
    small = MiniLMEncoder(batch_size=3)  # several length-sorted batches
    np.testing.assert_allclose(encode_quiet(small, TEXTS), together, atol=1e-5)


def test_order_preserved(enc: MiniLMEncoder) -> None:
    base = encode_quiet(enc, TEXTS)
    perm = np.random.default_rng(0).permutation(len(TEXTS))
    out = encode_quiet(enc, [TEXTS[i] for i in perm])
    np.testing.assert_allclose(out, base[perm], atol=1e-5)
    dup = enc([SHORT[0], SHORT[1], SHORT[0]])  # duplicates come back in place too
    np.testing.assert_allclose(dup[0], dup[2], atol=1e-6)


def test_truncation_warns_once_per_call(enc: MiniLMEncoder) -> None:
    with pytest.warns(UserWarning, match=r"1 of 3 texts .*256 tokens") as rec:
        enc([SHORT[0], LONG, SHORT[1]])
    assert len([w for w in rec if "truncated" in str(w.message)]) == 1
    with pytest.warns(UserWarning, match=r"2 of 2 texts") as rec:
        enc([LONG, LONG + " and then some more"])
    assert len([w for w in rec if "truncated" in str(w.message)]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # short texts: no warning at all
        enc(SHORT)


def test_truncation_keeps_the_first_max_length_tokens(enc: MiniLMEncoder) -> None:
    # 256 tokens = [CLS] + 254 word pieces + [SEP]: cutting the text after them changes nothing.
    a = encode_quiet(enc, [LONG])  # the call sets the tokenizer's truncation to 256
    ids = enc.tokenizer.encode(LONG).ids
    assert len(ids) == 256
    head = enc.tokenizer.decode(ids[1:-1])
    b = encode_quiet(enc, [head])
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_empty_input(enc: MiniLMEncoder) -> None:
    out = enc([])
    assert out.shape == (0, 384) and out.dtype == np.float32


@pytest.mark.parametrize(
    ("texts", "pattern"),
    [
        (["fine", 3], r"text 1 .*3"),
        (["fine", "   "], r"text 1 .*'   '"),
        (["", "fine"], r"text 0 .*''"),
        ([None], r"text 0 .*None"),
        ("a bare string", r"list of strings"),
        (42, r"list of strings"),
    ],
)
def test_bad_texts(enc: MiniLMEncoder, texts, pattern: str) -> None:
    with pytest.raises(CatsplitError, match=pattern):
        enc(texts)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(min_size=1, max_size=60).filter(lambda t: t.strip()), min_size=1, max_size=5))
def test_any_unicode_text_gives_unit_rows(enc: MiniLMEncoder, texts: list[str]) -> None:
    out = enc(texts)
    assert out.shape == (len(texts), 384)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
