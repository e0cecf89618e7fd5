"""A Triton Inference Server model repository for an exported model.

    <repo>/<name>/config.pbtxt     platform onnxruntime_onnx, inputs/outputs from the graph
    <repo>/<name>/1/model.onnx     the model
    <repo>/<name>/labels.txt       one label per line, for Triton's classification extension
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from catsplit.errors import CatsplitError
from catsplit.export.graph import read_metadata
from catsplit.export.huggingface import model_labels
from catsplit.io.atomic import make_folder, rename_new, swap_in
from catsplit.io.keys import KEY_HEAD
from catsplit.io.onnx_model import load_model
from catsplit.io.readers import parse_json

INSTANCES = {"gpu": "KIND_GPU", "cpu": "KIND_CPU"}
NAME = re.compile(r"[A-Za-z0-9_.-]+")  # a model name: a folder name and a config.pbtxt string, safe in both
# ONNX TensorProto element type -> Triton data type
TRITON_TYPES = {
    1: "TYPE_FP32", 2: "TYPE_UINT8", 3: "TYPE_INT8", 4: "TYPE_UINT16", 5: "TYPE_INT16", 6: "TYPE_INT32",
    7: "TYPE_INT64", 9: "TYPE_BOOL", 10: "TYPE_FP16", 11: "TYPE_FP64", 12: "TYPE_UINT32", 13: "TYPE_UINT64",
    16: "TYPE_BF16",
}


def triton(
    path: str | os.PathLike,
    repo_dir: str | os.PathLike,
    *,
    name: str,
    max_batch_size: int,
    instance: str = "gpu",
    count: int = 1,
    overwrite: bool = False,
) -> Path:
    """Write a Triton model repository entry for the ONNX model at `path`.

    Args:
        path: an .onnx file exported or edited by catsplit (its labels are in the metadata), or one with
            a transformers config.json beside it (labels from its id2label).
        repo_dir: the model repository (created if missing); the model goes to `repo_dir/name`.
        name: the model's name in Triton.
        max_batch_size: largest batch Triton may form (dynamic batching is on); the graph's first
            axis must be dynamic.
        instance: "gpu" or "cpu" (instance_group kind).
        count: model instances per device.
        overwrite: replace an existing `repo_dir/name`.
    Returns:
        the model's folder.
    """
    if not isinstance(name, str) or not NAME.fullmatch(name) or name in (".", ".."):
        raise CatsplitError(
            f"name must be a plain folder name of letters, digits, '_', '.' or '-', such as 'video_classifier'; got {name!r}"
        )
    if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 1:
        raise CatsplitError(f"max_batch_size must be a positive integer, got {max_batch_size!r}")
    if instance not in INSTANCES:
        raise CatsplitError(f"instance must be 'gpu' or 'cpu', got {instance!r}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise CatsplitError(f"count must be a positive integer, got {count!r}")
    path = Path(path)
    model = load_model(path, external_data=False, purpose="a Triton model repository")  # checked, one file
    labels = model_labels(read_metadata(model), path, str(path))
    config = config_text(model, name=name, max_batch_size=max_batch_size, instance=instance, count=count, where=str(path))
    scores = _scores_output(model, str(path))
    if scores is not None:
        dims = _dims(scores, str(path))
        if dims != [len(labels)]:
            raise CatsplitError(
                f"{path}: the output {scores.name!r} has shape {dims} per clip but the metadata names {len(labels)} labels"
            )

    repo = make_folder(repo_dir, "repo_dir", "give a model repository folder you can write (CLI: --repo)")
    final = repo / name
    if final.exists() and not overwrite:
        raise CatsplitError(f"{final} exists; choose another name or pass overwrite=True (CLI: --overwrite)")
    # Build the folder beside its final place, then rename it in: Triton never sees half a model.
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=repo))
    except OSError as exc:
        raise CatsplitError(f"cannot write in the model repository {repo} ({exc.strerror or exc}); give a folder you can write") from None
    try:
        (staging / "1").mkdir()
        shutil.copyfile(path, staging / "1" / "model.onnx")
        (staging / "labels.txt").write_text("".join(f"{lab}\n" for lab in labels), encoding="utf-8")
        (staging / "config.pbtxt").write_text(config, encoding="utf-8")
        os.chmod(staging, 0o755)
        if overwrite:
            old = swap_in(staging, final)  # one atomic exchange where the system has it: final is never missing
            if old is not None:
                shutil.rmtree(old)
        else:
            try:
                rename_new(staging, final)  # refuses a folder that appeared since the check above
            except FileExistsError:
                raise CatsplitError(f"{final} exists; choose another name or pass overwrite=True (CLI: --overwrite)") from None
    except OSError as exc:  # disk full, permissions changed meanwhile: what was there stays
        raise CatsplitError(f"cannot write {final} ({exc.strerror or exc}); the repository is as it was") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return final


def config_text(model: Any, *, name: str, max_batch_size: int, instance: str, count: int = 1, where: str = "model") -> str:
    """config.pbtxt for `model`: every graph input and output with its type and per-clip dims (a hierarchical
    head's int64 top-1 too); the scores output carries `label_filename`."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in initializers]
    scores = _scores_output(model, where)
    lines = [
        f"name: {_quote(name)}",
        'platform: "onnxruntime_onnx"',
        f"max_batch_size: {max_batch_size}",
        "input [",
        ",\n".join(_tensor(v, where) for v in inputs),
        "]",
        "output [",
        ",\n".join(_tensor(v, where, labels=v is scores) for v in model.graph.output),
        "]",
        "dynamic_batching { }",
        f"instance_group [ {{ count: {count} kind: {INSTANCES[instance]} }} ]",
    ]
    return "\n".join(lines) + "\n"


def _tensor(v: Any, where: str, labels: bool = False) -> str:
    t = v.type.tensor_type
    if t.elem_type not in TRITON_TYPES:
        raise CatsplitError(f"{where}: tensor {v.name!r} has ONNX element type {t.elem_type}, which Triton cannot serve")
    dims = _dims(v, where)
    extra = '\n    label_filename: "labels.txt"' if labels else ""
    if not dims:  # [batch] only: Triton needs non-empty dims, so [ 1 ] reshaped to the model's [ ] per clip
        dims, extra = [1], extra + "\n    reshape: { shape: [ ] }"
    shown = ", ".join(str(d) for d in dims)
    return f'  {{\n    name: {_quote(v.name)}\n    data_type: {TRITON_TYPES[t.elem_type]}\n    dims: [ {shown} ]{extra}\n  }}'


def _scores_output(model: Any, where: str) -> Any:
    """The graph output holding one column per label: the one catsplit.head names as `output`, else the only
    output; None when neither is there."""
    outputs = list(model.graph.output)
    meta = read_metadata(model)
    if KEY_HEAD in meta:
        desc = parse_json(meta[KEY_HEAD], f"{where}: metadata {KEY_HEAD!r}")
        name = desc.get("output") if isinstance(desc, dict) else None
        named = [o for o in outputs if o.name == name]
        if named:
            return named[0]
    return outputs[0] if len(outputs) == 1 else None


def _quote(text: str) -> str:
    """A protobuf text-format string: quotes, backslashes and control characters escaped (tensor names are free text)."""

    def escape(ch: str) -> str:
        if ch in '"\\':
            return "\\" + ch
        return f"\\{ord(ch):03o}" if ord(ch) < 32 or ord(ch) == 127 else ch  # octal, e.g. \012 for a newline

    return '"' + "".join(escape(ch) for ch in text) + '"'


def _dims(v: Any, where: str) -> list[int]:
    """Per-item dims (the batch axis dropped; -1 for other dynamic axes). The batch axis must be dynamic."""
    shape = v.type.tensor_type.shape.dim
    if len(shape) < 1:
        raise CatsplitError(f"{where}: tensor {v.name!r} has no batch axis; Triton batching needs one")
    if shape[0].HasField("dim_value"):
        raise CatsplitError(
            f"{where}: tensor {v.name!r} has a fixed batch of {shape[0].dim_value}; export with a dynamic batch axis "
            "(catsplit.export.to_onnx does)"
        )
    return [d.dim_value if d.HasField("dim_value") else -1 for d in shape[1:]]
