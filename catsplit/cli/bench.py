"""The measuring commands of `catsplit`: bench (the paper's protocol) and demo.

    catsplit bench [--quick] [--methods ...] [--annotations FOLDER --features F --head H] [--out results.json]
    catsplit demo [--method M]
"""

from __future__ import annotations

import argparse
from typing import Any

from catsplit.cli.args import encoder_arg, method_arg, overwrite_arg, positive_int, progress_arg, seed_arg
from catsplit.errors import CatsplitError


def cmd_bench(args: argparse.Namespace) -> int:
    from catsplit.bench.run import check_outputs, run_layout, run_world
    from catsplit.encoders import load_text_encoder

    check_outputs(args.out, args.plot, args.overwrite, args.merge_plot)
    encoder = load_text_encoder(args.encoder)
    common = dict(methods=args.methods or (), encoder=encoder, out=args.out, plot_path=args.plot,
                  progress=not args.no_progress, overwrite=args.overwrite, merge_plot=args.merge_plot)
    if args.annotations:
        if not (args.features and args.head):
            raise CatsplitError("--annotations needs --features FILE and --head HEAD as well")
        given = [f for f, v in (("--world-option", args.world_option), ("--train-option", args.train_option)) if v]
        if given:
            raise CatsplitError("--world-option and --train-option apply to the rendered world and its base models; "
                                f"with --annotations your features and head are used as they are (drop {' and '.join(given)})")
        if args.eval_split != "test":
            raise CatsplitError("--eval-split is for the rendered world; with --annotations the held-out clips are "
                                "the layout's equivalent_set and unrelated_set (drop --eval-split)")
        run_layout(args.annotations, args.features, args.head, partition=args.partition, seeds=args.seeds or 3,
                   key=args.key, **common)
    else:
        run_world(quick=args.quick, seeds=args.seeds, cache=args.cache, world_seed=args.world_seed,
                  partition_seed=args.partition_seed, eval_split=args.eval_split,
                  world_options=args.world_option or (), train_options=args.train_option or (), **common)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from catsplit.demo import DemoConfig, run_demo
    from catsplit.encoders import load_text_encoder

    run_demo(load_text_encoder(args.encoder), method=args.method, cfg=DemoConfig(seed=args.seed))
    return 0


def add_commands(sub: Any) -> None:
    """Register bench and demo on the `catsplit` parser's subparsers."""
    p = sub.add_parser("bench", help="the paper's protocol: generality and locality of every method")
    p.add_argument("--quick", action="store_true", help="CI-sized world, 1 seed")
    p.add_argument("--seeds", type=positive_int, help="seeds per method (default 3; 1 with --quick)")
    p.add_argument("--methods", nargs="+", help="table rows, e.g. coarse text retrieval alignment alignment:hierarchical "
                   "oracle finetune-1shot-alignment finetune-5shot-random finetune-full merge-alignment-seeds "
                   "merge-zs-1shot-0.5 alignment-gate; 'default' = the standard table, 'lowshot' = all low-shot, "
                   "merge and gate rows (default: the standard table)")
    p.add_argument("--out", default=None, help="results JSON (default: bench-results.json for the world)")
    p.add_argument("--plot", default=None, help="generality/locality PNG (needs matplotlib)")
    p.add_argument("--merge-plot", default=None, help="PNG of the generality/locality curve of the merge-zs-1shot-<w> rows")
    overwrite_arg(p, help="replace --out / --plot / --merge-plot if they exist")
    encoder_arg(p)
    p.add_argument("--cache", help="cache folder for data, models and features (default: ~/.cache/catsplit)")
    p.add_argument("--world-seed", type=int, default=0)
    p.add_argument("--partition-seed", type=int, default=0)
    p.add_argument("--eval-split", default="test", choices=["test", "val"],
                   help="clips the rendered world's table is measured on: test (the results) or val (for choosing "
                   "a world, model or setting without looking at the test clips)")
    p.add_argument("--world-option", nargs="+", metavar="KEY=VALUE",
                   help="change fields of the rendered world, e.g. noise=10 max_distractors=3 (keys: "
                   "catsplit.bench.world.WorldConfig); variants get their own cache folder")
    p.add_argument("--train-option", nargs="+", metavar="KEY=VALUE",
                   help="change fields of the base models' training, e.g. dim=128 multiscale=true (keys: "
                   "catsplit.bench.models.TrainConfig)")
    p.add_argument("--annotations", help="the paper's layout: folder with group_scheme.json (real data)")
    p.add_argument("--features", help="with --annotations: safetensors/npz mapping video_path -> feature")
    p.add_argument("--head", help="with --annotations: the partition's base head")
    p.add_argument("--key", help="with --head: the linear layer inside a checkpoint")
    p.add_argument("--partition", default="A", choices=["A", "B"])
    progress_arg(p)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("demo", help="end-to-end demo on a simulated head")
    method_arg(p)
    encoder_arg(p)
    seed_arg(p)
    p.set_defaults(func=cmd_demo)
