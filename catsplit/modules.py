"""A head as a torch module (`Head.to_module`), to run inside a torch model or export with torch.onnx.

* flat linear head: a `torch.nn.Linear` with the head's weight and bias, in the head's dtype;
* flat text head (Text4Vis): `CosineLinear`, `scale · cos(x, w) + b`;
* hierarchical head: `GatedHead`, the log-probabilities of `Head.logits` (bit for bit, in eager torch):
  each table's scores in float32, log-softmax in float64, a sub-table's plus its gate's, the output
  columns in `Head.labels` order. With `top1=True` it also returns the exact top-1 of
  `Head.predict_index`.

This module reads a head's parts (tables, kind, scale, labels) and never imports `catsplit.head`,
which imports it for `Head.to_module`.
"""

from __future__ import annotations

from typing import Any

import torch

from catsplit.errors import CatsplitError
from catsplit.scoring import scores_in, table_scores


def head_module(head: Any, *, top1: bool = False) -> torch.nn.Module:
    """The torch module computing `head.logits` (see the module docstring).

    Args:
        head: a catsplit.Head.
        top1: hierarchical heads only: the module returns (log-probabilities, exact top-1 index).
    Returns:
        `torch.nn.Linear` (flat linear head), `CosineLinear` (flat text head) or `GatedHead`.
    """
    if not isinstance(top1, bool):
        raise CatsplitError(f"top1 must be True or False, got {top1!r}")
    if not head.is_hierarchical:
        if top1:
            raise CatsplitError(
                "top1=True is for hierarchical heads; a flat head's top-1 is the argmax of its logits: "
                "module(x).argmax(dim=1)"
            )
        table = head.tables[0]
        if head.kind == "text":
            return CosineLinear(table.weight, table.bias, head.scale)
        return linear(table.weight, table.bias)
    return GatedHead(head, top1=top1)


def linear(weight: torch.Tensor, bias: torch.Tensor | None) -> torch.nn.Linear:
    """A `torch.nn.Linear` holding copies of `weight` [C, D] and `bias` [C], in their dtype."""
    out_features, in_features = weight.shape
    layer = torch.nn.Linear(in_features, out_features, bias=bias is not None, dtype=weight.dtype, device="meta")
    layer.weight = torch.nn.Parameter(weight.detach().clone())
    if bias is not None:
        layer.bias = torch.nn.Parameter(bias.detach().clone())
    return layer


class CosineLinear(torch.nn.Module):
    """A Text4Vis table: `scale · cos(x, w) + b` over its rows, computed in float32 as `Head.logits` does."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, scale: float | None) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(weight.detach().clone())  # [C, D]
        self.bias = torch.nn.Parameter(bias.detach().clone()) if bias is not None else None  # [C]
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features [N, D] -> scores [N, C], float32."""
        bias = self.bias.float() if self.bias is not None else None
        return table_scores(x.float(), self.weight.float(), bias, kind="text", scale=self.scale, stable=True)


class GatedHead(torch.nn.Module):
    """A hierarchical head: features [N, D] -> log-probabilities [N, len(labels)] float32 (`Head.logits`).

    `p(y) = softmax(base scores)_y`, `p(s) = p(gate) · softmax(sub-table scores)_s` along every chain of
    gates. The tables are `torch.nn.Linear` layers in the head's dtype (`tables.<i>`); everything is
    computed as `Head.scores` computes it. `labels` names the output columns.
    """

    def __init__(self, head: Any, *, top1: bool = False) -> None:
        super().__init__()
        self.kind, self.scale, self.top1 = head.kind, head.scale, top1
        self.labels = tuple(head.labels)
        self.tables = torch.nn.ModuleList(linear(t.weight, t.bias) for t in head.tables)
        where: dict[str, tuple[int, int]] = {}  # label -> (table, column)
        start, offsets = 0, []
        for ti, t in enumerate(head.tables):
            offsets.append(start)
            for j, lab in enumerate(t.labels):
                where[lab] = (ti, j)
            start += len(t.labels)
        # for each table, the (table, column) of its gate; None for the base table
        self.parents = [None if t.parent is None else where[t.parent] for t in head.tables]
        columns = [offsets[where[lab][0]] + where[lab][1] for lab in self.labels]
        self.register_buffer("columns", torch.tensor(columns, dtype=torch.long), persistent=False)  # [C_out]
        out_index = {lab: i for i, lab in enumerate(self.labels)}
        base = [out_index.get(lab, -1) for lab in head.tables[0].labels]  # base row -> output column, -1 for gates
        self.register_buffer("base_output", torch.tensor(base, dtype=torch.long), persistent=False)  # [C_0]

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Features [N, D] -> log-probabilities [N, C] float32; with top1, also the top-1 index int64 [N]."""
        x = x.to(torch.float32)
        logp: list[torch.Tensor] = []
        for ti in range(len(self.tables)):
            lp = torch.log_softmax(self.table_scores(x, ti, torch.float64), dim=-1)  # [N, C_t], float64 as Head.scores
            parent = self.parents[ti]
            if parent is not None:  # log p(sub) = log p(gate) + log softmax(sub scores)
                pt, pc = parent
                lp = lp + logp[pt][:, pc : pc + 1]
            logp.append(lp)
        out = torch.cat(logp, dim=1).index_select(1, self.columns).to(torch.float32)  # [N, C_out]
        if not self.top1:
            return out
        return out, self.top1_index(x, out)

    def table_scores(
        self, x: torch.Tensor, table: int, dtype: torch.dtype = torch.float32, *, stable: bool = False
    ) -> torch.Tensor:
        """One table's scores [N, C_t] in `dtype`, as `Head.table_logits`."""
        layer = self.tables[table]
        return scores_in(x, layer.weight, layer.bias, dtype, kind=self.kind, scale=self.scale, stable=stable)

    def top1_index(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """`Head.predict_index`'s rule: the base table's top-1 (its stable scores) when it is not a gate, else the
        argmax of the log-probabilities `out`."""
        kept = self.base_output[torch.argmax(self.table_scores(x, 0, stable=True), dim=1)]  # [N]
        return torch.where(kept >= 0, kept, torch.argmax(out, dim=1))

    def extra_repr(self) -> str:
        return f"{len(self.labels)} labels, {len(self.tables)} tables, kind={self.kind!r}, top1={self.top1}"
