"""The pretraining stage of the benchmark's backbone (``TrainConfig.pretrain``).

The paper's backbones are pretrained (MVD / VideoMAE on Kinetics) before they meet SSv2, and its
from-scratch ablation loses 9 points of alignment generality. Here the backbone first learns on a
disjoint *pretraining world*: the same renderer, its own seed, five verbs that are no benchmark
action (``world.PRETRAIN_ACTIONS``: nudging, tapping, shoving, flicking, carrying: other hand and
timing combinations of the benchmark's choreographies) combined with the shared modifier
vocabulary. It holds no label, no text and no clip of the benchmark world (not its val or test
clips either). Recipes:

* ``"verbs"``: multi-task, three linear heads on the pooled feature: the fine verb x modifier
  labels, the verb, and the modifier (cross-entropy each, summed). The modifier head reads a
  modifier the same way whatever the verb, which is what makes modifier features generic.
* ``"verbs-fine"``: the fine verb x modifier labels only.
* ``"none"``: no pretraining (the base models are trained from scratch, as before).

The pretrained backbone is cached once per configuration (``pretrain_key``: the world's rendering
parameters, the recipe and the settings that shape the backbone) in ``<cache>/bench/pretrain-<key>/``
and shared by both partitions' linear and Text4Vis models, which start from it and are fine-tuned
as usual (their backbone at ``backbone_lr`` times the schedule's lr).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from catsplit.errors import CatsplitError

RECIPES: Tuple[str, ...] = ("none", "verbs", "verbs-fine")
BACKBONE_FORMAT = "catsplit.bench.backbone/1"
#: offset of the pretraining world's seed from the benchmark world's (its clips get generators of their own)
SEED_OFFSET = 7919


def check_recipe(recipe: str) -> str:
    """The recipe name, or a CatsplitError naming the choices."""
    if recipe not in RECIPES:
        raise CatsplitError(f"unknown pretraining recipe {recipe!r}; use one of {list(RECIPES)} "
                            "(--train-option pretrain=none trains from scratch)")
    return recipe


def pretrain_world_config(world_config, train_config):
    """The pretraining world: the benchmark world's rendering parameters, its own seed and clip counts.

    Args:
        world_config: the benchmark's WorldConfig (size, frames, noise, shake, distractors are kept).
        train_config: TrainConfig (``pretrain_clips`` training clips per label, 10 % of it as val).

    Returns:
        A WorldConfig to render with ``world.generate(..., pretraining=True)`` (train and val splits).
    """
    n = int(train_config.pretrain_clips)
    if n < 2:
        raise CatsplitError(f"pretrain_clips must be >= 2, got {n}")
    return dataclasses.replace(world_config, seed=int(world_config.seed) + SEED_OFFSET, n_train=n,
                               n_val=max(2, n // 10), n_test=0, actions=None)


def pretrain_key(world_config, train_config) -> str:
    """The cache key of a pretrained backbone: what renders the pretraining world and what trains it
    (not the fine-tuning settings: every base model of the configuration shares one backbone)."""
    from catsplit.bench.world import WORLD_VERSION

    tc = train_config
    blob = {"world": pretrain_world_config(world_config, tc).to_dict(), "version": WORLD_VERSION,
            "recipe": check_recipe(tc.pretrain), "epochs": tc.pretrain_epochs, "width": tc.width, "dim": tc.dim,
            "multiscale": tc.multiscale, "lr": tc.lr, "weight_decay": tc.weight_decay, "batch_size": tc.batch_size,
            "label_smoothing": tc.label_smoothing, "dropout": tc.dropout, "augment": tc.augment,
            "warmup": tc.warmup, "seed": tc.seed}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


class PretrainNet(nn.Module):
    """Backbone + dropout + heads over the fine labels, the verbs and the modifiers.

    ``forward`` gives the fine logits (what validation accuracy reads); ``heads`` all three.
    """

    kind = "pretrain"

    def __init__(self, labels: Sequence[str], verbs: int, modifiers: int, width: int, dropout: float,
                 dim: Optional[int], multiscale: bool) -> None:
        super().__init__()
        from catsplit.bench.models import Backbone

        self.labels = list(labels)
        self.backbone = Backbone(width, dim, multiscale)
        self.drop = nn.Dropout(dropout)
        self.fine = nn.Linear(self.backbone.dim, len(self.labels))
        self.verb = nn.Linear(self.backbone.dim, verbs)
        self.modifier = nn.Linear(self.backbone.dim, modifiers)

    def heads(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f = self.drop(self.backbone(x))  # [N, D]
        return self.fine(f), self.verb(f), self.modifier(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fine(self.drop(self.backbone(x)))


def targets(tax, fine_index: np.ndarray) -> Tuple[np.ndarray, list, list]:
    """int64 [N, 3]: (fine label, verb, modifier) of every clip; and the verb and modifier names."""
    verbs = list(tax.coarse)
    modifiers = sorted({tax.modifier[f] for f in tax.labels})
    lut = np.array([[i, verbs.index(tax.coarse_of[f]), modifiers.index(tax.modifier[f])]
                    for i, f in enumerate(tax.labels)], dtype=np.int64)
    return lut[np.asarray(fine_index, dtype=np.int64)], verbs, modifiers


def _multitask(smoothing: float, heads: int):
    def loss(model, xb, yb):
        fine, verb, mod = model.heads(xb)
        value = F.cross_entropy(fine, yb[:, 0], label_smoothing=smoothing)
        if heads == 3:
            value = value + F.cross_entropy(verb, yb[:, 1], label_smoothing=smoothing) \
                + F.cross_entropy(mod, yb[:, 2], label_smoothing=smoothing)
        return value, fine
    return loss


def pretrain_backbone(dataset, train_config, progress: bool = True):
    """Train the backbone on the pretraining world (a ``world.generate(..., pretraining=True)`` Dataset).

    Args:
        dataset: the pretraining world with train and val splits (pretraining verbs only).
        train_config: TrainConfig; ``pretrain`` is the recipe, ``pretrain_epochs`` the epochs, the
            optimiser settings are the base models'.
        progress: progress bar on stderr.

    Returns:
        (backbone state dict, TrainReport of the pretraining net; val_acc = fine-label accuracy on the
        pretraining world's own val clips, which chose the epoch).
    """
    from catsplit.bench.models import fit
    from catsplit.bench.world import ACTIONS

    tc = train_config
    recipe = check_recipe(tc.pretrain)
    if recipe == "none":
        raise CatsplitError("pretrain='none' has no backbone to pretrain")
    tax = dataset.taxonomy
    clash = sorted(set(tax.coarse) & {text for text, _ in ACTIONS.values()})
    if clash:
        raise CatsplitError(f"the pretraining world holds benchmark actions {clash}; it must hold none")
    y_tr, verbs, modifiers = targets(tax, dataset["train"].labels)
    y_va, _, _ = targets(tax, dataset["val"].labels)
    cfg = dataclasses.replace(tc, epochs=int(tc.pretrain_epochs), patience=max(int(tc.pretrain_epochs), 1))
    old_threads = torch.get_num_threads()
    if tc.threads:
        torch.set_num_threads(int(tc.threads))
    try:
        torch.manual_seed(tc.seed)
        net = PretrainNet(tax.labels, len(verbs), len(modifiers), tc.width, tc.dropout, tc.dim, tc.multiscale)
        net, report = fit(net, dataset["train"].clips, y_tr, dataset["val"].clips, y_va[:, 0], cfg,
                          loss=_multitask(tc.label_smoothing, 3 if recipe == "verbs" else 1), progress=progress)
    finally:
        torch.set_num_threads(old_threads)
    state = {k: v.detach().clone().contiguous() for k, v in net.backbone.state_dict().items()}
    return state, report


def save_backbone(state: Dict[str, torch.Tensor], path: str, meta: dict) -> str:
    """Write a backbone state dict with its description (JSON-able ``meta``) as safetensors, atomically."""
    from safetensors.torch import save

    from catsplit.io.atomic import atomic_path

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path, overwrite=True, example="backbone.safetensors") as tmp:
        with open(tmp, "wb") as f:
            f.write(save(state, metadata={"format": BACKBONE_FORMAT, "meta": json.dumps(meta)}))
    return path


def load_backbone(path: str) -> Tuple[Dict[str, torch.Tensor], dict]:
    """Read a backbone written by :func:`save_backbone`: (state dict, meta)."""
    from catsplit.io.safetensors import read_safetensors

    state, meta = read_safetensors(path, "pretrained backbone")
    if meta.get("format") != BACKBONE_FORMAT:
        raise CatsplitError(f"{path} is not a catsplit pretrained backbone (format {meta.get('format')!r}); "
                            "delete it to have it pretrained again")
    return state, json.loads(meta.get("meta", "{}") or "{}")


def cached_backbone(cache_root: str, world_config, train_config, progress: bool = True, workers: int = 1
                    ) -> Tuple[Dict[str, torch.Tensor], dict, bool]:
    """The pretrained backbone of a configuration: read from ``<cache_root>/pretrain-<key>/backbone.safetensors``,
    else render the pretraining world, pretrain and write it there.

    Args:
        cache_root: the bench cache folder (``<cache>/bench``), shared by every configuration.
        world_config: the benchmark's WorldConfig; train_config: TrainConfig with ``pretrain != "none"``.
        progress: progress bars on stderr.
        workers: rendering processes.

    Returns:
        (state dict, meta: key, recipe, labels, val_acc, seconds..., loaded_from_cache).
    """
    from catsplit.bench.world import generate

    key = pretrain_key(world_config, train_config)
    path = os.path.join(str(cache_root), f"pretrain-{key}", "backbone.safetensors")
    if os.path.exists(path):
        state, meta = load_backbone(path)
        return state, meta, True
    import time

    t0 = time.monotonic()
    wc = pretrain_world_config(world_config, train_config)
    data = generate(wc, progress=progress, splits=("train", "val"), workers=workers, pretraining=True)
    t_render = time.monotonic() - t0
    state, report = pretrain_backbone(data, train_config, progress)
    meta = {"key": key, "recipe": train_config.pretrain, "world": wc.to_dict(), "labels": len(data.labels),
            "verbs": list(data.taxonomy.coarse), "train_clips": len(data["train"]), "val_acc": report.val_acc,
            "best_epoch": report.best_epoch, "render_seconds": round(t_render, 1),
            "train_seconds": round(report.seconds, 1)}
    save_backbone(state, path, meta)
    return state, meta, False
