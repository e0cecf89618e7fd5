"""Tiny randomly initialised Hugging Face video classifiers, built from configs (no download), for the tests of
`catsplit.apply` and of the ONNX export of transformers models."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

LABELS = ["Pushing something", "Pulling something left", "Pulling something right", "Holding something", "Dropping something"]
COARSE = "Pushing something"
SUBS = ["Pushing something left", "Pushing something right", "Pushing something up"]
FRAMES, SIZE = 4, 32
SMALL = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)


def tiny_model(kind: str = "videomae", labels: list[str] = LABELS, seed: int = 0):
    """A tiny `...ForVideoClassification` in eval mode, its labels in `config.id2label`."""
    label_fields = dict(id2label=dict(enumerate(labels)), label2id={lab: i for i, lab in enumerate(labels)})
    if kind == "videomae":
        config = transformers.VideoMAEConfig(image_size=SIZE, patch_size=16, num_frames=FRAMES, tubelet_size=2, **SMALL, **label_fields)
        cls = transformers.VideoMAEForVideoClassification
    elif kind == "timesformer":
        config = transformers.TimesformerConfig(image_size=SIZE, patch_size=16, num_frames=FRAMES, **SMALL, **label_fields)
        cls = transformers.TimesformerForVideoClassification
    elif kind == "vivit":
        config = transformers.VivitConfig(image_size=SIZE, num_frames=FRAMES, tubelet_size=[2, 16, 16], **SMALL, **label_fields)
        cls = transformers.VivitForVideoClassification
    else:
        raise ValueError(kind)
    torch.manual_seed(seed)
    return cls(config).eval()


def clips(n: int, seed: int = 0) -> torch.Tensor:
    """pixel_values [N, T, C, H, W] float32, as the video processors give them."""
    return torch.randn(n, FRAMES, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def model_head(model, labels: list[str] = LABELS):
    """The model's classifier as a catsplit Head."""
    import catsplit

    layer = model.classifier
    return catsplit.Head(weight=layer.weight.detach(), bias=layer.bias.detach(), labels=labels)
