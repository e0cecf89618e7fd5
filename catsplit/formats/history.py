"""The edit history that travels inside a model written back in its own format.

A catsplit head file keeps its history and undo tensors in its own metadata; a model written back
keeps them in one JSON-able entry named `catsplit`, stored where the format has room for it
(spec/model-formats.md §3): `config.json` (Hugging Face, timm), the `meta` dict (mmaction2), the
checkpoint dict or the state dict's `_metadata` (torch), the `__metadata__` of a safetensors file.
With it, loading the written model gives back a head whose `unsplit` restores the original rows bit
for bit. The entry:

    {"format": "1", "labels": [the classifier's labels, in row order], "history": [edit records],
     "groups": {...} (when set), "undo": {"undo.0.weight": {"dtype": "F32", "shape": [1, D], "data": "<base64 of the raw little-endian bytes>"}}}
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any, Mapping, NamedTuple

import torch

from catsplit.checks import check_history
from catsplit.errors import CatsplitError
from catsplit.io.readers import parse_json
from catsplit.io.safetensors import HEAD_DTYPES, SAFETENSORS_CODES

ENTRY_KEY = "catsplit"
ENTRY_FORMAT = "1"
MAX_UNDO_BYTES = 1 << 30  # a row is a few KB; a forged entry must not make us allocate without bound


def history_entry(head: Any) -> dict[str, Any] | None:
    """The `catsplit` entry of an edited head (history, groups, undo tensors); None when there is nothing to keep.

    Args:
        head: a `catsplit.Head`.
    """
    if not head.history and head.groups is None:
        return None
    entry: dict[str, Any] = {
        "format": ENTRY_FORMAT,
        "labels": list(head.tables[0].labels),  # formats with no label field of their own (state dicts) need them
        "history": json.loads(json.dumps(list(head.history))),
    }
    if head.groups is not None:
        entry["groups"] = {g: list(members) for g, members in head.groups.items()}
    entry["undo"] = {name: _encode(t) for name, t in head.undo.items()}
    return entry


def _encode(t: torch.Tensor) -> dict[str, Any]:
    t = t.detach().contiguous().cpu()
    data = t.reshape(-1).view(torch.uint8).numpy().tobytes()
    return {"dtype": SAFETENSORS_CODES[t.dtype], "shape": list(t.shape), "data": base64.b64encode(data).decode("ascii")}


def entry_text(entry: Mapping[str, Any]) -> str:
    """The entry as one JSON string (for a safetensors `__metadata__` value)."""
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":"))


class Entry(NamedTuple):
    """A `catsplit` entry, read and checked."""

    history: tuple  # Records
    undo: dict[str, torch.Tensor]
    groups: dict | None
    labels: list[str] | None


NO_ENTRY = Entry((), {}, None, None)


def read_entry(entry: Any, what: str) -> Entry:
    """The history, undo tensors, groups and labels of a `catsplit` entry, checked (None: `NO_ENTRY`);
    a JSON string is parsed first.

    Args:
        entry: the entry as stored (a mapping, or its JSON text).
        what: where it was found, for error messages (`videomae/config.json "catsplit"`).
    Raises:
        CatsplitError naming `what`: not an entry of this format, or damaged.
    """
    if entry is None:
        return NO_ENTRY
    if isinstance(entry, str):
        entry = parse_json(entry, what)
    if not isinstance(entry, Mapping):
        raise CatsplitError(f"{what} must be an object (catsplit's edit history), got {type(entry).__name__}")
    if entry.get("format") != ENTRY_FORMAT:
        raise CatsplitError(
            f"{what} has catsplit format {entry.get('format')!r}; this catsplit reads format {ENTRY_FORMAT}. Upgrade catsplit"
        )
    try:
        history = check_history(entry.get("history", []), f"{what} history")
        raw_undo = entry.get("undo", {})
        if not isinstance(raw_undo, Mapping):
            raise CatsplitError("'undo' must be an object name -> tensor")
        undo = {str(name): _decode(name, value) for name, value in raw_undo.items()}
        for i, rec in enumerate(history):
            if rec.get("op") == "split" and rec.get("mode") == "flat" and f"{rec.get('undo')}.weight" not in undo:
                raise CatsplitError(
                    f"edit record #{i} (split of {rec['coarse']!r}) refers to a missing undo tensor {rec.get('undo')!r}.weight"
                )
        groups = entry.get("groups")
        if groups is not None and not isinstance(groups, Mapping):
            raise CatsplitError("'groups' must be an object group -> member labels")
        labels = entry.get("labels")
        if labels is not None and (not isinstance(labels, list) or not all(isinstance(x, str) for x in labels)):
            raise CatsplitError("'labels' must be a list of strings")
        return Entry(history, undo, None if groups is None else dict(groups), labels)
    except CatsplitError as exc:
        raise CatsplitError(f"{what} is damaged: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CatsplitError(f"{what} is damaged ({type(exc).__name__}: {exc})") from None


def _decode(name: Any, value: Any) -> torch.Tensor:
    if not isinstance(value, Mapping):
        raise CatsplitError(f"undo tensor {name!r} must be an object with dtype, shape and data")
    dtype = HEAD_DTYPES.get(value.get("dtype"))
    shape = value.get("shape")
    data = value.get("data")
    if dtype is None:
        raise CatsplitError(f"undo tensor {name!r} has dtype {value.get('dtype')!r}; expected one of {sorted(HEAD_DTYPES)}")
    if not (isinstance(shape, list) and len(shape) <= 8 and all(type(n) is int and n >= 0 for n in shape)):
        raise CatsplitError(f"undo tensor {name!r} has shape {shape!r}; a shape is a list of integers >= 0")
    n = math.prod(shape) * dtype.itemsize
    if not isinstance(data, str) or n > MAX_UNDO_BYTES or len(data) != 4 * math.ceil(n / 3):
        raise CatsplitError(f"undo tensor {name!r}: its data is not the base64 of {n} bytes")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise CatsplitError(f"undo tensor {name!r}: its data is not base64") from None
    if len(raw) != n:
        raise CatsplitError(f"undo tensor {name!r}: its data holds {len(raw)} bytes, its shape needs {n}")
    if n == 0:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(bytearray(raw), dtype=dtype).reshape(shape)
