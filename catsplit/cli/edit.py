"""The editing commands of `catsplit`: split, unsplit, finetune, inspect.

    catsplit split HEAD|MODEL --coarse C --sub S1 --sub S2 [--method M] [--mode flat|hierarchical] -o OUT
    catsplit unsplit HEAD|MODEL --coarse C -o OUT
    catsplit finetune HEAD FEATURES [--labels LABELS] [--shots K] [--seed S] -o OUT
    catsplit inspect HEAD [--coarse C --sub ...] [--json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from catsplit import FinetuneConfig, RetrievalConfig
from catsplit.cli.args import (
    MODEL_OUT_HELP, REPLACE_INPUT_HELP, head_args, load_head_arg, model_args, out_path, output_args, progress_arg,
    read_json_option, read_subs, seed_arg, split_args, target_args,
)
from catsplit.errors import CatsplitError


class EditInput:
    """What split, unsplit and finetune read: a head file, or a model in its own format (written back as one).

    A catsplit head file (no --key) is opened as `split_file` opens it (memory-mapped); a model folder or a
    file holding a whole model is opened with `catsplit.formats.model.open_model` and written back by
    `save_model`, unless --head-only asks for the head alone; a file holding nothing but the layer is a head.
    """

    def __init__(self, args: argparse.Namespace):
        from catsplit.formats.model import is_head_file, open_model
        from catsplit.io.streaming import HeadSource, open_head_file

        self.model: Any = None
        path = Path(args.head)
        if not path.exists() or (args.key is None and is_head_file(path)):
            self.source = open_head_file(args.head, key=args.key, labels=args.labels)
            return
        model = open_model(path, key=args.key, labels=args.labels, trust_checkpoint=args.trust_checkpoint)
        if (model.whole or model.is_folder) and not getattr(args, "head_only", False):
            self.model = model
        self.source = HeadSource(model.head)

    @property
    def head(self) -> Any:
        return self.source.head

    def __enter__(self) -> EditInput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.source.close()

    def check_output(self, out: Path, overwrite: bool, example: str) -> None:
        """Refuse a bad destination before any work (the method may train for seconds)."""
        from catsplit.formats.writer import check_model_output
        from catsplit.io.headfile import check_head_destination

        if self.model is not None:
            check_model_output(self.model, out, overwrite=overwrite)
        else:
            check_head_destination(out, overwrite=overwrite, example=example)

    def write(self, new: Any, out: Path, overwrite: bool) -> None:
        """The edited head to `out`: into a copy of the model, or as a head file."""
        from catsplit.formats.writer import save_model

        if self.model is not None:
            save_model(new, self.model, out, overwrite=overwrite)
        else:
            new.save(out, overwrite=overwrite)


def cmd_split(args: argparse.Namespace) -> int:
    from catsplit import SplitConfig, split
    from catsplit.encoders import load_text_encoder

    # A catsplit file (no --key/--labels) is split as split_file does: memory-mapped, unchanged bytes
    # copied file to file; other inputs are loaded. Either way the bytes written are those of
    # load_head + split + save, and the errors come in the same order. A model is written back whole.
    with EditInput(args) as source:
        out = out_path(args)
        # Before the encoder and the method (alignment trains for seconds), not when saving after them.
        source.check_output(out, args.overwrite, "edited.safetensors")
        encoder = None if args.method == "coarse" else load_text_encoder(args.encoder)
        options = dict(
            method=args.method, mode=args.mode, modifiers=read_json_option(args.modifiers, "modifiers"),
            groups=read_json_option(args.groups, "groups"), seed=args.seed,
            config=SplitConfig(alpha=args.alpha, beta=args.beta, normalise_modifiers=not args.raw_modifiers),
            order=args.order, calibrate=args.calibrate,
        )
        if source.model is None:
            rec = source.source.split_to(out, encoder, args.coarse, read_subs(args), overwrite=args.overwrite, **options)
        else:
            new = split(source.head, encoder, args.coarse, read_subs(args), **options)
            source.write(new, out, args.overwrite)
            rec = new.latest_record()
    kept = f"; {rec['subs'][0]!r} keeps index {rec['column']}" if rec.get("order") == "keep" else ""
    print(f"split {rec['coarse']!r} -> {len(rec['subs'])} subs ({rec['method']}, {rec['mode']}{kept}); wrote {out}")
    for sub in rec["subs"]:
        extra = ""
        match = rec.get("details", {}).get("matches", {}).get(sub)
        if match:
            extra = f"  <- {match['label']!r} (score {match['score']:.3f})"
        print(f"  {sub!r}: modifier {rec['modifiers'][sub]!r}{extra}")
    return 0


def cmd_unsplit(args: argparse.Namespace) -> int:
    from catsplit import unsplit

    with EditInput(args) as source:
        out = out_path(args)
        source.check_output(out, args.overwrite, "head.safetensors")
        restored = unsplit(source.head, args.coarse)
        source.write(restored, out, args.overwrite)
    print(f"undid the split of {args.coarse!r}; wrote {out} ({restored.num_classes} labels)")
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    from catsplit import finetune
    from catsplit.io.readers import read_clips

    with EditInput(argparse.Namespace(**{**vars(args), "key": None, "labels": None})) as source:
        out = out_path(args)
        source.check_output(out, args.overwrite, "tuned.safetensors")  # before training, not after it
        features, labels = read_clips(args.features, args.labels)
        if labels is None:
            raise CatsplitError(f"no labels for {args.features}: store an array 'labels' in it (.npz / .safetensors) or pass --labels FILE")
        config = FinetuneConfig(lr=args.lr, weight_decay=args.weight_decay, batch_size=args.batch_size,
                                max_epochs=args.max_epochs, patience=args.patience)
        tuned = finetune(source.head, features, labels, shots=args.shots, seed=args.seed, config=config,
                         progress=not args.no_progress)
        source.write(tuned, out, args.overwrite)
    rec = tuned.latest_record()
    info = rec["finetune"]
    shots = f"{info['shots']} per sub" if info["shots"] else "all"
    print(f"fine-tuned the {len(rec['subs'])} sub rows of {rec['coarse']!r} on {info['clips']} clips ({shots}, seed {info['seed']}): "
          f"{info['epochs']} epochs, {info['steps']} steps, best smoothed loss {info['loss_ema']:.4f} at epoch {info['best_epoch']}; "
          f"wrote {out}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from catsplit.inspection import inspect_report

    head = load_head_arg(args)
    report = inspect_report(head, args.coarse, read_subs(args))
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
        if rec.get("op") == "split":  # a checked record: these fields are there (check_history)
            print(f"  {rec['op']} {rec['coarse']!r} -> {rec['subs']} ({rec['method']}, {rec['mode']})")
        else:  # a record of another kind is kept as it is: shown as it is
            print(f"  {rec.get('op', '(no op)')}: {json.dumps(rec, ensure_ascii=False)[:200]}")
    return 0


def add_commands(sub: Any) -> None:
    """Register split, unsplit, finetune and inspect on the `catsplit` parser's subparsers."""
    p = sub.add_parser("split", help="split a class into fine subclasses")
    head_args(p)
    model_args(p)
    target_args(p, required=True)
    split_args(p)
    # The defaults are the retrieval method's own (read from its config, not repeated here).
    p.add_argument("--alpha", type=float, default=RetrievalConfig.alpha, help="retrieval: weight of modifier similarity")
    p.add_argument("--beta", type=float, default=RetrievalConfig.beta, help="retrieval: weight of label similarity")
    p.add_argument("--raw-modifiers", action="store_true",
                   help="retrieval, alignment: encode modifier texts as written (default: 'from left to right' is "
                   "encoded as 'to the right'; see SplitConfig.normalise_modifiers)")
    p.add_argument("--calibrate", choices=["scale"],
                   help="flat splits: rescale every sub row to the coarse row's norm, locality calibration without "
                   "data (recorded in the edit; with clips of other classes use `catsplit refine --others`)")
    output_args(p, out_help=MODEL_OUT_HELP, overwrite_help=REPLACE_INPUT_HELP)
    p.set_defaults(func=cmd_split)

    p = sub.add_parser("unsplit", help="undo the latest split")
    head_args(p)
    model_args(p)
    p.add_argument("--coarse", required=True, help="the label whose split to undo")
    output_args(p, out_help=MODEL_OUT_HELP)
    p.set_defaults(func=cmd_unsplit)

    p = sub.add_parser("finetune", help="fine-tune the sub rows of the latest split on labelled clip features")
    p.add_argument("head", help="catsplit head file or model whose latest edit is a split")
    model_args(p)
    p.add_argument("features", help=".npz (arrays 'features' [N, D] and 'labels' [N]), .npy [N, D], or .safetensors "
                   "(tensor 'features', optional integer tensor 'labels')")
    p.add_argument("--labels", help="the clips' labels, one per feature row: JSON list (label strings or indices) or one "
                   "label per line; replaces labels stored in FEATURES")
    p.add_argument("--shots", type=int, help="use K clips per sub (sampled with --seed; error if a sub has fewer); default all")
    seed_arg(p)
    # The training defaults are FinetuneConfig's, so the command and the Python API cannot drift apart.
    p.add_argument("--lr", type=float, default=FinetuneConfig.lr, help="AdamW learning rate")
    p.add_argument("--weight-decay", type=float, default=FinetuneConfig.weight_decay)
    p.add_argument("--batch-size", type=int, default=FinetuneConfig.batch_size)
    p.add_argument("--max-epochs", type=int, default=FinetuneConfig.max_epochs,
                   help="cap; early stopping usually ends sooner")
    p.add_argument("--patience", type=int, default=FinetuneConfig.patience,
                   help="epochs without a drop of the smoothed loss")
    output_args(p, out_help=MODEL_OUT_HELP, overwrite_help=REPLACE_INPUT_HELP)
    progress_arg(p)
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("inspect", help="show labels, inferred groups and modifiers, history")
    head_args(p)
    model_args(p, head_only=False)
    target_args(p, required=False)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_inspect)
