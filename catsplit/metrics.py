"""The paper's protocol for one split target: generality, locality, agreement.

The paper: Liu & Doughty, "Let's Split Up: Zero-Shot Classifier Edits for Fine-Grained Video
Understanding", ICLR 2026 (arXiv 2602.16545). A head H is edited into H' by splitting the coarse
label c into subs; held-out clips of c carry their true sub, every other clip its own label.

    generality = correct predictions of H' / all clips of c (truth: each clip's sub)
    locality   = accuracy of H' / accuracy of H, on the clips of every other class (may exceed 1)
    agreement  = fraction of those other clips whose top-1 under H' equals H's, a sub counting as c

Predictions are top-1 over each head's full label space. The values are fractions; the benchmark
(catsplit/bench/protocol.py) pools them over targets and reports percent. spec/edit-semantics.md §9
and spec/benchmark-protocol.md §2 are the normative text.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from catsplit.errors import CatsplitError
from catsplit.head import Head, label_names


@dataclass(frozen=True)
class Scores:
    """Fractions in [0, 1] (locality can exceed 1); NaN where there were no clips to measure."""

    generality: float  # top-1 accuracy on clips of the split class, labelled with their true sub
    locality: float  # edited accuracy / original accuracy, on clips of every other class
    agreement: float  # fraction of those other clips whose top-1 is unchanged (a sub counts as its coarse class)
    n_split: int  # clips of the split class
    n_other: int  # clips of other classes
    correct_split: int  # correct among n_split (pooling over targets sums these)
    accuracy_original: float  # original model on the other clips
    accuracy_edited: float  # edited model on the other clips

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(original: Head, edited: Head, features: Any, labels: Sequence[Any], coarse: str) -> Scores:
    """Generality, locality and agreement of the split of `coarse` (the paper's protocol; see the module docstring).

    Args:
        original: the head before the split.
        edited: the head after it.
        features: backbone features [N, D] of held-out clips.
        labels: each clip's true label in the edited label space: a label string or an index into
            `edited.labels`. Clips of the split class carry their sub label.
        coarse: the label that was split.
    Returns:
        `Scores`.
    """
    old_set, edited_labels = set(original.labels), edited.labels  # each attribute read copies the labels
    if coarse not in old_set:
        raise CatsplitError(f"coarse label {coarse!r} is not in the original head")
    if coarse in edited_labels:
        raise CatsplitError(f"{coarse!r} is still an output label of the edited head; was it split?")
    new = [lab for lab in edited_labels if lab not in old_set]
    truth = label_names(edited, labels, known_only=False)
    feats = np.asarray(features, dtype=np.float32) if not hasattr(features, "detach") else features
    n = len(truth)
    if getattr(feats, "shape", (None,))[0] != n:
        raise CatsplitError(f"{n} labels but features of shape {tuple(feats.shape)}; give one label per feature row")
    new_set = set(new)
    is_split = np.array([t in new_set for t in truth], dtype=bool)
    if coarse in truth:
        raise CatsplitError(
            f"clips are labelled {coarse!r}, the class that was split; label each with its true sub, or leave them out"
        )
    unknown = sorted({t for t in truth if t not in old_set and t not in new_set})
    if unknown:
        raise CatsplitError(f"labels {unknown[:5]} are in neither head")
    pred_new = edited.predict(feats)  # [N] str
    pred_old = original.predict(feats)
    truth_arr = np.asarray(truth, dtype=object)
    correct_split = int((pred_new[is_split] == truth_arr[is_split]).sum())
    other = ~is_split
    n_other = int(other.sum())
    acc_old = float((pred_old[other] == truth_arr[other]).mean()) if n_other else float("nan")
    acc_new = float((pred_new[other] == truth_arr[other]).mean()) if n_other else float("nan")
    # A prediction of one of the subs counts as the coarse class for agreement.
    to_old = {s: coarse for s in new}
    mapped = np.array([to_old.get(p, p) for p in pred_new[other]], dtype=object)
    agreement = float((mapped == pred_old[other]).mean()) if n_other else float("nan")
    n_split = int(is_split.sum())
    return Scores(
        generality=correct_split / n_split if n_split else float("nan"),
        locality=acc_new / acc_old if n_other and acc_old > 0 else float("nan"),
        agreement=agreement,
        n_split=n_split,
        n_other=n_other,
        correct_split=correct_split,
        accuracy_original=acc_old,
        accuracy_edited=acc_new,
    )
