"""The deployment commands of `catsplit`: export, predict, edit-onnx, triton (over catsplit.export).

    catsplit export HEAD -o model.onnx [--backbone pkg.module:factory --backbone-weights W --example-shape 2,16,32,32,3]
    catsplit predict model.onnx clips.npy [--device auto|cuda|cpu] [--top K] [--json]
    catsplit edit-onnx model.onnx --coarse C --sub S1 --sub S2 -o edited.onnx [--labels labels.txt]
    catsplit triton model.onnx --repo models/ --name clf --max-batch-size 32 [--instance gpu|cpu]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from catsplit.errors import CatsplitError

DTYPES = ("uint8", "float32", "float16", "int64")


def load_backbone(spec: str, weights: str | None = None, prefix: str = "") -> Any:
    """`module:attr` or `file.py:attr` -> a torch module (attr: a module, or a callable returning one).

    Args:
        spec: where the backbone is defined, e.g. `catsplit.bench.models:Backbone`.
        weights: optional state dict (safetensors, or a PyTorch file read with weights_only=True).
        prefix: keep only keys starting with it, stripped (e.g. `backbone.` inside a whole model).
    """
    import torch

    where, _, attr = spec.partition(":")
    if not where or not attr:
        raise CatsplitError(f"--backbone must look like package.module:name or file.py:name, got {spec!r}")
    try:
        if where.endswith(".py"):
            if not Path(where).is_file():
                raise CatsplitError(f"--backbone file {where} not found")
            loader = importlib.util.spec_from_file_location(Path(where).stem, where)
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
        else:
            module = _import_from_cwd(where)
    except ImportError as exc:
        raise CatsplitError(f"cannot import {where!r} for --backbone: {exc}") from None
    if not hasattr(module, attr):
        raise CatsplitError(f"{where} has no {attr!r}; check --backbone {spec}")
    obj = getattr(module, attr)
    backbone = obj if isinstance(obj, torch.nn.Module) else obj()
    if not isinstance(backbone, torch.nn.Module):
        raise CatsplitError(f"--backbone {spec} gave {type(backbone).__name__}, not a torch.nn.Module")
    if weights:
        state = _read_state(Path(weights))
        if prefix:
            state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            if not state:
                raise CatsplitError(f"no tensor in {weights} starts with --weights-prefix {prefix!r}")
        try:
            backbone.load_state_dict(state)
        except RuntimeError as exc:
            raise CatsplitError(f"--backbone-weights {weights} do not fit {spec}: {str(exc).splitlines()[0]}") from None
    return backbone.eval()


def _import_from_cwd(name: str) -> Any:
    """Import a module as `python -m` would: the current folder first on sys.path (the console script lacks it)."""
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def _read_state(path: Path) -> dict:
    import torch

    if not path.is_file():
        raise CatsplitError(f"--backbone-weights file {path} not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CatsplitError(f"cannot read {path} as a state dict ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict):
        raise CatsplitError(f"{path} holds a {type(state).__name__}, not a state dict")
    return state


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise CatsplitError(f"--example-shape must be integers separated by commas, like 2,16,32,32,3; got {text!r}") from None
    if not shape or min(shape) < 1:
        raise CatsplitError(f"--example-shape needs positive sizes, got {text!r}")
    return shape


def read_batch(path: str) -> np.ndarray:
    """A batch from .npy, or from .npz (the array `clips`, or its only array)."""
    p = Path(path)
    if not p.is_file():
        raise CatsplitError(f"input file {p} not found")
    try:
        data = np.load(p, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise CatsplitError(f"{p} is not a .npy/.npz array file ({exc})") from None
    if isinstance(data, np.ndarray):
        return data
    names = list(data.keys())
    if "clips" in names:
        return data["clips"]
    if len(names) == 1:
        return data[names[0]]
    raise CatsplitError(f"{p} holds arrays {names}; name the input `clips`")


def cmd_export(args: argparse.Namespace) -> int:
    import torch

    from catsplit.export import to_onnx
    from catsplit.headfile import load_head

    head = load_head(args.head, key=args.key, labels=args.labels)
    backbone = load_backbone(args.backbone, args.backbone_weights, args.weights_prefix) if args.backbone else None
    if args.example_shape:
        shape = _shape(args.example_shape)
    elif backbone is None:
        shape = (2, head.dim)
    else:
        raise CatsplitError("--backbone needs --example-shape, the shape of a batch of clips (e.g. 2,16,32,32,3)")
    dtype = getattr(torch, args.example_dtype or ("float32" if backbone is None else "uint8"))
    g = torch.Generator().manual_seed(0)
    if dtype.is_floating_point:
        example = torch.randn(shape, generator=g).to(dtype)
    else:
        example = torch.randint(0, 256, shape, generator=g).to(dtype)
    out = to_onnx(
        backbone, head, args.out, example, opset=args.opset, verify=not args.no_verify,
        input_name=args.input_name or ("clips" if backbone is not None else "features"), overwrite=args.overwrite,
    )
    print(f"wrote {out} ({len(head.labels)} labels{', verified' if not args.no_verify else ''})")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from catsplit.export import predict, session

    if args.top < 1:
        raise CatsplitError(f"--top must be at least 1 (labels shown per clip), got {args.top}")
    sess = session(args.model, args.device, strict=args.strict)
    labels, probs = predict(sess, read_batch(args.input), batch_size=args.batch_size)
    names = json.loads(sess.get_modelmeta().custom_metadata_map["catsplit.labels"])
    rows = []
    for i, p in enumerate(probs):
        top = np.argsort(-p, kind="stable")[: args.top]
        rows.append({"clip": i, "label": labels[i], "top": [{"label": names[j], "probability": float(p[j])} for j in top]})
    if args.json:
        print(json.dumps({"providers": sess.get_providers(), "predictions": rows}, ensure_ascii=False, indent=1))
    else:
        for r in rows:
            print(f"{r['clip']}\t" + "\t".join(f"{t['label']} ({t['probability']:.3f})" for t in r["top"]))
    return 0


def cmd_edit_onnx(args: argparse.Namespace) -> int:
    from catsplit.cli import _read_json, _subs
    from catsplit.encoders import load_text_encoder
    from catsplit.export import edit_onnx

    encoder = None if args.method == "coarse" else load_text_encoder(args.encoder)
    out = edit_onnx(
        args.model, encoder, args.coarse, _subs(args), args.out, labels=args.labels, node=args.node,
        overwrite=args.overwrite, method=args.method, mode=args.mode, seed=args.seed,
        modifiers=_read_json(args.modifiers, "modifiers"), groups=_read_json(args.groups, "groups"),
    )
    print(f"wrote {out}: {args.coarse!r} -> {_subs(args)} ({args.method}, {args.mode})")
    return 0


def cmd_triton(args: argparse.Namespace) -> int:
    from catsplit.export import triton

    folder = triton(args.model, args.repo, name=args.name, max_batch_size=args.max_batch_size,
                    instance=args.instance, count=args.count, overwrite=args.overwrite)
    print(f"wrote {folder} (config.pbtxt, 1/model.onnx, labels.txt)")
    return 0


def add_commands(sub: Any) -> None:
    """Register the deployment commands on the `catsplit` parser's subparsers."""
    from catsplit.cli import _target_args, split_args

    p = sub.add_parser("export", help="head (+ backbone) -> one verified ONNX file")
    p.add_argument("head", help="head file (catsplit .safetensors, or a checkpoint with --key/--labels)")
    p.add_argument("--key", help="name of the linear layer inside a checkpoint")
    p.add_argument("--labels", help="labels file for foreign checkpoints")
    p.add_argument("--backbone", help="module:name or file.py:name of a torch module (or a factory) giving features [N, D]; "
                   "without it the graph takes features")
    p.add_argument("--backbone-weights", help="state dict for the backbone (.safetensors, or PyTorch weights)")
    p.add_argument("--weights-prefix", default="", help="use only the state-dict keys with this prefix, stripped (e.g. backbone.)")
    p.add_argument("--example-shape", help="shape of an example batch, e.g. 2,16,32,32,3 (default with no backbone: 2,D)")
    p.add_argument("--example-dtype", choices=DTYPES, help="dtype of the example batch (default uint8 with a backbone)")
    p.add_argument("--input-name", help="graph input name (default clips, or features without a backbone)")
    p.add_argument("--opset", type=int)
    p.add_argument("--no-verify", action="store_true", help="skip onnx.checker and the parity check against torch")
    p.add_argument("-o", "--out", required=True, help="output .onnx")
    p.add_argument("--overwrite", action="store_true")
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
    p.add_argument("model", help="source .onnx")
    _target_args(p, required=True)
    split_args(p)
    p.add_argument("--labels", help="labels file, when the model's metadata has none")
    p.add_argument("--node", help="name of the classifier node, when several match")
    p.add_argument("-o", "--out", required=True, help="output .onnx")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_edit_onnx)

    p = sub.add_parser("triton", help="write a Triton Inference Server model repository entry")
    p.add_argument("model", help=".onnx exported or edited by catsplit")
    p.add_argument("--repo", required=True, help="model repository folder")
    p.add_argument("--name", required=True, help="model name in Triton")
    p.add_argument("--max-batch-size", type=int, required=True)
    p.add_argument("--instance", default="gpu", choices=["gpu", "cpu"])
    p.add_argument("--count", type=int, default=1, help="instances per device")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_triton)
