"""timm models saved as a folder (`timm.models.push_to_hf_hub` / `save_for_hf`): the classifier,
the labels and the class count of `config.json`, and those fields written back.

The config holds `architecture`, `num_classes`, optionally `label_names` (a list, or `{index: name}`
when there are gaps) and `label_descriptions`, and `pretrained_cfg` with `classifier` (the head
layer, e.g. `head.fc` or `head`; a list for models with two heads) and `num_classes`. timm copies a
top-level `num_classes` / `label_names` into `pretrained_cfg` when it loads the folder. Older folders
hold one flat dict (no `pretrained_cfg`) with `labels` instead of `label_names`. Weights:
`model.safetensors` or `pytorch_model.bin`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from catsplit.errors import CatsplitError
from catsplit.formats.labels import labels_from_mapping


def pretrained_cfg(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The `pretrained_cfg` of a timm config (the config itself in the old flat form)."""
    inner = config.get("pretrained_cfg")
    return inner if isinstance(inner, Mapping) else config


def classifier_name(config: Mapping[str, Any], where: Path) -> str | None:
    """`pretrained_cfg.classifier`, or None when the config does not say (the layer is then found by name).

    Raises:
        CatsplitError: the model has several classifiers (distilled models: `head` and `head_dist`).
    """
    value = pretrained_cfg(config).get("classifier")
    if isinstance(value, str) and value:
        return value
    if isinstance(value, (list, tuple)) and value:
        names = [v for v in value if isinstance(v, str)]
        if len(names) == 1:
            return names[0]
        raise CatsplitError(
            f"{where}: {config.get('architecture')} has {len(names)} classifiers ({', '.join(names)}); catsplit edits "
            "one linear layer, and the model averages them. Split the layer you use with key=... (CLI: --key) "
            "on a state dict without the others"
        )
    return None


def config_labels(config: Mapping[str, Any], where: Path) -> list[str] | None:
    """`label_names` (top level, else in `pretrained_cfg`; the old name `labels` too), or None."""
    for holder in (config, pretrained_cfg(config)):
        for key in ("label_names", "labels"):
            value = holder.get(key)
            if isinstance(value, Mapping) and value:
                return labels_from_mapping(value, f"{where} {key}")
            if isinstance(value, (list, tuple)) and value:
                return list(value)
    return None


def updated_config(config: Mapping[str, Any], labels: Sequence[str], entry: Mapping[str, Any] | None) -> dict[str, Any]:
    """`config` with `num_classes` and `label_names` for `labels` (top level and `pretrained_cfg`, where
    they were), and the `catsplit` entry (removed when None); other keys kept in order."""
    out = dict(config)
    labels = list(labels)
    nested = isinstance(out.get("pretrained_cfg"), Mapping)
    if nested:
        inner = dict(out["pretrained_cfg"])
        inner["num_classes"] = len(labels)
        for key in ("label_names", "labels"):
            if key in inner:
                inner[key] = labels
        out["pretrained_cfg"] = inner
    out["num_classes"] = len(labels)
    if "labels" in out and not nested:  # the old flat form's name
        out["labels"] = labels
    else:
        out["label_names"] = labels  # timm moves it into pretrained_cfg when it loads the folder
    out.pop("catsplit", None)
    if entry is not None:
        out["catsplit"] = dict(entry)
    return out
