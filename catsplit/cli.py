"""The `catsplit` command: a thin layer over the Python API.

    catsplit split HEAD --coarse C --sub S1 --sub S2 [--method M] [--mode flat|hierarchical] -o OUT
    catsplit unsplit HEAD --coarse C -o OUT
    catsplit inspect HEAD [--coarse C --sub ...] [--json]
    catsplit finetune HEAD FEATURES [--labels LABELS] [--shots K] [--seed S] -o OUT
    catsplit demo
    catsplit export | predict | edit-onnx | triton     (deployment: catsplit/cli_export.py)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from catsplit.errors import CatsplitError


def _load(args: argparse.Namespace) -> Any:
    from catsplit.headfile import load_head

    return load_head(args.head, key=args.key, labels=args.labels)


def _read_json(path: str | None, what: str) -> Any:
    from catsplit.headfile import read_json

    return None if path is None else read_json(path, what)


def _subs(args: argparse.Namespace) -> list[str]:
    subs = list(args.sub or [])
    if args.subs_file:
        p = Path(args.subs_file)
        if not p.is_file():
            raise CatsplitError(f"subs file {p} not found")
        subs += [line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    return subs


def _out_path(args: argparse.Namespace) -> Path:
    out = Path(args.out)
    if out.resolve() == Path(args.head).resolve() and not args.overwrite:
        raise CatsplitError(f"--out {out} is the input file; pass --overwrite to replace it, or write elsewhere")
    return out


def cmd_split(args: argparse.Namespace) -> int:
    from catsplit.atomic import check_destination
    from catsplit.config import SplitConfig
    from catsplit.encoders import load_text_encoder
    from catsplit.streaming import open_head_file

    # A catsplit file (no --key/--labels) is split as split_file does: memory-mapped, unchanged bytes
    # copied file to file; other inputs are loaded. Either way the bytes written are those of
    # load_head + split + save, and the errors come in the same order.
    with open_head_file(args.head, key=args.key, labels=args.labels) as source:
        out = _out_path(args)
        # Before the encoder and the method (alignment trains for seconds), not when saving after them.
        check_destination(out, overwrite=args.overwrite, example="edited.safetensors")
        encoder = None if args.method == "coarse" else load_text_encoder(args.encoder)
        config = SplitConfig(alpha=args.alpha, beta=args.beta)
        rec = source.split_to(
            out, encoder, args.coarse, _subs(args), overwrite=args.overwrite, method=args.method, mode=args.mode,
            modifiers=_read_json(args.modifiers, "modifiers"), groups=_read_json(args.groups, "groups"),
            seed=args.seed, config=config,
        )
    print(f"split {rec['coarse']!r} -> {len(rec['subs'])} subs ({rec['method']}, {rec['mode']}); wrote {out}")
    for sub in rec["subs"]:
        extra = ""
        match = rec.get("details", {}).get("matches", {}).get(sub)
        if match:
            extra = f"  <- {match['label']!r} (score {match['score']:.3f})"
        print(f"  {sub!r}: modifier {rec['modifiers'][sub]!r}{extra}")
    return 0


def cmd_unsplit(args: argparse.Namespace) -> int:
    from catsplit.edit import unsplit

    head = _load(args)
    out = _out_path(args)
    restored = unsplit(head, args.coarse)
    restored.save(out, overwrite=args.overwrite)
    print(f"undid the split of {args.coarse!r}; wrote {out} ({restored.num_classes} labels)")
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    from catsplit.atomic import check_destination
    from catsplit.headfile import load_head
    from catsplit.lowshot import FinetuneConfig, finetune, read_clips

    head = load_head(args.head)
    out = _out_path(args)
    check_destination(out, overwrite=args.overwrite, example="tuned.safetensors")  # before training, not after it
    features, labels = read_clips(args.features, args.labels)
    if labels is None:
        raise CatsplitError(f"no labels for {args.features}: store an array 'labels' in it (.npz / .safetensors) or pass --labels FILE")
    config = FinetuneConfig(lr=args.lr, weight_decay=args.weight_decay, batch_size=args.batch_size,
                            max_epochs=args.max_epochs, patience=args.patience)
    tuned = finetune(head, features, labels, shots=args.shots, seed=args.seed, config=config, progress=not args.no_progress)
    tuned.save(out, overwrite=args.overwrite)
    rec = tuned.latest_record()
    info = rec["finetune"]
    shots = f"{info['shots']} per sub" if info["shots"] else "all"
    print(f"fine-tuned the {len(rec['subs'])} sub rows of {rec['coarse']!r} on {info['clips']} clips ({shots}, seed {info['seed']}): "
          f"{info['epochs']} epochs, {info['steps']} steps, best smoothed loss {info['loss_ema']:.4f} at epoch {info['best_epoch']}; "
          f"wrote {out}")
    return 0


def inspect_report(head: Any, coarse: str | None = None, subs: Sequence[str] = ()) -> dict[str, Any]:
    """What catsplit sees in a head: shapes, labels, groups and modifiers (stored or inferred), history."""
    from catsplit.structure import infer_structure, sub_modifiers

    others = [lab for lab in head.labels if lab != coarse]
    structure = infer_structure(others, head.groups)
    multi = structure.multi_groups()
    report: dict[str, Any] = {
        "classes": head.num_classes,
        "dim": head.dim,
        "dtype": str(head.dtype).removeprefix("torch."),
        "bias": head.bias is not None,
        "kind": head.kind,
        "hierarchical_gates": head.gates,
        "labels": list(head.labels),
        "groups_source": "inferred from label text" if structure.inferred_groups else "stored in the head",
        "groups": multi,
        "single_label_groups": sum(1 for ms in structure.groups.values() if len(ms) == 1),
        "modifiers": {m: structure.modifiers[m] for ms in multi.values() for m in ms},
        "dictionary_entries": sum(len(ms) for ms in multi.values()),
        "history": [{k: v for k, v in rec.items() if k != "details"} for rec in head.history],
    }
    if coarse is not None and subs:
        report["split_preview"] = {"coarse": coarse, "modifiers": dict(zip(subs, sub_modifiers(coarse, subs)))}
    if head.metadata:
        report["foreign_metadata_keys"] = sorted(head.metadata)
    return report


def cmd_inspect(args: argparse.Namespace) -> int:
    head = _load(args)
    report = inspect_report(head, args.coarse, _subs(args))
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0
    print(f"{args.head}: {head}")
    print(f"kind {report['kind']}, dtype {report['dtype']}, bias {'yes' if report['bias'] else 'no'}")
    if report["hierarchical_gates"]:
        print(f"gates of hierarchical splits: {report['hierarchical_gates']}")
    print(f"\ngroups ({report['groups_source']}): {len(report['groups'])} with >= 2 labels, "
          f"{report['single_label_groups']} single labels; {report['dictionary_entries']} modifier entries")
    for g, members in report["groups"].items():
        print(f"  {g!r}")
        for m in members:
            print(f"      {report['modifiers'][m]!r}  ({m})")
    if "split_preview" in report:
        print(f"\nsplitting {args.coarse!r} would use these modifiers:")
        for s, m in report["split_preview"]["modifiers"].items():
            print(f"  {s!r}: {m!r}")
    print(f"\nhistory: {len(report['history'])} edit(s)")
    for rec in report["history"]:
        print(f"  {rec['op']} {rec['coarse']!r} -> {rec['subs']} ({rec['method']}, {rec['mode']})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from catsplit.demo import DemoConfig, run_demo
    from catsplit.encoders import load_text_encoder

    run_demo(load_text_encoder(args.encoder), method=args.method, cfg=DemoConfig(seed=args.seed))
    return 0


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


def _head_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("head", help="head file: catsplit .safetensors, or any safetensors / PyTorch checkpoint with --key")
    p.add_argument("--key", help="name of the linear layer inside a checkpoint, e.g. head.fc")
    p.add_argument("--labels", help="labels file (JSON list, JSON {label: index}, or one per line) for foreign checkpoints")


def _target_args(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--coarse", required=required, help="the label to split")
    p.add_argument("--sub", action="append", help="a new fine label (repeat, in output order)")
    p.add_argument("--subs-file", help="file with one new fine label per line")


def split_args(p: argparse.ArgumentParser) -> None:
    """How to split: method, mode, structure overrides, encoder, seed (split and edit-onnx)."""
    p.add_argument("--method", default="alignment", choices=["alignment", "retrieval", "text", "coarse"])
    p.add_argument("--mode", default="flat", choices=["flat", "hierarchical"])
    p.add_argument("--modifiers", help="JSON file: label -> modifier text (overrides inference)")
    p.add_argument("--groups", help="JSON file: group text -> member labels (overrides inference)")
    p.add_argument("--encoder", help="text encoder folder (tokenizer.json + model.onnx or model.safetensors); default MiniLM")
    p.add_argument("--seed", type=int, default=0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="catsplit", description="Split a class of a trained classifier head, zero-shot.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("split", help="split a class into fine subclasses")
    _head_args(p)
    _target_args(p, required=True)
    split_args(p)
    p.add_argument("--alpha", type=float, default=0.5, help="retrieval: weight of modifier similarity")
    p.add_argument("--beta", type=float, default=0.5, help="retrieval: weight of label similarity")
    p.add_argument("-o", "--out", required=True, help="output .safetensors")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists (also the input file)")
    p.set_defaults(func=cmd_split)

    p = sub.add_parser("unsplit", help="undo the latest split")
    _head_args(p)
    p.add_argument("--coarse", required=True, help="the label whose split to undo")
    p.add_argument("-o", "--out", required=True)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_unsplit)

    p = sub.add_parser("finetune", help="fine-tune the sub rows of the latest split on labelled clip features")
    p.add_argument("head", help="catsplit head file whose latest edit is a split")
    p.add_argument("features", help=".npz (arrays 'features' [N, D] and 'labels' [N]), .npy [N, D], or .safetensors "
                   "(tensor 'features', optional integer tensor 'labels')")
    p.add_argument("--labels", help="the clips' labels, one per feature row: JSON list (label strings or indices) or one "
                   "label per line; replaces labels stored in FEATURES")
    p.add_argument("--shots", type=int, help="use K clips per sub (sampled with --seed; error if a sub has fewer); default all")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate")
    p.add_argument("--weight-decay", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-epochs", type=int, default=200, help="cap; early stopping usually ends sooner")
    p.add_argument("--patience", type=int, default=5, help="epochs without a drop of the smoothed loss")
    p.add_argument("-o", "--out", required=True, help="output .safetensors")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists (also the input file)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("inspect", help="show labels, inferred groups and modifiers, history")
    _head_args(p)
    _target_args(p, required=False)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("bench", help="the paper's protocol: generality and locality of every method")
    p.add_argument("--quick", action="store_true", help="CI-sized world, 1 seed")
    p.add_argument("--seeds", type=int, help="seeds per method (default 3; 1 with --quick)")
    p.add_argument("--methods", nargs="+", help="table rows, e.g. coarse text retrieval alignment alignment:hierarchical "
                   "oracle finetune-1shot-alignment finetune-5shot-random finetune-full merge-alignment-seeds "
                   "merge-zs-1shot-0.5 alignment-gate; 'default' = the standard table, 'lowshot' = all low-shot, "
                   "merge and gate rows (default: the standard table)")
    p.add_argument("--out", default=None, help="results JSON (default: bench-results.json for the world)")
    p.add_argument("--plot", default=None, help="generality/locality PNG (needs matplotlib)")
    p.add_argument("--merge-plot", default=None, help="PNG of the generality/locality curve of the merge-zs-1shot-<w> rows")
    p.add_argument("--overwrite", action="store_true", help="replace --out / --plot / --merge-plot if they exist")
    p.add_argument("--encoder", help="text encoder folder; default MiniLM")
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
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("demo", help="end-to-end demo on a simulated head")
    p.add_argument("--method", default="alignment", choices=["alignment", "retrieval", "text", "coarse"])
    p.add_argument("--encoder", help="text encoder folder; default MiniLM")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)

    from catsplit.cli_export import add_commands  # export, predict, edit-onnx, triton

    add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import warnings

    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():  # restores the caller's showwarning on the way out
        warnings.showwarning = _show_warning
        try:
            return args.func(args)
        except CatsplitError as exc:
            print(f"catsplit: error: {exc}", file=sys.stderr)
            return 2


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
                  line: str | None = None) -> None:
    """Warnings as one line like errors: on the command line a source location (the launcher's) means nothing."""
    print(f"catsplit: warning: {message}", file=sys.stderr if file is None else file)


if __name__ == "__main__":
    sys.exit(main())
