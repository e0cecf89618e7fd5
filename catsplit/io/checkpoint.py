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
    _walk(ckpt, "", obj, (), 0)
    return ckpt


def _walk(ckpt: Checkpoint, prefix: str, x: Any, keys: tuple | None, depth: int) -> None:
    if depth > 64:
        return
    if isinstance(x, torch.Tensor):
        ckpt.tensors[prefix] = x
        ckpt.where[prefix] = keys
    elif isinstance(x, Mapping):
        for k, v in x.items():
            name = prefix if str(k) in _MODULE_PARTS and keys is None else f"{prefix}.{k}" if prefix else str(k)
            _walk(ckpt, name, v, None if keys is None else (*keys, k), depth + 1)
    elif isinstance(x, Opaque) and isinstance(x.state, Mapping):  # e.g. a pickled nn.Module: readable, not writable
        _walk(ckpt, prefix, x.state, None, depth + 1)


def read_checkpoint(path: Path, *, trust: bool = False) -> dict[str, torch.Tensor]:
    """The tensors of a PyTorch checkpoint by flattened name (`{"model": {"fc": {"weight": t}}}` -> `model.fc.weight`)."""
    return open_checkpoint(path, trust=trust).tensors


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
    if not t.is_floating_point():
        raise CatsplitError(
            f"{path}: tensor {name!r} has dtype {str(t.dtype).removeprefix('torch.')}; head tensors must be float "
            "(float32, float16, bfloat16, float64). Convert the layer to float before saving it"
        )
    return t
