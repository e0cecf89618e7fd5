"""The catsplit head file layout (spec/head-format.md), the write side: a head -> tensors and metadata.

In short: tensors `weight` [C, D] and `bias` [C] for the base table, `sub.<i>.weight` /
`sub.<i>.bias` for the table of the i-th hierarchical split, `undo.<n>.*` for what flat edits
removed; string metadata under `catsplit.*` keys (catsplit/io/keys.py). `catsplit.io.loading`
reads it back.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence

import torch

from catsplit.errors import CatsplitError
from catsplit.io.atomic import atomic_path, check_destination
from catsplit.io.keys import (
    FORMAT_VERSION,
    ORDERED_FORMAT_VERSION,
    KEY_FORMAT,
    KEY_GROUPS,
    KEY_HISTORY,
    KEY_KIND,
    KEY_LABELS,
    KEY_ORDER,
    KEY_SCALE,
    KEY_TABLES,
    KEY_TEMPLATES,
)
from catsplit.io.safetensors import safetensors_header, write_safetensors

if TYPE_CHECKING:
    from os import PathLike


class HeadParts(Protocol):
    """What the writer reads of a `catsplit.Head` (this module does not import Head: Head.save calls it)."""

    tables: Sequence[Any]  # Table: weight [C, D], bias [C] | None, labels, parent
    undo: Mapping[str, torch.Tensor]
    metadata: Mapping[str, str]
    groups: Mapping[str, Sequence[str]] | None
    history: Sequence[Mapping[str, Any]]
    kind: str
    scale: float | None
    templates: Sequence[str] | None
    output_order: Sequence[str] | None


# --- writing -----------------------------------------------------------------------------
def head_tensors(head: HeadParts) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata strings of a head's file."""
    tensors: dict[str, torch.Tensor] = {}
    tables_meta = []
    for i, t in enumerate(head.tables):
        prefix = "" if i == 0 else f"sub.{i}."
        tensors[prefix + "weight"] = t.weight.contiguous()
        if t.bias is not None:
            tensors[prefix + "bias"] = t.bias.contiguous()
        if i > 0:
            tables_meta.append({"parent": t.parent, "labels": list(t.labels), "prefix": f"sub.{i}"})
    for key, t in head.undo.items():
        tensors[key] = t.contiguous()
    meta = dict(head.metadata)  # foreign keys first; ours win
    meta[KEY_FORMAT] = FORMAT_VERSION if head.output_order is None else ORDERED_FORMAT_VERSION
    meta[KEY_LABELS] = json.dumps(list(head.tables[0].labels), ensure_ascii=False)
    meta[KEY_KIND] = head.kind
    if head.scale is not None:
        meta[KEY_SCALE] = repr(float(head.scale))
    if head.templates is not None:
        meta[KEY_TEMPLATES] = json.dumps(list(head.templates), ensure_ascii=False)
    if tables_meta:
        meta[KEY_TABLES] = json.dumps(tables_meta, ensure_ascii=False)
    if head.output_order is not None:
        meta[KEY_ORDER] = json.dumps(list(head.output_order), ensure_ascii=False)
    if head.groups is not None:
        meta[KEY_GROUPS] = json.dumps(head.groups, ensure_ascii=False)
    if head.history:
        meta[KEY_HISTORY] = json.dumps(list(head.history), ensure_ascii=False)
    return tensors, meta


def save_head(head: HeadParts, path: str | PathLike, *, overwrite: bool = False) -> None:
    """Write `head` to `path` atomically (temp file in the same folder, fsync, rename).

    The tensors are written straight from the head's memory (no serialised copy), so saving needs
    no memory beyond the head itself. A process killed mid-write leaves `path` as it was, plus at
    most a stray temp file `.<name>.<random>.tmp` beside it (spec/head-format.md §7).

    Args:
        head: the head to write.
        path: destination `.safetensors` file.
        overwrite: replace an existing file; without it an existing file is an error.
    """
    tensors, meta = head_tensors(head)
    write_head_file(path, tensors, meta, overwrite=overwrite)


def write_head_file(
    path: str | PathLike, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, str], *, overwrite: bool = False,
    write_data: Any = None,
) -> None:
    """Write a head file of `tensors` and `meta` (from `head_tensors`) atomically, as `save_head` does.

    Args:
        write_data: None to write each tensor from its memory (`write_safetensors`); else a callable
            `(temp_path, header, tensors)` that writes the whole file to the (empty) temp file itself,
            as `catsplit.io.streaming` does. Either way the file is then fsynced and given its name.
    """
    path = check_destination(path, overwrite=overwrite, example="head.safetensors")
    try:
        header = safetensors_header(tensors, meta)
    except UnicodeEncodeError as exc:
        raise CatsplitError(
            f"cannot write {path}: a label or metadata string is not valid Unicode ({exc.reason}); nothing was written"
        ) from None
    with atomic_path(path, overwrite=overwrite, example="head.safetensors") as tmp:
        if write_data is not None:
            write_data(tmp, header, tensors)
            return
        with open(tmp, "wb") as f:
            write_safetensors(f, header, tensors)

