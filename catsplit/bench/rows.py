"""The rows of the benchmark table, by name."""

from __future__ import annotations

import math

from catsplit.bench.protocol import Method, calibrated, finetuned, random_rows, refined, zero_shot
from catsplit.errors import CatsplitError
from catsplit.methods.registry import METHODS

# (name, mode) in table order; "oracle" = new rows trained on all training clips of the subs
ZERO_SHOT = [("coarse", "flat"), ("text", "flat"), ("retrieval", "flat"), ("alignment", "flat"), ("alignment", "hierarchical")]
# label-free rows (the coarse class's training clips without sub labels; other classes' clips for calibration)
LABEL_FREE = [("alignment-scaled", "flat"), ("alignment-calibrated", "flat"), ("refine-retrieval", "flat"),
              ("refine-alignment", "flat"), ("refine-alignment", "hierarchical")]
DEFAULT = ZERO_SHOT + LABEL_FREE + [("oracle", "flat")]
MERGE_WEIGHTS = ("0", "0.25", "0.5", "0.75", "1")
# `--methods lowshot`: the low-shot, merge and gate rows with their zero-shot references
LOWSHOT = [(n, "flat") for n in (
    "coarse", "alignment",
    *(f"finetune-{k}shot-{init}" for k in (1, 5) for init in ("random", "coarse", "alignment")), "finetune-1shot-refine",
    "finetune-full", "merge-alignment-seeds", *(f"merge-zs-1shot-{w}" for w in MERGE_WEIGHTS), "alignment-gate",
)]
ALIASES = {"default": DEFAULT, "lowshot": LOWSHOT}
FINETUNE_STARTS = ("random", "coarse", "alignment", "refine")  # what finetune-<k>shot-<start> starts from (the paper's, and refine-alignment)


def build(name: str, mode: str, encoder) -> Method:
    """A Method from its table name: a zero-shot method of the registry (coarse, text, retrieval,
    alignment), refine-alignment, refine-retrieval, alignment-scaled, alignment-calibrated, oracle,
    finetune-<k>shot-<random|coarse|alignment|refine>, finetune-full, alignment-gate,
    merge-alignment-seeds, merge-zs-1shot-<w> (w in [0, 1])."""
    if name in METHODS:
        return zero_shot(name, mode, encoder)
    if name == "oracle" or name == "finetune-full":  # all training clips of c, from the coarse row
        m = finetuned(name, zero_shot("coarse", mode, encoder), shots=None)
        m.deterministic = name == "oracle"  # finetune-full: 3 seeds (the seed orders the batches)
        return m
    if name in ("refine-alignment", "refine-retrieval"):  # label-free refinement, calibrated when flat
        start = zero_shot(name.removeprefix("refine-"), mode, encoder)
        if name == "refine-alignment" and mode == "flat":  # from the scale-matched split (val clips: 54.2 vs 48.9)
            start = calibrated("alignment-scaled", start, others=False)
        return refined(name, start, calibrate=mode == "flat")
    if name in ("alignment-scaled", "alignment-calibrated"):  # locality calibration: no data / other clips
        if mode != "flat":
            raise CatsplitError(f"{name} calibrates a flat split; hierarchical splits keep locality exactly")
        m = calibrated(name, zero_shot("alignment", mode, encoder), others=name == "alignment-calibrated")
        m.name = name
        return m
    if name == "alignment-gate":  # the similarity gate (sigma 0.3) on alignment's edits
        m = zero_shot("alignment", mode, encoder, gate=0.3)
        m.name = name
        return m
    if name == "merge-alignment-seeds":  # uniform merge of alignment edits from 3 seeds
        one = zero_shot("alignment", mode, encoder)

        def merged_seeds(head, t, seed):
            from catsplit.merging import merge

            return merge([one.edit(head, t, 3 * seed + i) for i in range(3)])

        return Method(name=name, mode=mode, edit=merged_seeds)
    if name.startswith("merge-zs-1shot-"):  # merge-zs-1shot-<w>: (1 - w) * alignment + w * its 1-shot fine-tune
        try:
            w = float(name[len("merge-zs-1shot-"):])
        except ValueError:
            w = float("nan")
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
        if not shots_part.isdigit() or init not in FINETUNE_STARTS:
            raise CatsplitError(f"bad method {name!r}; use finetune-<k>shot-<{'|'.join(FINETUNE_STARTS)}>")
        if int(shots_part) < 1:
            raise CatsplitError(f"bad method {name!r}: at least 1 shot")
        if init == "random" and mode != "flat":
            raise CatsplitError(f"{name} starts from random rows of a flat split; it has no {mode} mode")
        if init == "random":
            start = random_rows()
        elif init == "refine":
            start = build("refine-alignment", mode, encoder)
        else:
            start = zero_shot(init, mode, encoder)
        return finetuned(name, start, shots=int(shots_part))
    raise CatsplitError(
        f"unknown benchmark method {name!r}; choose {', '.join(METHODS)}, refine-alignment, refine-retrieval, "
        "alignment-scaled, alignment-calibrated, oracle, "
        f"finetune-<k>shot-<{'|'.join(FINETUNE_STARTS)}>, finetune-full, alignment-gate, merge-alignment-seeds, "
        "merge-zs-1shot-<w>"
    )


def specs(methods) -> list[tuple[str, str]]:
    """`--methods` words -> (name, mode) rows; empty: DEFAULT; the words 'default' and 'lowshot' expand
    to their lists (duplicates dropped, first kept)."""
    out: list[tuple[str, str]] = []
    for word in methods or ("default",):
        for spec in ALIASES.get(word, [parse(word)]):
            if spec not in out:
                out.append(spec)
    return out


def parse(spec: str) -> tuple[str, str]:
    """'alignment' -> ('alignment', 'flat'); 'alignment:hierarchical' -> ('alignment', 'hierarchical')."""
    name, _, mode = spec.partition(":")
    mode = mode or "flat"
    if mode not in ("flat", "hierarchical"):
        raise CatsplitError(f"bad mode in {spec!r}; use NAME or NAME:hierarchical")
    return name, mode
