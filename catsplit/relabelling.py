"""Fine labels for a coarse class's clips: each clip's best sub of the latest split, and its probability.

The clips are known to be of the coarse class, so the label is the argmax over the subs only, and the
probability is the sub's probability within the split: the full label space's softmax renormalised over the
subs. That is the softmax of the sub rows' scores, for a flat split (the other labels' terms cancel) and
for a hierarchical one (p(s_j) = p(c) q_j, renormalised: q_j). Streamed: one chunk of clips at a time.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch

from catsplit.chunks import ClipChunks
from catsplit.head import Head
from catsplit.scoring import table_scores
from catsplit.splitrows import latest_split


def relabel_chunks(edited: Head, clips: Any, chunk: int = 65_536) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per chunk of clips: (int64 [n] index into the split's subs, float32 [n] its probability within the split).

    Args:
        edited: a head whose latest edit is a split.
        clips: features of clips of the coarse class: an array [N, D] (or memory map), a list of chunks,
            or a function returning an iterator of chunks.
        chunk: rows per chunk read from an array.
    """
    split = latest_split(edited, "relabel")
    chunks = ClipChunks(clips, edited.dim, "clips", chunk)
    with torch.no_grad():
        for x in chunks:
            # scored in float32 from the rows as stored, the way the head scores them
            z = table_scores(x, split.weight, split.bias, kind=edited.kind, scale=edited.scale).double()  # [n, k]
            p = torch.softmax(z, dim=1)
            best = p.argmax(dim=1)
            yield best.numpy(), p.gather(1, best[:, None])[:, 0].float().numpy()


def relabel(edited: Head, clips: Any) -> tuple[list[str], np.ndarray]:
    """Each clip's new sub label and its probability within the split (see the module docstring).

    Args:
        edited: a head whose latest edit is a split.
        clips: features [N, D] of clips of the coarse class (forms as for `refine`).
    Returns:
        (labels: N sub labels, probabilities: float32 [N]).
    """
    subs = list(latest_split(edited, "relabel").subs)
    labels: list[str] = []
    probs: list[np.ndarray] = []
    for idx, p in relabel_chunks(edited, clips):
        labels += [subs[i] for i in idx.tolist()]
        probs.append(p)
    return labels, np.concatenate(probs)
