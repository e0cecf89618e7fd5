"""The pretraining ablation: ``python -m catsplit.bench.tools.ablation SCRATCH.json PRETRAINED.json``.

Reads two ``catsplit bench --out`` files of the rendered world (the same world and methods, one with
``--train-option pretrain=none``, one with the default pretraining), prints the side-by-side table of
generality and locality per partition (the paper's pretraining table) and, with ``--plot``, draws both
runs in one figure: one panel per partition, scratch hollow, pretrained filled, the paper's points; with
``--json``, writes both runs' configurations and the side-by-side rows as one JSON file.
"""
from __future__ import annotations

import argparse
import json
import sys


def main(argv=None) -> int:
    from catsplit.bench.report import ablation_rows, ablation_table, plot
    from catsplit.errors import CatsplitError

    p = argparse.ArgumentParser(prog="python -m catsplit.bench.tools.ablation", description=__doc__.split("\n")[0])
    p.add_argument("scratch", help="results JSON of the run with --train-option pretrain=none")
    p.add_argument("pretrained", help="results JSON of the run with the default pretraining")
    p.add_argument("--plot", help="PNG of both runs (one panel per partition)")
    p.add_argument("--json", help="write the ablation (both runs' configurations, rows side by side) to this JSON file")
    p.add_argument("--overwrite", action="store_true", help="replace --json if it exists")
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
    if args.json:
        from catsplit.io.atomic import atomic_path

        doc = {"eval_split": next(iter(split)), "scratch": runs[0]["config"], "pretrained": runs[1]["config"],
               "rows": ablation_rows(runs[1]["results"], runs[0]["results"])}
        with atomic_path(args.json, overwrite=args.overwrite, example="ablation.json") as tmp:
            tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.json}", file=sys.stderr)
    if args.plot:
        plot(runs[1]["results"], args.plot, f"catsplit bench (rendered world, {next(iter(split))} clips): scratch vs pretrained",
             baseline=runs[0]["results"])
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
