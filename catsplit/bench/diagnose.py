"""Why zero-shot edits fall short on the rendered world: ``python -m catsplit.bench.diagnose``.

Reads the base models and test features that ``catsplit bench`` cached and measures, per partition:

- consistency: for every modifier that at least two fine (uncollapsed) actions share, the mean
  pairwise cosine of its modifier vectors ``m_y = w_y - v_g`` across those actions. Alignment and
  retrieval assume these agree (1.0: one shared direction; 0: unrelated directions).
- text: the encoder's cosine between the two texts of each opposite direction pair ("from left to
  right" / "from right to left", ...). Alignment's MLP maps nearly equal inputs to nearly equal
  rows, so such subs tie whatever the head knows.
- mean-modifier bound: the generality of ``w_c + mean of the fine half's m_y with exactly the same
  modifier text`` (novel modifiers: the coarse row), i.e. what alignment would reach if its MLP
  reproduced those means exactly and told opposite directions apart.
- generality per modifier family of every benchmark row (``--methods``, default: the standard table; seed 0,
  or pooled over ``--seeds``), on the test or the val clips (``--eval-split``), and of the Text4Vis split.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from typing import Dict, List, Sequence, Tuple

import numpy as np

from catsplit.errors import CatsplitError

#: opposite direction pairs whose texts the encoder should tell apart
OPPOSITES: Tuple[Tuple[str, str], ...] = (("lr", "rl"), ("up", "down"), ("tow", "away"))


def modifier_vectors(weight: np.ndarray, labels: Sequence[str], tax, fine_actions: Sequence[str]
                     ) -> Dict[str, List[Tuple[str, np.ndarray]]]:
    """Modifier text -> [(action, m_y [D])] over the fine actions of a base head (m_y = w_y - mean of its group)."""
    pos = {label: i for i, label in enumerate(labels)}
    out: Dict[str, List[Tuple[str, np.ndarray]]] = defaultdict(list)
    for c in fine_actions:
        rows = np.stack([weight[pos[f]] for f in tax.fine[c]])  # [k, D]
        prototype = rows.mean(0)
        for f, row in zip(tax.fine[c], rows):
            out[tax.modifier[f]].append((c, row - prototype))
    return dict(out)


def consistency(vectors: Dict[str, List[Tuple[str, np.ndarray]]]) -> Dict[str, float]:
    """Modifier text -> mean pairwise cosine of its vectors across actions (modifiers of >= 2 actions)."""
    out = {}
    for m, items in vectors.items():
        if len(items) < 2:
            continue
        unit = [v / max(float(np.linalg.norm(v)), 1e-12) for _, v in items]
        out[m] = float(np.mean([unit[i] @ unit[j] for i in range(len(unit)) for j in range(i + 1, len(unit))]))
    return out


def mean_modifier_rows(weight: np.ndarray, labels: Sequence[str], coarse: str, subs: Sequence[str], tax,
                       vectors: Dict[str, List[Tuple[str, np.ndarray]]]) -> Dict[str, np.ndarray]:
    """Sub -> w_c + mean of the vectors with the sub's exact modifier text (none: w_c)."""
    w_c = weight[list(labels).index(coarse)]
    rows = {}
    for s in subs:
        found = vectors.get(tax.modifier[s], [])
        rows[s] = (w_c + np.mean([v for _, v in found], 0) if found else w_c).astype(np.float32)
    return rows


def diagnose(cache_dir: str, encoder, world_config=None, partition_seed: int = 0, *, eval_split: str = "test",
             methods: Sequence[str] = ("default",), seeds: int = 1, config=None, text4vis: bool = True,
             partitions: Sequence[str] = ("A", "B")) -> dict:
    """All measurements for both partitions (see the module docstring).

    Args:
        cache_dir: the folder ``catsplit bench`` printed as ``cache`` (holds A-linear.safetensors, ...).
        encoder: the text encoder the zero-shot methods use.
        world_config: the world (default: the full preset).
        partition_seed: the partition seed of the benchmark run.
        eval_split: "test", or "val" (its features must be cached: run ``catsplit bench --eval-split val`` once).
        methods: benchmark rows, as ``catsplit bench --methods`` takes them ("default": the standard table).
        seeds: seeds per row (0, 1, ...); a family's figure pools the clips of every seed.
        config: a ``SplitConfig`` for the zero-shot methods (and the rows that start from them); None: defaults.
        text4vis: also the Text4Vis split of the cached text head (it needs the encoder that head was trained
            with: leave it off for another encoder).
        partitions: which of "A" and "B" to measure (only their files are needed).

    Returns:
        {partition: {"consistency": {...}, "text": {...}, "generality": {row: {family: %}}}}, rows named
        "<method>" (flat) or "<method>:hierarchical", then "mean-modifier bound" and "text4vis".
    """
    import os
    import warnings

    from catsplit.bench import models, world
    from catsplit.bench import rows as table_rows
    from catsplit.bench.protocol import _with_rows, zero_shot
    from catsplit.bench.run import base_head, read_features, world_targets
    from catsplit.edit import split
    from catsplit.head import Head
    from catsplit.methods.registry import METHODS
    from catsplit.text import NearDuplicateWarning, encode

    if eval_split not in ("test", "val"):
        raise CatsplitError(f"eval_split must be 'test' or 'val', got {eval_split!r}")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise CatsplitError(f"seeds must be a positive integer, got {seeds!r}")
    wc = world_config or world.WorldConfig()
    tax = world.taxonomy(wc)
    if isinstance(partitions, str) or not partitions or not set(partitions) <= {"A", "B"}:
        raise CatsplitError(f"partitions must be a non-empty list of 'A' and 'B', got {partitions!r}")
    parts = {p: c for p, c in zip("AB", world.partition(tax, partition_seed)) if p in partitions}
    kinds = ("linear", "text4vis") if text4vis else ("linear",)
    files = [f"{p}-{k}{s}" for p in parts for k in kinds for s in (".safetensors", "-features.npz")]
    missing = [n for n in files if not os.path.exists(os.path.join(cache_dir, n))]
    if missing:
        raise CatsplitError(f"{cache_dir} lacks {missing}; run `catsplit bench` first and pass the cache folder it prints")
    val_files = [f"{p}-{k}-val-features.npz" for p in parts for k in kinds] if eval_split == "val" else []
    missing = [n for n in val_files if not os.path.exists(os.path.join(cache_dir, n))]
    if missing:
        raise CatsplitError(f"{cache_dir} lacks {missing}; run `catsplit bench --eval-split val` once with this cache "
                            "(it extracts and caches the val features)")
    built = []
    for name, mode in table_rows.specs(methods):
        row = zero_shot(name, mode, encoder, config=config) if name in METHODS and config is not None else (
            table_rows.build(name, mode, encoder))
        built.append((name if mode == "flat" else f"{name}:{mode}", row))
    texts = {k: world.MODIFIERS[k] for pair in OPPOSITES for k in pair}
    emb = dict(zip(texts, encode(encoder, list(texts.values()))))
    text_cos = {f"{texts[a]} / {texts[b]}": float(emb[a] @ emb[b]) for a, b in OPPOSITES}
    family = {world.MODIFIERS[k]: f for k, f in world.MODIFIER_FAMILY.items()}
    report = {}
    for p, collapsed in parts.items():
        fine_actions = [c for c in tax.coarse if c not in collapsed]
        heads, targets = {}, {}
        for kind in kinds:
            heads[kind] = base_head(models.load_model(os.path.join(cache_dir, f"{p}-{kind}.safetensors"))[0], kind)
            features = read_features(os.path.join(cache_dir, f"{p}-{kind}-features.npz"))
            if eval_split == "val":
                features.update(read_features(os.path.join(cache_dir, f"{p}-{kind}-val-features.npz")))
            targets[kind] = world_targets(tax, collapsed, features, eval_split)
        weight, labels = heads["linear"].tables[0].weight.numpy(), list(heads["linear"].tables[0].labels)
        vectors = modifier_vectors(weight, labels, tax, fine_actions)
        hits: Dict[str, Dict[str, List[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))

        def score(name: str, edited: Head, t) -> None:
            pred = edited.predict(t.features)
            for y, truth in zip(pred, t.labels):
                if truth in t.subs:
                    for key in (family[tax.modifier[truth]], "all"):
                        hits[name][key][0] += int(y == truth)
                        hits[name][key][1] += 1

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NearDuplicateWarning)  # the report gives the encoder's cosines instead
            for name, row in built:
                for seed in range(1 if row.deterministic else seeds):
                    for t in targets["linear"]:
                        score(name, row.edit(heads["linear"], t, seed), t)
            for t in targets["linear"]:
                rows = mean_modifier_rows(weight, labels, t.coarse, t.subs, tax, vectors)
                score("mean-modifier bound", _with_rows(split(heads["linear"], None, t.coarse, t.subs, method="coarse"), t, rows), t)
            for t in targets.get("text4vis", []):
                score("text4vis", split(heads["text4vis"], encoder, t.coarse, t.subs, method="text"), t)
        report[p] = {
            "consistency": consistency(vectors),
            "text": text_cos,
            "generality": {name: {fam: 100.0 * c / n for fam, (c, n) in sorted(fams.items())} for name, fams in hits.items()},
        }
    return report


def main(argv: Sequence[str] | None = None) -> None:
    from catsplit.bench.options import override
    from catsplit.config import SplitConfig
    from catsplit.encoders import load_text_encoder

    ap = argparse.ArgumentParser(prog="python -m catsplit.bench.diagnose", description=__doc__.split("\n\n")[0])
    ap.add_argument("cache", help="the cache folder `catsplit bench` used (printed in its JSON as config.cache)")
    ap.add_argument("--encoder", help="text encoder folder; default MiniLM (another encoder leaves out the Text4Vis row, "
                    "whose head was trained with the benchmark's encoder)")
    ap.add_argument("--eval-split", default="test", choices=["test", "val"],
                    help="clips measured: test, or val (for choosing a setting; needs the val features cached)")
    ap.add_argument("--methods", nargs="+", default=["default"], help="benchmark rows, as `catsplit bench --methods`")
    ap.add_argument("--seeds", type=int, default=1, help="seeds per row (pooled)")
    ap.add_argument("--split-option", nargs="+", metavar="KEY=VALUE", default=[],
                    help="SplitConfig fields for the zero-shot methods, e.g. normalise_modifiers=false")
    ap.add_argument("--partitions", nargs="+", default=["A", "B"], choices=["A", "B"])
    ap.add_argument("--json", help="also write the report as JSON to this file (not overwritten)")
    args = ap.parse_args(argv)
    config = override(SplitConfig(), args.split_option, "--split-option") if args.split_option else None
    if args.json:
        from catsplit.io.atomic import check_destination

        check_destination(args.json, overwrite=False, example="diagnose.json")  # before any work
    report = diagnose(args.cache, load_text_encoder(args.encoder), eval_split=args.eval_split, methods=args.methods,
                      seeds=args.seeds, config=config, text4vis=args.encoder is None,
                      partitions=args.partitions)
    for p, r in report.items():
        cons = r["consistency"]
        print(f"partition {p}: modifier vectors across fine actions, mean pairwise cosine "
              f"{np.mean(list(cons.values())):.2f} (range {min(cons.values()):.2f} to {max(cons.values()):.2f} "
              f"over {len(cons)} modifiers)")
        fams = sorted({f for g in r["generality"].values() for f in g}, key=lambda f: (f == "all", f))
        print(f"| generality % by modifier family ({args.eval_split} clips) | " + " | ".join(fams) + " |")
        print("|---|" + "---:|" * len(fams))
        for name, g in r["generality"].items():
            print(f"| {name} | " + " | ".join(f"{g.get(f, float('nan')):.1f}" for f in fams) + " |")
        print()
    print("encoder cosine of opposite directions: " + ", ".join(f"{k}: {v:.3f}" for k, v in next(iter(report.values()))["text"].items()))
    if args.json:
        from catsplit.bench.report import write_json

        write_json(args.json, report, overwrite=False)


if __name__ == "__main__":
    main()
