"""load_head: a head from a catsplit head file, a model in its own format, or a torch.nn.Linear.

The catsplit layout is specified in spec/head-format.md (its write side is catsplit.io.headfile);
models in their own formats (folders, foreign safetensors, PyTorch checkpoints) are read by
`catsplit.formats.model` (spec/model-formats.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import torch

from catsplit.checks import check_history, check_templates
from catsplit.errors import CatsplitError
from catsplit.head import Head, make_table
from catsplit.formats.detect import SAFETENSORS
from catsplit.formats.model import container_hint, container_of, head_from_safetensors, open_model
from catsplit.io.checkpoint import float_tensor
from catsplit.io.keys import KEY_FORMAT, KEY_GROUPS, KEY_HISTORY, KEY_KIND, KEY_LABELS, KEY_ORDER, KEY_SCALE, KEY_TABLES, KEY_TEMPLATES, ORDERED_FORMAT_VERSION, OWN_KEYS, READABLE_FORMATS
from catsplit.io.readers import parse_json, read_labels
from catsplit.io.safetensors import SURROGATE_ESCAPE, SafetensorsReader, utf8_encodable

if TYPE_CHECKING:
    from os import PathLike


# --- reading -----------------------------------------------------------------------------
def load_head(
    source: Any,
    *,
    key: str | None = None,
    labels: Sequence[str] | str | PathLike | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
    trust_checkpoint: bool = False,
) -> Head:
    """Load a head from a catsplit file, a model in its own format, or a `torch.nn.Linear`.

    Args:
        source: a catsplit head file; a Hugging Face or timm model folder (or its `config.json`); a
            safetensors, PyTorch, mmaction2 or PyTorchVideo checkpoint (the kind is read from the
            bytes, not the suffix); or a `torch.nn.Linear`.
        key: name of the linear layer inside a checkpoint (e.g. `"head.fc"`: reads `head.fc.weight`
            and `head.fc.bias`), or of its weight tensor. Not needed for catsplit files, model folders,
            or checkpoints whose classifier has a known name (spec/model-formats.md §2).
        labels: the class names: a list, a mapping, or a labels file (JSON list, {label: index},
            {index: label}, a config.json, "index name" lines, one per line). Not needed for catsplit
            files and models that carry them (given, they replace the stored labels of an unedited head).
        groups: optional pseudo-coarse groups (group text -> member labels).
        trust_checkpoint: open training checkpoints that weights_only=True refuses (timm train.py,
            mmengine); their unknown classes become inert placeholders and nothing in the file runs.
    Returns:
        a `Head`.
    """
    if isinstance(source, torch.nn.Linear):
        if labels is None:
            raise CatsplitError("a torch.nn.Linear has no labels; pass labels=[...] or labels='labels.json'")
        w = source.weight.detach().clone()
        b = source.bias.detach().clone() if source.bias is not None else None
        return Head(weight=w, bias=b, labels=read_labels(labels), groups=groups)
    if not isinstance(source, (str, os.PathLike)):
        raise CatsplitError(f"load_head takes a file path or a torch.nn.Linear, got {type(source).__name__}")
    path = Path(source)
    if path.is_dir() or (path.is_file() and path.name == "config.json"):
        return open_model(path, key=key, labels=labels, groups=groups, trust_checkpoint=trust_checkpoint).head
    if not path.is_file():
        raise CatsplitError(f"{path}: no such file")
    if container_of(path) != SAFETENSORS:
        return open_model(path, key=key, labels=labels, groups=groups, trust_checkpoint=trust_checkpoint).head
    # Header checked on open; only the tensors the head needs are read, each once, into fresh memory.
    try:
        tensors = SafetensorsReader(path)
    except CatsplitError as exc:
        raise CatsplitError(f"{exc}.{container_hint(path)}" if container_hint(path) else str(exc)) from None
    with tensors:
        return load_from(path, tensors, tensors.metadata, key, labels, groups)


def load_from(
    path: Path, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, str], key: str | None,
    labels: Sequence[str] | str | PathLike | None, groups: Mapping[str, Sequence[str]] | None,
) -> Head:
    """The head of an open safetensors file: a catsplit head file, else a foreign one (`catsplit.formats.model`)."""
    if KEY_FORMAT in meta and key is None:
        return _head_from_catsplit(path, tensors, meta, None if labels is None else read_labels(labels), groups)
    return head_from_safetensors(path, tensors, key, labels, groups)


def _json_meta(path: Path, meta: Mapping[str, str], key: str) -> Any:
    text = meta[key]
    try:
        value = parse_json(text, f"{path}: metadata {key!r}")
    except CatsplitError as exc:
        raise CatsplitError(f"{exc}; the file is damaged") from None
    if SURROGATE_ESCAPE.search(text) and not utf8_encodable(value):
        raise CatsplitError(
            f"{path}: metadata {key!r} holds an unpaired surrogate escape (\\ud800-\\udfff), which is not text; "
            "the file is damaged"
        )
    return value


def _check_history(history: Any, undo: Mapping[str, torch.Tensor]) -> tuple[dict, ...]:
    """Edit records as `Head` checks them (`catsplit.head.check_history`), and each flat split's undo tensor present."""
    if not isinstance(history, list):
        raise CatsplitError(f"metadata {KEY_HISTORY!r} must be a JSON list of edit records")
    history = check_history(history, f"metadata {KEY_HISTORY!r}")
    for i, rec in enumerate(history):
        if rec.get("op") == "split" and rec.get("mode") == "flat" and f"{rec.get('undo')}.weight" not in undo:
            raise CatsplitError(f"edit record #{i} (split of {rec['coarse']!r}) refers to a missing undo tensor {rec.get('undo')!r}.weight")
    return history


def _head_from_catsplit(
    path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str], labels: list[str] | None,
    groups: Mapping[str, Sequence[str]] | None,
) -> Head:
    if meta.get(KEY_FORMAT) not in READABLE_FORMATS:
        raise CatsplitError(
            f"{path} has catsplit format {meta.get(KEY_FORMAT)!r}; this catsplit reads formats "
            f"{', '.join(READABLE_FORMATS)}. Upgrade catsplit"
        )
    if (KEY_ORDER in meta) != (meta[KEY_FORMAT] == ORDERED_FORMAT_VERSION):
        raise CatsplitError(
            f"{path}: catsplit format {meta[KEY_FORMAT]!r} {'without' if KEY_ORDER not in meta else 'with'} the key "
            f"{KEY_ORDER!r}; format {ORDERED_FORMAT_VERSION} files, and only they, hold it. The file is damaged"
        )
    if "weight" not in tensors:
        raise CatsplitError(f"{path} is missing the tensor 'weight'; found {sorted(tensors)[:10]}")
    edited = KEY_TABLES in meta or KEY_HISTORY in meta
    if labels is not None and edited:
        raise CatsplitError(
            f"{path} has edits recorded under its labels; labels= can only name the classes of an unedited head"
        )
    if labels is None:
        if KEY_LABELS not in meta:
            raise CatsplitError(f"{path} is missing the metadata key {KEY_LABELS!r}; pass labels=[...] or a labels file")
        labels = _json_meta(path, meta, KEY_LABELS)
    try:
        tables = [make_table(float_tensor(path, tensors, "weight"), float_tensor(path, tensors, "bias"), labels)]
        for entry in _json_meta(path, meta, KEY_TABLES) if KEY_TABLES in meta else []:
            prefix = entry["prefix"]
            if f"{prefix}.weight" not in tensors:
                raise CatsplitError(f"missing tensor {prefix}.weight")
            tables.append(
                make_table(
                    float_tensor(path, tensors, f"{prefix}.weight"), float_tensor(path, tensors, f"{prefix}.bias"),
                    entry["labels"], entry["parent"],
                    what=f"sub-head of {entry['parent']!r}",
                )
            )
        undo = {k: float_tensor(path, tensors, k) for k in tensors if k.startswith("undo.")}  # Head checks them
        if groups is None and KEY_GROUPS in meta:
            groups = _json_meta(path, meta, KEY_GROUPS)
        history = _check_history(_json_meta(path, meta, KEY_HISTORY), undo) if KEY_HISTORY in meta else ()
        scale = float(meta[KEY_SCALE]) if KEY_SCALE in meta else None
        templates = None
        if KEY_TEMPLATES in meta:
            try:
                templates = check_templates(_json_meta(path, meta, KEY_TEMPLATES))
            except CatsplitError as exc:
                raise CatsplitError(f"metadata {KEY_TEMPLATES!r} is damaged: {exc}") from None
        output_order = _json_meta(path, meta, KEY_ORDER) if KEY_ORDER in meta else None  # Head checks it
        foreign = {k: v for k, v in meta.items() if k not in OWN_KEYS}
        return Head(  # the history is Records already (checked above): kept as it is
            weight=None, tables=tuple(tables), groups=groups, history=history, undo=undo,
            metadata=foreign, kind=meta.get(KEY_KIND, "linear"), scale=scale, templates=templates,
            output_order=output_order,
        )
    except CatsplitError as exc:
        raise CatsplitError(str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CatsplitError(f"{path}: damaged catsplit metadata ({type(exc).__name__}: {exc})") from None

