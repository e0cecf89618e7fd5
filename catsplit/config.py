"""Settings of the zero-shot methods, with the paper's defaults."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Integral, Real

from catsplit.errors import CatsplitError


@dataclass(frozen=True)
class SplitConfig:
    # retrieval: score = alpha * cos(modifier texts) + beta * cos(label texts)
    alpha: float = 0.5
    beta: float = 0.5
    # alignment: MLP g: E -> D with one hidden layer, trained with MSE on the head's own pairs
    hidden: int = 384  # hidden width (GELU)
    lr: float = 1e-3  # AdamW, cosine schedule over max_epochs
    weight_decay: float = 1e-2  # AdamW's default
    batch_size: int = 10
    max_epochs: int = 100  # cap; early stopping usually ends sooner
    max_steps: int = 2500  # cap on optimiser steps, so large heads (thousands of pairs) train in seconds
    ema: float = 0.95  # early stopping watches an EMA of the epoch's training cosine similarity
    patience: int = 5  # epochs without an EMA gain of at least min_delta
    min_delta: float = 1e-3
    # text: ridge map E -> D; lambda picked by exact leave-one-out error over this grid
    ridge_lambdas: tuple[float, ...] = field(default=(1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0))

    def __post_init__(self) -> None:
        # Checked here, not deep in a method: a bad value would otherwise divide by zero or give NaN scores.
        def bad(name: str, need: str) -> CatsplitError:
            return CatsplitError(f"SplitConfig.{name} must be {need}, got {getattr(self, name)!r}")

        def number(v: object) -> bool:
            return isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v)

        for name in ("hidden", "batch_size", "max_epochs", "max_steps", "patience"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, Integral) or v < 1:
                raise bad(name, "a positive integer")
        for name in ("alpha", "beta", "weight_decay", "min_delta"):
            if not (number(getattr(self, name)) and getattr(self, name) >= 0):
                raise bad(name, "a finite number >= 0")
        if not (number(self.lr) and self.lr > 0):
            raise bad("lr", "a positive finite number")
        if not (number(self.ema) and 0 <= self.ema < 1):
            raise bad("ema", "a number in [0, 1)")
        if self.alpha == 0 and self.beta == 0:
            raise CatsplitError("SplitConfig.alpha and beta cannot both be 0: every retrieval score would be 0")
        try:
            lambdas = None if isinstance(self.ridge_lambdas, (str, bytes)) else tuple(self.ridge_lambdas)
        except TypeError:
            lambdas = None
        if not lambdas or not all(number(v) and v > 0 for v in lambdas):
            raise bad("ridge_lambdas", "a non-empty tuple of positive finite numbers (the ridge grid)")
        object.__setattr__(self, "ridge_lambdas", lambdas)


SEED_LIMIT = 2**63  # torch.Generator.manual_seed takes a signed 64-bit integer


def check_seed(seed: object, what: str = "seed") -> int:
    """A seed: an integer (Python or NumPy, not bool) with 0 <= seed < 2**63, which numpy and torch both take."""
    if isinstance(seed, bool) or not isinstance(seed, Integral) or not 0 <= int(seed) < SEED_LIMIT:
        raise CatsplitError(f"{what} must be an integer with 0 <= {what} < 2**63, got {seed!r}")
    return int(seed)
