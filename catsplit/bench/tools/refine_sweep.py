"""Settings of refine and calibration on one partition of a cached benchmark world, on the val (or test) clips.

    python -m catsplit.bench.tools.refine_sweep CACHE_DIR --partition A --split val [--seeds 0] [--val-features F] ROW...

CACHE_DIR is one configuration's folder of a `catsplit bench` cache (`<cache>/bench/<key>`, holding
`A-linear.safetensors` and `A-linear-features.npz`), read only. The rendered world's preset (seed 0, or
--world-seed) must be the one the cache was made with. Val features, which a test-only run does not cache,
are computed by rendering the world again and written to --val-features (default: beside nothing in the
cache, in the current folder), never into CACHE_DIR. Rows are the table's names (`refine-alignment`,
`alignment-scaled`, ..., NAME:hierarchical) or sweep rows:

- `rv~START~BIAS~SHRINKAGE~BUDGET~ITERATIONS~SCALE`: refine of START's split (alignment, retrieval) with
  those RefineConfig settings; BUDGET `none`: no calibration on the other classes' training clips;
- `cal~scale`, `cal~BUDGET`, `cal~scale+BUDGET`: calibration of the alignment split.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def sweep_row(name: str, mode: str, encoder):
    """A Method for a sweep row name (see the module docstring), or None for a table row."""
    from catsplit.bench.protocol import Method, calibrated, refined, zero_shot
    from catsplit.calibration import calibrate
    from catsplit.config import RefineConfig

    if name.startswith("rv~"):
        _, start, bias, shrinkage, budget, iterations, scale = name.split("~")
        cfg = RefineConfig(bias=bias, shrinkage=float(shrinkage), budget=0.01 if budget == "none" else float(budget),
                           iterations=int(iterations), scale=scale)
        from catsplit.bench import rows as table_methods
        from catsplit.methods.registry import METHODS

        first = zero_shot(start, mode, encoder) if start in METHODS else table_methods.build(start, mode, encoder)
        return refined(name, first, calibrate=budget != "none", config=cfg)
    if name.startswith("cal~"):
        what = name.split("~", 1)[1]
        start = zero_shot("alignment", mode, encoder)
        if what == "scale":
            return calibrated(name, start, others=False)
        if what.startswith("scale+"):
            budget = float(what[len("scale+"):])
            return Method(name=name, mode=mode,
                          edit=lambda h, t, s: calibrate(start.edit(h, t, s), t.other_features, scale=True, budget=budget))
        m = calibrated(name, start, others=True, budget=float(what))
        m.name = name
        return m
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cache_dir")
    parser.add_argument("rows", nargs="+")
    parser.add_argument("--partition", choices=("A", "B"), default="A")
    parser.add_argument("--split", choices=("val", "test"), default="val")
    parser.add_argument("--seeds", default="0", help="comma-separated, e.g. 0,1,2")
    parser.add_argument("--world-seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="the cache is of `catsplit bench --quick`")
    parser.add_argument("--val-features", help="where val features are kept (default: ./<partition>-linear-val-features.npz)")
    parser.add_argument("--out", help="results JSON")
    args = parser.parse_args(argv)

    from catsplit.bench import models, world
    from catsplit.bench import rows as table_methods
    from catsplit.bench.protocol import run_protocol
    from catsplit.bench.run import base_head, read_features, world_targets
    from catsplit.encoders import load_text_encoder

    cache = Path(args.cache_dir)
    if args.quick:
        wc, tc = world.WorldConfig.quick(seed=args.world_seed), models.TrainConfig.quick()
    else:
        wc, tc = world.WorldConfig(seed=args.world_seed), models.TrainConfig()
    tax = world.taxonomy(wc)
    parts = dict(zip("AB", world.partition(tax, 0)))
    name = f"{args.partition}-linear"

    def not_cached():
        raise SystemExit(f"{cache / name}.safetensors is not there; run catsplit bench with this cache first")

    model, _, _ = models.cached_train(str(cache), name, not_cached, tc)
    feats = dict(read_features(cache / f"{name}-features.npz"))
    if args.split == "val":
        vf = Path(args.val_features or f"{name}-val-features.npz")
        if not vf.exists():
            t0 = time.time()
            d = world.generate(wc, progress=False, workers=2)
            np.savez(vf, val=models.extract_features(model, d["val"].clips), val_labels=d["val"].labels)
            print(f"val features in {time.time() - t0:.0f} s -> {vf}", flush=True)
        feats.update(read_features(vf))
    head = base_head(model, "linear")
    targets = world_targets(tax, parts[args.partition], feats, args.split)
    enc = load_text_encoder(None)
    built = []
    for word in args.rows:
        row, mode = table_methods.parse(word)
        built.append(sweep_row(row, mode, enc) or table_methods.build(row, mode, enc))
    seeds = [int(s) for s in args.seeds.split(",")]
    results = run_protocol(head, targets, built, seeds, progress=False)
    for r in results:
        g, lo, a = (r[k]["mean"] for k in ("generality", "locality", "agreement"))
        print(f"{args.partition} {r['method']:42s} {r['mode']:12s} gen {g:6.2f} loc {lo:6.2f} agr {a:6.2f} "
              f"({len(r['seeds'])} seed(s), {args.split} clips)", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results))


if __name__ == "__main__":
    main()
