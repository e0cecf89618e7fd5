"""What every zero-shot method is: a record the registry holds, and the result a method returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from catsplit.text import near_duplicates

if TYPE_CHECKING:
    from catsplit.methods.context import SplitContext

# (identical, close): pairs of subs the encoder cannot tell apart; see catsplit.text.near_duplicates
Ties = tuple[Sequence[tuple], Sequence[tuple]]
NO_TIES: Ties = ((), ())


@dataclass(frozen=True)
class MethodResult:
    """What a method returns: the new rows, what goes into the edit record, and the ties to warn about."""

    rows: np.ndarray  # [k, D] float32, one row per sub, in sub order
    details: dict[str, Any] = field(default_factory=dict)  # JSON-able; the edit record's "details"
    ties: Ties = NO_TIES  # split warns once about these, after the method succeeded


@dataclass(frozen=True)
class Method:
    """One zero-shot method, as registered in `catsplit.methods.registry`.

    Args:
        name: what `split(method=...)`, the CLI and the benchmark call it.
        rows: the implementation, SplitContext -> MethodResult.
        config: the dataclass of its settings (None: it has none); `ctx.config` is an instance.
        needs_encoder: it embeds text (split loads the default encoder when none is given).
        accepts_gate: its rows are w_c + delta, which the similarity gate (catsplit.gate) can scale.
        summary: one line for help texts.
    """

    name: str
    rows: Callable[[SplitContext], MethodResult]
    config: type | None
    needs_encoder: bool
    accepts_gate: bool
    summary: str


def find_ties(texts: Sequence[str], emb: np.ndarray, subs: Sequence[str], encoder: Any = None) -> tuple[Ties, dict[str, Any]]:
    """The subs whose embedded `texts` [k] (unit embeddings `emb` [k, E], made by `encoder`, whose
    `near_duplicate_threshold` applies; None: NEAR_DUPLICATE) nearly coincide, and the `near_duplicates`
    entry of the edit record's details (empty when there are none)."""
    identical, close = near_duplicates(texts, emb, subs, encoder)
    if not (identical or close):
        return (identical, close), {}
    return (identical, close), {"near_duplicates": [(a, b, 1.0) for a, b, _ in identical] + close}
