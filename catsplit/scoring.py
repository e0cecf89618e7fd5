"""The scores of one table of a head: what `Head` and the torch modules of heads (catsplit/modules.py) compute.

A linear table scores `x Wᵀ + b`; a text table (Text4Vis) `scale · cos(x, w) + b`. Kept apart from
`catsplit.head` so that `catsplit.modules`, which `Head.to_module` imports, computes with the same code.
"""

from __future__ import annotations

import torch


def table_scores(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, *, kind: str, scale: float | None
) -> torch.Tensor:
    """One table's scores, [N, D] x [C, D] -> [N, C]: `x Wᵀ + b`, or for a text head (Text4Vis) the cosine
    between each feature and each row times `scale`, plus `b`. Differentiable (fine-tuning trains on it)."""
    if kind == "text":
        x = torch.nn.functional.normalize(x, dim=-1)
        weight = torch.nn.functional.normalize(weight, dim=-1)
    z = x @ weight.T  # [N, C]
    if kind == "text" and scale is not None:
        z = z * scale
    return z + bias if bias is not None else z
