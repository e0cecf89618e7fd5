"""Baseline 'text': a ridge map from label-text embeddings to head rows, applied to the sub labels.

No compositional structure is used. The map has an intercept (rows and embeddings are centred)
and its lambda is chosen by the exact leave-one-out error of ridge regression.
"""

from __future__ import annotations

import numpy as np

from catsplit.errors import CatsplitError
from catsplit.methods.context import SplitContext
from catsplit.text import encode

LOO_MAX_ROWS = 4096  # lambda is chosen on at most this many labels (seeded subset): LOO needs [C, D] temporaries


def ridge_rows(ctx: SplitContext) -> np.ndarray:
    """-> [k, D]: R phi(s_j) + intercept; on a text head, the sub labels' own embeddings."""
    if ctx.head.kind == "text":
        from catsplit.texthead import text_rows

        rows = text_rows(ctx.head, ctx.encoder, ctx.subs)  # unit rows already (encode / with_templates normalise)
        ctx.note_near_duplicates(ctx.subs, rows)
        return rows
    labels = ctx.labels
    if len(labels) < 2:
        raise CatsplitError("method='text' needs at least 2 other labels to fit its ridge map; use method='coarse'")
    emb = encode(ctx.encoder, labels + ctx.subs)
    phi, phi_subs = emb[: len(labels)], emb[len(labels):]  # [C, E], [k, E]
    ctx.note_near_duplicates(ctx.subs, phi_subs)
    w = ctx.rows_of(labels).astype(np.float64)  # [C, D]
    phi = phi.astype(np.float64)
    mu_phi, mu_w = phi.mean(0), w.mean(0)
    lam = choose_lambda(phi - mu_phi, w - mu_w, ctx.config.ridge_lambdas, ctx.seed)
    r = fit_ridge(phi - mu_phi, w - mu_w, lam)  # [E, D]
    ctx.details["ridge_lambda"] = lam
    return (mu_w + (phi_subs.astype(np.float64) - mu_phi) @ r).astype(np.float32)


def fit_ridge(x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """argmin_R |x R - y|^2 + lam |R|^2 -> [E, D], via the SVD of x."""
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    return vt.T @ ((s / (s**2 + lam))[:, None] * (u.T @ y))


def choose_lambda(x: np.ndarray, y: np.ndarray, grid: tuple[float, ...], seed: int) -> float:
    """The lambda of `grid` with the smallest exact leave-one-out squared error."""
    if len(grid) == 1:
        return float(grid[0])
    if x.shape[0] > LOO_MAX_ROWS:
        pick = np.random.default_rng(seed).choice(x.shape[0], LOO_MAX_ROWS, replace=False)
        x, y = x[pick], y[pick]
    u, s, _ = np.linalg.svd(x, full_matrices=False)  # u [C, r]
    uty = u.T @ y  # [r, D]
    best, best_err = float(grid[0]), np.inf
    for lam in grid:
        shrink = s**2 / (s**2 + lam)  # [r]
        fitted = u @ (shrink[:, None] * uty)  # [C, D]
        leverage = (u**2) @ shrink  # [C] diagonal of the hat matrix
        loo = (y - fitted) / np.maximum(1.0 - leverage, 1e-9)[:, None]
        err = float(np.mean(loo**2))
        if err < best_err:
            best, best_err = float(lam), err
    return best
