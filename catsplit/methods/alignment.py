"""The paper's modifier alignment: learn text -> weight space from the head itself.

A small MLP g: E -> D (one hidden layer, GELU) is fitted with MSE on pairs read off the head:
    (phi(entry modifier), m_entry)  for every dictionary entry,
    (phi(fine label),     w_label)  for every label in a group of >= 2,
    (phi(group text),     v_g)      for every group (single-member groups: the label and its row).
Then w_sj = w_c + g(phi(modifier of s_j)). No video is used: the edit stays zero-shot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from catsplit.checks import check_number_fields
from catsplit.errors import CatsplitError
from catsplit.methods.base import Method, MethodResult, find_ties
from catsplit.methods.context import SplitContext
from catsplit.text import encode
from catsplit.training import EmaEarlyStop, step_budget


@dataclass(frozen=True)
class AlignmentConfig:
    # MLP g: E -> D with one hidden layer, trained with MSE on the head's own pairs
    hidden: int = 384  # hidden width (GELU)
    lr: float = 1e-3  # AdamW, cosine schedule over max_epochs
    weight_decay: float = 1e-2  # AdamW's default
    batch_size: int = 10
    max_epochs: int = 100  # cap; early stopping usually ends sooner
    max_steps: int = 2500  # cap on optimiser steps, so large heads (thousands of pairs) train in seconds
    ema: float = 0.95  # early stopping watches an EMA of the epoch's training cosine similarity
    patience: int = 5  # epochs without an EMA gain of at least min_delta
    min_delta: float = 1e-3

    def __post_init__(self) -> None:
        check_alignment_fields(self)


def check_alignment_fields(config: object) -> None:
    """AlignmentConfig's rules (CatsplitError naming `<class>.<field>`); SplitConfig applies them too."""
    check_number_fields(
        config, counts=("hidden", "batch_size", "max_epochs", "max_steps", "patience"),
        non_negative=("weight_decay", "min_delta"), positive=("lr",), unit_interval=("ema",),
    )


def training_pairs(ctx: SplitContext) -> tuple[list[str], np.ndarray]:
    """Texts and their target vectors -> (texts [n], targets [n, D])."""
    d = ctx.dictionary
    singles = [members[0] for members in ctx.structure.groups.values() if len(members) == 1]
    texts = d.modifiers + d.labels + d.group_names + singles
    targets = np.concatenate([
        d.vectors,  # modifier text -> m_y
        ctx.rows_of(d.labels),  # fine label -> w_y
        d.prototypes,  # group text -> v_g
        ctx.rows_of(singles),  # single-member group: its label -> its row
    ])
    return texts, targets.astype(np.float32, copy=False)


class ModifierMLP(torch.nn.Module):
    """g: E -> D, one hidden layer."""

    def __init__(self, dim_in: int, hidden: int, dim_out: int, generator: torch.Generator):
        super().__init__()
        self.fc1 = torch.nn.Linear(dim_in, hidden)
        self.fc2 = torch.nn.Linear(hidden, dim_out)
        with torch.no_grad():  # nn.Linear's default init, drawn from our own generator (global RNG untouched)
            for layer in (self.fc1, self.fc2):
                bound = 1.0 / math.sqrt(layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.uniform_(-bound, bound, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, E] -> [N, D]
        return self.fc2(torch.nn.functional.gelu(self.fc1(x)))


def fit_mlp(x: np.ndarray, y: np.ndarray, config: AlignmentConfig, seed: int) -> tuple[ModifierMLP, dict]:
    """Fit g on (x [n, E], y [n, D]) with AdamW + cosine schedule, early stopping on an EMA of the
    training cosine similarity (best weights restored). Deterministic for a given seed.

    Returns:
        the fitted MLP (eval mode) and a summary of the run (epochs, best epoch, EMA, pairs).
    """
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    n = xt.shape[0]
    model = ModifierMLP(xt.shape[1], config.hidden, yt.shape[1], gen)
    # fused AdamW: the same update as the loop version, ~5x less overhead per step at this size
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True)
    _, total, epochs = step_budget(n, config.batch_size, config.max_epochs, config.max_steps)  # total: the cosine horizon
    stopper = EmaEarlyStop(config.ema, config.patience, config.min_delta, maximize=True)  # on the training cosine
    step = epoch = 0
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    for epoch in range(1, epochs + 1):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, config.batch_size):
            if step == total:
                break
            idx = order[start : start + config.batch_size]
            opt.param_groups[0]["lr"] = config.lr * 0.5 * (1.0 + math.cos(math.pi * step / total))
            pred = model(xt[idx])  # [B, D]
            loss = torch.nn.functional.mse_loss(pred, yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            stopper.update(float(torch.nn.functional.cosine_similarity(pred.detach(), yt[idx], dim=1).mean()))
        if stopper.end_epoch(epoch):
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        elif stopper.stop:
            break
    model.load_state_dict(best_state)
    model.eval()
    info = {"epochs": epoch, "steps": step, "best_epoch": stopper.best_epoch, "train_cos_ema": round(stopper.best, 6), "pairs": n}
    return model, info


def alignment_rows(ctx: SplitContext) -> MethodResult:
    """-> [k, D]: w_c + g(phi(modifier of s_j))."""
    if len(ctx.dictionary) == 0:
        raise CatsplitError(
            "method='alignment' found no modifier examples: no group of >= 2 existing labels shares a base "
            "concept, so there is nothing to learn modifiers from. Pass groups={base: [labels...]} "
            "(CLI: --groups FILE), or use method='text'"
        )
    texts, targets = training_pairs(ctx)
    emb = encode(ctx.encoder, texts + ctx.sub_modifiers)
    x, queries = emb[: len(texts)], emb[len(texts):]
    ties, details = find_ties(ctx.sub_modifiers, queries, ctx.subs)
    with torch.random.fork_rng(devices=[]):  # any op drawing from the global RNG leaves it untouched
        model, info = fit_mlp(x, targets, ctx.config, ctx.seed)
        with torch.no_grad():
            deltas = model(torch.from_numpy(queries)).numpy()  # [k, D]
    details["training"] = info
    return MethodResult(ctx.coarse_row[None, :] + deltas, details, ties)


METHOD = Method(
    name="alignment", rows=alignment_rows, config=AlignmentConfig, needs_encoder=True, accepts_gate=True,
    summary="learn text -> modifier vectors from the head itself (the paper's modifier alignment; default)",
)
