"""The deployment commands of `catsplit`: export, predict, edit-onnx, triton (over catsplit.export).

    catsplit export HEAD -o model.onnx [--backbone pkg.module:factory --backbone-weights W --example-shape 2,16,32,32,3]
    catsplit predict model.onnx clips.npy [--device auto|cuda|cpu] [--top K] [--json]
    catsplit edit-onnx model.onnx --coarse C --sub S1 --sub S2 -o edited.onnx [--labels labels.txt]
    catsplit triton model.onnx --repo models/ --name clf --max-batch-size 32 [--instance gpu|cpu]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from catsplit.cli.args import (
    ONNX_OUT_HELP, head_args, load_head_arg, output_args, overwrite_arg, read_json_option, read_subs, split_args,
    target_args,
)
from catsplit.errors import CatsplitError

DTYPES = ("uint8", "float32", "float16", "int64")


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise CatsplitError(f"--example-shape must be integers separated by commas, like 2,16,32,32,3; got {text!r}") from None
    if not shape or min(shape) < 1:
        raise CatsplitError(f"--example-shape needs positive sizes, got {text!r}")
    return shape


def cmd_export(args: argparse.Namespace) -> int:
    import torch

    from catsplit.export import to_onnx
    from catsplit.export.backbone import load_backbone
    from catsplit.io.atomic import check_destination

    check_destination(args.out, overwrite=args.overwrite, example="model.onnx")  # before loading and tracing
    head = load_head_arg(args)
    backbone = load_backbone(args.backbone, args.backbone_weights, args.weights_prefix) if args.backbone else None
    if args.example_shape:
        shape = _shape(args.example_shape)
    elif backbone is None:
        shape = (2, head.dim)
    else:
        raise CatsplitError("--backbone needs --example-shape, the shape of a batch of clips (e.g. 2,16,32,32,3)")
    dtype = getattr(torch, args.example_dtype or ("float32" if backbone is None else "uint8"))
    g = torch.Generator().manual_seed(0)
    try:
        if dtype.is_floating_point:
            example = torch.randn(shape, generator=g).to(dtype)
        else:
            example = torch.randint(0, 256, shape, generator=g).to(dtype)
    except (RuntimeError, MemoryError):
        raise CatsplitError(f"--example-shape {args.example_shape}: not enough memory for an example batch of that "
                            "shape; give a small batch (2 clips is enough)") from None
    out = to_onnx(
        backbone, head, args.out, example, opset=args.opset, verify=not args.no_verify,
        input_name=args.input_name or ("clips" if backbone is not None else "features"), overwrite=args.overwrite,
    )
    print(f"wrote {out} ({len(head.labels)} labels{', verified' if not args.no_verify else ''})")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from catsplit.export import predict, session, session_labels
    from catsplit.io.arrays import read_batch

    if args.top < 1:
        raise CatsplitError(f"--top must be at least 1 (labels shown per clip), got {args.top}")
    sess = session(args.model, args.device, strict=args.strict)
    labels, probs = predict(sess, read_batch(args.input), batch_size=args.batch_size)
    names = session_labels(sess)
    column = {lab: j for j, lab in enumerate(names)}
    rows = []
    for i, p in enumerate(probs):
        # the model's top-1 first (it may differ from the largest rounded probability on near-ties), then by probability
        first = column[labels[i]]
        top = [first] + [j for j in np.argsort(-p, kind="stable") if j != first][: args.top - 1]
        rows.append({"clip": i, "label": labels[i], "top": [{"label": names[j], "probability": float(p[j])} for j in top]})
    if args.json:
        print(json.dumps({"providers": sess.get_providers(), "predictions": rows}, ensure_ascii=False, indent=1))
    else:
        for r in rows:
            print(f"{r['clip']}\t" + "\t".join(f"{t['label']} ({t['probability']:.3f})" for t in r["top"]))
    return 0


def cmd_edit_onnx(args: argparse.Namespace) -> int:
    from catsplit.encoders import load_text_encoder
    from catsplit.export import split_onnx
    from catsplit.io.atomic import check_destination

    check_destination(args.out, overwrite=args.overwrite, example="model.onnx")  # before the encoder loads
    encoder = None if args.method == "coarse" else load_text_encoder(args.encoder)
    subs = read_subs(args)
    out = split_onnx(
        args.model, args.out, encoder, args.coarse, subs, labels=args.labels, node=args.node,
        overwrite=args.overwrite, method=args.method, mode=args.mode, seed=args.seed, order=args.order,
        modifiers=read_json_option(args.modifiers, "modifiers"), groups=read_json_option(args.groups, "groups"),
    )
    print(f"wrote {out}: {args.coarse!r} -> {subs} ({args.method}, {args.mode})")
    return 0


def cmd_triton(args: argparse.Namespace) -> int:
    from catsplit.export import triton

    folder = triton(args.model, args.repo, name=args.name, max_batch_size=args.max_batch_size,
                    instance=args.instance, count=args.count, overwrite=args.overwrite)
    print(f"wrote {folder} (config.pbtxt, 1/model.onnx, labels.txt)")
    return 0


def add_commands(sub: Any) -> None:
    """Register export, predict, edit-onnx and triton on the `catsplit` parser's subparsers."""
    p = sub.add_parser("export", help="head (+ backbone) -> one verified ONNX file")
    head_args(p, head_help="head file (catsplit .safetensors, or a checkpoint with --key/--labels)",
              key_help="name of the linear layer inside a checkpoint", labels_help="labels file for foreign checkpoints")
    p.add_argument("--backbone", help="module:name or file.py:name of a torch module (or a factory) giving features [N, D]; "
                   "without it the graph takes features")
    p.add_argument("--backbone-weights", help="state dict for the backbone (.safetensors, or PyTorch weights)")
    p.add_argument("--weights-prefix", default="", help="use only the state-dict keys with this prefix, stripped (e.g. backbone.)")
    p.add_argument("--example-shape", help="shape of an example batch, e.g. 2,16,32,32,3 (default with no backbone: 2,D)")
    p.add_argument("--example-dtype", choices=DTYPES, help="dtype of the example batch (default uint8 with a backbone)")
    p.add_argument("--input-name", help="graph input name (default clips, or features without a backbone)")
    p.add_argument("--opset", type=int)
    p.add_argument("--no-verify", action="store_true", help="skip onnx.checker and the parity check against torch")
    output_args(p, out_help=ONNX_OUT_HELP)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("predict", help="labels and probabilities from an exported model (onnxruntime)")
    p.add_argument("model", help=".onnx exported or edited by catsplit")
    p.add_argument("input", help=".npy batch, or .npz with an array named clips")
    p.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    p.add_argument("--strict", action="store_true", help="fail instead of warning when CUDA is asked for and missing")
    p.add_argument("--top", type=int, default=1, help="labels shown per clip")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("edit-onnx", help="split a class inside an existing ONNX model")
    p.add_argument("model", help="source .onnx, or an Optimum-style folder (model.onnx + config.json)")
    target_args(p, required=True)
    split_args(p)
    p.add_argument("--labels", help="labels file, when neither the model's metadata nor a config.json beside it has them")
    p.add_argument("--node", help="name of the classifier node, when several match")
    output_args(p, out_help="output .onnx, or a folder (ending in /) to write it into beside the edited config.json")
    p.set_defaults(func=cmd_edit_onnx)

    p = sub.add_parser("triton", help="write a Triton Inference Server model repository entry")
    p.add_argument("model", help=".onnx exported or edited by catsplit")
    p.add_argument("--repo", required=True, help="model repository folder")
    p.add_argument("--name", required=True, help="model name in Triton")
    p.add_argument("--max-batch-size", type=int, required=True)
    p.add_argument("--instance", default="gpu", choices=["gpu", "cpu"])
    p.add_argument("--count", type=int, default=1, help="instances per device")
    overwrite_arg(p)
    p.set_defaults(func=cmd_triton)
