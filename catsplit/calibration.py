"""Locality calibration of a split's new rows, without sub labels.

A zero-shot edit `w_sj = w_c + delta_j` adds norm to the coarse row, and the best of k such rows wins clips of
other classes that the coarse row did not. Two remedies, for every method and for `refine`:

- scale matching (no data): each sub row is rescaled to the coarse row's norm, `w_sj <- w_sj * |w_c| / |w_sj|`;
- bias calibration (with unlabelled clips of other classes, `others`): one common shift `delta <= 0` of the sub
  biases, the smallest that leaves at most `budget` of those clips stolen, i.e. moved from a top-1 that was not
  the coarse class (under the head before the split) to a sub.

Flat splits only: a hierarchical split keeps every other clip's top-1 exactly, so there is nothing to calibrate.
The split's record gains a `calibration` entry; only the sub rows and biases change, so unsplit still restores
the head before the split bit for bit.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import numpy as np
import torch

from catsplit.chunks import ClipChunks
from catsplit.errors import CatsplitError
from catsplit.head import Head
from catsplit.scoring import table_scores
from catsplit.splitrows import SplitRows, latest_split, with_rows

DEFAULT_BUDGET = 0.01  # fraction of other clips the sub rows may steal (chosen on the benchmark's val clips)


def calibrate(edited: Head, others: Any = None, *, scale: bool = True, budget: float = DEFAULT_BUDGET) -> Head:
    """Calibrate the latest (flat) split's sub rows for locality; only those rows and their biases change.

    Args:
        edited: a head whose latest edit is a flat split.
        others: unlabelled features [M, D] of clips of other classes (an array, a memory map, or a re-iterable
            of chunks); None: scale matching only.
        scale: rescale each sub row to the coarse row's norm (before the bias shift).
        budget: with `others`: the largest fraction of them whose top-1 may move to a sub, in [0, 1).
    Returns:
        a new Head; the split's record gains a `calibration` entry.
    """
    split = latest_split(edited, "calibrate")
    budget = check_budget(budget)
    if not isinstance(scale, bool):
        raise CatsplitError(f"scale must be True or False, got {scale!r}")
    if not split.flat:
        raise CatsplitError(
            "calibrate works on flat splits: a hierarchical split keeps every other clip's top-1 exactly, so its "
            "locality needs no calibration"
        )
    if others is None and not scale:
        raise CatsplitError("nothing to calibrate: pass others= (clips of other classes) or scale=True")
    w, b = split.weight, split.bias
    info: dict[str, Any] = {"scale": scale}
    if scale:
        w = matched_scale(w, split.coarse_weight)
    head = with_rows(edited, split, w, b, "calibration", info) if scale else edited
    if others is not None:
        head = shift_biases(head, others, budget, info)
    return head


def check_budget(budget: Any) -> float:
    if isinstance(budget, bool) or not isinstance(budget, Real) or not (0 <= budget < 1) or math.isnan(budget):
        raise CatsplitError(f"budget must be a fraction in [0, 1) of the other clips, got {budget!r}; e.g. budget=0.01")
    return float(budget)


def matched_scale(w: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
    """Rows `w` [k, D] rescaled to the norm of `coarse` [D] (a zero row stays zero) -> float32 [k, D]."""
    w64 = w.double()
    norms = w64.norm(dim=1, keepdim=True)  # [k, 1]
    factor = torch.where(norms > 0, coarse.double().norm() / norms.clamp_min(1e-300), torch.ones_like(norms))
    return (w64 * factor).float()


def shift_biases(head: Head, others: Any, budget: float, info: dict[str, Any]) -> Head:
    """The latest split's sub biases lowered by one common shift so that at most `budget` of `others` are stolen.

    `info` (the record's calibration entry so far) gains the clips, the budget, the shift and the stolen
    fractions before and after (the latter measured on the written head, in its dtype).
    """
    split = latest_split(head, "calibrate")
    if split.bias is None:
        raise CatsplitError("calibration with others= shifts the sub biases, and this head has none; use scale matching only")
    chunks = ClipChunks(others, head.dim, "others")
    margins, n = stolen_margins(head, split, chunks, keep=None)
    allowed = int(math.floor(budget * n))
    shift = 0.0
    if margins.size > allowed:  # more clips would be stolen than allowed: move the (allowed+1)-th largest margin below 0
        kth = float(np.partition(margins, margins.size - allowed - 1)[margins.size - allowed - 1])
        if kth >= 0:
            shift = -float(np.nextafter(kth, np.inf)) - 1e-6 * max(1.0, abs(kth))
    before = int((margins >= 0).sum())
    out = with_rows(head, split, split.weight, split.bias + shift, "calibration",
                    {**info, "others": n, "budget": budget, "shift": shift})
    after_margins, _ = stolen_margins(out, latest_split(out, "calibrate"), chunks, keep=None)
    entry = {**info, "others": n, "budget": budget, "shift": round(shift, 8),
             "stolen_before": round(before / n, 6), "stolen_after": round(int((after_margins >= 0).sum()) / n, 6)}
    rec = dict(out.latest_record())
    rec["calibration"] = entry
    return out.evolve(history=out.history[:-1] + (rec,))


def stolen_margins(head: Head, split: SplitRows, chunks: ClipChunks, keep: int | None) -> tuple[np.ndarray, int]:
    """For every clip of `chunks` whose top-1 before the split was not the coarse class: the best sub's score minus
    the best other label's (>= 0: the clip is stolen, ties counted as stolen) -> (float64 margins, clips read).

    The head before the split scores the other labels as now and the coarse row from the record (its undo
    tensors), so it is not rebuilt. Only the margins >= 0 are kept (a shift only ever lowers the sub biases), so
    memory grows with the stolen clips, not with all of them.
    """
    subs = set(split.subs)
    sub_cols = torch.tensor([i for i, lab in enumerate(head.labels) if lab in subs], dtype=torch.long)
    other_cols = torch.tensor([i for i, lab in enumerate(head.labels) if lab not in subs], dtype=torch.long)
    cw = split.coarse_weight[None]  # [1, D]
    cb = None if split.coarse_bias is None else torch.tensor([split.coarse_bias], dtype=torch.float32)
    kept: list[np.ndarray] = []
    n = 0
    with torch.no_grad():
        for x in chunks:
            z = head.scores(x)  # [n, C] float32, the head's own logits
            best_sub = z[:, sub_cols].max(dim=1).values.double()
            best_other = z[:, other_cols].max(dim=1).values.double() if other_cols.numel() else torch.full_like(best_sub, -math.inf)
            coarse = table_scores(x, cw, cb, kind=head.kind, scale=head.scale)[:, 0].double()  # [n]
            was_other = best_other > coarse  # top-1 before the split was not the coarse class
            m = (best_sub - best_other)[was_other & (best_sub >= best_other)]
            kept.append(m.numpy())
            n += x.shape[0]
    return (np.concatenate(kept) if kept else np.zeros(0)), n
