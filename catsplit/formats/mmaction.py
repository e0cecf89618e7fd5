"""mmaction2 checkpoints (mmengine / mmcv runners): where the head, the labels and the class count live.

A checkpoint is `{"meta": {...}, "state_dict": {...}}`, training checkpoints add `message_hub`,
`optimizer`, `param_schedulers`. The head is `cls_head.fc_cls` (TSN, TSM, I3D, SlowFast, TimeSformer,
MViT, UniFormer heads) or `cls_head.fc2` (X3D). `meta["cfg"]` (mmengine; `meta["config"]` under mmcv)
is the training config as Python text, with `cls_head=dict(..., num_classes=400, ...)`;
`meta["dataset_meta"]["classes"]` (mmengine) or `meta["CLASSES"]` (mmcv) hold the class names when the
dataset had them. Label maps are text files with one class name per line (`label_map_k400.txt`).
"""

from __future__ import annotations

import re
from typing import Any, Iterator, Mapping, Sequence

HEADS = ("cls_head.fc_cls", "cls_head.fc2")
_HEAD_START = re.compile(r"""(?:\bcls_head\s*=\s*dict\s*\(|['"]cls_head['"]\s*:\s*(?:dict\s*\(|\{))""")
_NUM_CLASSES = re.compile(r"""(\bnum_classes\s*=\s*|['"]num_classes['"]\s*:\s*)([0-9]+)""")


def is_checkpoint(obj: Any) -> bool:
    """A mmengine / mmcv checkpoint: a dict with a `meta` dict and a `state_dict`."""
    return isinstance(obj, Mapping) and isinstance(obj.get("meta"), Mapping) and isinstance(obj.get("state_dict"), Mapping)


def meta_labels(meta: Mapping[str, Any]) -> list[str] | None:
    """The class names in `meta` (`dataset_meta.classes`, `CLASSES`, `classes`), or None."""
    dataset_meta = meta.get("dataset_meta")
    for holder, key in ((dataset_meta, "classes"), (meta, "CLASSES"), (meta, "classes")):
        if isinstance(holder, Mapping):
            value = holder.get(key)
            if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
                return list(value)
    return None


def set_num_classes(config_text: str, n: int) -> tuple[str, bool]:
    """`config_text` with `num_classes` of every `cls_head` dict set to `n`; (text, whether one was found)."""
    out, pos, found = [], 0, False
    for start in _HEAD_START.finditer(config_text):
        if start.start() < pos:
            continue
        end = _closing(config_text, start.end())
        body = config_text[start.end():end]
        depth_zero = _top_level_spans(body)
        new_body, k = body, 0
        for m in _NUM_CLASSES.finditer(body):
            if any(a <= m.start() < b for a, b in depth_zero):
                new_body = body[: m.start(2)] + str(n) + body[m.end(2):]
                k = 1
                break
        found = found or bool(k)
        out.append(config_text[pos:start.end()] + new_body)
        pos = end
    out.append(config_text[pos:])
    return "".join(out), found


def _brackets(text: str, start: int = 0) -> Iterator[tuple[int, str]]:
    """(index, bracket) for every bracket of `text` from `start` on that is not inside a quoted string."""
    quote, i = None, start
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1  # an escaped character, the quote included
            elif c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c in "()[]{}":
            yield i, c
        i += 1


def _closing(text: str, i: int) -> int:
    """Index of the bracket that closes the one opened just before `i` (quotes skipped), or len(text)."""
    depth = 1
    for j, c in _brackets(text, i):
        depth += 1 if c in "([{" else -1
        if depth == 0:
            return j
    return len(text)


def _top_level_spans(body: str) -> list[tuple[int, int]]:
    """Spans of `body` not inside a nested bracket (so a nested dict's num_classes is left alone)."""
    spans, depth, start = [], 0, 0
    for i, c in _brackets(body):
        if c in "([{":
            if depth == 0:
                spans.append((start, i))
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                start = i + 1
    if depth == 0:
        spans.append((start, len(body)))
    return spans


def update_meta(meta: Mapping[str, Any], labels: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """`meta` for the edited head: the class names, `cls_head.num_classes` in the embedded config.

    Returns:
        (the new meta, notes on what could not be updated).
    """
    out = dict(meta)
    notes = []
    dataset_meta = dict(out["dataset_meta"]) if isinstance(out.get("dataset_meta"), Mapping) else {}
    dataset_meta["classes"] = tuple(labels)
    out["dataset_meta"] = dataset_meta
    if "CLASSES" in out:
        out["CLASSES"] = tuple(labels)
    for key in ("cfg", "config"):
        cfg = out.get(key)
        if isinstance(cfg, str):
            out[key], found = set_num_classes(cfg, len(labels))
            if not found:
                notes.append(f"meta[{key!r}] has no cls_head num_classes to update")
        elif isinstance(cfg, Mapping):
            out[key] = _with_num_classes(cfg, len(labels))
    return out, notes


def _with_num_classes(cfg: Mapping[str, Any], n: int) -> dict[str, Any]:
    out = dict(cfg)
    model = out.get("model")
    if isinstance(model, Mapping) and isinstance(model.get("cls_head"), Mapping):
        model = dict(model)
        model["cls_head"] = {**model["cls_head"], "num_classes": n}
        out["model"] = model
    return out


def label_map_text(labels: Sequence[str]) -> str:
    """A mmaction2 label map: one class name per line, in index order."""
    return "".join(f"{label}\n" for label in labels)
