"""Settings with the paper's defaults: SplitConfig (every zero-shot method's, in one object) and
FinetuneConfig (low-shot fine-tuning). Light to import: the command line reads its defaults here.

Each method has its own config (`RetrievalConfig`, `AlignmentConfig`, `TextConfig`, registered
with the method); `split(config=...)` takes either that or a SplitConfig, from which the chosen
method reads the fields its own config has.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from catsplit.checks import check_number_fields
from catsplit.methods.alignment import AlignmentConfig, check_alignment_fields
from catsplit.methods.registry import get_method
from catsplit.methods.retrieval import RetrievalConfig, check_retrieval_fields
from catsplit.methods.text import TextConfig, ridge_grid


@dataclass(frozen=True)
class SplitConfig:
    # Every method's settings under one name; the defaults are the methods' own (see each config's comments).
    # retrieval (RetrievalConfig): score = alpha * cos(modifier texts) + beta * cos(label texts)
    alpha: float = RetrievalConfig.alpha
    beta: float = RetrievalConfig.beta
    # alignment (AlignmentConfig): the MLP g: E -> D and its training
    hidden: int = AlignmentConfig.hidden
    lr: float = AlignmentConfig.lr
    weight_decay: float = AlignmentConfig.weight_decay
    batch_size: int = AlignmentConfig.batch_size
    max_epochs: int = AlignmentConfig.max_epochs
    max_steps: int = AlignmentConfig.max_steps
    ema: float = AlignmentConfig.ema
    patience: int = AlignmentConfig.patience
    min_delta: float = AlignmentConfig.min_delta
    # retrieval and alignment: modifier texts rewritten before encoding ("from left to right" -> "to the right")
    normalise_modifiers: bool = AlignmentConfig.normalise_modifiers
    # text (TextConfig): the ridge grid
    ridge_lambdas: tuple[float, ...] = field(default=TextConfig.ridge_lambdas)

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


@dataclass(frozen=True)
class FinetuneConfig:
    lr: float = 1e-3  # AdamW
    weight_decay: float = 1e-3
    batch_size: int = 16
    max_epochs: int = 200  # cap; early stopping usually ends sooner
    max_steps: int = 5000  # cap on optimiser steps
    ema: float = 0.95  # early stopping watches an EMA of the training loss (over steps, checked per epoch)
    patience: int = 5  # epochs without a drop of at least min_delta
    min_delta: float = 1e-3

    def __post_init__(self) -> None:
        check_number_fields(
            self, counts=("batch_size", "max_epochs", "max_steps", "patience"), non_negative=("weight_decay", "min_delta"),
            positive=("lr",), unit_interval=("ema",),
        )

