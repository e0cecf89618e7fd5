"""Hugging Face models in the export: the `config.json` beside an ONNX model, and transformers classifiers as backbones.

* An Optimum-style export folder holds `model.onnx` and the transformers `config.json` whose `id2label`
  names the output columns. `model_labels` reads a model's labels from its catsplit metadata, else
  from that file; `split_onnx` writes the edited labels into the `config.json` beside its output
  (`catsplit.formats.huggingface.with_labels`, `write_config`).
* `classifier_features` turns a transformers video classifier (`VideoMAEForVideoClassification`,
  `TimesformerForVideoClassification`, ...) into the backbone `to_onnx` needs: the model with its
  classifier layer replaced by an identity, so its "logits" are the pooled features, cast to float32.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping

from catsplit.checks import check_labels
from catsplit.errors import CatsplitError
from catsplit.export.graph import output_labels
from catsplit.formats.huggingface import config_labels as formats_config_labels
from catsplit.io.atomic import atomic_path
from catsplit.io.keys import KEY_LABELS
from catsplit.io.readers import read_json

CONFIG_NAME = "config.json"


def config_path(model: str | os.PathLike) -> Path:
    """The `config.json` beside an ONNX model file."""
    return Path(model).parent / CONFIG_NAME


def read_config(model: str | os.PathLike) -> dict[str, Any] | None:
    """The JSON object of the `config.json` beside `model`, or None when there is none."""
    path = config_path(model)
    if not path.is_file():
        return None
    config = read_json(path, "model config")
    if not isinstance(config, dict):
        raise CatsplitError(f"model config file {path} must hold a JSON object (a transformers config.json)")
    return config


def config_labels(config: Mapping[str, Any], where: str) -> list[str] | None:
    """The labels of a transformers config's `id2label` in index order; None when it has none.

    Read as every model reader reads it (`catsplit.formats.huggingface.config_labels`), but stricter:
    an `id2label` that is present yet empty or not an object is an error, not "no labels", and the
    labels must be valid class names (`check_labels`: one per line in a Triton labels.txt).

    Args:
        config: the config.json object.
        where: the file, for errors.
    """
    id2label = config.get("id2label")
    if id2label is None:
        return None
    if not isinstance(id2label, dict) or not id2label:
        raise CatsplitError(f"{where}: id2label must be a non-empty object index -> label, got {json.dumps(id2label)[:80]}")
    labels = formats_config_labels(config, Path(where))
    return list(check_labels(labels, f"{where} id2label"))


def model_labels(meta: Mapping[str, str], model: str | os.PathLike | None, where: str) -> list[str]:
    """A model's output labels: its catsplit metadata, else the `id2label` of the config.json beside the
    model file `model` (not looked for when None)."""
    if KEY_LABELS in meta:
        return output_labels(dict(meta), where)
    config = read_config(model) if model is not None else None
    labels = config_labels(config, str(config_path(model))) if config is not None else None
    if labels is None:
        raise CatsplitError(
            f"{where} has no {KEY_LABELS!r} metadata and no {CONFIG_NAME} with id2label beside it; export it with "
            "catsplit.export.to_onnx or edit it with split_onnx, or put its transformers config.json beside it"
        )
    return labels


def write_config(path: Path, config: Mapping[str, Any], *, overwrite: bool) -> None:
    """Write a config.json atomically (as transformers does: indented, sorted keys, a final newline)."""
    text = json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    with atomic_path(path, overwrite=overwrite, example=CONFIG_NAME) as tmp:
        tmp.write_text(text, encoding="utf-8")


# --- transformers classifiers as backbones ----------------------------------------------------------


def is_transformers_classifier(model: Any) -> bool:
    """Whether `model` is a transformers classifier (`...ForVideoClassification`, `...ForImageClassification`):
    a `PreTrainedModel` of a class named for classification, with a label config. Checked without importing
    transformers (a model of its classes means it is imported already); a bare backbone such as `VideoMAEModel`
    is not one."""
    transformers = sys.modules.get("transformers")
    if transformers is None:
        return False
    pretrained = getattr(transformers, "PreTrainedModel", None)
    config = getattr(model, "config", None)
    return (
        pretrained is not None and isinstance(model, pretrained) and "Classification" in type(model).__name__
        and isinstance(getattr(config, "id2label", None), dict)
    )


def classifier_features(model: Any, head: Any, key: str | None = None) -> Any:
    """A backbone for `to_onnx`: `model` (a transformers classifier) up to its classifier layer.

    The layer is `key`, else the one `catsplit.apply` would replace (the linear layer holding the head's
    original rows). The returned module shares the model's parameters (nothing is copied but the module
    tree) and leaves `model` as it is.

    Args:
        model: e.g. a `VideoMAEForVideoClassification`.
        head: the (edited) catsplit.Head that replaces the model's classifier.
        key: the classifier layer's name, e.g. "classifier".
    Returns:
        a torch module: the model's input (its `main_input_name`, e.g. pixel_values) -> float32 features [N, D].
    """
    import torch

    from catsplit.model_edit import find_layer

    class ClassifierFeatures(torch.nn.Module):
        """A transformers classifier whose classifier layer is an identity: clips -> pooled features, float32."""

        def __init__(self, inner: torch.nn.Module, input_name: str | None) -> None:
            super().__init__()
            self.inner, self.input_name = inner, input_name

        def forward(self, clips: torch.Tensor) -> torch.Tensor:
            out = self.inner(**{self.input_name: clips}) if self.input_name else self.inner(clips)
            features = out.logits if hasattr(out, "logits") else out[0]
            return features.float()  # the head's nodes are float32

    name = find_layer(model, head, key)
    if name == "":
        raise CatsplitError("the model is a single linear layer; export the head with backbone=None")
    shared = {id(t): t for t in list(model.parameters()) + list(model.buffers())}
    inner = copy.deepcopy(model, memo=shared)  # a new module tree over the same tensors
    parent, _, attr = name.rpartition(".")
    setattr(inner.get_submodule(parent), attr, torch.nn.Identity())
    return ClassifierFeatures(inner, getattr(model, "main_input_name", None))
