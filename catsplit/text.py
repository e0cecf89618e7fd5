"""Calling text encoders: any callable `list[str] -> [N, E]` works.

`encode` deduplicates, checks what came back, and L2-normalises, so user encoders need not.
`with_templates` averages prompt templates, open_clip style.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, Sequence

import numpy as np

from catsplit.checks import check_templates
from catsplit.errors import CatsplitError, warn_caller

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
    try:
        emb = np.asarray(out)
        if emb.dtype.kind not in "fiub":  # strings ("1.0" would convert), objects, complex numbers
            raise TypeError(f"dtype {emb.dtype}")
        emb = _to_float32(emb)
    except (TypeError, ValueError) as exc:  # ragged lists: numpy's "inhomogeneous shape"
        raise CatsplitError(
            f"text encoder returned non-numeric or ragged output for {len(unique)} texts ({type(out).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); it must return an [{len(unique)}, E] "
            "array of floats, every row of the same length E"
        ) from None
    if emb.ndim != 2 or emb.shape[0] != len(unique) or emb.shape[1] == 0:
        raise CatsplitError(
            f"text encoder returned shape {emb.shape} for {len(unique)} texts; it must return [{len(unique)}, E]"
        )
    if not np.isfinite(emb).all():
        bad = [unique[i] for i in np.nonzero(~np.isfinite(emb).all(axis=1))[0][:3]]
        raise CatsplitError(f"text encoder returned NaN or inf for {bad}; check the encoder")
    zero = ~emb.any(axis=1)
    if zero.any():
        bad = [unique[i] for i in np.nonzero(zero)[0][:3]]
        raise CatsplitError(f"text encoder returned an all-zero embedding for {bad}; check the encoder")
    emb = unit_rows(emb)
    index = {t: i for i, t in enumerate(unique)}
    return emb[[index[t] for t in texts]]


def _to_float32(emb: np.ndarray) -> np.ndarray:
    """The encoder's output as float32. Rows of a wider float type whose values float32 cannot hold are
    divided by their largest value first: normalising makes the scale irrelevant, and casting would give inf
    (or zeros, for values below float32's smallest normal number)."""
    if emb.dtype.kind == "f" and emb.dtype.itemsize > 4 and emb.ndim == 2 and emb.size and np.isfinite(emb).all():
        peak = np.abs(emb).max(axis=1)
        f32 = np.finfo(np.float32)
        huge = (peak > f32.max) | ((peak > 0) & (peak < f32.smallest_normal))  # inf, or zeros, once cast
        if huge.any():
            emb = emb.copy()
            emb[huge] /= peak[huge, None]
    return emb.astype(np.float32, copy=False)


def unit_rows(emb: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm -> float32 [N, E]; rows must be finite and non-zero.

    Rows whose float32 norm over- or underflows (entries beyond ~1e19 or below ~1e-19: their squares leave
    float32's range, so the norm is inf or 0 and the row would come out as zeros or NaN) are scaled by their
    largest entry first; every other row is divided as it is, bit for bit as before.
    """
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):  # handled below
        norms = np.linalg.norm(emb, axis=1, keepdims=True)  # [N, 1]
        out = emb / norms
    bad = ~np.isfinite(norms[:, 0]) | (norms[:, 0] == 0)
    if bad.any():
        scaled = emb[bad] / np.abs(emb[bad]).max(axis=1, keepdims=True)
        out[bad] = scaled / np.linalg.norm(scaled, axis=1, keepdims=True)
    return out


NEAR_DUPLICATE = 0.97  # cosine above which MiniLM barely tells two different texts apart (the floor for every encoder)

# Short texts about unrelated things: their cosines are an encoder's background, what "unrelated" looks like to it.
BACKGROUND_TEXTS = (
    "a red apple on a wooden table", "the stock market fell sharply today", "children playing football in the rain",
    "how to bake sourdough bread", "a violin concerto in D major", "the spacecraft entered orbit around Mars",
    "repairing a flat bicycle tyre", "a quiet library at night", "tax rules for small businesses",
    "a cat sleeping on the windowsill", "volcanic eruptions in Iceland", "learning to speak Japanese",
)
_THRESHOLDS: "weakref.WeakKeyDictionary[Any, float]" = weakref.WeakKeyDictionary()


def near_duplicate_threshold(encoder: TextEncoder | None) -> float:
    """The cosine at or above which `encoder` barely tells two different texts apart.

    An encoder's own `near_duplicate` attribute (a number in (0, 1]) when it has one: MiniLMEncoder's is
    NEAR_DUPLICATE (0.97). Otherwise it is read off the encoder's background, the median cosine b of the
    pairs of `BACKGROUND_TEXTS` (clipped to [0, 1)): 1 - (1 - NEAR_DUPLICATE) * (1 - b), so an encoder that
    compresses every cosine towards 1 (multilingual-e5: b about 0.9) gets a threshold as far above its
    background as 0.97 is above MiniLM's (b about 0). Computed once per encoder object (one call of 12 texts).

    Args:
        encoder: the text encoder (None: NEAR_DUPLICATE).

    Returns:
        the threshold, in [NEAR_DUPLICATE, 1].
    """
    if encoder is None:
        return NEAR_DUPLICATE
    own = getattr(encoder, "near_duplicate", None)
    if own is None and isinstance(encoder, CachedEncoder):
        return near_duplicate_threshold(encoder.encoder)
    if own is not None:
        if isinstance(own, bool) or not isinstance(own, (int, float, np.floating)) or not 0 < own <= 1:
            raise CatsplitError(f"the text encoder's near_duplicate must be a cosine in (0, 1], got {own!r}")
        return float(own)
    try:
        return _THRESHOLDS[encoder]
    except (KeyError, TypeError):  # not computed yet, or an encoder that cannot be weakly referenced
        pass
    emb = encode(encoder, list(BACKGROUND_TEXTS)).astype(np.float64)  # [12, E]
    cos = (emb @ emb.T)[np.triu_indices(len(emb), 1)]  # [66] cosines of unrelated pairs
    background = float(np.clip(np.median(cos), 0.0, 0.999))
    threshold = 1.0 - (1.0 - NEAR_DUPLICATE) * (1.0 - background)
    try:
        _THRESHOLDS[encoder] = threshold
    except TypeError:
        pass
    return threshold


class NearDuplicateWarning(UserWarning):
    """The text encoder gives two different new labels nearly the same embedding (see near_duplicates)."""


def near_duplicates(texts: Sequence[str], emb: np.ndarray, labels: Sequence[str],
                    encoder: TextEncoder | None = None) -> tuple[list, list]:
    """Pairs of new labels whose texts the encoder barely tells apart.

    A method that reads only these embeddings gives both labels nearly the same row, so they tie.
    MiniLM, for one, puts "from left to right" and "from right to left" at cosine 0.987.

    Args:
        texts: the k texts the method embeds for the new labels (modifiers or whole labels).
        emb: their unit embeddings [k, E].
        labels: the k labels they belong to.
        encoder: the encoder that made `emb`, whose `near_duplicate_threshold` applies (None: NEAR_DUPLICATE).

    Returns:
        (identical, close): [(label_i, label_j, text)] for pairs whose texts are the same (their rows
        are then bit-identical, whatever the encoder), and [(label_i, label_j, cosine)] for pairs of
        different texts at or above the encoder's threshold.
    """
    k = len(texts)
    identical = [(labels[i], labels[j], texts[i]) for i in range(k) for j in range(i + 1, k)
                 if texts[i] == texts[j] and labels[i] != labels[j]]
    cos = np.asarray(emb, dtype=np.float64) @ np.asarray(emb, dtype=np.float64).T  # [k, k]
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k) if texts[i] != texts[j] and cos[i, j] >= NEAR_DUPLICATE]
    if pairs:  # every threshold is >= NEAR_DUPLICATE, so the encoder's background is measured only when needed
        threshold = near_duplicate_threshold(encoder)
        pairs = [(i, j) for i, j in pairs if cos[i, j] >= threshold]
    close = [(labels[i], labels[j], round(float(cos[i, j]), 4)) for i, j in pairs]
    return identical, close


def warn_near_duplicates(method: str, identical: Sequence[tuple], close: Sequence[tuple],
                         encoder: TextEncoder | None = None) -> None:
    """One `NearDuplicateWarning` per kind of tie found by `near_duplicates` (with `encoder`'s threshold), at the
    user's line."""
    def shown(pairs: Sequence[tuple], fmt: str) -> str:
        return "; ".join(fmt.format(*p) for p in pairs[:3]) + (" ..." if len(pairs) > 3 else "")

    if identical:
        warn_caller(
            f"method={method!r}: these labels have identical texts, so they get the same row and will always tie: "
            f"{shown(identical, '{0!r} / {1!r} (both {2!r})')}. Give each its own modifier text "
            "(modifiers={label: text}) or use method='retrieval'",
            NearDuplicateWarning,
        )
    if close:
        warn_caller(
            f"method={method!r}: the text encoder barely tells these apart (cosine >= "
            f"{near_duplicate_threshold(encoder):.4g}), so they "
            f"get nearly the same row and will mostly tie: {shown(close, '{0!r} / {1!r} ({2:.3f})')}. "
            "Use method='retrieval' (it matches modifier text exactly) or a text encoder that separates them",
            NearDuplicateWarning,
        )


def with_templates(encoder: TextEncoder, labels: Sequence[str], templates: Sequence[str] | None) -> np.ndarray:
    """Label embeddings averaged over prompt templates ("a video of a person {}."), re-normalised -> [N, E]."""
    if templates is None or (not isinstance(templates, str) and isinstance(templates, Sequence) and not templates):
        return encode(encoder, labels)
    templates = check_templates(templates)
    prompts = [t.replace("{label}", "{}").format(lab) for lab in labels for t in templates]
    emb = encode(encoder, prompts).reshape(len(labels), len(templates), -1).mean(axis=1)  # [N, E]
    return unit_rows(emb)


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


def text_rows(encoder: TextEncoder, labels: Sequence[str], templates: Sequence[str] | None) -> np.ndarray:
    """The rows of `labels` in a text head: their L2-normalised embeddings, averaged over `templates`
    (None or empty: the bare labels), the first letter lower-cased to read well inside a template -> [N, E]."""
    return with_templates(encoder, [lower_first(lab) for lab in labels], templates or None)



def lower_first(label: str) -> str:
    """'Pushing something' -> 'pushing something', to read well inside a template."""
    return label[:1].lower() + label[1:]

