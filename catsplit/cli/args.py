"""Argument groups several `catsplit` commands share, and the small readers of what they parse.

Each group adds its arguments in the order `--help` lists them; help texts that differ between
commands are parameters, so every command's help stays as it was.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from catsplit.checks import MODES, ORDERS
from catsplit.errors import CatsplitError
from catsplit.io.readers import read_json, read_lines
from catsplit.methods.registry import METHODS

HEAD_HELP = ("head file or model: catsplit .safetensors, a Hugging Face / timm model folder, or any safetensors, "
             "PyTorch, mmaction2 or PyTorchVideo checkpoint")
KEY_HELP = "name of the linear layer inside a checkpoint, e.g. head.fc (found by its name when omitted)"
LABELS_HELP = ("labels file for models without labels (JSON list, {label: index}, {index: label}, config.json, "
               "'index name' lines, or one per line)")
TRUST_HELP = ("open a training checkpoint that weights_only=True refuses (timm train.py, mmengine): its unknown "
              "classes become inert placeholders; nothing from the file runs")
HEAD_ONLY_HELP = "write only the edited head (a catsplit .safetensors file), not the whole model"
MODEL_OUT_HELP = "output: the model in its own format (a folder for a folder), or a .safetensors head file for a head"
SPLIT_ENCODER_HELP = "text encoder folder (tokenizer.json + model.onnx or model.safetensors); default MiniLM"
ENCODER_HELP = "text encoder folder; default MiniLM"
SAFETENSORS_OUT_HELP = "output .safetensors"
ONNX_OUT_HELP = "output .onnx"
REPLACE_INPUT_HELP = "replace --out if it exists (also the input file)"


# --- argument groups ----------------------------------------------------------------------------


def positive_int(text: str) -> int:
    """argparse type of counts such as --seeds: an integer >= 1 (0 or -1 would run a default or nothing)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def head_args(p: argparse.ArgumentParser, *, head_help: str = HEAD_HELP, key_help: str = KEY_HELP,
              labels_help: str = LABELS_HELP) -> None:
    """HEAD, --key, --labels: a head file, or a foreign checkpoint's linear layer and its labels."""
    p.add_argument("head", help=head_help)
    p.add_argument("--key", help=key_help)
    p.add_argument("--labels", help=labels_help)


def model_args(p: argparse.ArgumentParser, *, head_only: bool = True) -> None:
    """--trust-checkpoint (and --head-only): how a model in its own format is read and written."""
    p.add_argument("--trust-checkpoint", action="store_true", help=TRUST_HELP)
    if head_only:
        p.add_argument("--head-only", action="store_true", help=HEAD_ONLY_HELP)


def target_args(p: argparse.ArgumentParser, required: bool) -> None:
    """--coarse, --sub, --subs-file: which label to split, into what (read with `read_subs`)."""
    p.add_argument("--coarse", required=required, help="the label to split")
    p.add_argument("--sub", action="append", help="a new fine label (repeat, in output order)")
    p.add_argument("--subs-file", help="file with one new fine label per line")


def method_arg(p: argparse.ArgumentParser) -> None:
    """--method, one of the registered zero-shot methods (in registration order)."""
    p.add_argument("--method", default="alignment", choices=list(METHODS))


def encoder_arg(p: argparse.ArgumentParser, help: str = ENCODER_HELP) -> None:
    """--encoder: a text encoder folder; None loads the default."""
    p.add_argument("--encoder", help=help)


def seed_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0)


def split_args(p: argparse.ArgumentParser) -> None:
    """How to split: method, mode, structure overrides, encoder, seed (split and edit-onnx)."""
    method_arg(p)
    p.add_argument("--mode", default="flat", choices=list(MODES))
    p.add_argument("--order", default="append", choices=list(ORDERS),
                   help="append: subs after the other classes; keep: the first sub takes the coarse class's index, "
                   "the others are appended, so no other class changes index")
    p.add_argument("--modifiers", help="JSON file: label -> modifier text (overrides inference)")
    p.add_argument("--groups", help="JSON file: group text -> member labels (overrides inference)")
    encoder_arg(p, help=SPLIT_ENCODER_HELP)
    seed_arg(p)


def output_args(p: argparse.ArgumentParser, *, out_help: str | None = None, overwrite_help: str | None = None) -> None:
    """-o/--out (required) and --overwrite."""
    p.add_argument("-o", "--out", required=True, help=out_help)
    overwrite_arg(p, help=overwrite_help)


def overwrite_arg(p: argparse.ArgumentParser, help: str | None = None) -> None:
    p.add_argument("--overwrite", action="store_true", help=help)


def progress_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true")


# --- readers of parsed arguments ----------------------------------------------------------------


def load_head_arg(args: argparse.Namespace) -> Any:
    """The head that `head_args` name."""
    from catsplit import load_head

    return load_head(args.head, key=args.key, labels=args.labels, trust_checkpoint=getattr(args, "trust_checkpoint", False))


def read_subs(args: argparse.Namespace) -> list[str]:
    """The new fine labels of `target_args`: every --sub, then the lines of --subs-file."""
    subs = list(args.sub or [])
    if args.subs_file:
        subs += read_lines(args.subs_file, "subs")
    return subs


def read_json_option(path: str | None, what: str) -> Any:
    """The JSON file an option names (e.g. --modifiers), or None when it was not given."""
    return None if path is None else read_json(path, what)


def out_path(args: argparse.Namespace) -> Path:
    """--out, refused when it is the input HEAD unless --overwrite was given."""
    from catsplit.io.atomic import checked_path, resolved

    out = checked_path(args.out, "--out")
    if resolved(out) == resolved(checked_path(args.head, "HEAD")) and not args.overwrite:
        raise CatsplitError(f"--out {out} is the input file; pass --overwrite to replace it, or write elsewhere")
    return out
