"""Text encoder from an ONNX export (`model.onnx` + `tokenizer.json`), run by onnxruntime on CPU.

onnxruntime is imported when an encoder is built, never at import time.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from catsplit.encoders.minilm import _BatchedTextEncoder, load_tokenizer
from catsplit.errors import CatsplitError

ONNX_FILES = ("model.onnx", "tokenizer.json")
# Names the graph may declare; each is fed as int64 [B, T].
_KNOWN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def require_onnxruntime() -> ModuleType:
    """Import onnxruntime.

    Returns:
        The `onnxruntime` module.

    Raises:
        CatsplitError: not installed; the message has the install command.
    """
    try:
        import onnxruntime
    except ImportError as e:
        raise CatsplitError(
            "ONNX text encoders need onnxruntime, which is not installed. Install it with:\n"
            "    pip install onnxruntime\n"
            "(or `pip install onnxruntime-gpu` for CUDA, never both: the two packages install the same "
            f"`onnxruntime` module and overwrite each other). Import error: {e}"
        ) from e
    return onnxruntime


class OnnxTextEncoder(_BatchedTextEncoder):
    """Sentence embeddings from an ONNX transformer: mean pooling over the attention mask + L2 norm.

    The graph's first output is either token states [N, T, H] (mean-pooled here) or already a
    sentence embedding [N, H] (only normalised here).
    """

    def __init__(self, folder: str | Path, *, batch_size: int = 64, max_length: int = 256) -> None:
        """Open the model.

        Args:
            folder: folder with `model.onnx` and `tokenizer.json`.
            batch_size: texts per session run.
            max_length: tokens per text, special tokens included; longer texts are truncated
                with a warning.
        """
        folder = Path(folder)
        missing = [f for f in ONNX_FILES if not (folder / f).is_file()]
        if missing:
            raise CatsplitError(f"{folder} is not an ONNX text encoder folder: missing {', '.join(missing)}")
        if batch_size < 1:
            raise CatsplitError(f"batch_size must be >= 1, got {batch_size}")
        if max_length < 3:
            raise CatsplitError(f"max_length must be >= 3 (room for [CLS] text [SEP]), got {max_length}")
        ort = require_onnxruntime()
        try:
            self.session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise CatsplitError(f"cannot load {folder / 'model.onnx'}: {e}") from e
        self._inputs = [i.name for i in self.session.get_inputs()]
        unknown = [n for n in self._inputs if n not in _KNOWN_INPUTS]
        if unknown or "input_ids" not in self._inputs:
            raise CatsplitError(
                f"{folder / 'model.onnx'} declares inputs {self._inputs}; OnnxTextEncoder feeds only "
                f"{', '.join(_KNOWN_INPUTS)} and needs input_ids"
            )
        self._output = self.session.get_outputs()[0]
        self.folder = folder
        self.name = f"onnx:{folder.resolve().name}"
        self.batch_size = int(batch_size)
        self.max_length = int(max_length)
        self.tokenizer = load_tokenizer(folder / "tokenizer.json")
        last = self._output.shape[-1] if self._output.shape else None
        # A symbolic last dimension ("hidden") is only known after one run.
        self.dim = last if isinstance(last, int) and last > 0 else self._probe_dim()

    def _probe_dim(self) -> int:
        """Run one tiny text to learn the embedding size."""
        self.dim = 0
        enc = self.tokenizer.encode("a")
        one = np.array([enc.ids], dtype=np.int64)  # [1, T]
        return int(self._embed_batch(one, np.ones_like(one), np.zeros_like(one)).shape[1])

    def _embed_batch(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> np.ndarray:
        given: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        feed = {n: given[n] for n in self._inputs}  # only what the graph declares
        out = self.session.run([self._output.name], feed)[0].astype(np.float32, copy=False)
        if out.ndim == 3:  # token states [B, T, H]
            m = attention_mask[..., None].astype(np.float32)  # [B, T, 1]
            pooled = (out * m).sum(1) / np.maximum(m.sum(1), 1e-9)  # [B, H]
        elif out.ndim == 2:  # already a sentence embedding [B, H]
            pooled = out
        else:
            raise CatsplitError(f"{self.folder / 'model.onnx'}: first output {self._output.name} has shape {out.shape}, expected [N, T, H] or [N, H]")
        norm = np.linalg.norm(pooled, axis=1, keepdims=True)  # [B, 1]
        return (pooled / np.maximum(norm, 1e-12)).astype(np.float32)
