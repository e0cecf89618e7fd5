"""The rows of the benchmark table, by name."""

from __future__ import annotations

import math

from catsplit.bench.protocol import Method, finetuned, random_rows, zero_shot
from catsplit.errors import CatsplitError

# (name, mode) in table order; "oracle" = new rows trained on all training clips of the subs
ZERO_SHOT = [("coarse", "flat"), ("text", "flat"), ("retrieval", "flat"), ("alignment", "flat"), ("alignment", "hierarchical")]
DEFAULT = ZERO_SHOT + [("oracle", "flat")]


def build(name: str, mode: str, encoder) -> Method:
    """A Method from its table name: coarse, text, retrieval, alignment, oracle,
    finetune-<k>shot-<random|coarse|alignment>, finetune-full, alignment-gate, merge-alignment-seeds,
    merge-zs-1shot-<w> (w in [0, 1])."""
    if name in ("coarse", "text", "retrieval", "alignment"):
        return zero_shot(name, mode, encoder)
    if name == "oracle" or name == "finetune-full":
        m = finetuned(name, zero_shot("coarse", mode, encoder), shots=None)
        m.deterministic = True
        return m
    if name == "alignment-gate":  # the similarity gate (sigma 0.3) on alignment's edits
        m = zero_shot("alignment", mode, encoder, gate=0.3)
        m.name = name
        return m
    if name == "merge-alignment-seeds":  # uniform merge of alignment edits from 3 seeds
        def merged_seeds(head, t, seed):
            from catsplit.merging import merge

            one = zero_shot("alignment", mode, encoder)
            return merge([one.edit(head, t, 3 * seed + i) for i in range(3)])

        return Method(name=name, mode=mode, edit=merged_seeds)
    if name.startswith("merge-zs-1shot-"):  # merge-zs-1shot-<w>: (1 - w) * alignment + w * its 1-shot fine-tune
        w = float(name.rsplit("-", 1)[1])
        if not 0.0 <= w <= 1.0:
            raise CatsplitError(f"bad method {name!r}: the mixing weight must be in [0, 1]")
        start = zero_shot("alignment", mode, encoder)
        tuned = finetuned("finetune-1shot-alignment", start, shots=1)

        def mixed(head, t, seed):
            from catsplit.merging import merge

            a, b = start.edit(head, t, seed), tuned.edit(head, t, seed)
            return merge([a, b.evolve(history=a.history)], logits=[math.log(max(1 - w, 1e-12)), math.log(max(w, 1e-12))])

        return Method(name=name, mode=mode, edit=mixed)
    if name.startswith("finetune-") and "shot-" in name:
        shots_part, init = name[len("finetune-"):].split("shot-", 1)
        if not shots_part.isdigit() or init not in ("random", "coarse", "alignment"):
            raise CatsplitError(f"bad method {name!r}; use finetune-<k>shot-<random|coarse|alignment>")
        start = random_rows() if init == "random" else zero_shot(init, mode, encoder)
        return finetuned(name, start, shots=int(shots_part))
    raise CatsplitError(
        f"unknown benchmark method {name!r}; choose coarse, text, retrieval, alignment, oracle, "
        "finetune-<k>shot-<random|coarse|alignment>, finetune-full, alignment-gate, merge-alignment-seeds, merge-zs-1shot-<w>"
    )


def parse(spec: str) -> tuple[str, str]:
    """'alignment' -> ('alignment', 'flat'); 'alignment:hierarchical' -> ('alignment', 'hierarchical')."""
    name, _, mode = spec.partition(":")
    mode = mode or "flat"
    if mode not in ("flat", "hierarchical"):
        raise CatsplitError(f"bad mode in {spec!r}; use NAME or NAME:hierarchical")
    return name, mode
