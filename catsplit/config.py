"""SplitConfig: the settings of every zero-shot method in one object, with the paper's defaults.

Each method has its own config (`RetrievalConfig`, `AlignmentConfig`, `TextConfig`, registered
with the method); `split(config=...)` takes either that or a SplitConfig, from which the chosen
method reads the fields its own config has.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from catsplit.methods.alignment import check_alignment_fields
from catsplit.methods.registry import get_method
from catsplit.methods.retrieval import check_retrieval_fields
from catsplit.methods.text import ridge_grid


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
        # The methods' own rules, applied to this object so that errors name SplitConfig.<field>.
        check_alignment_fields(self)
        check_retrieval_fields(self)
        object.__setattr__(self, "ridge_lambdas", ridge_grid(self))

    def for_method(self, name: str) -> Any:
        """The config of method `name` with this object's values for its fields (None for a method without one)."""
        config_type = get_method(name).config
        if config_type is None:
            return None
        return config_type(**{f.name: getattr(self, f.name) for f in fields(config_type)})
