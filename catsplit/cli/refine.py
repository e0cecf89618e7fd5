"""The label-free commands of `catsplit`: refine and relabel.

    catsplit refine HEAD CLIPS [--others OTHERS] [--iterations N] [--shrinkage L] [--bias B] [--budget F] -o OUT
    catsplit relabel HEAD CLIPS -o LABELS.csv
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import Any

from catsplit.cli.args import MODEL_OUT_HELP, REPLACE_INPUT_HELP, model_args, out_path, output_args, seed_arg
from catsplit.config import REFINE_BIASES, REFINE_SCALES, RefineConfig

CLIPS_HELP = (".npz (array 'features' [N, D], optional 'ids' [N]; 'labels' are ignored), .npy [N, D] (memory-mapped, "
              "read in chunks) or .safetensors (tensor 'features')")


def cmd_refine(args: argparse.Namespace) -> int:
    from catsplit import refine
    from catsplit.cli.edit import EditInput
    from catsplit.io.readers import read_unlabelled_clips

    with EditInput(argparse.Namespace(**{**vars(args), "key": None, "labels": None})) as source:
        out = out_path(args)
        source.check_output(out, args.overwrite, "refined.safetensors")  # before the passes, not after them
        clips, _ = read_unlabelled_clips(args.clips)
        others = read_unlabelled_clips(args.others)[0] if args.others else None
        config = RefineConfig(iterations=args.iterations, shrinkage=args.shrinkage, bias=args.bias, scale=args.scale,
                              budget=args.budget)
        refined = refine(source.head, clips, others=others, seed=args.seed, config=config)
        source.write(refined, out, args.overwrite)
    rec = refined.latest_record()
    info = rec["refine"]
    state = "converged" if info["converged"] else "stopped"
    print(f"refined the {len(rec['subs'])} sub rows of {rec['coarse']!r} on {info['clips']} unlabelled clips: "
          f"{info['iterations']} EM steps ({state}); clips per sub {list(info['counts'])}")
    if "calibration" in rec:
        cal = rec["calibration"]
        print(f"calibrated on {cal['others']} other clips: sub biases shifted by {cal['shift']:.4g}, "
              f"stolen {100 * cal['stolen_before']:.2f}% -> {100 * cal['stolen_after']:.2f}% (budget {100 * cal['budget']:.2f}%)")
    print(f"wrote {out}")
    return 0


def cmd_relabel(args: argparse.Namespace) -> int:
    from catsplit import load_head
    from catsplit.io.atomic import atomic_path, check_destination
    from catsplit.io.readers import read_unlabelled_clips
    from catsplit.relabelling import relabel_chunks
    from catsplit.splitrows import latest_split

    out = check_destination(args.out, overwrite=args.overwrite, example="labels.csv")
    head = load_head(args.head)
    subs = latest_split(head, "relabel").subs
    clips, ids = read_unlabelled_clips(args.clips)
    n = 0
    with atomic_path(out, overwrite=args.overwrite, example="labels.csv") as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["clip", "label", "probability"])
            for idx, p in relabel_chunks(head, clips):  # written chunk by chunk: memory does not grow with N
                w.writerows(
                    (ids[n + i] if ids is not None else n + i, subs[j], f"{q:.6f}")
                    for i, (j, q) in enumerate(zip(idx.tolist(), p.tolist()))
                )
                n += len(idx)
    print(f"relabelled {n} clips of {latest_split(head, 'relabel').record['coarse']!r} into {len(subs)} subs; wrote {out}")
    return 0


def add_commands(sub: Any) -> None:
    """Register refine and relabel on the `catsplit` parser's subparsers."""
    p = sub.add_parser("refine", help="refine the latest split's rows on the coarse class's unlabelled clips")
    p.add_argument("head", help="catsplit head file or model whose latest edit is a split")
    model_args(p)
    p.add_argument("clips", help="features of clips of the split class, without sub labels: " + CLIPS_HELP)
    p.add_argument("--others", help="features of clips of other classes, unlabelled (same formats): the sub biases are "
                   "calibrated so that at most --budget of them move to a sub (flat splits)")
    seed_arg(p)
    # The defaults are RefineConfig's, so the command and the Python API cannot drift apart.
    p.add_argument("--iterations", type=int, default=RefineConfig.iterations, help="EM steps at most")
    p.add_argument("--shrinkage", type=float, default=RefineConfig.shrinkage,
                   help="covariance shrinkage towards its mean eigenvalue, in [0, 1]")
    p.add_argument("--bias", choices=REFINE_BIASES, default=RefineConfig.bias, help="how the sub biases are set")
    p.add_argument("--scale", choices=REFINE_SCALES, default=RefineConfig.scale,
                   help="edit: keep the starting edit's norm; natural: the discriminant's own scale")
    p.add_argument("--budget", type=float, default=RefineConfig.budget,
                   help="with --others: fraction of other clips the subs may take")
    output_args(p, out_help=MODEL_OUT_HELP, overwrite_help=REPLACE_INPUT_HELP)
    p.set_defaults(func=cmd_refine)

    p = sub.add_parser("relabel", help="write each clip's new sub label and probability (CSV)")
    p.add_argument("head", help="catsplit head file whose latest edit is a split")
    p.add_argument("clips", help="features of clips of the split class: " + CLIPS_HELP)
    output_args(p, out_help="CSV file: clip,label,probability (clip: the 'ids' array, else the row number)",
                overwrite_help="replace --out if it exists")
    p.set_defaults(func=cmd_relabel)
