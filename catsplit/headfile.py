"""Reading and writing heads: catsplit's safetensors layout, foreign checkpoints, atomic writes.

The layout is specified in spec/head-format.md. In short: tensors `weight` [C, D] and `bias` [C]
for the base table, `sub.<i>.weight` / `sub.<i>.bias` for the table of the i-th hierarchical
split, `undo.<n>.*` for what flat edits removed; string metadata under `catsplit.*` keys.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import torch

from catsplit.errors import CatsplitError
from catsplit.head import Head, Table, make_table

if TYPE_CHECKING:
    from os import PathLike

FORMAT_VERSION = "1"
KEY_FORMAT = "catsplit.format"
KEY_LABELS = "catsplit.labels"
KEY_TABLES = "catsplit.tables"
KEY_GROUPS = "catsplit.groups"
KEY_HISTORY = "catsplit.history"
KEY_KIND = "catsplit.kind"
KEY_SCALE = "catsplit.scale"
KEY_TEMPLATES = "catsplit.templates"
OWN_KEYS = {KEY_FORMAT, KEY_LABELS, KEY_TABLES, KEY_GROUPS, KEY_HISTORY, KEY_KIND, KEY_SCALE, KEY_TEMPLATES}

CHECKPOINT_SUFFIXES = {".pt", ".pth", ".bin", ".ckpt", ".tar"}
LABEL_SUFFIXES = {".json", ".txt"}


# --- writing -----------------------------------------------------------------------------
def head_tensors(head: Head) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
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
    meta[KEY_FORMAT] = FORMAT_VERSION
    meta[KEY_LABELS] = json.dumps(list(head.tables[0].labels), ensure_ascii=False)
    meta[KEY_KIND] = head.kind
    if head.scale is not None:
        meta[KEY_SCALE] = repr(float(head.scale))
    if head.templates is not None:
        meta[KEY_TEMPLATES] = json.dumps(list(head.templates), ensure_ascii=False)
    if tables_meta:
        meta[KEY_TABLES] = json.dumps(tables_meta, ensure_ascii=False)
    if head.groups is not None:
        meta[KEY_GROUPS] = json.dumps(head.groups, ensure_ascii=False)
    if head.history:
        meta[KEY_HISTORY] = json.dumps(list(head.history), ensure_ascii=False)
    return tensors, meta


def save_head(head: Head, path: str | PathLike, *, overwrite: bool = False) -> None:
    """Write `head` to `path` atomically (temp file in the same folder, fsync, rename).

    Args:
        head: the head to write.
        path: destination `.safetensors` file.
        overwrite: replace an existing file; without it an existing file is an error.
    """
    from safetensors.torch import save_file

    tensors, meta = head_tensors(head)
    path = Path(path)
    if path.is_dir():
        raise CatsplitError(f"{path} is a folder; give a file name such as {path / 'head.safetensors'}")
    if path.exists() and not overwrite:
        raise CatsplitError(f"{path} exists; choose another name or pass overwrite=True (CLI: --overwrite)")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise CatsplitError(f"folder {folder} does not exist; create it first")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=meta)
        # mkstemp makes the file owner-only; give it the mode a plain open() would (or the replaced file's).
        os.chmod(tmp, _file_mode(path if overwrite and path.exists() else None))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            # link() fails if the name appeared meanwhile: never clobber a file we did not mean to.
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise CatsplitError(
                    f"{path} appeared while saving; choose another name or pass overwrite=True"
                ) from None
            except OSError:  # file systems without hard links
                if path.exists():
                    raise CatsplitError(f"{path} exists; pass overwrite=True") from None
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        _fsync_dir(folder)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _file_mode(existing: Path | None) -> int:
    if existing is not None:
        return existing.stat().st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- reading -----------------------------------------------------------------------------
def load_head(
    source: Any,
    *,
    key: str | None = None,
    labels: Sequence[str] | str | PathLike | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
) -> Head:
    """Load a head from a catsplit file, any safetensors/PyTorch checkpoint, or a `torch.nn.Linear`.

    Args:
        source: path to a `.safetensors` / `.pt` / `.pth` / `.bin` / `.ckpt` file, or a `torch.nn.Linear`.
        key: name of the linear layer inside a checkpoint (e.g. `"head.fc"`: reads `head.fc.weight`
            and `head.fc.bias`), or of its weight tensor. Not needed for catsplit files.
        labels: the class names: a list, or a JSON file (list, or {label: index}) or text file (one per line).
            Not needed for catsplit files (given, they replace the stored labels).
        groups: optional pseudo-coarse groups (group text -> member labels).
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
    if not path.is_file():
        raise CatsplitError(f"{path}: no such file")
    if path.suffix.lower() in CHECKPOINT_SUFFIXES:
        tensors, meta = _read_checkpoint(path), {}
    else:
        tensors, meta = _read_safetensors(path)
    if KEY_FORMAT in meta and key is None:
        return _head_from_catsplit(path, tensors, meta, None if labels is None else read_labels(labels), groups)
    w, b = _find_linear(path, tensors, key)
    if labels is None:
        if KEY_LABELS in meta:
            labels = _json_meta(path, meta, KEY_LABELS)
        else:
            raise CatsplitError(
                f"{path} holds no labels; pass labels=[...] or a labels file (JSON list, JSON {{label: index}}, or one per line)"
            )
    foreign = {k: v for k, v in meta.items() if k not in OWN_KEYS}
    try:
        return Head(weight=w, bias=b, labels=read_labels(labels), groups=groups, metadata=foreign)
    except CatsplitError as exc:
        raise CatsplitError(f"{path}: {exc}") from None


def read_labels(labels: Sequence[str] | str | PathLike) -> list[str]:
    """Labels from a list, a JSON file (list or {label: index}) or a text file (one label per line)."""
    if isinstance(labels, str) and not Path(labels).is_file() and Path(labels).suffix.lower() not in LABEL_SUFFIXES:
        raise CatsplitError(f"labels={labels!r}: give a list of labels or the path of a .json or .txt labels file")
    if isinstance(labels, (str, os.PathLike)):
        p = Path(labels)
        if not p.is_file():
            raise CatsplitError(f"labels file {p} not found")
        if p.suffix.lower() == ".json":
            data = read_json(p, "labels")
            if isinstance(data, dict):  # {label: index}, as the paper's labels.json
                try:
                    order = sorted(data.items(), key=lambda kv: int(kv[1]))
                except (TypeError, ValueError):
                    raise CatsplitError(f"labels file {p}: a JSON object must map label -> integer index") from None
                idx = [int(v) for _, v in order]
                if idx != list(range(len(idx))):
                    raise CatsplitError(f"labels file {p}: indices must be 0..{len(idx) - 1} without gaps")
                return [k for k, _ in order]
            if isinstance(data, list):
                return data
            raise CatsplitError(f"labels file {p} must hold a JSON list or an object label -> index")
        return [line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    return list(labels)


def read_json(path: str | PathLike, what: str) -> Any:
    """A JSON file's content; a missing file or bad JSON is a CatsplitError naming `what` and the path."""
    p = Path(path)
    if not p.is_file():
        raise CatsplitError(f"{what} file {p} not found")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CatsplitError(f"{what} file {p} is not valid JSON: {exc}") from None


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except CatsplitError:
        raise
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise CatsplitError(
            f"{path} is not a readable safetensors file ({type(exc).__name__}: {exc}); "
            "is it truncated or of another format? PyTorch checkpoints need a .pt/.pth/.bin/.ckpt suffix"
        ) from None
    return tensors, meta


def _read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
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

    walk("", obj)
    return flat


def _find_linear(path: Path, tensors: Mapping[str, torch.Tensor], key: str | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The weight and bias of the linear layer named `key` (tolerating wrapper prefixes)."""
    if key is None:
        if "weight" in tensors:
            return tensors["weight"], tensors.get("bias")
        candidates = [k for k, t in tensors.items() if t.ndim == 2]
        raise CatsplitError(
            f"{path} holds several tensors; name the classifier with key=... (CLI: --key). "
            f"2-D tensors found: {candidates[:10]}"
        )
    names = [key, f"{key}.weight"]
    for prefix in ("state_dict.", "model.", "module.", "state_dict.module.", "model.module."):
        names += [prefix + key + ".weight", prefix + key]
    for name in names:
        t = tensors.get(name)
        if t is not None and t.ndim == 2:
            stem = name[: -len(".weight")] if name.endswith(".weight") else None
            bias = tensors.get(stem + ".bias") if stem else None
            return t, bias
    close = [k for k in tensors if key.split(".")[-1] in k][:10]
    raise CatsplitError(
        f"{path} has no 2-D tensor named {key!r} or {key + '.weight'!r}; tensors with a similar name: "
        f"{close or list(tensors)[:10]}"
    )


def _json_meta(path: Path, meta: Mapping[str, str], key: str) -> Any:
    try:
        return json.loads(meta[key])
    except json.JSONDecodeError as exc:
        raise CatsplitError(f"{path}: metadata {key!r} is not valid JSON ({exc}); the file is damaged") from None


def _check_history(history: Any, undo: Mapping[str, torch.Tensor]) -> tuple[dict, ...]:
    """Edit records: a list of objects, each split naming its coarse label and subs, its undo tensors present."""
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        raise CatsplitError(f"metadata {KEY_HISTORY!r} must be a JSON list of edit records")
    for i, rec in enumerate(history):
        if rec.get("op") != "split":
            continue
        if not isinstance(rec.get("coarse"), str) or not isinstance(rec.get("subs"), list):
            raise CatsplitError(f"edit record #{i} lacks its coarse label or subs")
        if rec.get("mode") == "flat" and f"{rec.get('undo')}.weight" not in undo:
            raise CatsplitError(f"edit record #{i} (split of {rec['coarse']!r}) refers to a missing undo tensor {rec.get('undo')!r}.weight")
    return tuple(history)


def _head_from_catsplit(
    path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str], labels: list[str] | None,
    groups: Mapping[str, Sequence[str]] | None,
) -> Head:
    if meta.get(KEY_FORMAT) != FORMAT_VERSION:
        raise CatsplitError(
            f"{path} has catsplit format {meta.get(KEY_FORMAT)!r}; this catsplit reads format {FORMAT_VERSION}. "
            "Upgrade catsplit"
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
        tables = [make_table(tensors["weight"], tensors.get("bias"), labels)]
        for entry in _json_meta(path, meta, KEY_TABLES) if KEY_TABLES in meta else []:
            prefix = entry["prefix"]
            if f"{prefix}.weight" not in tensors:
                raise CatsplitError(f"missing tensor {prefix}.weight")
            tables.append(
                make_table(
                    tensors[f"{prefix}.weight"], tensors.get(f"{prefix}.bias"), entry["labels"], entry["parent"],
                    what=f"sub-head of {entry['parent']!r}",
                )
            )
        undo = {k: v for k, v in tensors.items() if k.startswith("undo.")}
        if groups is None and KEY_GROUPS in meta:
            groups = _json_meta(path, meta, KEY_GROUPS)
        history = _check_history(_json_meta(path, meta, KEY_HISTORY), undo) if KEY_HISTORY in meta else ()
        scale = float(meta[KEY_SCALE]) if KEY_SCALE in meta else None
        templates = _json_meta(path, meta, KEY_TEMPLATES) if KEY_TEMPLATES in meta else None
        foreign = {k: v for k, v in meta.items() if k not in OWN_KEYS}
        return Head(
            weight=None, tables=tuple(tables), groups=groups, history=history, undo=undo,
            metadata=foreign, kind=meta.get(KEY_KIND, "linear"), scale=scale, templates=templates,
        )
    except CatsplitError as exc:
        raise CatsplitError(str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CatsplitError(f"{path}: damaged catsplit metadata ({type(exc).__name__}: {exc})") from None
