"""catsplit.encoders.onnx: a text encoder from an ONNX export, run by onnxruntime."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from catsplit.encoders import OnnxTextEncoder
from catsplit.encoders import minilm as minilm_mod
from catsplit.encoders import onnx as onnx_mod
from catsplit.errors import CatsplitError
from minilm_reference import REF, TEXTS, cosine, encode_quiet, link_or_copy, onnx_minilm_folder


@pytest.fixture(scope="module")
def onnx_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return onnx_minilm_folder(tmp_path_factory)


def test_onnx_int8_close_to_reference(onnx_folder: Path) -> None:
    onnx = OnnxTextEncoder(onnx_folder)
    assert onnx.dim == 384
    out = encode_quiet(onnx, TEXTS)
    assert out.shape == (len(TEXTS), 384) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert cosine(out.astype(np.float64), REF).min() >= 0.99  # int8 weights: close, not exact


def test_missing_onnxruntime(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` raise ImportError
    with pytest.raises(CatsplitError, match=r"pip install onnxruntime\n.*onnxruntime-gpu.*never both"):
        onnx_mod.require_onnxruntime()
    (tmp_path / "model.onnx").write_bytes(b"")
    link_or_copy(minilm_mod.require_minilm() / "tokenizer.json", tmp_path / "tokenizer.json")
    with pytest.raises(CatsplitError, match=r"pip install onnxruntime"):
        OnnxTextEncoder(tmp_path)
