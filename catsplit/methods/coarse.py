"""Baseline: every sub row is a copy of the coarse row, so the subs tie."""

from __future__ import annotations

import numpy as np

from catsplit.methods.context import SplitContext


def coarse_rows(ctx: SplitContext) -> np.ndarray:
    """-> [k, D]: w_c repeated."""
    return np.repeat(ctx.coarse_row[None, :], len(ctx.subs), axis=0)
