"""Foreign checkpoints: PyTorch files read with weights_only=True, and finding the classifier layer in them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from catsplit.errors import CatsplitError
from catsplit.io.safetensors import SafetensorsReader

CHECKPOINT_SUFFIXES = {".pt", ".pth", ".bin", ".ckpt", ".tar"}


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CatsplitError(
            f"{path} could not be loaded as a PyTorch checkpoint with weights_only=True ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}). catsplit never unpickles code; re-save the "
            "checkpoint as a plain state dict (torch.save(model.state_dict(), path)) or as safetensors"
        ) from None
    flat: dict[str, torch.Tensor] = {}

    def walk(prefix: str, x: Any) -> None:
        if isinstance(x, torch.Tensor):
            flat[prefix] = x
        elif isinstance(x, Mapping):
            for k, v in x.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)

    if isinstance(obj, torch.Tensor):  # torch.save(W, path): no name says what it is, nor where a bias would be
        raise CatsplitError(
            f"{path} holds a single tensor of shape {list(obj.shape)}, not a state dict, so catsplit cannot tell which "
            "layer it is. Save the layer by name, e.g. torch.save({'weight': W, 'bias': b}, path), or build the head "
            "directly: catsplit.Head(weight=torch.load(path), labels=[...])"
        )
    walk("", obj)
    return flat


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
    if not t.is_floating_point():
        raise CatsplitError(
            f"{path}: tensor {name!r} has dtype {str(t.dtype).removeprefix('torch.')}; head tensors must be float "
            "(float32, float16, bfloat16, float64). Convert the layer to float before saving it"
        )
    return t

