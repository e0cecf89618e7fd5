"""Hugging Face transformers models: the classifier an architecture names, the labels of `config.json`,
and the label fields written back.

A transformers model folder holds `config.json` (`architectures`, `model_type`, `id2label`,
`label2id`) and its weights (`model.safetensors`, or shards named by `model.safetensors.index.json`,
or `pytorch_model.bin`). The video classifiers (`VideoMAEForVideoClassification`,
`TimesformerForVideoClassification`, `VivitForVideoClassification`, `VJEPA2ForVideoClassification`,
`VideoPrismForVideoClassification`) and the image classifiers end in one `nn.Linear` named
`classifier`. Contrastive models (X-CLIP, CLIP, SigLIP) have no such layer: they score a video
against the text of each label.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from catsplit.errors import CatsplitError
from catsplit.formats.labels import labels_from_mapping

# architecture -> its classifier layer, where it is not the `classifier` every *For...Classification uses
CLASSIFIER_BY_ARCHITECTURE: dict[str, str] = {}
CLASSIFICATION_SUFFIXES = ("ForVideoClassification", "ForImageClassification", "ForAudioClassification",
                           "ForSequenceClassification")
# models that classify by comparing with label text: nothing to split in the weights
CONTRASTIVE = {"XCLIPModel": "X-CLIP", "CLIPModel": "CLIP", "SiglipModel": "SigLIP", "Siglip2Model": "SigLIP 2",
               "ChineseCLIPModel": "Chinese-CLIP", "AltCLIPModel": "AltCLIP", "GroupViTModel": "GroupViT"}
CONTRASTIVE_TYPES = {"xclip": "X-CLIP", "clip": "CLIP", "siglip": "SigLIP", "siglip2": "SigLIP 2"}


def label_config(labels: Sequence[str]) -> dict[str, Any]:
    """The label fields of a transformers `config.json` for `labels`, in index order.

    Both maps are written: transformers renames every label `LABEL_i` when only `num_labels` changes.

    Returns:
        {"id2label": {"0": label, ...}, "label2id": {label: 0, ...}}
    """
    labels = list(labels)
    return {"id2label": {str(i): lab for i, lab in enumerate(labels)}, "label2id": {lab: i for i, lab in enumerate(labels)}}


def classifier_name(config: Mapping[str, Any], where: Path) -> str:
    """The classifier layer of the architecture `config` describes.

    Raises:
        CatsplitError: a contrastive model (no linear head: new label text is all it needs), or an
            architecture that is no classifier.
    """
    archs = config.get("architectures") or []
    arch = archs[0] if isinstance(archs, list) and archs and isinstance(archs[0], str) else None
    model_type = config.get("model_type")
    # by model_type only when no architecture is named: CLIPForImageClassification has a linear classifier
    name = CONTRASTIVE.get(arch) if arch else CONTRASTIVE_TYPES.get(model_type if isinstance(model_type, str) else "")
    if name is not None:
        raise CatsplitError(
            f"{where}: {arch or model_type} ({name}) has no linear classifier to split: it scores each video against the "
            "text of each label. To split a class, give the model the new labels' text instead of the coarse one "
            "(no weights change)"
        )
    if arch is None:
        raise CatsplitError(
            f"{where} names no architecture (\"architectures\" is missing); catsplit reads the classifier of "
            "*ForVideoClassification / *ForImageClassification models. Name the layer with key=... (CLI: --key)"
        )
    if arch in CLASSIFIER_BY_ARCHITECTURE:
        return CLASSIFIER_BY_ARCHITECTURE[arch]
    if arch.endswith(CLASSIFICATION_SUFFIXES):
        return "classifier"
    raise CatsplitError(
        f"{where}: architecture {arch} is not a classifier with a linear head (catsplit reads *ForVideoClassification "
        "and *ForImageClassification models, whose last layer is `classifier`); name the layer with key=... (CLI: --key)"
    )


def config_labels(config: Mapping[str, Any], where: Path) -> list[str] | None:
    """The labels of `id2label` in index order (keys may be ints or strings), or None when it is absent."""
    id2label = config.get("id2label")
    if not isinstance(id2label, Mapping) or not id2label:
        return None
    return labels_from_mapping(id2label, f"{where} id2label")


def with_labels(config: Mapping[str, Any], labels: Sequence[str]) -> dict[str, Any]:
    """`config` with the label fields of `labels` (id2label, label2id, and num_labels where it was written);
    other keys kept, in order."""
    out = dict(config)
    out.update(label_config(labels))  # both maps: transformers renames labels LABEL_i when only num_labels changes
    if "num_labels" in out:
        out["num_labels"] = len(labels)
    return out


def updated_config(config: Mapping[str, Any], labels: Sequence[str], entry: Mapping[str, Any] | None) -> dict[str, Any]:
    """`with_labels`, and the `catsplit` entry (removed when None); other keys kept in order."""
    out = with_labels(config, labels)
    out.pop("catsplit", None)
    if entry is not None:
        out["catsplit"] = dict(entry)
    return out
