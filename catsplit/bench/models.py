"""Mixed-granularity base models for the rendered benchmark world.

Two kinds of video classifier share one small 3D-CNN backbone (4 Conv3d-BatchNorm-ReLU blocks,
global average pool -> D-dim feature, D = 8 * width):

* ``"linear"``: backbone + linear head (weight [C, D], bias [C]), cross-entropy on the
  mixed-granularity labels of a partition (``world.mixed_labels``).
* ``"text4vis"``: backbone + learnable projection D -> E + a frozen head whose rows are the
  L2-normalised text embeddings of the labels (averaged over prompt templates);
  logits = exp(logit_scale) * cos(projected feature, row), logit_scale learnable.

Training runs on CPU with AdamW and a one-cycle schedule; the epoch is chosen on the validation
split (the best validation accuracy is kept), never on test. Models are saved as safetensors
with their configuration and labels in the metadata, so a caller can cache them under a key.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from catsplit.errors import CatsplitError
from catsplit.progress import Progress
from catsplit.text import text_rows

TextEncoder = Callable[[List[str]], np.ndarray]

#: prompt templates of the benchmark's Text4Vis head ({} is the label with a lower-case first letter). Part of
#: the benchmark's recipe (its cache key and published figures), so it stays as it was chosen, apart from
#: catsplit.texthead.DEFAULT_TEMPLATES, the library's default for text_head.
TEMPLATES: Tuple[str, ...] = ("a video of a person {}.", "a person is {}.", "{}.")

MODEL_FORMAT = "catsplit.bench.model/1"


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainConfig:
    """Architecture and optimisation settings (defaults chosen on the validation split)."""

    width: int = 16                    # channels of the first block (blocks: w, 2w, 4w, D)
    dim: int = 256                     # D: feature dimension (channels of the last block)
    multiscale: bool = False           # features = pooled block 3 (4w) + pooled block 4 (D - 4w)
    epochs: int = 10                   # maximum epochs; the best validation epoch is kept
    lr: float = 8e-3                   # peak learning rate (one-cycle, AdamW); val: 8e-3 > 4e-3
    weight_decay: float = 0.05         # AdamW weight decay (not applied to norms / biases)
    batch_size: int = 64               # clips per step
    label_smoothing: float = 0.05      # cross-entropy label smoothing
    dropout: float = 0.1               # dropout on the pooled feature before the head
    augment: bool = True               # random translation (+-2 px) and brightness/contrast jitter
    warmup: float = 0.15               # fraction of steps spent warming up
    patience: int = 3                  # stop after this many epochs without a val improvement
    seed: int = 0                      # initialisation and batch order
    threads: Optional[int] = None      # torch threads while training (None: leave as is)
    # pretraining (catsplit.bench.pretrain): the backbone first learns on a disjoint world of other verbs.
    # "none" (from scratch) | "verbs" (fine + verb + modifier heads) | "verbs-fine". Chosen on val clips
    # (docs/benchmark.md, Pretraining): "verbs" lifts alignment on the quick preset 23.1 -> 33.6 (A) / 20.6 -> 34.6
    # (B); "verbs-fine" alone learned nothing (3.3 % pretraining val accuracy, chance 1.7 %) and lowered every row
    pretrain: str = "verbs"
    pretrain_clips: int = 100          # training clips per pretraining label (+ 10 % as its own val split)
    pretrain_epochs: int = 20          # pretraining epochs (the best pretraining-val epoch is kept); val acc 88 %
    # fine-tuning lr of a pretrained backbone, as a fraction of lr; quick val: 0.3 raised alignment 2-5 points and
    # Text4Vis as much (ratio 1.20 -> 1.19), and lowered flat locality 1-2 points and refine-alignment 1-2 points
    backbone_lr: float = 1.0
    # text4vis only
    logit_scale: float = math.log(1 / 0.07)  # initial log of the cosine-logit scale (CLIP init)
    templates: Tuple[str, ...] = TEMPLATES   # prompt templates averaged into each text row

    def to_dict(self) -> dict:
        """JSON-friendly dict."""
        d = dataclasses.asdict(self)
        d["templates"] = list(self.templates)
        return d

    def key_dict(self) -> dict:
        """What a cache key hashes: ``to_dict`` without the pretraining fields when ``pretrain == "none"``,
        so the from-scratch models keep the keys (and the caches) they had before pretraining existed."""
        d = self.to_dict()
        if self.pretrain == "none":
            for name in PRETRAIN_FIELDS:
                d.pop(name)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        if "templates" in d:
            d["templates"] = tuple(d["templates"])
        return cls(**{k: v for k, v in d.items() if k in {f.name for f in dataclasses.fields(cls)}})

    @classmethod
    def quick(cls, **kw) -> "TrainConfig":
        """Settings for the quick (CI) preset: a 4x cheaper backbone (width 8, D = 128), 8 epochs, pretrained on
        40 clips per pretraining label for 12 epochs.

        Chosen on the quick world's validation split (from scratch: val ~0.56 for partition 0's linear model,
        against ~0.2 for the full-size backbone in the same time). Pretraining with 60 clips x 15 epochs gave
        alignment 33.6 / 34.6 (A / B, val) but took the preset to 3 min 20 s from an empty cache; 40 x 12 gives
        31.6 / 32.0 (scratch 23.1 / 20.6) in 2 min 45 s, inside the preset's 3-minute budget."""
        base = dict(width=8, dim=128, epochs=8, patience=8, pretrain_clips=40, pretrain_epochs=12)
        base.update(kw)
        return cls(**base)


#: the TrainConfig fields that only matter when a backbone is pretrained
PRETRAIN_FIELDS: Tuple[str, ...] = ("pretrain", "pretrain_clips", "pretrain_epochs", "backbone_lr")


# --------------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------------

def _block(cin: int, cout: int, stride: Tuple[int, int, int]) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(cin, cout, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm3d(cout), nn.ReLU(inplace=True))


def channels_for(width: int, dim: Optional[int] = None, multiscale: bool = False) -> Tuple[int, int, int, int]:
    """Block widths (w, 2w, 4w, c4): c4 = D (default 8w), or D - 4w when multiscale."""
    w = int(width)
    D = int(dim) if dim else 8 * w
    c4 = D - 4 * w if multiscale else D
    if c4 < 1:
        raise CatsplitError(f"feature dim {D} too small for width {w} (multiscale needs D > 4w)")
    return (w, 2 * w, 4 * w, c4)


class Backbone(nn.Module):
    """A small 3D CNN: uint8 clips [N, T, H, W, 3] -> features [N, D].

    Four Conv3d(3x3x3)-BatchNorm-ReLU blocks with channels (w, 2w, 4w, c4), strides
    (2,2,2), (1,2,2), (2,2,2), (2,2,2), then a global average pool over time and space
    (multiscale: the pooled outputs of blocks 3 and 4 are concatenated, c4 = D - 4w).
    """

    def __init__(self, width: int = 16, dim: Optional[int] = None, multiscale: bool = False) -> None:
        super().__init__()
        c1, c2, c3, c4 = channels_for(width, dim, multiscale)
        self.width = int(width)
        self.multiscale = bool(multiscale)
        self.dim = c4 + (c3 if multiscale else 0)
        self.low = nn.Sequential(
            _block(3, c1, (2, 2, 2)),   # [N, c1, T/2, H/2, W/2]
            _block(c1, c2, (1, 2, 2)),  # [N, c2, T/2, H/4, W/4]
            _block(c2, c3, (2, 2, 2)),  # [N, c3, T/4, H/8, W/8]
        )
        self.high = _block(c3, c4, (2, 2, 2))  # [N, c4, T/8, H/16, W/16]

    @staticmethod
    def prepare(clips: torch.Tensor) -> torch.Tensor:
        """uint8 [N, T, H, W, 3] -> normalised float [N, 3, T, H, W] (channels-last-3d memory)."""
        x = clips.permute(0, 4, 1, 2, 3).float()
        x = x.mul_(1.0 / 63.75).sub_(2.0)  # (x / 255 - 0.5) / 0.25
        return x.contiguous(memory_format=torch.channels_last_3d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x uint8 [N, T, H, W, 3] or prepared float [N, 3, T, H, W]. Returns [N, D]."""
        if x.dtype == torch.uint8:
            x = self.prepare(x)
        h = self.low(x)
        f = self.high(h).mean(dim=(2, 3, 4))
        if self.multiscale:
            f = torch.cat([h.mean(dim=(2, 3, 4)), f], dim=1)
        return f


class LinearClassifier(nn.Module):
    """Backbone + dropout + linear head over ``labels``."""

    kind = "linear"

    def __init__(self, labels: Sequence[str], width: int = 16, dropout: float = 0.0,
                 dim: Optional[int] = None, multiscale: bool = False) -> None:
        super().__init__()
        self.labels = list(labels)
        self.backbone = Backbone(width, dim, multiscale)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(self.backbone.dim, len(self.labels))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """[N, D] backbone features (the input of the linear head)."""
        return self.backbone(x)

    def logits_from_features(self, f: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(f))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits_from_features(self.features(x))


class TextClassifier(nn.Module):
    """Text4Vis-style classifier: frozen text rows [C, E], logits = scale * cos(proj(f), row)."""

    kind = "text4vis"

    def __init__(self, labels: Sequence[str], text_rows: np.ndarray, width: int = 16,
                 dropout: float = 0.0, logit_scale: float = math.log(1 / 0.07),
                 dim: Optional[int] = None, multiscale: bool = False) -> None:
        super().__init__()
        rows = torch.as_tensor(np.asarray(text_rows, dtype=np.float32))
        if rows.ndim != 2 or rows.shape[0] != len(labels):
            raise CatsplitError(f"text rows must be [C={len(labels)}, E], got {tuple(rows.shape)}")
        self.labels = list(labels)
        self.backbone = Backbone(width, dim, multiscale)
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Linear(self.backbone.dim, rows.shape[1])
        self.register_buffer("text", F.normalize(rows, dim=1))  # [C, E], frozen
        self.logit_scale = nn.Parameter(torch.tensor(float(logit_scale)))

    @property
    def scale(self) -> torch.Tensor:
        return self.logit_scale.exp().clamp(max=100.0)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """[N, E] projected, L2-normalised features (the input of the text head)."""
        return F.normalize(self.proj(self.backbone(x)), dim=1)

    def logits_from_features(self, f: torch.Tensor) -> torch.Tensor:
        return self.scale * f @ self.text.t()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.proj(self.drop(self.backbone(x)))
        return self.scale * F.normalize(f, dim=1) @ self.text.t()




# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------

def _augment(clips: np.ndarray, rng: np.random.Generator, groups: int = 8) -> torch.Tensor:
    """Augment a uint8 batch and prepare it for the backbone.

    Random +-2 px translation (all frames of a clip alike, edges replicated; one shift per group
    of clips, for speed) and per-clip brightness/contrast jitter. No flips: they would swap
    "from left to right" and "from right to left".

    Args:
        clips: uint8 [N, T, H, W, 3].
        rng: numpy generator.
        groups: the batch is cut into this many groups, each with its own shift.

    Returns:
        prepared float [N, 3, T, H, W] (channels-last-3d).
    """
    N, T, H, W, _ = clips.shape
    pad = 2
    xp = np.pad(clips, ((0, 0), (0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    out = np.empty_like(clips)
    bounds = np.linspace(0, N, groups + 1).astype(int)
    for g in range(groups):
        a, b = int(bounds[g]), int(bounds[g + 1])
        dy, dx = (int(v) for v in rng.integers(0, 2 * pad + 1, size=2))
        out[a:b] = xp[a:b, :, dy:dy + H, dx:dx + W]
    x = Backbone.prepare(torch.from_numpy(out))
    gain = torch.from_numpy(rng.uniform(0.9, 1.1, size=(N, 1, 1, 1, 1)).astype(np.float32))
    bias = torch.from_numpy(rng.uniform(-0.15, 0.15, size=(N, 1, 1, 1, 1)).astype(np.float32))
    return x.mul_(gain).add_(bias)


def _param_groups(model: nn.Module, wd: float, backbone_lr: float = 1.0) -> List[dict]:
    """AdamW groups: decay / no decay (norms, biases); with backbone_lr != 1 the backbone's parameters get
    their own two groups whose lr is that fraction of the schedule's (key "lr_scale")."""
    decay, no_decay, bb_decay, bb_no_decay = [], [], [], []
    split = backbone_lr != 1.0
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        in_backbone = split and name.startswith("backbone.")
        if p.ndim <= 1:
            (bb_no_decay if in_backbone else no_decay).append(p)
        else:
            (bb_decay if in_backbone else decay).append(p)
    groups = [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]
    if split:  # only then: the from-scratch optimiser keeps exactly its two groups (bit-identical models)
        groups += [{"params": bb_decay, "weight_decay": wd, "lr_scale": backbone_lr},
                   {"params": bb_no_decay, "weight_decay": 0.0, "lr_scale": backbone_lr}]
    return groups


def one_cycle(step: int, total: int, warm: int, lr: float) -> float:
    """The learning rate at `step`: linear warm-up over `warm` steps, then cosine down to 2 % of `lr`."""
    if step < warm:
        return lr * (step + 1) / warm
    p = (step - warm) / max(1, total - warm)
    return lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * p)))


LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], Tuple[torch.Tensor, torch.Tensor]]


def _cross_entropy(smoothing: float) -> LossFn:
    def loss(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        logits = model(xb)
        return F.cross_entropy(logits, yb, label_smoothing=smoothing), logits
    return loss


@torch.no_grad()
def predict_logits(model: nn.Module, clips: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Logits of a classifier for uint8 clips [N, T, H, W, 3] -> float32 [N, C] (eval mode)."""
    was = model.training
    model.eval()
    out = []
    for i in range(0, len(clips), batch_size):
        xb = torch.from_numpy(np.ascontiguousarray(clips[i:i + batch_size]))
        out.append(model(xb).float().numpy())
    model.train(was)
    return np.concatenate(out, 0) if out else np.zeros((0, len(model.labels)), np.float32)


def accuracy(model: nn.Module, clips: np.ndarray, targets: np.ndarray, batch_size: int = 256) -> float:
    """Top-1 accuracy (fraction) of a classifier on clips [N, T, H, W, 3] with int targets [N]."""
    if len(clips) == 0:
        return float("nan")
    return float((predict_logits(model, clips, batch_size).argmax(1) == np.asarray(targets)).mean())


@torch.no_grad()
def extract_features(model: nn.Module, clips: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Features that the head consumes, in eval mode.

    Args:
        model: LinearClassifier (-> backbone features [N, D]) or TextClassifier
            (-> projected, L2-normalised features [N, E]).
        clips: uint8 [N, T, H, W, 3].
        batch_size: clips per forward pass.

    Returns:
        float32 [N, D] (or [N, E]).
    """
    was = model.training
    model.eval()
    out = []
    for i in range(0, len(clips), batch_size):
        xb = torch.from_numpy(np.ascontiguousarray(clips[i:i + batch_size]))
        out.append(model.features(xb).float().numpy())
    model.train(was)
    dim = model.backbone.dim if isinstance(model, LinearClassifier) else model.text.shape[1]
    return np.concatenate(out, 0).astype(np.float32) if out else np.zeros((0, dim), np.float32)


@dataclass
class TrainReport:
    """What happened during training (accuracies are fractions in [0, 1])."""

    kind: str
    labels: List[str]
    config: dict
    best_epoch: int
    epochs_run: int
    history: List[dict] = field(default_factory=list)  # per epoch: loss, train_acc, val_acc, seconds
    val_acc: float = float("nan")
    test_acc: float = float("nan")                        # filled by evaluate(); never used to select
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _make_model(kind: str, labels: Sequence[str], config: TrainConfig,
                encoder: Optional[TextEncoder] = None, rows: Optional[np.ndarray] = None) -> nn.Module:
    if kind == "linear":
        return LinearClassifier(labels, config.width, config.dropout, config.dim, config.multiscale)
    if kind == "text4vis":
        if rows is None:
            if encoder is None:
                raise CatsplitError("a text4vis model needs a text encoder (callable list[str] -> [N, E])")
            rows = text_rows(encoder, labels, config.templates)
        model = TextClassifier(labels, rows, config.width, config.dropout, config.logit_scale, config.dim,
                               config.multiscale)
        model.templates = tuple(config.templates)
        return model
    raise CatsplitError(f"unknown model kind {kind!r}; use 'linear' or 'text4vis'")


def train(kind: str, labels: Sequence[str], train_clips: np.ndarray, train_targets: np.ndarray,
          val_clips: np.ndarray, val_targets: np.ndarray, config: TrainConfig = TrainConfig(),
          encoder: Optional[TextEncoder] = None, progress: bool = True,
          backbone: Optional[Dict[str, torch.Tensor]] = None) -> Tuple[nn.Module, TrainReport]:
    """Train a base model; keep the epoch with the best validation accuracy.

    Args:
        kind: "linear" or "text4vis".
        labels: the (mixed-granularity) label texts; targets index into them.
        train_clips / val_clips: uint8 [N, T, H, W, 3].
        train_targets / val_targets: int [N].
        config: TrainConfig.
        encoder: text encoder (text4vis only).
        progress: draw a progress bar on stderr (TTY only).
        backbone: a pretrained backbone's state dict (catsplit.bench.pretrain) to start from; its lr is
            ``config.backbone_lr`` times the schedule's. None: from scratch.

    Returns:
        (model in eval mode with the best validation weights, TrainReport).
    """
    labels = list(labels)
    y_tr = np.asarray(train_targets, dtype=np.int64)
    if len(y_tr) and (y_tr.min() < 0 or y_tr.max() >= len(labels)):
        raise CatsplitError(f"training targets must index the {len(labels)} labels")
    old_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(int(config.threads))
    try:
        torch.manual_seed(config.seed)
        model = _make_model(kind, labels, config, encoder)
        if backbone is not None:
            model.backbone.load_state_dict(backbone)
        return fit(model, train_clips, y_tr, val_clips, val_targets, config, progress=progress,
                   backbone_lr=1.0 if backbone is None else config.backbone_lr)
    finally:
        torch.set_num_threads(old_threads)


def fit(model: nn.Module, train_clips: np.ndarray, train_targets: np.ndarray, val_clips: np.ndarray,
        val_targets: np.ndarray, config: TrainConfig, loss: Optional[LossFn] = None, progress: bool = True,
        backbone_lr: float = 1.0) -> Tuple[nn.Module, TrainReport]:
    """The training loop of every model of the benchmark: AdamW, one-cycle lr, best validation epoch kept.

    Args:
        model: a classifier with ``.labels`` whose ``model(x)`` are the logits that val accuracy reads.
        train_clips / val_clips: uint8 [N, T, H, W, 3].
        train_targets: int [N] (or [N, K] for a multi-task ``loss``); val_targets: int [N] for ``model(x)``.
        config: TrainConfig (lr, epochs, batch size, augmentation, patience, seed).
        loss: (model, x, targets) -> (loss, logits for the train accuracy); default cross-entropy.
        progress: progress bar on stderr.
        backbone_lr: lr fraction of the ``backbone.*`` parameters.

    Returns:
        (model in eval mode with the best validation weights, TrainReport).
    """
    labels = list(model.labels)
    kind = getattr(model, "kind", type(model).__name__)
    y_tr = np.asarray(train_targets, dtype=np.int64)
    y_va = np.asarray(val_targets, dtype=np.int64)
    if len(train_clips) != len(y_tr) or len(val_clips) != len(y_va):
        raise CatsplitError("clips and targets must have the same length")
    if len(y_tr) == 0:
        raise CatsplitError("no training clips")
    loss = loss or _cross_entropy(config.label_smoothing)
    rng = np.random.default_rng(config.seed)
    model = model.to(memory_format=torch.channels_last_3d)
    opt = torch.optim.AdamW(_param_groups(model, config.weight_decay, backbone_lr), lr=config.lr)
    bs = int(config.batch_size)
    steps_per_epoch = max(1, len(y_tr) // bs)  # drop the last partial batch (BatchNorm)
    total = steps_per_epoch * config.epochs
    warm = max(1, int(config.warmup * total))

    def lr_at(step: int) -> float:
        return one_cycle(step, total, warm, config.lr)

    report = TrainReport(kind, labels, config.to_dict(), best_epoch=-1, epochs_run=0)
    best_acc, best_state, bad = -1.0, None, 0
    t_start = time.monotonic()
    step = 0
    with Progress(total, f"train {kind}", enabled=progress) as bar:
        for epoch in range(config.epochs):
            t0 = time.monotonic()
            model.train()
            order = rng.permutation(len(y_tr))
            loss_sum, correct, seen = 0.0, 0, 0
            for b in range(steps_per_epoch):
                idx = np.sort(order[b * bs:(b + 1) * bs])
                if config.augment:
                    xb = _augment(train_clips[idx], rng)
                else:
                    xb = Backbone.prepare(torch.from_numpy(train_clips[idx]))
                yb = torch.from_numpy(y_tr[idx])
                for g in opt.param_groups:
                    g["lr"] = lr_at(step) * g.get("lr_scale", 1.0)
                value, logits = loss(model, xb, yb)
                opt.zero_grad(set_to_none=True)
                value.backward()
                opt.step()
                step += 1
                loss_sum += float(value.detach()) * len(idx)
                first = yb if yb.ndim == 1 else yb[:, 0]
                correct += int((logits.argmax(1) == first).sum())
                seen += len(idx)
                bar.update(1, postfix=f"ep {epoch + 1} loss {loss_sum / seen:.3f}")
            val_acc = accuracy(model, val_clips, y_va) if len(y_va) else float("nan")
            report.history.append({"epoch": epoch + 1, "loss": loss_sum / seen, "train_acc": correct / seen,
                                   "val_acc": val_acc, "seconds": time.monotonic() - t0})
            report.epochs_run = epoch + 1
            bar.set_postfix(f"ep {epoch + 1} val {val_acc:.3f}")
            if not len(y_va) or val_acc > best_acc + 1e-9:
                best_acc, bad = val_acc, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                report.best_epoch = epoch + 1
            else:
                bad += 1
                if bad >= config.patience:
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    report.val_acc = best_acc
    report.seconds = time.monotonic() - t_start
    return model, report


def train_base(dataset, collapsed: Sequence[str], kind: str = "linear",
               config: TrainConfig = TrainConfig(), encoder: Optional[TextEncoder] = None,
               progress: bool = True, backbone: Optional[Dict[str, torch.Tensor]] = None
               ) -> Tuple[nn.Module, TrainReport]:
    """Train the mixed-granularity base model of a partition on a world Dataset.

    Args:
        dataset: ``world.Dataset`` (train, val, test splits).
        collapsed: coarse actions whose fine labels are merged (partition A's model collapses A).
        kind: "linear" or "text4vis".
        config: TrainConfig.
        encoder: text encoder (text4vis only).
        progress: progress bar on stderr.
        backbone: pretrained backbone weights to start from (None: from scratch).

    Returns:
        (model, report) with report.val_acc and report.test_acc of the selected weights.
    """
    from catsplit.bench.world import mixed_targets

    tax = dataset.taxonomy
    y_tr, labels = mixed_targets(tax, dataset["train"].labels, collapsed)
    y_va, _ = mixed_targets(tax, dataset["val"].labels, collapsed)
    model, report = train(kind, labels, dataset["train"].clips, y_tr, dataset["val"].clips, y_va,
                          config, encoder, progress, backbone)
    if "test" in dataset.splits:
        y_te, _ = mixed_targets(tax, dataset["test"].labels, collapsed)
        report.test_acc = accuracy(model, dataset["test"].clips, y_te)
    return model, report


# --------------------------------------------------------------------------------------------
# Export, save, load
# --------------------------------------------------------------------------------------------

def export_head(model: nn.Module) -> Dict[str, object]:
    """The classifier head as plain arrays, ready for ``catsplit.Head(weight=, bias=, labels=)``.

    For a LinearClassifier: weight [C, D], bias [C] of the linear layer; logits = f @ W.T + b
    with f = ``extract_features``. For a TextClassifier: weight = scale * text rows [C, E],
    bias = 0, so logits = f @ W.T with f = the normalised projected features; ``scale``,
    ``templates`` are included to embed new labels the same way.

    Returns:
        dict with "weight" (float32 [C, D]), "bias" (float32 [C]), "labels" (list[str]), "kind",
        and for text4vis "scale" (float) and "templates" (list[str]).
    """
    with torch.no_grad():
        if isinstance(model, LinearClassifier):
            return {"weight": model.head.weight.detach().float().numpy().copy(),
                    "bias": model.head.bias.detach().float().numpy().copy(),
                    "labels": list(model.labels), "kind": "linear"}
        if isinstance(model, TextClassifier):
            scale = float(model.scale)
            return {"weight": (scale * model.text).float().numpy().copy(),
                    "bias": np.zeros(len(model.labels), np.float32),
                    "labels": list(model.labels), "kind": "text4vis", "scale": scale,
                    "templates": list(getattr(model, "templates", TEMPLATES))}
    raise CatsplitError(f"cannot export the head of {type(model).__name__}")


def save_model(model: nn.Module, path: str, config: Optional[TrainConfig] = None,
               report: Optional[TrainReport] = None) -> str:
    """Save a model (weights + labels + config + report) as one safetensors file, atomically.

    Returns:
        The path written.
    """
    from safetensors.torch import save

    tensors = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    meta = {
        "format": MODEL_FORMAT,
        "kind": model.kind,
        "labels": json.dumps(list(model.labels)),
        "width": str(model.backbone.width),
        "dim": str(model.backbone.dim),
        "multiscale": str(int(model.backbone.multiscale)),
        "config": json.dumps(config.to_dict() if config is not None else {}),
        "report": json.dumps(report.to_dict() if report is not None else {}),
    }
    if isinstance(model, TextClassifier):
        meta["templates"] = json.dumps(list(getattr(model, "templates", TEMPLATES)))
    from catsplit.io.atomic import atomic_path

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path, overwrite=True, example="model.safetensors") as tmp:
        with open(tmp, "wb") as f:
            f.write(save(tensors, metadata=meta))
    return path


def load_model(path: str) -> Tuple[nn.Module, Optional[TrainReport]]:
    """Load a model written by :func:`save_model`.

    Returns:
        (model in eval mode, its TrainReport or None).
    """
    from catsplit.io.safetensors import read_safetensors

    if not os.path.exists(path):
        raise CatsplitError(f"no model file at {path}")
    state, meta = read_safetensors(path, "model file")  # the checked reader: a damaged file is a CatsplitError
    if meta.get("format") != MODEL_FORMAT:
        raise CatsplitError(f"{path} is not a catsplit bench model (format {meta.get('format')!r})")
    try:
        labels = json.loads(meta["labels"])
        width = int(meta["width"])
        dim = int(meta.get("dim", 8 * width))
        ms = bool(int(meta.get("multiscale", "0")))
        if meta["kind"] == "linear":
            model: nn.Module = LinearClassifier(labels, width, dim=dim, multiscale=ms)
        else:
            model = TextClassifier(labels, state["text"].numpy(), width, dim=dim, multiscale=ms)
            model.templates = tuple(json.loads(meta.get("templates", "[]")) or TEMPLATES)
        model.load_state_dict(state)
        model.eval()
        rep = json.loads(meta.get("report", "{}") or "{}")
        report = TrainReport(**rep) if rep else None
    except CatsplitError:
        raise
    except Exception as exc:  # metadata or tensors of the wrong shape: the file is damaged (it is ours, in the cache)
        raise CatsplitError(
            f"{path} is a damaged catsplit bench model ({type(exc).__name__}: {str(exc).strip()[:200]}); "
            "delete it to have the model trained again"
        ) from None
    return model, report


def cached_train(cache_dir: Optional[str], name: str, fit: Callable[[], Tuple[nn.Module, TrainReport]],
                 config: Optional[TrainConfig] = None) -> Tuple[nn.Module, TrainReport, bool]:
    """Load ``<cache_dir>/<name>.safetensors`` if present, else run ``fit()`` and save it.

    Args:
        cache_dir: directory (the caller keys it, e.g. by a config hash); None disables caching.
        name: file stem, e.g. "A-linear".
        fit: trains and returns (model, report).
        config: stored with the model.

    Returns:
        (model, report, loaded_from_cache).
    """
    if cache_dir is None:
        model, report = fit()
        return model, report, False
    path = os.path.join(cache_dir, f"{name}.safetensors")
    if os.path.exists(path):
        model, report = load_model(path)
        return model, report, True
    model, report = fit()
    save_model(model, path, config, report)
    return model, report, False
