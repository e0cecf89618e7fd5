"""The classifier head: rows, labels, and the hierarchy that hierarchical splits add.

A head is a list of *tables*. Table 0 is the base linear layer `[C, D]`; every hierarchical
split adds one table whose rows are the subs of a gate label (the coarse class, kept as a
row of its own table). Flat heads have exactly one table and are a plain linear layer.

The output label space (`Head.labels`) is every label of every table that is not a gate,
table by table, in row order, unless `output_order` gives another order (splits with
order="keep" do, so that no other label changes index). Probabilities:
    p(y)   = softmax(base logits)_y                    for base labels
    p(s_j) = p(gate) * softmax(sub-table logits)_j     for the rows of a sub-table
`Head.logits` returns log-probabilities for hierarchical heads, so `softmax(logits)` is `p`. They are
computed from float64 table logits, which cannot overflow for finite float32 features and weights, so
no finite input gives NaN; the top-1 rule (`predict_index`) reads the float32 base logits, the bits the
unedited head's logits have.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch

from catsplit.checks import (
    FrozenDict,
    Groups,
    as_tensor,
    check_finite,
    check_groups,
    check_history,
    check_labels,
    check_metadata,
    check_templates,
    check_undo,
    label_key,
    label_list,
)
from catsplit.errors import CatsplitError
from catsplit.io.headfile import save_head
from catsplit.scoring import scores_in

if TYPE_CHECKING:
    from os import PathLike




@dataclass(frozen=True)
class Table:
    """One linear layer of a head: the base, or the sub-head of one hierarchical split."""

    weight: torch.Tensor  # [C, D], stored in the head's dtype
    bias: torch.Tensor | None  # [C] or None
    labels: tuple[str, ...]  # C labels, row order
    parent: str | None = None  # gate label; None for the base table

    def row(self, label: str) -> int:
        return self.labels.index(label)


def make_table(
    weight: Any, bias: Any, labels: Sequence[str], parent: str | None = None, *, what: str = "head"
) -> Table:
    """Validate and build one table."""
    w = as_tensor(weight, f"{what} weight")
    if w.ndim != 2 or w.shape[0] == 0 or w.shape[1] == 0:
        raise CatsplitError(f"{what} weight must be 2-D [classes, dim] with both > 0, got shape {tuple(w.shape)}")
    labels = check_labels(labels, f"{what} labels")
    if len(labels) != w.shape[0]:
        raise CatsplitError(
            f"{what} has {w.shape[0]} weight rows but {len(labels)} labels; give exactly one label per row"
        )
    check_finite(w, f"{what} weight", labels)
    b = None
    if bias is not None:
        b = as_tensor(bias, f"{what} bias")
        if b.ndim == 2 and 1 in b.shape:
            b = b.reshape(-1)
        if b.ndim != 1 or b.shape[0] != w.shape[0]:
            raise CatsplitError(f"{what} bias must have shape [{w.shape[0]}], got {tuple(b.shape)}")
        check_finite(b.reshape(-1, 1), f"{what} bias", labels)
        if b.dtype != w.dtype:
            b = b.to(w.dtype)
    return Table(weight=w, bias=b, labels=labels, parent=parent)


def _as_input(x: Any, dim: int) -> tuple[torch.Tensor, bool]:
    """Features -> float32 tensor [N, D]; remembers whether the caller gave numpy."""
    was_numpy = not isinstance(x, torch.Tensor)
    t = as_tensor(x, "features").to(torch.float32)
    if t.ndim == 1:
        t = t.unsqueeze(0)
    if t.ndim != 2 or t.shape[1] != dim:
        raise CatsplitError(f"features must have shape [N, {dim}] to match the head, got {tuple(t.shape)}")
    return t, was_numpy


@dataclass(frozen=True, eq=False)
class Head:
    """A classifier head with labels, optional groups, and its edit history.

    Build one from arrays: `Head(weight=W, bias=b, labels=labels)` with W `[C, D]` and b `[C]`
    (numpy or torch; float16/bfloat16 stay in their dtype). Heads are immutable: edits return
    new heads, and what a head holds cannot be changed in place: `labels` is a tuple, `groups`
    maps names to tuples, `history` is a tuple of read-only records, `metadata` and `undo` are
    read-only mappings (copy them with `list(...)` / `dict(...)` to change them). The tensors are
    shared with the caller: clone before writing into one in place.
    """

    weight: Any  # [C, D] of the base table (for flat heads, the whole head)
    bias: Any = None  # [C] or None
    labels: Any = None  # output label space (see module docstring); given as a list or a mapping label -> index, kept as a tuple
    groups: Mapping[str, Sequence[str]] | None = None  # pseudo-coarse group -> member labels (kept as Groups)
    history: tuple[Mapping[str, Any], ...] = ()  # one JSON-able record per edit, oldest first (kept as Records)
    tables: tuple[Table, ...] = field(default=(), repr=False)
    undo: Mapping[str, torch.Tensor] = field(default_factory=FrozenDict, repr=False)  # tensors edits need to be undone
    metadata: Mapping[str, str] = field(default_factory=FrozenDict, repr=False)  # foreign file metadata, kept on save
    kind: str = "linear"  # "linear" | "text" (rows are text embeddings, cosine logits)
    scale: float | None = None  # logit scale of text heads
    templates: tuple[str, ...] | None = None  # prompt templates of text heads ("a video of {}.")
    # The output labels in order when that is not table by table (after order="keep" splits); None otherwise.
    output_order: tuple[str, ...] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        from_tables = bool(self.tables)
        if not from_tables:
            if self.labels is None:
                raise CatsplitError("Head needs labels=[...], one per weight row")
            tables: tuple[Table, ...] = (make_table(self.weight, self.bias, label_list(self.labels)),)
        else:
            tables = tuple(self.tables)
            check_tables(tables)
        base = tables[0]
        gates = {t.parent for t in tables[1:]}
        set_ = object.__setattr__  # the dataclass is frozen: fields are set once, here
        set_(self, "tables", tables)
        set_(self, "weight", base.weight)
        set_(self, "bias", base.bias)
        by_tables = tuple(lab for t in tables for lab in t.labels if lab not in gates)
        order = None
        if self.output_order is not None:
            order = check_output_order(self.output_order, by_tables, single_table=len(tables) == 1)
        set_(self, "output_order", order)
        set_(self, "labels", order or by_tables)
        # The same rules load_head applies, so that every head saves and loads back (spec/head-format.md §4).
        # A history of Records and the Groups of a head built from tables were checked when they were made
        # (see catsplit.checks) and are kept as they are: an edit costs its own record, not the whole history.
        set_(self, "metadata", check_metadata(self.metadata))
        set_(self, "undo", check_undo(self.undo, base.weight.shape[1], base.weight.dtype))
        set_(self, "history", check_history(self.history))
        if self.groups is not None and not (from_tables and type(self.groups) is Groups):
            set_(self, "groups", check_groups(self.groups, all_labels(tables)))
        if self.kind not in ("linear", "text"):
            raise CatsplitError(f"head kind must be 'linear' or 'text', got {self.kind!r}")
        if self.templates is not None:
            set_(self, "templates", check_templates(self.templates))
        if self.scale is not None:
            if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float, np.number)) or not np.isfinite(self.scale):
                raise CatsplitError(f"head scale must be a finite number, got {self.scale!r}")
            set_(self, "scale", float(self.scale))

    # --- shape -------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return int(self.tables[0].weight.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def dtype(self) -> torch.dtype:
        return self.tables[0].weight.dtype

    @property
    def is_hierarchical(self) -> bool:
        return len(self.tables) > 1

    @property
    def gates(self) -> list[str]:
        """Labels kept as gates of hierarchical splits (not in the output label space)."""
        return [t.parent for t in self.tables[1:]]  # type: ignore[misc]

    def locate(self, label: str) -> tuple[int, int]:
        """(table index, row index) of a label's row."""
        for ti, t in enumerate(self.tables):
            if label in t.labels:
                return ti, t.row(label)
        raise CatsplitError(f"label {label!r} is not in this head")

    def row(self, label: str) -> torch.Tensor:
        """The weight row of a label (gates included), float32 [D]."""
        ti, r = self.locate(label)
        return self.tables[ti].weight[r].to(torch.float32)

    # --- inference ---------------------------------------------------------------------
    def table_logits(
        self, x: torch.Tensor, table: int = 0, dtype: torch.dtype = torch.float32, *, stable: bool = False
    ) -> torch.Tensor:
        """One table's scores for features `x` [N, D] -> [N, C_table] (`table_scores` in `dtype`).

        Args:
            x: float32 features (cast to `dtype`; float32 stays the same tensor).
            table: index into `tables`.
            dtype: what the weights, bias and features are cast to and the scores computed in.
            stable: blocked matmul (catsplit/scoring.py): each row's score independent of the table's size.
        """
        t = self.tables[table]
        return scores_in(x, t.weight, t.bias, dtype, kind=self.kind, scale=self.scale, stable=stable)

    def scores(self, x: torch.Tensor, *, table_dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """`logits` for a float32 tensor [N, D], without checks or conversion -> float32 [N, len(labels)].

        Flat heads: the float32 table logits, computed blockwise (`stable`), so every row's logit is bit for
        bit the same in a head with more rows (an order="keep" split). Hierarchical heads: log-probabilities,
        computed in float64 from table logits in `table_dtype`. In float64 (the default) `|x| |w| D` stays far
        below the type's range, so no finite float32 input or weight gives NaN (a log-probability below
        float32's range is -inf). `finetune` passes torch.float32, the precision it trains in. Follows autograd.
        """
        if not self.is_hierarchical:
            return self.table_logits(x, stable=True)
        # p(sub) = p(gate) * softmax(sub logits), as log-probabilities in float64
        logp: dict[str, torch.Tensor] = {}
        for ti, t in enumerate(self.tables):
            lp = torch.log_softmax(self.table_logits(x, ti, table_dtype).to(torch.float64), dim=-1)  # [N, C_t]
            if t.parent is not None:
                lp = lp + logp[t.parent].unsqueeze(1)
            for j, lab in enumerate(t.labels):
                logp[lab] = lp[:, j]
        return torch.stack([logp[lab] for lab in self.labels], dim=1).to(torch.float32)  # [N, C_out]

    def logits(self, x: Any) -> Any:
        """Scores over `labels`: `x @ W.T + b` for flat heads, log-probabilities for hierarchical ones.

        Args:
            x: features [N, D] (or [D]), numpy or torch.
        Returns:
            [N, len(labels)] float32, numpy if `x` was numpy, else torch.
        """
        t, was_numpy = _as_input(x, self.dim)
        with torch.no_grad():
            z = self.scores(t)
        return z.numpy() if was_numpy else z

    def probs(self, x: Any) -> Any:
        """Probabilities over `labels` (softmax of `logits`), same container as `x`."""
        t, was_numpy = _as_input(x, self.dim)
        with torch.no_grad():
            p = torch.softmax(self.scores(t), dim=-1)
        return p.numpy() if was_numpy else p

    def predict_index(self, x: Any) -> np.ndarray:
        """Top-1 index into `labels` for each row of `x` -> int64 [N].

        Hierarchical heads decide exactly: when the base table's top-1 is not a gate it is the
        answer (p(sub) <= p(gate) <= p(top-1)), so such inputs keep their prediction bit-exactly,
        whatever the rounding of the log-probabilities.
        """
        t, _ = _as_input(x, self.dim)
        with torch.no_grad():
            pred = torch.argmax(self.scores(t), dim=1)
            if self.is_hierarchical:
                base = self.tables[0]
                base_top = torch.argmax(self.table_logits(t, stable=True), dim=1)  # as a flat head's top-1
                out_index = {lab: i for i, lab in enumerate(self.labels)}
                # base row -> output index, or -1 for gates
                remap = torch.tensor([out_index.get(lab, -1) for lab in base.labels], dtype=torch.long)
                kept = remap[base_top]
                pred = torch.where(kept >= 0, kept, pred)
        return pred.numpy()

    def predict(self, x: Any) -> np.ndarray:
        """Top-1 label for each row of `x` -> array of str [N]."""
        return np.asarray(self.labels, dtype=object)[self.predict_index(x)].astype(str)

    def to_module(self, *, top1: bool = False) -> torch.nn.Module:
        """The head as a torch module, e.g. to put into a model (`catsplit.apply`) or export with torch.onnx.

        Args:
            top1: hierarchical heads only: the module returns (log-probabilities, `predict_index`).
        Returns:
            a `torch.nn.Linear` for a flat linear head (weight and bias copied, dtype kept); for a flat text
            head a `CosineLinear`; for a hierarchical head a `GatedHead` returning `logits` (log-probabilities).
        """
        from catsplit.modules import head_module

        return head_module(self, top1=top1)

    # --- persistence -------------------------------------------------------------------
    def save(self, path: str | PathLike, *, overwrite: bool = False) -> None:
        """Write the head as safetensors, atomically. Refuses to replace a file unless `overwrite=True`."""
        save_head(self, path, overwrite=overwrite)

    def equals(self, other: Head) -> bool:
        """Bit-for-bit equality: tensors, labels, groups, history, metadata."""
        if not isinstance(other, Head) or len(self.tables) != len(other.tables):
            return False
        for a, b in zip(self.tables, other.tables):
            if a.labels != b.labels or a.parent != b.parent or not _same_bits(a.weight, b.weight):
                return False
            if (a.bias is None) != (b.bias is None) or (a.bias is not None and not _same_bits(a.bias, b.bias)):
                return False
        if set(self.undo) != set(other.undo) or not all(_same_bits(self.undo[k], other.undo[k]) for k in self.undo):
            return False
        return (
            self.output_order == other.output_order
            and _json(self.groups) == _json(other.groups)
            and _json(list(self.history)) == _json(list(other.history))
            and self.metadata == other.metadata
            and (self.kind, self.scale, self.templates) == (other.kind, other.scale, other.templates)
        )

    def latest_record(self) -> Mapping[str, Any] | None:
        """The newest edit record (`history[-1]`, read-only), or None for an unedited head."""
        return self.history[-1] if self.history else None

    def evolve(self, **changes: Any) -> Head:
        """A copy with some parts replaced (tables, groups, history, undo, ...).

        What is kept is passed on as it is held; groups kept across new tables are checked again
        (they must name labels of the new tables).
        """
        if "tables" in changes and "groups" not in changes and self.groups is not None:
            changes["groups"] = dict(self.groups)
        for f in fields(self):
            changes.setdefault(f.name, getattr(self, f.name))
        return Head(**changes)

    def __repr__(self) -> str:
        mode = f", {len(self.tables) - 1} hierarchical split(s)" if self.is_hierarchical else ""
        return (
            f"Head({self.num_classes} labels, dim {self.dim}, {str(self.dtype).removeprefix('torch.')}"
            f"{', bias' if self.bias is not None else ''}{mode}, {len(self.history)} edit(s))"
        )


def check_output_order(order: Any, by_tables: tuple[str, ...], *, single_table: bool = False) -> tuple[str, ...] | None:
    """An explicit output order: the labels `by_tables` (table by table, gates left out) in another order.

    Returns it as a tuple, or None when it is the tables' own order (so that equal heads hold equal values).
    """
    if isinstance(order, str) or not isinstance(order, Sequence) or not all(isinstance(x, str) for x in order):
        raise CatsplitError(f"output_order must be a list of the head's output labels, got {type(order).__name__}")
    order = tuple(order)
    if order == by_tables:
        return None
    if len(order) != len(by_tables) or set(order) != set(by_tables):
        missing = sorted(set(by_tables) - set(order))[:5]
        extra = sorted(set(order) - set(by_tables))[:5]
        raise CatsplitError(
            f"output_order must list every output label once (missing {missing}, not output labels {extra}, "
            f"{len(order)} entries for {len(by_tables)} labels)"
        )
    if single_table:
        raise CatsplitError(
            "output_order differs from the row order of a head with one table; a flat head is a plain linear layer, "
            "whose outputs are its rows: reorder the rows instead"
        )
    return order


def check_tables(tables: Sequence[Table]) -> None:
    """Tables agree on dim and dtype, labels are unique across them, every gate is an earlier label."""
    base = tables[0]
    if base.parent is not None:
        raise CatsplitError(f"the base table cannot have a gate (got {base.parent!r})")
    seen: dict[str, str] = {}
    for i, t in enumerate(tables):
        what = "base table" if i == 0 else f"sub-head of {t.parent!r}"
        if t.weight.shape[1] != base.weight.shape[1] or t.weight.dtype != base.weight.dtype:
            raise CatsplitError(
                f"{what} has dim {t.weight.shape[1]} / {t.weight.dtype}, the base {base.weight.shape[1]} / "
                f"{base.weight.dtype}; all tables must match"
            )
        if (t.bias is None) != (base.bias is None):
            raise CatsplitError(f"{what} {'lacks' if t.bias is None else 'has'} a bias and the base does not agree")
        if i > 0 and t.parent not in seen.values():
            raise CatsplitError(f"{what}: its gate {t.parent!r} is not a label of an earlier table")
        if len(tables) == 1:
            break  # labels within one table were checked when it was built (make_table, check_subs)
        for lab in t.labels:
            if label_key(lab) in seen:
                raise CatsplitError(f"label {lab!r} appears twice ({what} and earlier, as {seen[label_key(lab)]!r})")
            seen[label_key(lab)] = lab
    parents = [t.parent for t in tables[1:]]
    if len(set(parents)) != len(parents):
        raise CatsplitError(f"a label gates more than one sub-head: {parents}")


def label_names(head: Head, labels: Sequence[Any], *, known_only: bool = True) -> list[str]:
    """Clip labels given as strings or indices into `head.labels` -> strings.

    Args:
        known_only: strings must be labels of `head` (else any string passes, for the caller to check).
    """
    if isinstance(labels, (str, bytes)):
        raise CatsplitError(f"labels must be a list with one label (or index) per clip, got the string {labels!r:.80}")
    outputs = head.labels
    known = set(outputs) if known_only else None
    out = []
    for lab in labels:
        if isinstance(lab, (int, np.integer)) and not isinstance(lab, bool):
            if not 0 <= int(lab) < head.num_classes:
                raise CatsplitError(f"label index {lab} is outside the head's {head.num_classes} labels")
            out.append(outputs[int(lab)])
        elif isinstance(lab, str) and (known is None or lab in known):
            out.append(lab)
        elif isinstance(lab, str):
            raise CatsplitError(f"label {lab!r} is not in the head's label space; use labels from head.labels")
        else:
            raise CatsplitError(f"labels must be label strings or indices, got {lab!r}")
    return out


def all_labels(tables: Sequence[Table]) -> set[str]:
    return {lab for t in tables for lab in t.labels}


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return bool(torch.equal(a.reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8)))  # reshape: 0-d too


def _json(x: Any) -> str:
    return json.dumps(x, sort_keys=True)

