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
from catsplit.errors import CatsplitError
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



REFINE_BIASES = ("coarse", "centre", "lda")
REFINE_SCALES = ("auto", "edit", "natural")


@dataclass(frozen=True)
class RefineConfig:
    # Label-free refinement (catsplit.refine): hard EM with a shared-covariance Gaussian discriminant.
    iterations: int = 10  # EM steps at most; it stops sooner once no clip changes sub (a fixed point)
    # pooled covariance pulled towards its mean eigenvalue: (1 - l) S + l * tr(S)/D * I (val clips, A: 0.03 / 0.1 /
    # 0.3 / 0.5 / 0.7 / 1.0 gave flat generality 45.0 / 46.7 / 48.9 / 47.8 / 46.9 / 40.6; docs/benchmark.md §8)
    shrinkage: float = 0.3
    # sub biases: "coarse": b_j = b_c (as zero-shot); "centre": b_j = b_c - s a_j.mean_clip (each sub's extra
    # score is zero at the mean coarse clip); "lda": "centre" plus the discriminant's -a_j.(mu_j - mu)/2 + log prior
    # terms, centred over the subs, so the sub-vs-sub boundaries are the discriminant's
    # (val clips, A, flat: coarse / centre / lda gave generality 45.6 / 46.7 / 45.3; docs/benchmark.md §8)
    bias: str = "centre"
    # the scale s of w_j = w_c + s a_j: "edit": the mean norm of the starting edit (w0_j - w_c), so the edit keeps the
    # zero-shot edit's strength against the other classes; "natural": s = 1, the Gaussian discriminant's own log-odds
    # (calibrated posteriors, what a hierarchical split's sub softmax wants); "auto": edit when flat, natural when
    # hierarchical (chosen on val clips)
    scale: str = "auto"
    chunk: int = 65_536  # clips per chunk of a pass: memory is O(chunk * D + D^2), whatever the number of clips
    # the pooled covariance from every stride-th clip of an array holding more clips than this (0: always all): its
    # D x D scatter is the pass's one O(N D^2) cost; 262,144 clips estimate a 256 x 256 covariance well
    covariance_clips: int = 262_144
    # an array holding more clips than this runs its EM steps on this many of them (evenly spread blocks), then one
    # pass over every clip gives the final M-step: about 2 passes' time instead of `iterations` (0: every step on all)
    em_sample: int = 65_536
    budget: float = 0.01  # with others=: the fraction of other clips the subs may steal (catsplit.calibration)

    def __post_init__(self) -> None:
        check_number_fields(self, counts=("iterations", "chunk"), non_negative=("shrinkage",), unit_interval=("budget",))
        for name in ("covariance_clips", "em_sample"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise CatsplitError(f"RefineConfig.{name} must be an integer >= 0 (0: every clip), got {value!r}")
        if self.shrinkage > 1:
            raise CatsplitError(f"RefineConfig.shrinkage must be in [0, 1], got {self.shrinkage!r}")
        if self.scale not in REFINE_SCALES:
            raise CatsplitError(f"RefineConfig.scale must be one of {REFINE_SCALES}, got {self.scale!r}")
        if self.bias not in REFINE_BIASES:
            raise CatsplitError(f"RefineConfig.bias must be one of {REFINE_BIASES}, got {self.bias!r}")
