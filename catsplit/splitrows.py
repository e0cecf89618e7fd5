"""The rows of a head's latest split: where they are, the coarse row they came from, and writing new ones back.

`refine`, `calibrate` and `relabel` change (or read) only these rows and biases; everything else in the head,
the undo tensors included, is kept bit for bit, so `unsplit` still restores the head before the split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch

from catsplit.checks import check_finite
from catsplit.errors import CatsplitError
from catsplit.head import Head, Table


@dataclass(frozen=True)
class SplitRows:
    """The latest split of a head, as float32 copies of what refine and calibrate work on."""

    record: Mapping[str, Any]  # the split's edit record (read-only)
    table: int  # index of the table holding the sub rows (flat: the coarse label's; hierarchical: the sub-head)
    rows: torch.Tensor  # int64 [k]: the sub rows in that table, in sub order (any split order: append or keep)
    weight: torch.Tensor  # float32 [k, D]: the sub rows now
    bias: torch.Tensor | None  # float32 [k], None for a table without biases
    coarse_weight: torch.Tensor  # float32 [D]: the coarse row before the split (flat: its undo tensor; hierarchical: the gate)
    coarse_bias: float | None  # its bias

    @property
    def subs(self) -> list[str]:
        return list(self.record["subs"])

    @property
    def flat(self) -> bool:
        return self.record["mode"] == "flat"


def latest_split(head: Head, what: str) -> SplitRows:
    """The latest split's rows, or a CatsplitError saying why there is none (`what`: the caller's name)."""
    if not isinstance(head, Head):
        raise CatsplitError(f"{what} needs a catsplit.Head, got {type(head).__name__}; use catsplit.load_head(...)")
    rec = head.latest_record()
    if rec is None or rec.get("op") != "split":
        latest = "no edit" if rec is None else f"a {rec.get('op')!r} edit"
        raise CatsplitError(f"{what} works on the rows of the latest split, and this head's latest edit is {latest}; split first")
    subs = list(rec["subs"])
    ti = rec["table"] if rec["mode"] == "flat" else rec["sub_table"]
    if not (ti < len(head.tables) and set(subs) <= set(head.tables[ti].labels)):
        raise CatsplitError(
            f"the latest edit record (split of {rec['coarse']!r}) does not match the head: its subs are not rows "
            f"of table {ti}. The history is damaged; use a head written by catsplit.split"
        )
    if rec["mode"] == "flat" and head.is_hierarchical:
        raise CatsplitError(f"{what} of a flat split inside a hierarchical head is not supported; run it before adding hierarchical splits")
    t = head.tables[ti]
    rows = torch.tensor([t.row(s) for s in subs], dtype=torch.long)
    if rec["mode"] == "flat":  # the removed coarse row is kept for unsplit: the undo tensors
        cw = head.undo[f"{rec['undo']}.weight"][0]
        cb = head.undo.get(f"{rec['undo']}.bias")
    else:  # the gate row stays in the head
        gi, gr = head.locate(rec["coarse"])
        cw = head.tables[gi].weight[gr]
        cb = head.tables[gi].bias[gr : gr + 1] if head.tables[gi].bias is not None else None
    return SplitRows(
        record=rec, table=ti, rows=rows, weight=t.weight[rows].to(torch.float32),
        bias=t.bias[rows].to(torch.float32) if t.bias is not None else None,
        coarse_weight=cw.to(torch.float32), coarse_bias=float(cb.reshape(-1)[0]) if cb is not None else None,
    )


def with_rows(head: Head, split: SplitRows, weight: torch.Tensor, bias: torch.Tensor | None, entry: str, info: Mapping[str, Any]) -> Head:
    """A new head whose latest split's rows are `weight` [k, D] (and biases `bias` [k]) in the head's dtype,
    its record carrying `info` under `entry`. Every other row, bias, undo tensor and record is kept as it was.
    """
    t = head.tables[split.table]
    new_w = weight.to(head.dtype)
    check_finite(new_w, f"the {entry} rows that (in {str(head.dtype).removeprefix('torch.')})", split.subs)
    w = t.weight.clone()  # every other row's bits as they were
    w[split.rows] = new_w
    b = t.bias
    if b is not None and bias is not None:
        new_b = bias.to(head.dtype)
        check_finite(new_b.reshape(-1, 1), f"the {entry} biases that", split.subs)
        b = b.clone()
        b[split.rows] = new_b
    tables = list(head.tables)
    tables[split.table] = Table(weight=w, bias=b, labels=t.labels, parent=t.parent)
    rec = dict(split.record)  # the new record: the old one with the entry (Head freezes it)
    rec[entry] = dict(info)
    return head.evolve(tables=tuple(tables), history=head.history[:-1] + (rec,))
