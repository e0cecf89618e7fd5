"""Hugging Face transformers models: the label fields of `config.json`."""

from __future__ import annotations

from typing import Any, Sequence


def label_config(labels: Sequence[str]) -> dict[str, Any]:
    """The label fields of a transformers `config.json` for `labels`, in index order.

    Both maps are written: transformers renames every label `LABEL_i` when only `num_labels` changes.

    Returns:
        {"id2label": {"0": label, ...}, "label2id": {label: 0, ...}}
    """
    labels = list(labels)
    return {"id2label": {str(i): lab for i, lab in enumerate(labels)}, "label2id": {lab: i for i, lab in enumerate(labels)}}
