"""The catsplit head file layout (spec/head-format.md), the write side: a head -> tensors and metadata.

In short: tensors `weight` [C, D] and `bias` [C] for the base table, `sub.<i>.weight` /
`sub.<i>.bias` for the table of the i-th hierarchical split, `undo.<n>.*` for what flat edits
removed; string metadata under `catsplit.*` keys (catsplit/io/keys.py). `catsplit.io.loading`
reads it back.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
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
from catsplit.formats.detect import PICKLE, SAFETENSORS, TORCH_ZIP, kind_of_bytes
from catsplit.io.safetensors import SafetensorsReader, safetensors_header, write_safetensors

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


# suffixes of other formats: a head file under such a name is read as (or mistaken for) something it is not
OTHER_FORMAT_SUFFIXES = {
    ".pt", ".pth", ".bin", ".ckpt", ".tar", ".pyth", ".pkl", ".pickle", ".onnx", ".json", ".txt", ".npz", ".npy",
    ".yaml", ".yml", ".h5", ".gguf",
}
_HEAD_TENSOR = re.compile(r"weight|bias|sub\.[0-9]+\.(?:weight|bias)|undo\..+")


def check_head_destination(path: str | PathLike, *, overwrite: bool, example: str = "head.safetensors") -> Path:
    """Where a head file may go: `check_destination`'s rules, and two more.

    * A name with another format's suffix (`.pth`, `.pt`, `.bin`, `.onnx`, ...) is refused: a head file is
      safetensors, and tools that go by the suffix would misread it.
    * An existing file that holds a whole model (a PyTorch checkpoint, or a safetensors file with tensors
      besides a head's) is never replaced by a head file, not even with overwrite: that would throw the
      model away (and `from_pretrained` would load the folder with every other weight re-initialised).
    """
    path = check_destination(path, overwrite=overwrite, example=example)
    if path.suffix.lower() in OTHER_FORMAT_SUFFIXES:
        raise CatsplitError(
            f"{path}: a head file is safetensors; name it {path.with_suffix('.safetensors').name} (a {path.suffix} name "
            "would be taken for another format). To write the model in its own format use catsplit.save_model "
            "(CLI: catsplit split MODEL ... -o OUT)"
        )
    held = _model_held(path) if overwrite and path.is_file() else None
    if held:
        raise CatsplitError(
            f"{path} holds {held}; a head file would replace the whole model. Write the edited model with "
            "catsplit.save_model(edited, model, out) (CLI: catsplit split MODEL ... -o MODEL_OUT), or save the head "
            "under another name"
        )
    return path


def _model_held(path: Path) -> str | None:
    """What model an existing file holds ("a PyTorch checkpoint", "a model of 215 tensors"), or None for a head
    file, an empty or unreadable file, or anything else catsplit does not recognise as a model."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return None
    kind = kind_of_bytes(head, size)
    if kind in (TORCH_ZIP, PICKLE):
        return "a PyTorch checkpoint"
    if kind != SAFETENSORS:
        return None
    try:
        with SafetensorsReader(path) as reader:
            if KEY_FORMAT in reader.metadata:
                return None
            others = [name for name in reader if not _HEAD_TENSOR.fullmatch(name)]
            return f"a model of {len(reader)} tensors (e.g. {others[0]!r})" if others else None
    except CatsplitError:
        return None


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
    path = check_head_destination(path, overwrite=overwrite)
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

