"""catsplit.encoders.loading (and the package): the cached default encoder, choosing one by folder contents,
and imports that load neither torch nor onnxruntime."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from catsplit.encoders import MiniLMEncoder, OnnxTextEncoder, default_text_encoder, load_text_encoder
from catsplit.encoders import minilm as minilm_mod
from catsplit.errors import CatsplitError
from minilm_reference import SHORT, link_or_copy, onnx_minilm_folder


@pytest.fixture(scope="module")
def enc() -> MiniLMEncoder:
    return default_text_encoder()


@pytest.fixture(scope="module")
def onnx_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return onnx_minilm_folder(tmp_path_factory)


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
        link_or_copy(minilm_mod.require_minilm() / f, tmp_path / f)
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


def test_import_is_lazy() -> None:
    # Measured against `import catsplit` alone, so only what catsplit.encoders itself pulls in counts.
    code = (
        "import sys; import catsplit; before = set(sys.modules); import catsplit.encoders; "
        "new = set(sys.modules) - before; "
        "print(sorted(m for m in ('torch', 'onnxruntime', 'tokenizers', 'safetensors') if m in new))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]", res.stdout + res.stderr
