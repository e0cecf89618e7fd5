"""The paper's modifier retrieval: carry the closest existing modifier vector to each sub.

score[j, e] = alpha * cos(phi(modifier of sub j), phi(modifier of entry e))
            + beta  * cos(phi(sub j),             phi(label of entry e))
Greedy one-to-one assignment on the whole matrix; w_sj = w_c + m_entry.
"""

from __future__ import annotations

import numpy as np

from dataclasses import dataclass

from catsplit.checks import check_flag, check_number_fields
from catsplit.errors import CatsplitError
from catsplit.methods.base import Method, MethodResult
from catsplit.methods.context import SplitContext
from catsplit.text import encode


@dataclass(frozen=True)
class RetrievalConfig:
    # score = alpha * cos(modifier texts) + beta * cos(label texts)
    alpha: float = 0.5
    beta: float = 0.5
    # modifier texts rewritten before encoding ("from left to right" -> "to the right"; catsplit.modifiers);
    # chosen on the benchmark's val clips (docs/benchmark.md §8: alignment on direction modifiers 41.1 -> 57.0)
    normalise_modifiers: bool = True

    def __post_init__(self) -> None:
        check_retrieval_fields(self)


def check_retrieval_fields(config: object) -> None:
    """alpha and beta: finite numbers >= 0, not both 0 (CatsplitError naming `<class>.<field>`)."""
    check_number_fields(config, non_negative=("alpha", "beta"))
    check_flag(config, "normalise_modifiers")
    if config.alpha == 0 and config.beta == 0:
        raise CatsplitError(f"{type(config).__name__}.alpha and beta cannot both be 0: every retrieval score would be 0")


def greedy_match(scores: np.ndarray) -> list[int]:
    """One entry per row, each entry used once: repeatedly take the best remaining (row, entry).

    Args:
        scores: [k, N] with k <= N.
    Returns:
        for each row, the index of its entry. Ties go to the lowest (row, entry) in row-major order.
    """
    k, n = scores.shape
    if k > n:
        raise CatsplitError(f"cannot match {k} subs one-to-one with {n} dictionary entries")
    s = scores.astype(np.float64, copy=True)
    match = [-1] * k
    for _ in range(k):
        j, e = np.unravel_index(int(np.argmax(s)), s.shape)
        match[j] = int(e)
        s[j, :] = -np.inf
        s[:, e] = -np.inf
    return match


def retrieval_rows(ctx: SplitContext) -> MethodResult:
    """-> [k, D]: w_c + the matched modifier vectors."""
    d = ctx.dictionary
    k = len(ctx.subs)
    if len(d) == 0:
        raise CatsplitError(
            "method='retrieval' found no modifier dictionary: no group of >= 2 existing labels shares a base "
            "concept. Pass groups={base: [labels...]} (CLI: --groups FILE), or use method='alignment' or 'text'"
        )
    if len(d) < k:
        raise CatsplitError(
            f"method='retrieval' needs one dictionary entry per sub: {k} subs but only {len(d)} entries "
            f"({d.labels}). Use method='alignment', fewer subs, or pass groups= with more examples"
        )
    emb = encode(ctx.encoder, ctx.sub_inputs + ctx.subs + ctx.modifier_inputs(d.modifiers) + d.labels)
    tm, tl, em, el = np.split(emb, np.cumsum([k, k, len(d)]))
    cfg = ctx.config
    scores = cfg.alpha * (tm @ em.T) + cfg.beta * (tl @ el.T)  # [k, N]
    match = greedy_match(scores)
    matches = {
        sub: {"label": d.labels[e], "modifier": d.modifiers[e], "score": round(float(scores[j, e]), 6)}
        for j, (sub, e) in enumerate(zip(ctx.subs, match))
    }
    return MethodResult(ctx.coarse_row[None, :] + d.vectors_of(match), {"matches": matches, **ctx.modifier_record()})


METHOD = Method(
    name="retrieval", rows=retrieval_rows, config=RetrievalConfig, needs_encoder=True, accepts_gate=True,
    summary="carry the closest existing modifier vector to each sub (the paper's modifier retrieval)",
)
