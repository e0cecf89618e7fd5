"""The scores of one table of a head: what `Head` and the torch modules of heads (catsplit/modules.py) compute.

A linear table scores `x Wᵀ + b`; a text table (Text4Vis) `scale · cos(x, w) + b`. Kept apart from
`catsplit.head` so that `catsplit.modules`, which `Head.to_module` imports, computes with the same code.

`stable=True` computes `x Wᵀ` in blocks of `BLOCK` rows, the last one padded with zero rows, so every
matmul has the same shape whatever the table's size. BLAS picks its kernel (and so its rounding) by
shape: a plain `x Wᵀ` can give a row a different last bit once rows are added to the table. Blocked,
a row's score depends only on its own values and its index, which is what lets a split with
order="keep" leave every other class's logits bit-identical.
"""

from __future__ import annotations

import torch


BLOCK = 256  # rows of W per matmul in stable scores
CAST_BLOCK = 1 << 22  # scores in a wider type cast a table's weights at most this many elements at a time


def table_scores(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, *, kind: str, scale: float | None,
    stable: bool = False,
) -> torch.Tensor:
    """One table's scores, [N, D] x [C, D] -> [N, C]: `x Wᵀ + b`, or for a text head (Text4Vis) the cosine
    between each feature and each row times `scale`, plus `b`. Differentiable (fine-tuning trains on it).

    Args:
        stable: compute `x Wᵀ` with `stable_matmul` (a row's score independent of the table's size).
    """
    if kind == "text":
        x = torch.nn.functional.normalize(x, dim=-1)
        weight = torch.nn.functional.normalize(weight, dim=-1)
    z = stable_matmul(x, weight) if stable else x @ weight.T  # [N, C]
    if kind == "text" and scale is not None:
        z = z * scale
    return z + bias if bias is not None else z


def stable_matmul(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """`x Wᵀ` [N, C] for x [N, D], W [C, D], computed `BLOCK` rows of W at a time, the last block padded with
    zero rows: every matmul is [N, D] x [D, BLOCK], so the result for row i depends only on x, W[i] and the
    block and place i falls in (i // BLOCK, i % BLOCK), never on how many rows follow or what they hold."""
    rows, dim = weight.shape
    parts = []
    for start in range(0, max(rows, 1), BLOCK):
        block = weight[start : start + BLOCK]
        n = block.shape[0]
        if n < BLOCK:
            block = torch.cat([block, block.new_zeros(BLOCK - n, dim)])
        parts.append((x @ block.T)[:, :n])  # [N, n]
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


def scores_in(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype, *, kind: str,
    scale: float | None, stable: bool = False,
) -> torch.Tensor:
    """`table_scores` with the features, weights and bias cast to `dtype` first -> [N, C] in `dtype`.

    A large table is cast a block of rows at a time in any type but float32: a float64 copy of a
    100,000 x 1,024 base would take 800 MB at once. What `Head.table_logits` and the gated torch module
    (catsplit/modules.py) both compute, so the two agree bit for bit.
    """
    x = x.to(dtype)
    if dtype == torch.float32 or weight.numel() <= CAST_BLOCK:
        b = bias.to(dtype) if bias is not None else None
        return table_scores(x, weight.to(dtype), b, kind=kind, scale=scale, stable=stable)
    rows = max(1, CAST_BLOCK // weight.shape[1])
    parts = []
    for i in range(0, weight.shape[0], rows):
        b = bias[i : i + rows].to(dtype) if bias is not None else None
        parts.append(table_scores(x, weight[i : i + rows].to(dtype), b, kind=kind, scale=scale))
    return torch.cat(parts, dim=1)
