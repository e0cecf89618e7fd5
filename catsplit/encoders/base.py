"""What every built-in text encoder shares: input checks, the tokenizer, batching, pooling.

`BatchedTextEncoder` validates the texts, sorts them by length, tokenises each batch (padded to its
longest text), calls the subclass's `_embed_batch`, and puts the rows back in input order. The
encoders (`minilm.py`, `onnx.py`) subclass it and import nothing from each other.

Nothing heavy happens at import: tokenizers is imported when a tokenizer is loaded.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from catsplit.errors import CatsplitError

if TYPE_CHECKING:  # type names only; never imported at run time here
    from tokenizers import Tokenizer


def check_texts(texts: Any) -> list[str]:
    """Validate encoder input.

    Args:
        texts: a list (or tuple) of non-empty strings.

    Returns:
        The texts as a list.

    Raises:
        CatsplitError: a bare string, a non-sequence, or an item that is not a non-empty string.
    """
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise CatsplitError(
            f"text encoders take a list of strings, got {type(texts).__name__} {texts!r:.80}; "
            "wrap a single text in a list: encoder([text])"
        )
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise CatsplitError(f"text {i} is not a string: {t!r} ({type(t).__name__})")
        if not t.strip():
            raise CatsplitError(f"text {i} is empty or whitespace only: {t!r}")
    return texts


def token_rows(tokenizer: Tokenizer) -> int:
    """Rows a token table needs for every id `tokenizer` can produce: its largest id + 1 (ids need not be
    dense: a tokenizer.json may map 24 tokens to ids up to 10^9)."""
    ids = tokenizer.get_vocab(with_added_tokens=True).values()
    return max(ids, default=-1) + 1


def load_tokenizer(path: Path) -> Tokenizer:
    """Load a `tokenizer.json`, padding to the longest text of each batch and not truncating.

    The MiniLM file pads every text to a fixed 128 tokens (and truncates at 128); padding to the
    longest text of a length-sorted batch is ~20x faster for short labels. Truncation is set per
    call by the encoder.

    Args:
        path: the tokenizer.json file.

    Returns:
        The tokenizer.
    """
    from tokenizers import Tokenizer

    check_templates_of(path)  # before tokenizers reads it: a template naming an unknown token makes it panic
    try:
        tok = Tokenizer.from_file(str(path))
        # Keep the file's pad token if it names one; BERT vocabularies use [PAD] = 0.
        pad = tok.padding or {}
        pad_token = pad.get("pad_token") or "[PAD]"
        pad_id = pad.get("pad_id") if tok.padding else tok.token_to_id(pad_token)
        tok.no_padding()
        tok.enable_padding(pad_id=pad_id if pad_id is not None else 0, pad_token=pad_token)  # longest in batch
        tok.no_truncation()
    except BaseException as e:  # noqa: BLE001 - tokenizers raises a bare Exception on bad files, or panics
        if not tokenizer_failure(e):
            raise
        raise CatsplitError(f"cannot read tokenizer {path}: {first_line(e)}") from None
    return tok


def tokenizer_failure(e: BaseException) -> bool:
    """True for what tokenizers raises on a bad file or text: an Exception, or a Rust panic, which pyo3 raises as
    PanicException (a BaseException, so that `except Exception` misses it)."""
    return isinstance(e, Exception) or type(e).__name__ == "PanicException"


def first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0][:300] if lines else type(e).__name__


def check_templates_of(path: Path) -> None:
    """A tokenizer.json whose template post-processor uses only special tokens it defines."""
    from catsplit.io.readers import read_json

    data = read_json(path, "tokenizer")
    if not isinstance(data, dict):
        raise CatsplitError(f"tokenizer {path} must hold a JSON object, got {type(data).__name__}")
    todo = [data.get("post_processor")]
    while todo:
        proc = todo.pop()
        if not isinstance(proc, dict):
            continue
        if proc.get("type") == "Sequence":
            todo.extend(proc.get("processors") or [])
        if proc.get("type") != "TemplateProcessing":
            continue
        known = proc.get("special_tokens")
        pieces = [p for key in ("single", "pair") if isinstance(proc.get(key), list) for p in proc[key]]
        for piece in pieces:
            token = piece.get("SpecialToken") if isinstance(piece, dict) else None
            if isinstance(token, dict) and (
                not isinstance(known, dict) or not isinstance(token.get("id"), str) or token["id"] not in known
            ):
                raise CatsplitError(f"tokenizer {path}: its template uses the special token {token.get('id')!r}, which "
                                    "its special_tokens do not define; the file is damaged")


class BatchedTextEncoder:
    """Shared call path: validate, sort by length, tokenise per batch, embed, restore order.

    Subclasses set `name`, `dim`, `batch_size`, `max_length`, `tokenizer` and implement `_embed_batch`.
    """

    name: str
    dim: int
    batch_size: int
    max_length: int
    tokenizer: Tokenizer

    def _embed_batch(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> np.ndarray:
        """Embed one padded batch (all arrays int64 [B, T]); returns float32 [B, dim], L2-normalised."""
        raise NotImplementedError

    def __call__(self, texts: list[str]) -> np.ndarray:
        """Encode texts.

        Args:
            texts: non-empty strings.

        Returns:
            float32 [N, dim], rows L2-normalised, in the order of `texts`.
        """
        texts = check_texts(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)  # [0, E]
        out, n_truncated = self._encode_sorted(texts)
        if n_truncated:
            warnings.warn(
                f"{self.name}: {n_truncated} of {len(texts)} texts were longer than {self.max_length} "
                f"tokens and were truncated to {self.max_length}; their embeddings ignore the rest",
                UserWarning,
                stacklevel=2,
            )
        return out

    def _encode_sorted(self, texts: list[str]) -> tuple[np.ndarray, int]:
        """Encode in length-sorted batches; returns (float32 [N, dim] in input order, #truncated)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)  # [N, E]
        # Longest first, so each batch pads only to about its own length (as sentence-transformers does).
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        # Set per call so a changed `max_length` takes effect; idempotent, so safe across threads.
        n_truncated = 0
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            try:  # a tokenizer.json that loads can still fail on text (tokenizers raises a bare Exception)
                self.tokenizer.enable_truncation(max_length=self.max_length)
                encs = self.tokenizer.encode_batch([texts[i] for i in idx])
                n_truncated += sum(1 for e in encs if e.overflowing)
                ids = np.array([e.ids for e in encs], dtype=np.int64)  # [B, T]
                mask = np.array([e.attention_mask for e in encs], dtype=np.int64)  # [B, T]
                types = np.array([e.type_ids for e in encs], dtype=np.int64)  # [B, T]
            except BaseException as e:  # noqa: BLE001 - tokenizers raises a bare Exception, or panics
                if not tokenizer_failure(e):
                    raise
                raise CatsplitError(f"{self.name}: its tokenizer fails on the texts ({type(e).__name__}: {first_line(e)}); "
                                    "check its tokenizer.json") from None
            if ids.ndim != 2 or ids.shape[1] == 0:
                raise CatsplitError(f"{self.name}: its tokenizer gave no tokens (or rows of different lengths) for "
                                    f"{[texts[i] for i in idx][:3]}; check its tokenizer.json")
            out[idx] = self._embed_batch(ids, mask, types)
        return out, n_truncated

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, max_length={self.max_length})"


def mean_pool(tokens: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Mean of the token states over real tokens only (sentence-transformers' mean_tokens pooling).

    Args:
        tokens: float32 [B, T, H] token states.
        attention_mask: int [B, T], 1 for real tokens, 0 for padding.

    Returns:
        float32 [B, H].
    """
    m = attention_mask[..., None].astype(np.float32)  # [B, T, 1]
    return (tokens * m).sum(1) / np.maximum(m.sum(1), 1e-9)  # [B, H]


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm (at least 1e-12, so a zero row stays zero). x: [B, H]; returns float32 [B, H]."""
    norm = np.linalg.norm(x, axis=1, keepdims=True)  # [B, 1]
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)
