"""Tiny randomly initialised Hugging Face video classifiers, built from configs (no download): the one
builder for the tests of `catsplit.apply`, of the model formats (tests/formats/format_models.py) and of
the ONNX export of transformers models. transformers is a test-only dependency; a test that builds a
model is skipped without it, and importing this file never is."""

from __future__ import annotations

import pytest
import torch

LABELS = ["Pushing something", "Pulling something left", "Pulling something right", "Holding something", "Dropping something"]
COARSE = "Pushing something"
SUBS = ["Pushing something left", "Pushing something right", "Pushing something up"]
FRAMES, SIZE, PATCH = 4, 16, 8  # 2 x 2 patches per frame, 2 tubelets: 8 tokens
SMALL = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)


def tiny_model(kind: str = "videomae", labels: list[str] = LABELS, seed: int = 0):
    """A tiny `...ForVideoClassification` ("videomae", "timesformer" or "vivit") in eval mode, its labels
    in `config.id2label` / `label2id`."""
    transformers = pytest.importorskip("transformers")
    common = dict(image_size=SIZE, num_frames=FRAMES, **SMALL,
                  id2label=dict(enumerate(labels)), label2id={lab: i for i, lab in enumerate(labels)})
    if kind == "videomae":
        config = transformers.VideoMAEConfig(patch_size=PATCH, tubelet_size=2, **common)
        cls = transformers.VideoMAEForVideoClassification
    elif kind == "timesformer":
        config = transformers.TimesformerConfig(patch_size=PATCH, **common)
        cls = transformers.TimesformerForVideoClassification
    elif kind == "vivit":
        config = transformers.VivitConfig(tubelet_size=[2, PATCH, PATCH], **common)
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
