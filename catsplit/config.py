"""Settings of the zero-shot methods, with the paper's defaults."""

from __future__ import annotations

from dataclasses import dataclass, field


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
