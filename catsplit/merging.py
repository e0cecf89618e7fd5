"""Weight-space merging of heads with one label space (after MoTE).

W = sum_i softmax(a / tau)_i W_i (uniform when no logits are given). Rows that are bit-identical
in every head are copied, not averaged, so merging never perturbs what all heads agree on (the
old rows of several edits of one head), and merging identical heads is the identity.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Sequence

import numpy as np
import torch

from catsplit.errors import CatsplitError
from catsplit.head import Head, Table


def merge_weights(n: int, logits: Sequence[float] | None, tau: float | None) -> np.ndarray:
    """softmax(logits / tau) -> [n] float64 (uniform when logits is None)."""
    if logits is None:
        return np.full(n, 1.0 / n)
    try:
        a = np.asarray(logits)
        if a.dtype.kind not in "fiu":  # "a", True, None: numpy would convert some of them silently
            raise TypeError(a.dtype)
        a = a.astype(np.float64)
    except (TypeError, ValueError):
        raise CatsplitError(f"logits must be {n} finite numbers, one per head, got {logits!r:.200}") from None
    if a.shape != (n,) or not np.isfinite(a).all():
        raise CatsplitError(f"logits must be {n} finite numbers, one per head, got {list(np.ravel(a))}")
    if tau is not None and (isinstance(tau, bool) or not isinstance(tau, Real)):
        raise CatsplitError(f"tau must be a positive number, got {tau!r}")
    t = 1.0 if tau is None else float(tau)
    if not t > 0 or not math.isfinite(t):
        raise CatsplitError(f"tau must be a positive number, got {tau!r}")
    z = a / t
    w = np.exp(z - z.max())
    return w / w.sum()


def _merge_tensor(tensors: Sequence[torch.Tensor], weights: np.ndarray) -> torch.Tensor:
    """Row-wise weighted average, keeping rows that all heads share bit for bit."""
    first = tensors[0]
    mixed = sum(float(w) * t.to(torch.float64) for w, t in zip(weights, tensors)).to(first.dtype)
    rows = first.reshape(first.shape[0], -1).contiguous().view(torch.uint8)
    same = torch.ones(first.shape[0], dtype=torch.bool)
    for t in tensors[1:]:
        same &= (t.reshape(t.shape[0], -1).contiguous().view(torch.uint8) == rows).all(dim=1)
    return torch.where(same.reshape((-1,) + (1,) * (first.ndim - 1)), first, mixed)


def merge(heads: Sequence[Head], *, logits: Sequence[float] | None = None, tau: float | None = None) -> Head:
    """Merge heads with identical label spaces in weight space.

    Args:
        heads: two or more heads with the same labels, tables, dim and dtype (e.g. alignment edits
            from several seeds, or a zero-shot and a fine-tuned edit of one head).
        logits: mixing logits a_i (None: uniform); weights are softmax(a / tau).
        tau: temperature (default 1).
    Returns:
        a new Head: the first head's history and metadata, merged rows; the latest split's record
        gains a `merge` entry with the weights.
    """
    heads = list(heads)
    if len(heads) < 2 or not all(isinstance(h, Head) for h in heads):
        raise CatsplitError("merge needs a list of two or more catsplit.Head")
    ref = heads[0]
    for i, h in enumerate(heads[1:], 1):
        shape_ref = [(t.labels, t.parent, tuple(t.weight.shape), t.bias is None) for t in ref.tables]
        shape_h = [(t.labels, t.parent, tuple(t.weight.shape), t.bias is None) for t in h.tables]
        if shape_h != shape_ref or h.labels != ref.labels or h.dtype != ref.dtype or h.kind != ref.kind:
            only_ref = sorted(set(ref.labels) - set(h.labels))[:5]
            only_h = sorted(set(h.labels) - set(ref.labels))[:5]
            raise CatsplitError(
                f"head #{i} has another label space or layout than head #0 (only in #0: {only_ref}, only in #{i}: {only_h}); "
                "merge edits of the same head with the same subs and mode"
            )
        if h.kind == "text" and (h.scale, h.templates) != (ref.scale, ref.templates):
            # Merged rows keep one scale and one set of templates: there is no sound way to average those.
            what = "scale" if h.scale != ref.scale else "templates"
            raise CatsplitError(
                f"head #{i} is a text head with {what} {getattr(h, what)!r}, head #0 has {getattr(ref, what)!r}; "
                "merge text heads with the same scale and templates"
            )
    weights = merge_weights(len(heads), logits, tau)
    tables = []
    for ti, t in enumerate(ref.tables):
        w = _merge_tensor([h.tables[ti].weight for h in heads], weights)
        b = _merge_tensor([h.tables[ti].bias for h in heads], weights) if t.bias is not None else None
        tables.append(Table(weight=w, bias=b, labels=t.labels, parent=t.parent))
    history = ref.history
    if history and history[-1].get("op") == "split":
        rec = dict(history[-1])
        rec["merge"] = {"heads": len(heads), "weights": [round(float(x), 6) for x in weights]}
        history = history[:-1] + (rec,)
    return ref.evolve(tables=tuple(tables), history=history)
