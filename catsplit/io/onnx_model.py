"""ONNX model files, checked: the one reader of .onnx files for every command and API (edit, predict, Triton,
the ONNX text encoder).

`load_model` parses the file and checks every initializer before anything uses it: a known element type,
dims >= 0, and data exactly as long as the dims say (inline raw data, typed fields, or an external-data
file beside the model, never outside its folder, never a name with a NUL byte). `initializer_array` reads
one initializer as float32, refusing what is not a float tensor. Whatever the bytes, the result is a
model whose tensors can be read, or a CatsplitError naming the file, the tensor and the problem.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from catsplit.errors import CatsplitError
from catsplit.optional import require_onnx

# bits per element of each TensorProto data type (STRING has none: its elements are counted)
TYPE_BITS = {
    1: 32, 2: 8, 3: 8, 4: 16, 5: 16, 6: 32, 7: 64, 9: 8, 10: 16, 11: 64, 12: 32, 13: 64, 14: 64, 15: 128, 16: 16,
    17: 8, 18: 8, 19: 8, 20: 8, 21: 4, 22: 4, 23: 4, 24: 8, 25: 2, 26: 2, 27: 6, 28: 6,
}
STRING = 8
FLOAT_TYPES = (1, 10, 11, 16)  # FLOAT, FLOAT16, DOUBLE, BFLOAT16: what a classifier's weight may be


def load_model(path: str | os.PathLike, *, external_data: bool = True, purpose: str = "editing ONNX models") -> Any:
    """Read and check an ONNX model (see the module docstring).

    Args:
        path: the .onnx file.
        external_data: load tensors kept in external-data files beside the model (else such a model is refused).
        purpose: what needs onnx, for the message when it is missing.
    Returns:
        the onnx ModelProto, external data loaded.
    """
    onnx = require_onnx(purpose)
    path = Path(path)
    if not path.is_file():
        raise CatsplitError(f"no ONNX model at {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # DecodeError and friends
        raise CatsplitError(f"{path} is not a readable ONNX model ({type(exc).__name__}: {first_line(exc)})") from None
    check_text(model, path)
    check_value_types(model, path)
    external = []
    for t in model.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            external.append(t)
        else:
            check_tensor(t, path)
    if external and not external_data:
        raise CatsplitError(
            f"{path} keeps tensors {[t.name for t in external][:3]} in external data files; the repository gets one "
            "model.onnx. Write the model as a single file (to_onnx and edit_onnx do)"
        )
    if external:
        folder = path.parent.resolve()
        for t in external:
            _check_external(t, path, folder)
        try:
            onnx.external_data_helper.load_external_data_for_model(model, str(folder))
        except Exception as exc:  # checked above; what is left is an OS error while reading
            raise CatsplitError(f"{path}: cannot read its external data ({type(exc).__name__}: {first_line(exc)})") from None
    return model


def check_model_file(path: str | os.PathLike, purpose: str) -> None:
    """`load_model`'s checks for a model another runtime (onnxruntime) loads itself."""
    load_model(path, purpose=purpose)


def check_text(model: Any, where: str | os.PathLike) -> None:
    """Every name catsplit reads (metadata, nodes, tensors, inputs, outputs, opset domains) is UTF-8 text.

    Protobuf parses a string field holding other bytes without complaint and hands it out as `bytes`.
    """
    graph = model.graph
    fields = [("metadata key", p.key) for p in model.metadata_props] + [("metadata value", p.value) for p in model.metadata_props]
    fields += [("opset domain", o.domain) for o in model.opset_import]
    for n in graph.node:
        fields += [("node name", n.name), ("node type", n.op_type), ("node domain", n.domain)]
        fields += [("node input", i) for i in n.input] + [("node output", o) for o in n.output]
        fields += [("attribute name", a.name) for a in n.attribute]
    for v in list(graph.input) + list(graph.output) + list(graph.value_info):
        fields.append(("tensor name", v.name))
    for t in graph.initializer:
        fields.append(("initializer name", t.name))
        fields += [("external-data field", e.key) for e in t.external_data] + [("external-data field", e.value) for e in t.external_data]
    for what, value in fields:
        if not isinstance(value, str):
            raise CatsplitError(f"{where}: a {what} is not UTF-8 text ({bytes(value)[:40]!r}); the model is damaged")


def check_value_types(model: Any, where: str | os.PathLike) -> None:
    """Every graph input, output and value_info typed as a tensor has an element type ONNX defines
    (onnx.checker raises a bare ValueError on type 0, UNDEFINED, wherever the model is checked later)."""
    graph = model.graph
    for v in list(graph.input) + list(graph.output) + list(graph.value_info):
        if v.type.HasField("tensor_type"):
            elem = v.type.tensor_type.elem_type
            if elem not in TYPE_BITS and elem != STRING:
                raise CatsplitError(
                    f"{where}: tensor {v.name!r} is declared with element type {elem}, which ONNX does not define "
                    "(0 is UNDEFINED); the model is damaged"
                )


def count(t: Any, where: str | os.PathLike) -> int:
    """Elements of tensor `t` by its dims (each >= 0)."""
    dims = list(t.dims)
    if any(d < 0 for d in dims):
        raise CatsplitError(f"{where}: tensor {t.name!r} has dims {dims}; sizes must be >= 0")
    return math.prod(dims)


def check_tensor(t: Any, where: str | os.PathLike) -> None:
    """An inline tensor whose element type is known and whose data is exactly as long as its dims say."""
    n = count(t, where)
    if t.data_type not in TYPE_BITS and t.data_type != STRING:
        raise CatsplitError(
            f"{where}: tensor {t.name!r} has element type {t.data_type}, which ONNX does not define (0 is UNDEFINED); "
            "the model is damaged"
        )
    if t.data_type == STRING:
        if len(t.string_data) != n:
            raise CatsplitError(f"{where}: string tensor {t.name!r} holds {len(t.string_data)} strings, its dims say {n}")
        return
    if t.HasField("raw_data"):
        need = math.ceil(n * TYPE_BITS[t.data_type] / 8)
        got = len(t.raw_data)
        if got != need:
            raise CatsplitError(
                f"{where}: tensor {t.name!r} of dims {list(t.dims)} needs {need} bytes of data but holds {got}; the model "
                "is truncated or damaged"
            )
        return
    numpy_helper = require_onnx().numpy_helper
    try:  # typed fields (float_data, int32_data, ...): rare, small; onnx checks the count as it converts
        numpy_helper.to_array(t)
    except Exception as exc:
        raise CatsplitError(f"{where}: tensor {t.name!r} has data that does not fit its dims {list(t.dims)} "
                            f"({type(exc).__name__}: {first_line(exc)})") from None


def _check_external(t: Any, path: Path, folder: Path) -> None:
    """External data: a file beside the model (inside its folder), with an offset and length inside that file."""
    info = {e.key: e.value for e in t.external_data}
    location = info.get("location", "")
    if not location or "\0" in location:
        raise CatsplitError(f"{path}: tensor {t.name!r} names external data {location!r}, which is not a file name")
    try:
        target = (folder / location).resolve()
    except (OSError, RuntimeError):  # too long, a symlink loop
        raise CatsplitError(f"{path}: tensor {t.name!r} names external data {location[:80]!r}, which is not a file name") from None
    if os.path.isabs(location) or folder not in target.parents:
        raise CatsplitError(
            f"{path}: tensor {t.name!r} points at external data {location!r} outside the model's folder; "
            "catsplit only reads external data stored beside the model"
        )
    if not target.is_file():
        raise CatsplitError(f"{path}: external data file {location!r} of tensor {t.name!r} is missing")
    numbers = {}
    for key in ("offset", "length"):
        if key in info:
            if not info[key].isdigit():
                raise CatsplitError(f"{path}: tensor {t.name!r} has external-data {key} {info[key]!r}; expected an integer >= 0")
            numbers[key] = int(info[key])
    if t.data_type not in TYPE_BITS:
        raise CatsplitError(f"{path}: external tensor {t.name!r} has element type {t.data_type}, which catsplit cannot read")
    need = math.ceil(count(t, path) * TYPE_BITS[t.data_type] / 8)
    offset, size = numbers.get("offset", 0), target.stat().st_size
    length = numbers.get("length", size - offset)
    if length != need or offset + length > size:
        raise CatsplitError(
            f"{path}: tensor {t.name!r} of dims {list(t.dims)} needs {need} bytes; its external data {location!r} gives "
            f"{length} from offset {offset} of a {size}-byte file"
        )


def initializer_array(t: Any, where: str | os.PathLike) -> np.ndarray:
    """A float initializer (FLOAT, FLOAT16, DOUBLE, BFLOAT16) as float32; any other element type is refused."""
    onnx = require_onnx()
    if t.data_type not in FLOAT_TYPES:
        name = onnx.TensorProto.DataType.Name(t.data_type) if t.data_type in onnx.TensorProto.DataType.values() else t.data_type
        raise CatsplitError(f"{where}: tensor {t.name!r} has element type {name}; a classifier's weights are floats")
    check_tensor(t, where)
    try:
        return onnx.numpy_helper.to_array(t).astype(np.float32)
    except Exception as exc:
        raise CatsplitError(f"{where}: tensor {t.name!r} cannot be read ({type(exc).__name__}: {first_line(exc)})") from None


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__
