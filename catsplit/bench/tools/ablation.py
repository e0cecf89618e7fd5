"""The pretraining ablation: ``python -m catsplit.bench.tools.ablation SCRATCH.json PRETRAINED.json``.

Reads two ``catsplit bench --out`` files of the rendered world (the same world and methods, one with
``--train-option pretrain=none``, one with the default pretraining), prints the side-by-side table of
generality and locality per partition (the paper's pretraining table) and, with ``--plot``, draws both
runs in one figure: one panel per partition, scratch hollow, pretrained filled, the paper's points.
"""
from __future__ import annotations

import argparse
import json
import sys


def main(argv=None) -> int:
    from catsplit.bench.report import ablation_table, plot
    from catsplit.errors import CatsplitError

    p = argparse.ArgumentParser(prog="python -m catsplit.bench.tools.ablation", description=__doc__.split("\n")[0])
    p.add_argument("scratch", help="results JSON of the run with --train-option pretrain=none")
    p.add_argument("pretrained", help="results JSON of the run with the default pretraining")
    p.add_argument("--plot", help="PNG of both runs (one panel per partition)")
    args = p.parse_args(argv)
    runs = []
    for path in (args.scratch, args.pretrained):
        try:
            with open(path, encoding="utf-8") as f:
                runs.append(json.load(f))
        except (OSError, ValueError) as exc:
            raise CatsplitError(f"cannot read results file {path}: {exc}") from None
    split = {r["config"].get("eval_split", "test") for r in runs}
    if len(split) != 1:
        raise CatsplitError(f"the two files are measured on different clips ({sorted(split)}); give two test (or two val) runs")
    print(ablation_table(runs[1]["results"], runs[0]["results"]))
    if args.plot:
        plot(runs[1]["results"], args.plot, f"catsplit bench (rendered world, {split.pop()} clips): scratch vs pretrained",
             baseline=runs[0]["results"])
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
