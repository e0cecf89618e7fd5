"""Small models in the formats catsplit reads, shared by tests/formats and tests/cli.

The Hugging Face ones are real transformers models, tiny and randomly initialised (transformers is a
test-only dependency). timm, mmaction2 and PyTorchVideo cannot be installed here (timm pulls a
CUDA-only torchvision, mmaction2 needs mmcv), so their checkpoints are built by hand with the keys,
nesting and metadata their documented formats use (each builder says which); their classifiers are
real `nn.Linear` layers of a small torch model so that scores can be compared.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from hf_models import clips, tiny_model  # tests/ is on sys.path (tests/conftest.py)

LABELS = ["archery", "bowling", "cartwheel", "dancing", "eating"]
SUBS = ["bowling ten-pin", "bowling lawn"]
COARSE = "bowling"


def hf_model(kind: str, labels=LABELS, seed: int = 0):
    """A tiny randomly initialised transformers video classifier with these labels (`hf_models.tiny_model`)."""
    return tiny_model(kind, labels, seed)


def video(n: int = 3, seed: int = 1) -> torch.Tensor:
    """Random clips [N, T=4, C=3, H=16, W=16], the input the tiny models take."""
    return clips(n, seed)


class TinyVideoNet(torch.nn.Module):
    """A stand-in backbone (global pooling + a linear layer) with a linear classifier named as the format names it."""

    def __init__(self, classes: int = len(LABELS), dim: int = 8, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.backbone = torch.nn.Linear(3, dim)
        self.fc = torch.nn.Linear(dim, classes)

    def features(self, clips: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.backbone(clips.mean(dim=(1, 3, 4))))  # [N, D]


def timm_folder(folder: Path, *, weights: str = "model.safetensors", flat: bool = False, labels=LABELS) -> TinyVideoNet:
    """A timm model folder as `timm.models.save_for_hf` writes it (pytorch-image-models, timm/models/_hub.py):
    config.json with architecture, num_classes, num_features, label_names, pretrained_cfg (classifier
    "head.fc", num_classes, ...) and the weights as model.safetensors or pytorch_model.bin. `flat=True`:
    the older one-dict form (no pretrained_cfg, `labels`)."""
    from safetensors.torch import save_file

    net = TinyVideoNet(len(labels))
    folder.mkdir(parents=True, exist_ok=True)
    state = {"stem.weight": net.backbone.weight, "stem.bias": net.backbone.bias,
             "head.fc.weight": net.fc.weight, "head.fc.bias": net.fc.bias}
    state = {k: v.detach().contiguous() for k, v in state.items()}
    if weights.endswith(".safetensors"):
        save_file(state, str(folder / weights))
    else:
        torch.save(state, folder / weights)
    pretrained = {"architecture": "tiny_video_net", "num_classes": len(labels), "classifier": "head.fc",
                  "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "input_size": [3, 16, 16]}
    if flat:
        config = {**pretrained, "num_features": 8, "labels": list(labels)}
    else:
        pretrained.pop("architecture")
        config = {"architecture": "tiny_video_net", "num_classes": len(labels), "num_features": 8,
                  "label_names": list(labels), "pretrained_cfg": pretrained}
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return net


class HistoryBuffer:
    """Stands for mmengine.logging.HistoryBuffer: a class weights_only=True refuses (pickled by reference)."""

    def __init__(self):
        self._log_history = [0.5, 0.25]
        self._count_history = [1, 1]


HistoryBuffer.__module__ = "mmengine.logging.history_buffer"
MMACTION_CFG = """model = dict(
    type='Recognizer3D',
    backbone=dict(type='ResNet3d', depth=50),
    cls_head=dict(
        type='I3DHead',
        in_channels=8,
        num_classes=5,
        dropout_ratio=0.5,
        average_clips='prob'),
    data_preprocessor=dict(type='ActionDataPreprocessor'))
"""


def mmaction_checkpoint(path: Path, *, training: bool = False, head: str = "fc_cls", classes=True) -> TinyVideoNet:
    """A mmaction2 checkpoint as mmengine's Runner.save_checkpoint writes it (mmengine/runner/runner.py):
    {"meta": {cfg (config text), seed, experiment_name, time, mmengine_version, dataset_meta}, "state_dict",
    and for a training checkpoint "message_hub" (HistoryBuffer objects) and "optimizer"}. The head is
    cls_head.fc_cls (I3D/TSN/...) or cls_head.fc2 (X3D)."""
    net = TinyVideoNet()
    state = OrderedDict([
        ("backbone.conv1.conv.weight", net.backbone.weight.detach().reshape(8, 3, 1, 1, 1).clone()),
        ("backbone.conv1.bn.bias", net.backbone.bias.detach().clone()),
        (f"cls_head.{head}.weight", net.fc.weight.detach().clone()),
        (f"cls_head.{head}.bias", net.fc.bias.detach().clone()),
    ])
    meta = {"cfg": MMACTION_CFG, "seed": 0, "experiment_name": "i3d_tiny", "time": "20240101_000000",
            "mmengine_version": "0.10.4"}
    if classes:
        meta["dataset_meta"] = {"classes": tuple(LABELS)}
    ckpt = {"meta": meta, "state_dict": state}
    if training:
        ckpt["message_hub"] = {"log_scalars": {"train/loss": HistoryBuffer()}, "runtime_info": {"epoch": 3}}
        ckpt["optimizer"] = {"state": {0: {"momentum_buffer": torch.zeros(5, 8)}}, "param_groups": [{"lr": 0.01, "params": [0]}]}
    with _importable(HistoryBuffer):  # pickle stores a class by reference to its module
        torch.save(ckpt, path)
    return net


@contextmanager
def _importable(cls):
    """Make `cls` importable under its `__module__` (and that module's parents) while a pickle is written."""
    parts = cls.__module__.split(".")
    names = [".".join(parts[: i + 1]) for i in range(len(parts))]
    added = [n for n in names if n not in sys.modules]
    for n in added:
        sys.modules[n] = types.ModuleType(n)
    setattr(sys.modules[cls.__module__], cls.__name__, cls)
    try:
        yield
    finally:
        for n in added:
            del sys.modules[n]


PYSLOWFAST_CFG = """DATA:
  NUM_FRAMES: 8
MODEL:
  ARCH: slow
  MODEL_NAME: ResNet
  NUM_CLASSES: 5
  DROPOUT_RATE: 0.5
TRAIN:
  BATCH_SIZE: 64
"""


def pytorchvideo_checkpoint(path: Path, *, head: str = "blocks.5.proj", training: bool = False) -> TinyVideoNet:
    """A PyTorchVideo hub checkpoint ({"model_state": state dict}, pytorchvideo/models/hub/*.py reads
    checkpoint["model_state"]) with the head at blocks.5.proj (slow_r50, x3d) or head.projection
    (PySlowFast); `training=True` adds PySlowFast's epoch, optimizer_state and cfg (YAML text)."""
    net = TinyVideoNet()
    state = OrderedDict([
        ("blocks.0.conv.weight", net.backbone.weight.detach().reshape(8, 3, 1, 1, 1).clone()),
        ("blocks.0.norm.bias", net.backbone.bias.detach().clone()),
        (f"{head}.weight", net.fc.weight.detach().clone()),
        (f"{head}.bias", net.fc.bias.detach().clone()),
    ])
    ckpt = {"model_state": state}
    if training:
        ckpt.update(epoch=196, optimizer_state={"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]},
                    cfg=PYSLOWFAST_CFG)
    torch.save(ckpt, path)
    return net


def kinetics_classnames(path: Path, labels=LABELS) -> Path:
    """PySlowFast's kinetics_classnames.json: {"\\"name\\"": index} (the keys keep their quotes)."""
    path.write_text(json.dumps({f'"{lab}"': i for i, lab in enumerate(labels)}))
    return path


def timm_train_checkpoint(path: Path) -> TinyVideoNet:
    """A checkpoint as timm's train.py (CheckpointSaver) writes it: epoch, arch, state_dict, optimizer, version,
    args (an argparse.Namespace, which weights_only=True refuses), metric."""
    net = TinyVideoNet()
    state = OrderedDict((f"head.fc.{k}" if k.startswith(("weight", "bias")) else k, v.detach().clone())
                        for k, v in [("weight", net.fc.weight), ("bias", net.fc.bias)])
    state["stem.weight"] = net.backbone.weight.detach().clone()
    torch.save({"epoch": 9, "arch": "tiny_video_net", "state_dict": state, "optimizer": {"state": {}, "param_groups": []},
                "version": 2, "args": argparse.Namespace(model="tiny_video_net", lr=0.1), "metric": 71.5}, path)
    return net
