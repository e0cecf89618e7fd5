"""Baseline 'text': a ridge map from label-text embeddings to head rows, applied to the sub labels.

No compositional structure is used. The map has an intercept (rows and embeddings are centred)
and its lambda is chosen by the exact leave-one-out error of ridge regression.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from catsplit.checks import bad_field, is_finite_number
from catsplit.errors import CatsplitError
from catsplit.methods.base import Method, MethodResult, find_ties
from catsplit.methods.context import SplitContext
from catsplit.text import encode, text_rows

LOO_MAX_ROWS = 4096  # lambda is chosen on at most this many labels (seeded subset): LOO needs [C, D] temporaries


@dataclass(frozen=True)
class TextConfig:
    # ridge map E -> D; lambda picked by exact leave-one-out error over this grid
    ridge_lambdas: tuple[float, ...] = field(default=(1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0))

    def __post_init__(self) -> None:
        object.__setattr__(self, "ridge_lambdas", ridge_grid(self))


def ridge_grid(config: Any) -> tuple[float, ...]:
    """`config.ridge_lambdas` as a tuple, checked: non-empty, positive finite numbers (SplitConfig uses it too)."""
    try:
        lambdas = None if isinstance(config.ridge_lambdas, (str, bytes)) else tuple(config.ridge_lambdas)
    except TypeError:
        lambdas = None
    if not lambdas or not all(is_finite_number(v) and v > 0 for v in lambdas):
        raise bad_field(config, "ridge_lambdas", "a non-empty tuple of positive finite numbers (the ridge grid)")
    return lambdas


def ridge_rows(ctx: SplitContext) -> MethodResult:
    """-> [k, D]: R phi(s_j) + intercept; on a text head, the sub labels' own embeddings."""
    if ctx.head.kind == "text":
        rows = text_rows(ctx.encoder, ctx.subs, ctx.head.templates)  # unit rows already (encode / with_templates normalise)
        if rows.shape[1] != ctx.head.dim:  # another encoder than the one that made the head's rows
            raise CatsplitError(
                f"the text encoder gives {rows.shape[1]}-dimensional embeddings, but this text head's rows are "
                f"{ctx.head.dim}-dimensional: split a text head with the encoder that made it"
            )
        ties, details = find_ties(ctx.subs, rows, ctx.subs, ctx.encoder)
        return MethodResult(rows, details, ties)
    labels = ctx.labels
    if len(labels) < 2:
        raise CatsplitError("method='text' needs at least 2 other labels to fit its ridge map; use method='coarse'")
    emb = encode(ctx.encoder, labels + ctx.subs)
    phi, phi_subs = emb[: len(labels)], emb[len(labels):]  # [C, E], [k, E]
    ties, details = find_ties(ctx.subs, phi_subs, ctx.subs, ctx.encoder)
    w = ctx.rows_of(labels).astype(np.float64)  # [C, D]
    phi = phi.astype(np.float64)
    mu_phi, mu_w = phi.mean(0), w.mean(0)
    lam = choose_lambda(phi - mu_phi, w - mu_w, ctx.config.ridge_lambdas, ctx.seed)
    r = fit_ridge(phi - mu_phi, w - mu_w, lam)  # [E, D]
    details["ridge_lambda"] = lam
    return MethodResult((mu_w + (phi_subs.astype(np.float64) - mu_phi) @ r).astype(np.float32), details, ties)


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


METHOD = Method(
    name="text", rows=ridge_rows, config=TextConfig, needs_encoder=True, accepts_gate=False,
    summary="a ridge map from label-text embeddings to rows (baseline); on a text head, the subs' embeddings",
)
