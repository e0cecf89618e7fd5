"""Foreign checkpoints: PyTorch files read with weights_only=True, and finding the classifier layer in them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from catsplit.errors import CatsplitError
from catsplit.io.safetensors import SafetensorsReader

CHECKPOINT_SUFFIXES = {".pt", ".pth", ".bin", ".ckpt", ".tar"}


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a PyTorch checkpoint by dotted name (`flatten`); a single bare tensor is refused."""
    obj = load_weights_only(path)
    if isinstance(obj, torch.Tensor):  # torch.save(W, path): no name says what it is, nor where a bias would be
        raise CatsplitError(
            f"{path} holds a single tensor of shape {list(obj.shape)}, not a state dict, so catsplit cannot tell which "
            "layer it is. Save the layer by name, e.g. torch.save({'weight': W, 'bias': b}, path), or build the head "
            "directly: catsplit.Head(weight=torch.load(path), labels=[...])"
        )
    return flatten(path, obj)


def load_weights_only(path: Path) -> Any:
    """What a PyTorch file holds, unpickled with weights_only=True (never code); a CatsplitError when that fails."""
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CatsplitError(
            f"{path} could not be loaded as a PyTorch checkpoint with weights_only=True ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}). catsplit never unpickles code; re-save the "
            "checkpoint as a plain state dict (torch.save(model.state_dict(), path)) or as safetensors"
        ) from None
    return obj


MAX_NESTING = 100  # mappings inside mappings; real checkpoints nest a few levels


def flatten(path: Path, obj: Any) -> dict[str, torch.Tensor]:
    """The tensors of nested mappings, by dotted name (`{"model": {"fc": {"weight": t}}}` -> `model.fc.weight`).

    Walked without recursion: a mapping that holds itself (pickle keeps the cycle) or one nested thousands of
    levels deep is refused with a CatsplitError, not a RecursionError. Other values are ignored.
    """
    flat: dict[str, torch.Tensor] = {}
    stack: list[tuple[str, Any, tuple[int, ...]]] = [("", obj, ())]  # (name, value, ids of the mappings above it)
    while stack:
        prefix, x, above = stack.pop()
        if isinstance(x, torch.Tensor):
            flat[prefix] = x
        elif isinstance(x, Mapping):
            if id(x) in above:
                raise CatsplitError(f"{path}: the mapping at {prefix or 'the top'!r} contains itself; save a plain state dict")
            if len(above) >= MAX_NESTING:
                raise CatsplitError(f"{path}: mappings nested more than {MAX_NESTING} levels deep; save a plain state dict")
            for k, v in reversed(list(x.items())):
                stack.append((f"{prefix}.{k}" if prefix else str(k), v, above + (id(x),)))
    return flat


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


def find_linear(path: Path, tensors: Mapping[str, torch.Tensor], key: str | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The weight and bias of the linear layer named `key` (tolerating wrapper prefixes).

    Only the chosen tensors are read (shapes come from the header), so a large checkpoint costs
    the memory of its classifier layer, not of the whole model.
    """
    if key is None:
        if "weight" in tensors:
            return float_tensor(path, tensors, "weight"), float_tensor(path, tensors, "bias")
        candidates = [k for k in tensors if _ndim(tensors, k) == 2]
        raise CatsplitError(
            f"{path} has no tensor named 'weight'; name the classifier with key=... (CLI: --key). "
            f"2-D tensors found: {candidates[:10]}"
        )
    if not isinstance(key, str) or not key:
        raise CatsplitError(f"key must be the name of a layer or tensor, got {key!r}")
    names = [key, f"{key}.weight"]
    for prefix in ("state_dict.", "model.", "module.", "state_dict.module.", "model.module."):
        names += [prefix + key + ".weight", prefix + key]
    for name in names:
        if name in tensors and _ndim(tensors, name) == 2:
            stem = name[: -len(".weight")] if name.endswith(".weight") else None
            bias = float_tensor(path, tensors, stem + ".bias") if stem else None
            return float_tensor(path, tensors, name), bias
    close = [k for k in tensors if key.split(".")[-1] in k][:10]
    raise CatsplitError(
        f"{path} has no 2-D tensor named {key!r} or {key + '.weight'!r}; tensors with a similar name: "
        f"{close or list(tensors)[:10]}"
    )


def _ndim(tensors: Mapping[str, torch.Tensor], name: str) -> int:
    return tensors.ndim(name) if isinstance(tensors, SafetensorsReader) else tensors[name].ndim


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

