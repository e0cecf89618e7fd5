"""What the small training loops share (alignment's MLP, fine-tuning of new rows): the step budget
and early stopping on an exponential moving average of a per-step metric."""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator


def step_budget(n: int, batch_size: int, max_epochs: int, max_steps: int) -> tuple[int, int, int]:
    """(steps per epoch, total steps, epochs) for `n` examples; the last epoch may be cut short by max_steps."""
    steps_per_epoch = math.ceil(n / batch_size)
    total = max(1, min(max_epochs * steps_per_epoch, max_steps))
    return steps_per_epoch, total, math.ceil(total / steps_per_epoch)


class EmaEarlyStop:
    """An EMA over steps (bias-corrected, as in Adam), checked once per epoch.

    Args:
        beta: EMA decay.
        patience: epochs without an improvement of at least `min_delta` before `stop` is set.
        min_delta: the smallest change that counts as an improvement.
        maximize: higher is better (a similarity) rather than lower (a loss).
    """

    def __init__(self, beta: float, patience: int, min_delta: float, *, maximize: bool) -> None:
        self.beta, self.patience, self.min_delta, self.maximize = beta, patience, min_delta, maximize
        self.ema, self.steps = 0.0, 0
        self.best = -math.inf if maximize else math.inf
        self.best_epoch = self.stale = 0
        self.smoothed = math.nan

    def update(self, value: float) -> None:
        """Add one step's metric."""
        self.ema = self.beta * self.ema + (1 - self.beta) * value
        self.steps += 1

    def end_epoch(self, epoch: int) -> bool:
        """Close an epoch (at least one step must have run); True when it is the best so far."""
        self.smoothed = self.ema / (1 - self.beta**self.steps)
        if self.smoothed > self.best + self.min_delta if self.maximize else self.smoothed < self.best - self.min_delta:
            self.best, self.best_epoch, self.stale = self.smoothed, epoch, 0
            return True
        self.stale += 1
        return False

    @property
    def stop(self) -> bool:
        return self.stale >= self.patience


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one intra-op thread inside the block, then restore the caller's setting.

    The loops train on matrices of a few hundred columns and batches of 10-16. On a machine whose
    other core is busy a second thread's spin-waits cost far more than it shares: `python -m
    catsplit.bench.tools.model_writeback --method alignment --repeats 1` (alignment on a 400-label,
    768-dim head, one other process on the 2 cores) took 150 s with torch's 2 threads, 12 s with one.
    On an idle machine one thread is slower (`python -m catsplit.bench.tools.split_speed
    --compare-training-threads`: 4.3 s against 3.5 s on a 1000 x 768 head). The rows depend on the
    thread count (the reductions are split differently), so a fixed count also makes a split the same
    whatever threads the caller or the machine has; small heads (the golden files) came out the same.
    """
    import torch

    before = torch.get_num_threads()
    if before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
