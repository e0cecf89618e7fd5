"""Text-embedding heads (after Text4Vis): rows are label-text embeddings, logits = scale * cos.

A backbone trained against such a head is the vision-language baseline: splitting it needs only
the embeddings of the sub labels (`split(..., method="text")` on a text head appends them).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from catsplit.checks import check_labels, check_templates
from catsplit.errors import CatsplitError
from catsplit.head import Head
from catsplit.text import TextEncoder, text_rows

DEFAULT_TEMPLATES = ("a video of a person {}.", "a person {}.", "{}.")
DEFAULT_SCALE = 1 / 0.07  # CLIP's initial logit scale


def text_head(
    labels: Sequence[str],
    encoder: TextEncoder,
    templates: Sequence[str] | None = DEFAULT_TEMPLATES,
    scale: float = DEFAULT_SCALE,
) -> Head:
    """A head whose rows are L2-normalised (template-averaged) text embeddings of `labels`.

    Args:
        labels: class names.
        encoder: callable list[str] -> [N, E].
        templates: prompt templates with a `{}` slot, averaged (None: the bare labels).
        scale: logit scale; logits = scale * cos(feature, row).
    Returns:
        a Head of kind "text" (saved with its scale and templates).
    """
    labels = list(check_labels(labels))
    # bool is an int to Python, but scale=True is a mistake, not 1.0
    if isinstance(scale, bool) or not (isinstance(scale, (int, float, np.number)) and math.isfinite(scale) and scale > 0):
        raise CatsplitError(f"scale must be a positive finite number, got {scale!r}")
    if templates is not None:
        templates = check_templates(templates) or None  # () means none, as before
    rows = text_rows(encoder, labels, templates)  # [C, E]
    return Head(weight=rows, labels=labels, kind="text", scale=float(scale), templates=templates)
