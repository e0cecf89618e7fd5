"""Settings of the zero-shot methods, with the paper's defaults."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

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
        check_training_fields(
            self, counts=("hidden", "batch_size", "max_epochs", "max_steps", "patience"),
            non_negative=("alpha", "beta", "weight_decay", "min_delta"),
        )
        if self.alpha == 0 and self.beta == 0:
            raise CatsplitError("SplitConfig.alpha and beta cannot both be 0: every retrieval score would be 0")
        try:
            lambdas = None if isinstance(self.ridge_lambdas, (str, bytes)) else tuple(self.ridge_lambdas)
        except TypeError:
            lambdas = None
        if not lambdas or not all(_finite_number(v) and v > 0 for v in lambdas):
            raise _bad(self, "ridge_lambdas", "a non-empty tuple of positive finite numbers (the ridge grid)")
        object.__setattr__(self, "ridge_lambdas", lambdas)


def check_training_fields(config: Any, *, counts: tuple[str, ...], non_negative: tuple[str, ...]) -> None:
    """The rules SplitConfig and FinetuneConfig share, so they cannot drift apart: `counts` are positive
    integers, `non_negative` finite numbers >= 0, `lr` a positive finite number, `ema` in [0, 1).
    Bools are refused everywhere (True would pass as 1); NumPy scalars are accepted.

    Raises:
        CatsplitError naming `<class>.<field>`.
    """
    for name in counts:
        v = getattr(config, name)
        if isinstance(v, bool) or not isinstance(v, Integral) or v < 1:
            raise _bad(config, name, "a positive integer")
    for name in non_negative:
        if not (_finite_number(getattr(config, name)) and getattr(config, name) >= 0):
            raise _bad(config, name, "a finite number >= 0")
    if not (_finite_number(config.lr) and config.lr > 0):
        raise _bad(config, "lr", "a positive finite number")
    if not (_finite_number(config.ema) and 0 <= config.ema < 1):
        raise _bad(config, "ema", "a number in [0, 1)")


def _bad(config: object, name: str, need: str) -> CatsplitError:
    return CatsplitError(f"{type(config).__name__}.{name} must be {need}, got {getattr(config, name)!r}")


def _finite_number(v: object) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v)


SEED_LIMIT = 2**63  # torch.Generator.manual_seed takes a signed 64-bit integer


def check_seed(seed: object, what: str = "seed") -> int:
    """A seed: an integer (Python or NumPy, not bool) with 0 <= seed < 2**63, which numpy and torch both take."""
    if isinstance(seed, bool) or not isinstance(seed, Integral) or not 0 <= int(seed) < SEED_LIMIT:
        raise CatsplitError(f"{what} must be an integer with 0 <= {what} < 2**63, got {seed!r}")
    return int(seed)
