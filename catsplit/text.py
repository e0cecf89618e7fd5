"""Calling text encoders: any callable `list[str] -> [N, E]` works.

`encode` deduplicates, checks what came back, and L2-normalises, so user encoders need not.
`with_templates` averages prompt templates, open_clip style.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from catsplit.errors import CatsplitError

TextEncoder = Callable[[list[str]], Any]


def encode(encoder: TextEncoder, texts: Sequence[str]) -> np.ndarray:
    """Embed `texts` with `encoder` -> float32 [N, E], rows L2-normalised.

    Each distinct text is encoded once. The encoder's output is checked: shape [n, E], finite,
    no zero rows.
    """
    if not callable(encoder):
        raise CatsplitError(
            f"text_encoder must be callable (list[str] -> [N, E] array), got {type(encoder).__name__}; "
            "use catsplit.default_text_encoder()"
        )
    unique = list(dict.fromkeys(texts))
    if not unique:
        raise CatsplitError("nothing to encode: the list of texts is empty")
    out = encoder(unique)
    if hasattr(out, "detach"):  # torch tensor
        out = out.detach().cpu().float().numpy()
    emb = np.asarray(out, dtype=np.float32)
    if emb.ndim != 2 or emb.shape[0] != len(unique) or emb.shape[1] == 0:
        raise CatsplitError(
            f"text encoder returned shape {emb.shape} for {len(unique)} texts; it must return [{len(unique)}, E]"
        )
    if not np.isfinite(emb).all():
        bad = [unique[i] for i in np.nonzero(~np.isfinite(emb).all(axis=1))[0][:3]]
        raise CatsplitError(f"text encoder returned NaN or inf for {bad}; check the encoder")
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    if (norms == 0).any():
        bad = [unique[i] for i in np.nonzero(norms[:, 0] == 0)[0][:3]]
        raise CatsplitError(f"text encoder returned an all-zero embedding for {bad}; check the encoder")
    emb = emb / norms
    index = {t: i for i, t in enumerate(unique)}
    return emb[[index[t] for t in texts]]


NEAR_DUPLICATE = 0.97  # cosine above which an encoder barely tells two different texts apart


class NearDuplicateWarning(UserWarning):
    """The text encoder gives two different new labels nearly the same embedding (see warn_near_duplicates)."""


def warn_near_duplicates(texts: Sequence[str], emb: np.ndarray, labels: Sequence[str], method: str) -> list:
    """Warn when the encoder gives two different texts nearly the same embedding.

    A method that reads only these embeddings then gives both labels nearly the same row, so they
    tie. MiniLM, for one, puts "from left to right" and "from right to left" at cosine 0.987.

    Args:
        texts: the k texts the method embeds for the new labels (modifiers or whole labels).
        emb: their unit embeddings [k, E].
        labels: the k labels they belong to (named in the warning).
        method: the method's name (named in the warning).

    Returns:
        [(label_i, label_j, cosine)] for every pair at or above NEAR_DUPLICATE with different texts.
    """
    import warnings

    cos = np.asarray(emb, dtype=np.float64) @ np.asarray(emb, dtype=np.float64).T  # [k, k]
    pairs = [(labels[i], labels[j], round(float(cos[i, j]), 4)) for i in range(len(texts))
             for j in range(i + 1, len(texts)) if texts[i] != texts[j] and cos[i, j] >= NEAR_DUPLICATE]
    if pairs:
        shown = "; ".join(f"{a!r} / {b!r} ({c:.3f})" for a, b, c in pairs[:3]) + (" ..." if len(pairs) > 3 else "")
        warnings.warn(
            f"method={method!r}: the text encoder barely tells these apart (cosine >= {NEAR_DUPLICATE}), so they "
            f"get nearly the same row and will mostly tie: {shown}. Use method='retrieval' (it matches modifier "
            "text exactly) or a text encoder that separates them",
            NearDuplicateWarning, stacklevel=5,  # warn <- method <- plan_split <- split <- the caller
        )
    return pairs


def with_templates(encoder: TextEncoder, labels: Sequence[str], templates: Sequence[str] | None) -> np.ndarray:
    """Label embeddings averaged over prompt templates ("a video of a person {}."), re-normalised -> [N, E]."""
    if not templates:
        return encode(encoder, labels)
    for t in templates:
        if "{}" not in t and "{label}" not in t:
            raise CatsplitError(f"template {t!r} has no '{{}}' or '{{label}}' slot for the label")
    prompts = [t.replace("{label}", "{}").format(lab) for lab in labels for t in templates]
    emb = encode(encoder, prompts).reshape(len(labels), len(templates), -1).mean(axis=1)  # [N, E]
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


class CachedEncoder:
    """Wraps an encoder and remembers every embedding it produced (for repeated edits and timing)."""

    def __init__(self, encoder: TextEncoder):
        self.encoder = encoder
        self.cache: dict[str, np.ndarray] = {}

    def __call__(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            for t, e in zip(missing, encode(self.encoder, missing)):
                self.cache[t] = e
        return np.stack([self.cache[t] for t in texts]) if texts else np.zeros((0, 0), np.float32)
