"""Foreign PyTorch checkpoints: read with weights_only=True (or, opted in, with inert placeholders for
unknown classes), flattened to named tensors, and the classifier layer found in them.

The layer-finding rules (wrapper prefixes, known classifier names, ranking) are in
`catsplit.formats.statedict`; the opt-in reader is `catsplit.formats.unpickler`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from catsplit.errors import CatsplitError
from catsplit.formats.detect import TORCH_ZIP, file_kind
from catsplit.formats.statedict import candidates_text, layer_by_key, rank_layers, weight_stem
from catsplit.formats.unpickler import Opaque, load_trusted, refusal, torch_error
from catsplit.io.safetensors import SafetensorsReader

CHECKPOINT_SUFFIXES = {".pt", ".pth", ".bin", ".ckpt", ".tar", ".pyth"}
# the attributes of a pickled torch.nn.Module that hold its tensors and children (walked, not named)
_MODULE_PARTS = {"_parameters", "_buffers", "_modules"}


@dataclass
class Checkpoint:
    """A loaded PyTorch checkpoint: the object as loaded, and its tensors by flattened name.

    Attributes:
        obj: what torch.load returned (nested dicts; `Opaque` placeholders where trusted).
        tensors: flattened name (`state_dict.head.fc.weight`) -> tensor.
        where: flattened name -> the keys leading to it in `obj`, or None inside a placeholder (not writable).
        kind: TORCH_ZIP or PICKLE (catsplit.formats.detect), the container to write back.
    """

    path: Path
    obj: Any
    kind: str
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    where: dict[str, tuple | None] = field(default_factory=dict)


def open_checkpoint(path: Path, *, trust: bool = False, mmap: bool = False) -> Checkpoint:
    """Load a PyTorch checkpoint (zip or legacy) and flatten its tensors.

    Args:
        trust: the file's unknown classes become inert placeholders (`catsplit.formats.unpickler`)
            instead of a refusal. Nothing in the file runs either way.
        mmap: map a zip checkpoint's storages instead of reading them (the tensors are views of the file).
    Raises:
        CatsplitError naming the file: refused by weights_only=True (naming the opt-in), damaged, or a bare tensor.
    """
    kind = file_kind(path)
    try:
        if trust:
            obj = load_trusted(path, mmap=mmap and kind == TORCH_ZIP)
        else:
            obj = torch.load(str(path), map_location="cpu", weights_only=True, mmap=mmap and kind == TORCH_ZIP)
    except Exception as exc:
        if trust:
            raise CatsplitError(
                f"{path} could not be loaded as a PyTorch checkpoint, even with trust_checkpoint=True "
                f"({type(exc).__name__}: {torch_error(exc)}); catsplit never runs code from a checkpoint"
            ) from None
        raise refusal(path, exc) from None
    if isinstance(obj, torch.Tensor):  # torch.save(W, path): no name says what it is, nor where a bias would be
        raise CatsplitError(
            f"{path} holds a single tensor of shape {list(obj.shape)}, not a state dict, so catsplit cannot tell which "
            "layer it is. Save the layer by name, e.g. torch.save({'weight': W, 'bias': b}, path), or build the head "
            "directly: catsplit.Head(weight=torch.load(path), labels=[...])"
        )
    ckpt = Checkpoint(path=path, obj=obj, kind=kind)
    _walk(ckpt, "", obj, (), ())
    return ckpt


MAX_NESTING = 100  # mappings inside mappings; real checkpoints nest a few levels


def _walk(ckpt: Checkpoint, prefix: str, x: Any, keys: tuple | None, above: tuple[int, ...]) -> None:
    """Flatten `x` into ckpt.tensors. A mapping that holds itself (pickle keeps the cycle) or one nested past
    MAX_NESTING is refused with a CatsplitError, never a RecursionError; values other than tensors are ignored."""
    if isinstance(x, torch.Tensor):
        ckpt.tensors[prefix] = x
        ckpt.where[prefix] = keys
        return
    state = x if isinstance(x, Mapping) else x.state if isinstance(x, Opaque) and isinstance(x.state, Mapping) else None
    if state is None:
        return
    if state is not x:  # e.g. a pickled nn.Module: readable, not writable
        _walk(ckpt, prefix, state, None, above)
        return
    if id(x) in above:
        raise CatsplitError(f"{ckpt.path}: the mapping at {prefix or 'the top'!r} contains itself; save a plain state dict")
    if len(above) >= MAX_NESTING:
        raise CatsplitError(f"{ckpt.path}: mappings nested more than {MAX_NESTING} levels deep; save a plain state dict")
    for k, v in x.items():
        name = prefix if str(k) in _MODULE_PARTS and keys is None else f"{prefix}.{k}" if prefix else str(k)
        _walk(ckpt, name, v, None if keys is None else (*keys, k), above + (id(x),))


def read_checkpoint(path: Path, *, trust: bool = False) -> dict[str, torch.Tensor]:
    """The tensors of a PyTorch checkpoint by flattened name (`{"model": {"fc": {"weight": t}}}` -> `model.fc.weight`)."""
    return open_checkpoint(path, trust=trust).tensors


def load_weights_only(path: Path) -> Any:
    """What a PyTorch file holds, unpickled with weights_only=True (never code); a CatsplitError when that fails."""
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch's message spans lines and bolds its advice: its reason, plain
        raise CatsplitError(
            f"cannot read {path} as a state dict with weights_only=True ({type(exc).__name__}: {torch_error(exc)}); "
            "catsplit never unpickles code: re-save it as a plain state dict (torch.save(model.state_dict(), path)) "
            "or as safetensors"
        ) from None


def flatten(path: Path, obj: Any) -> dict[str, torch.Tensor]:
    """The tensors of nested mappings by dotted name (`{"model": {"fc": {"weight": t}}}` -> `model.fc.weight`);
    a mapping that holds itself or one nested too deep is a CatsplitError (`_walk`). Other values are ignored."""
    ckpt = Checkpoint(path=path, obj=obj, kind="")
    _walk(ckpt, "", obj, (), ())
    return ckpt.tensors


def check_plain(path: Path, name: str, t: torch.Tensor) -> torch.Tensor:
    """`t` if it is an ordinary dense CPU tensor with memory for every element; else a CatsplitError naming it.

    Refused: sparse and other layouts, meta tensors (no data), quantized tensors, and views whose elements
    share memory (an `expand`ed tensor: a few bytes in the file that a copy would turn into terabytes).
    """
    kind = None
    if t.layout != torch.strided:
        kind = f"a {str(t.layout).removeprefix('torch.')} tensor"
    elif t.device.type != "cpu":
        kind = f"a tensor on device {t.device.type!r} (no data on the CPU)"
    elif t.is_quantized:
        kind = "a quantized tensor"
    elif t.numel() and _overlapping(t):
        kind = "a view whose elements share memory (an expanded tensor)"
    if kind is not None:
        raise CatsplitError(
            f"{path}: tensor {name!r} of shape {list(t.shape)} is {kind}; catsplit reads dense tensors only. "
            "Save it with tensor.to_dense().contiguous() (or dequantize it) first"
        )
    return t


def _overlapping(t: torch.Tensor) -> bool:
    """True when two elements of `t` share memory (stride 0 on an axis longer than 1, or strides too small)."""
    dims = sorted((st, n) for st, n in zip(t.stride(), t.shape) if n > 1)
    extent = 1
    for stride, n in dims:
        if stride < extent:
            return True
        extent = stride * n
    return False


def tensor_shapes(tensors: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape by name; for a SafetensorsReader from the header, without reading data."""
    if isinstance(tensors, SafetensorsReader):
        return {name: tensors.shape(name) for name in tensors}
    return {name: tuple(t.shape) for name, t in tensors.items()}


def locate_linear(
    path: Path, tensors: Mapping[str, torch.Tensor], key: str | None, *, n_labels: int | None = None,
    prefer: Sequence[str] = (),
) -> str:
    """The name of the classifier's weight tensor in `tensors` (`catsplit.formats.statedict` rules).

    Args:
        key: the layer (`head.fc`) or its weight tensor, wrapper prefixes tolerated; None to find it:
            a tensor named `weight`, else the best-ranked known classifier name.
        n_labels: the number of labels, when known (ranks a layer with one row per label first).
        prefer: layer names the model's format names (e.g. `classifier` for Hugging Face).
    Raises:
        CatsplitError: no such layer, none found, or several equally good (the message names them).
    """
    if key is not None:
        if not isinstance(key, str) or not key:
            raise CatsplitError(f"key must be the name of a layer or tensor, got {key!r}")
        name = layer_by_key(tensor_shapes(tensors), key)
        if name is None:
            close = [k for k in tensors if key.split(".")[-1] in k][:10]
            raise CatsplitError(
                f"{path} has no 2-D tensor named {key!r} or {key + '.weight'!r}; tensors with a similar name: "
                f"{close or list(tensors)[:10]}"
            )
        return name
    if "weight" in tensors:  # a head file's layout (its shape is Head's to check)
        return "weight"
    shapes = tensor_shapes(tensors)
    name = rank_layers(path, shapes, n_labels, prefer=prefer)
    if name is None:
        raise CatsplitError(
            f"{path} has no tensor named 'weight' and no layer with a known classifier name (classifier, head, "
            f"head.fc, fc, cls_head.fc_cls, blocks.N.proj, ...); name the classifier with key=... (CLI: --key). "
            f"{candidates_text(shapes, n_labels)}"
        )
    return name


def find_linear(
    path: Path, tensors: Mapping[str, torch.Tensor], key: str | None, *, n_labels: int | None = None,
    prefer: Sequence[str] = (),
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The weight and bias of the classifier layer (`locate_linear`).

    Only the chosen tensors are read (shapes come from the header), so a large checkpoint costs
    the memory of its classifier layer, not of the whole model.
    """
    name = locate_linear(path, tensors, key, n_labels=n_labels, prefer=prefer)
    stem = weight_stem(name)
    bias = float_tensor(path, tensors, stem + ".bias") if stem is not None else None
    if name == "weight":
        bias = float_tensor(path, tensors, "bias")
    return float_tensor(path, tensors, name), bias


def float_tensor(path: Path, tensors: Mapping[str, torch.Tensor], name: str) -> torch.Tensor | None:
    """tensors[name] (None if absent); integer and boolean tensors are refused, never converted."""
    if name not in tensors:
        return None
    t = tensors[name]
    if not isinstance(tensors, SafetensorsReader):  # the safetensors reader makes only dense tensors
        check_plain(path, name, t)
    if not t.is_floating_point():
        raise CatsplitError(
            f"{path}: tensor {name!r} has dtype {str(t.dtype).removeprefix('torch.')}; head tensors must be float "
            "(float32, float16, bfloat16, float64). Convert the layer to float before saving it"
        )
    return t
