"""The paper's modifier alignment: learn text -> weight space from the head itself.

A small MLP g: E -> D (one hidden layer, GELU) is fitted with MSE on pairs read off the head:
    (phi(entry modifier), m_entry)  for every dictionary entry,
    (phi(fine label),     w_label)  for every label in a group of >= 2,
    (phi(group text),     v_g)      for every group (single-member groups: the label and its row).
Then w_sj = w_c + g(phi(modifier of s_j)). No video is used: the edit stays zero-shot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from catsplit.checks import check_flag, check_number_fields
from catsplit.errors import CatsplitError
from catsplit.methods.base import Method, MethodResult, find_ties
from catsplit.methods.context import SplitContext
from catsplit.text import encode


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
    # modifier texts rewritten before encoding ("from left to right" -> "to the right"; catsplit.modifiers);
    # chosen on the benchmark's val clips (docs/benchmark.md §8: alignment on direction modifiers 41.1 -> 57.0)
    normalise_modifiers: bool = True

    def __post_init__(self) -> None:
        check_alignment_fields(self)


def check_alignment_fields(config: object) -> None:
    """AlignmentConfig's rules (CatsplitError naming `<class>.<field>`); SplitConfig applies them too."""
    check_number_fields(
        config, counts=("hidden", "batch_size", "max_epochs", "max_steps", "patience"),
        non_negative=("weight_decay", "min_delta"), positive=("lr",), unit_interval=("ema",),
    )
    check_flag(config, "normalise_modifiers")


def training_pairs(ctx: SplitContext) -> tuple[list[str], np.ndarray]:
    """Texts and their target vectors -> (texts [n], targets [n, D])."""
    d = ctx.dictionary
    singles = [members[0] for members in ctx.structure.groups.values() if len(members) == 1]
    texts = ctx.modifier_inputs(d.modifiers) + d.labels + d.group_names + singles
    targets = np.concatenate([
        d.vectors,  # modifier text -> m_y
        ctx.rows_of(d.labels),  # fine label -> w_y
        d.prototypes,  # group text -> v_g
        ctx.rows_of(singles),  # single-member group: its label -> its row
    ])
    return texts, targets.astype(np.float32, copy=False)


def alignment_rows(ctx: SplitContext) -> MethodResult:
    """-> [k, D]: w_c + g(phi(modifier of s_j))."""
    if len(ctx.dictionary) == 0:
        raise CatsplitError(
            "method='alignment' found no modifier examples: no group of >= 2 existing labels shares a base "
            "concept, so there is nothing to learn modifiers from. Pass groups={base: [labels...]} "
            "(CLI: --groups FILE), or use method='text'"
        )
    import torch  # with the MLP: the registry (and the CLI's parser) imports this module without torch

    from catsplit.methods.mlp import fit_mlp

    texts, targets = training_pairs(ctx)
    emb = encode(ctx.encoder, texts + ctx.sub_inputs)
    x, queries = emb[: len(texts)], emb[len(texts):]
    ties, details = find_ties(ctx.sub_inputs, queries, ctx.subs, ctx.encoder)
    details.update(ctx.modifier_record())
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
