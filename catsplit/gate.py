"""The similarity gate (after MoTE's temporal feature modulation): unfamiliar modifiers move the row less.

Each edit w_c + delta_j becomes w_c + lambda_j * delta_j with lambda_j = exp(-(1 - s_j) / sigma),
s_j the best cosine similarity of sub j's modifier text to the dictionary's modifiers. Only
methods whose rows are w_c + delta accept it (`Method.accepts_gate`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from catsplit.methods.context import SplitContext
from catsplit.text import encode


def gated(ctx: SplitContext, rows: np.ndarray, sigma: float) -> tuple[np.ndarray, dict[str, Any]]:
    """Scale the edits of `rows` [k, D] -> (gated rows [k, D], the gate's entry of the edit record's details)."""
    d = ctx.dictionary
    emb = encode(ctx.encoder, ctx.sub_inputs + ctx.modifier_inputs(d.modifiers))
    k = len(ctx.sub_modifiers)
    s = (emb[:k] @ emb[k:].T).max(axis=1)  # [k] best similarity to a known modifier
    lam = np.exp(-(1.0 - s) / sigma)
    details = {"sigma": sigma, "similarity": [round(float(x), 6) for x in s], "lambda": [round(float(x), 6) for x in lam]}
    return ctx.coarse_row[None, :] + lam[:, None] * (rows - ctx.coarse_row[None, :]), details
