"""Baseline: every sub row is a copy of the coarse row, so the subs tie."""

from __future__ import annotations

import numpy as np

from catsplit.methods.base import Method, MethodResult
from catsplit.methods.context import SplitContext


def coarse_rows(ctx: SplitContext) -> MethodResult:
    """-> [k, D]: w_c repeated."""
    return MethodResult(np.repeat(ctx.coarse_row[None, :], len(ctx.subs), axis=0))


METHOD = Method(
    name="coarse", rows=coarse_rows, config=None, needs_encoder=False, accepts_gate=False,
    summary="every sub copies the coarse row (baseline: the subs tie)",
)
