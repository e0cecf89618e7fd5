"""save_model: the user's model written back in its own format, with an edited head in place of its classifier.

Every tensor but the classifier's weight and bias is copied byte for byte. A safetensors file is
streamed: its header is rebuilt, the bytes of every other tensor are copied file to file
(`os.copy_file_range`, chunked reads and writes where that is missing), and only the new head comes
from memory, so a multi-GB model never sits in memory. A PyTorch checkpoint is memory-mapped (zip
archives), its two head tensors replaced, and saved again in the same container. The label
configuration of the format is updated (spec/model-formats.md §4) and the edit history travels in
its `catsplit` entry (`catsplit.formats.history`), so `load_head` of the written model gives a head
whose `unsplit` restores the original bit for bit.

Everything is written beside its destination and published in one rename: a model folder is
assembled in a temp folder and renamed in (exchanged with the old one under `overwrite=True`),
files go through `catsplit.io.atomic`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import torch

from catsplit.errors import CatsplitError, warn_caller
from catsplit.formats import huggingface, mmaction, pytorchvideo, timm
from catsplit.formats.detect import HUGGINGFACE, SAFETENSORS, TORCH_ZIP
from catsplit.formats.history import ENTRY_KEY, entry_text, history_entry
from catsplit.formats.model import MMACTION, PYTORCHVIDEO, WEIGHT_FILES, Model, container_of, open_model
from catsplit.formats.statedict import TRAINING_STATE, strip_wrappers, weight_stem
from catsplit.formats.unpickler import holds_opaque
from catsplit.head import Head
from catsplit.io.atomic import atomic_path, check_destination, fsync_dir, rename_new, swap_in, umask
from catsplit.io.checkpoint import open_checkpoint
from catsplit.io.copying import RangeCopier, pwrite_all
from catsplit.io.safetensors import SAFETENSORS_CODES, SafetensorsReader

if TYPE_CHECKING:
    from os import PathLike



# the attribute torch's state_dict() gives its OrderedDict (module versions), kept by torch.save / torch.load
STATE_DICT_METADATA = "_metadata"


class FormatWarning(UserWarning):
    """Something of the model could not be carried over as it was (training state, an unknown object)."""


def save_model(
    edited: Head, source: Model | str | PathLike, out: str | PathLike, *, key: str | None = None,
    labels: Any = None, overwrite: bool = False, trust_checkpoint: bool = False,
) -> Path:
    """Write a copy of the model `source` with `edited` as its classifier, in the model's own format.

    Args:
        edited: the edited head (flat: a hierarchical split is not one linear layer).
        source: the model the head came from: its folder or file (opened as `load_head` opens it:
            pass the same `key=` / `labels=` / `trust_checkpoint=`), or a `Model` from `open_model`.
        out: the new folder (for a folder model) or file.
        overwrite: replace an existing `out` (which may be `source` itself).
    Returns:
        `out` as a Path.
    Raises:
        CatsplitError: a hierarchical or text head, a head of another shape or dtype, an output
            that exists (without overwrite) or does not suit the format.
    """
    model = source if isinstance(source, Model) else open_model(
        source, key=key, labels=labels, trust_checkpoint=trust_checkpoint,
    )
    check_edited(model, edited)
    dest = check_model_output(model, out, overwrite=overwrite)
    if model.is_folder:
        _write_folder(model, edited, dest, overwrite)
    else:
        _write_file(model, edited, model.path, dest, overwrite, entry_here=True)
        if model.format == MMACTION:
            with atomic_path(label_map_path(dest), overwrite=overwrite) as tmp:
                tmp.write_text(mmaction.label_map_text(edited.labels), encoding="utf-8")
    return dest


def check_edited(model: Model, edited: Head) -> None:
    """The edited head fits the model's classifier slot: one linear layer of the same width, dtype and bias."""
    if not isinstance(edited, Head):
        raise CatsplitError(f"save_model needs a catsplit.Head, got {type(edited).__name__}")
    if edited.is_hierarchical:
        raise CatsplitError(
            f"the head has {len(edited.tables) - 1} hierarchical split(s) ({', '.join(map(repr, edited.gates))}), which no "
            f"single linear layer can hold, so it cannot be written into {model.path} ({model.format}). Split with "
            "mode='flat', or deploy the hierarchical head as it is: catsplit.export.to_onnx / `catsplit export` (ONNX), "
            "or Head.to_module() (a torch module) in your own code"
        )
    if edited.kind != "linear":
        raise CatsplitError(f"a {edited.kind} head (cosine logits) is not a linear classifier; it cannot replace {model.layer}")
    base = model.head
    if edited.dim != base.dim or edited.dtype != base.dtype or (edited.bias is None) != (base.bias is None):
        have = f"dim {edited.dim}, {str(edited.dtype).removeprefix('torch.')}, {'with' if edited.bias is not None else 'no'} bias"
        want = f"dim {base.dim}, {str(base.dtype).removeprefix('torch.')}, {'with' if base.bias is not None else 'no'} bias"
        raise CatsplitError(
            f"the head ({have}) does not fit the classifier {weight_stem(model.layer) or model.layer!r} of {model.path} "
            f"({want}); write a head edited from this model's own classifier"
        )


def check_model_output(model: Model, out: str | PathLike, *, overwrite: bool) -> Path:
    """The destination for `model` written back, checked before any work: a folder for a folder model,
    a file of the model's container otherwise; existing only with overwrite."""
    dest = Path(out)
    if model.is_folder:
        if dest.exists() and not dest.is_dir():
            raise CatsplitError(f"{dest} is a file; the model is a folder ({model.format}): give a folder name")
        if dest.exists() and not overwrite:
            raise CatsplitError(f"{dest} exists; choose another name or pass overwrite=True (CLI: --overwrite)")
        if not (dest.parent if str(dest.parent) else Path(".")).is_dir():
            raise CatsplitError(f"folder {dest.parent} does not exist; create it first")
        if dest.resolve() != model.path.resolve() and model.path.resolve() in dest.resolve().parents:
            raise CatsplitError(f"{dest} is inside the model folder {model.path}; write the new model beside it")
        return dest
    check_destination(dest, overwrite=overwrite, example=model.path.name)
    folder = model.path.parent
    if model.path.name in WEIGHT_FILES and (folder / "config.json").is_file() and dest.resolve().parent == folder.resolve():
        raise CatsplitError(
            f"{model.path} is the weights file of the model folder {folder}, whose config.json names its labels; "
            f"split the folder instead (catsplit split {folder} ... -o NEW_FOLDER) so that config.json is updated too"
        )
    if dest.suffix.lower() == ".safetensors" and not _is_safetensors(model.path):
        raise CatsplitError(
            f"{dest}: the model {model.path} is a PyTorch checkpoint and is written back as one; give -o a checkpoint "
            f"name such as {dest.with_suffix(model.path.suffix or '.pt').name} (or write only the head: --head-only)"
        )
    if model.format == MMACTION:
        check_destination(label_map_path(dest), overwrite=overwrite, example="label_map.txt")
    return dest


def _is_safetensors(path: Path) -> bool:
    return container_of(path) == SAFETENSORS


def label_map_path(dest: Path) -> Path:
    """The label map written beside a mmaction2 checkpoint: `<name>_label_map.txt`."""
    stem = dest.name[: -len(".pth")] if dest.name.endswith(".pth") else dest.stem
    return dest.with_name(f"{stem}_label_map.txt")


# --- folders ---------------------------------------------------------------------------------------
def _write_folder(model: Model, edited: Head, dest: Path, overwrite: bool) -> None:
    entry = history_entry(edited)
    assert model.config is not None
    updated = huggingface.updated_config if model.format == HUGGINGFACE else timm.updated_config
    config = updated(model.config, edited.labels, entry)
    rewritten = {path.resolve(): (index.resolve() if index is not None else None) for path, index in model.files}
    indexes = {index.resolve(): index for _, index in model.files if index is not None}  # resolved -> in the folder
    parent = dest.parent if str(dest.parent) else Path(".")
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=parent))
    try:
        growth: dict[Path, int] = {}  # shard index (resolved) -> bytes its shards grew
        for src in sorted(_files(model.path)):
            rel = src.relative_to(model.path)
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            real = src.resolve()
            if rel == Path("config.json"):
                _write_text(target, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
            elif real in rewritten:
                grew = _write_file(model, edited, src, target, True, entry_here=False, publish=False)
                index = rewritten[real]
                if index is not None:
                    growth[index] = growth.get(index, 0) + grew
            elif real in indexes:
                continue  # written below, once the shards' new sizes are known
            else:
                _copy_file(src, target)
        for real, index in indexes.items():
            _write_index(real, staging / index.relative_to(model.path), growth.get(real, 0))
        os.chmod(staging, 0o777 & ~umask())
        _publish_folder(staging, dest, overwrite)
    except OSError as exc:
        raise CatsplitError(f"cannot write {dest}: {exc.strerror or exc}; {dest} is untouched") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _files(folder: Path) -> list[Path]:
    """Every regular file under `folder` (symlinked files followed, as in a Hugging Face cache snapshot)."""
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # .cache/, .git/: not part of the model
        for name in names:
            p = Path(root) / name
            if p.is_file() and not name.endswith(".tmp"):
                found.append(p)
    return found


def _write_index(src: Path, target: Path, growth: int) -> None:
    """A shard index with `metadata.total_size` grown by the bytes the head's new rows add."""
    index = json.loads(src.read_text(encoding="utf-8"))
    meta = index.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("total_size"), int):
        meta["total_size"] += growth
    _write_text(target, json.dumps(index, indent=2, ensure_ascii=False) + "\n")


def _publish_folder(staging: Path, dest: Path, overwrite: bool) -> None:
    fsync_dir(staging)
    if overwrite:
        old = swap_in(staging, dest)  # one atomic exchange where the system has it: dest is never missing
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    else:
        try:
            rename_new(staging, dest)  # refuses a folder that appeared since the check
        except FileExistsError:
            raise CatsplitError(f"{dest} exists; choose another name or pass overwrite=True (CLI: --overwrite)") from None
    fsync_dir(dest.parent if str(dest.parent) else Path("."))


def _write_text(target: Path, text: str) -> None:
    with open(target, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _copy_file(src: Path, target: Path) -> None:
    shutil.copyfile(src, target)  # in-kernel copy (sendfile / copy_file_range) where the system has it
    with open(target, "rb+") as f:
        os.fsync(f.fileno())


# --- one weights file ------------------------------------------------------------------------------
def _write_file(
    model: Model, edited: Head, src: Path, dest: Path, overwrite: bool, *, entry_here: bool, publish: bool = True,
) -> int:
    """Write the weights file `src` with the edited head to `dest`; returns how many bytes it grew.

    Args:
        entry_here: the catsplit entry goes into this file (single-file formats); folders keep it in config.json.
        publish: write through `atomic_path` (a file of its own); False writes `dest` directly (a staging folder).
    """
    replace = {model.layer: edited.weight.contiguous()}
    if edited.bias is not None:
        replace[model.bias_name] = edited.bias.contiguous()
    if _is_safetensors(src):
        if not publish and not _holds(src, model.layer):  # another weights file of the folder (open_clip's...)
            _copy_file(src, dest)
            return 0
        return _rewrite_safetensors(src, dest, replace, edited if entry_here else None, overwrite, publish)
    return _rewrite_checkpoint(model, src, dest, replace, edited, entry_here, overwrite, publish)


def _holds(path: Path, name: str) -> bool:
    with SafetensorsReader(path) as reader:
        return name in reader


def _rewrite_safetensors(
    src: Path, dest: Path, replace: Mapping[str, torch.Tensor], edited: Head | None, overwrite: bool, publish: bool,
) -> int:
    with SafetensorsReader(src) as reader:
        meta = dict(reader.metadata)
        if edited is not None:  # a state dict on its own: the history (and labels) in its metadata
            entry = history_entry(edited)
            meta.pop(ENTRY_KEY, None)
            if entry is not None:
                meta[ENTRY_KEY] = entry_text(entry)
            if "catsplit.labels" in meta:
                meta["catsplit.labels"] = json.dumps(list(edited.tables[0].labels), ensure_ascii=False)
        order = sorted(reader, key=lambda n: (reader.entry(n).begin, reader.entry(n).end))  # the source's data order
        header: dict[str, Any] = {"__metadata__": meta} if meta else {}
        offset = 0
        for name in order:
            e = reader.entry(name)
            if name in replace:
                t = replace[name]
                dtype, shape, n = SAFETENSORS_CODES[t.dtype], list(t.shape), t.numel() * t.element_size()
            else:
                dtype, shape, n = e.dtype, list(e.shape), e.end - e.begin
            header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
            offset += n
        raw = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        raw += b" " * (-len(raw) % 8)
        growth = 8 + len(raw) + offset - os.fstat(reader.fileno()).st_size

        def write(tmp: Path) -> None:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            try:
                pos = pwrite_all(fd, len(raw).to_bytes(8, "little") + raw, 0)
                copier = RangeCopier(reader.fileno(), src)
                for name in order:
                    if name in replace:
                        t = replace[name]
                        pos = pwrite_all(fd, memoryview(t.reshape(-1).view(torch.uint8).numpy()), pos)
                    else:
                        e = reader.entry(name)
                        copier.copy(reader.data_start + e.begin, e.end - e.begin, fd, pos)
                        pos += e.end - e.begin
                if pos != 8 + len(raw) + offset:  # a bug, never a file to publish
                    raise RuntimeError(f"wrote {pos} bytes where the header describes {8 + len(raw) + offset}")
                os.fsync(fd)
            finally:
                os.close(fd)

        if publish:
            with atomic_path(dest, overwrite=overwrite) as tmp:
                write(tmp)
        else:
            write(dest)
    return growth


def _rewrite_checkpoint(
    model: Model, src: Path, dest: Path, replace: Mapping[str, torch.Tensor], edited: Head, entry_here: bool,
    overwrite: bool, publish: bool,
) -> int:
    ckpt = open_checkpoint(src, trust=model.trust, mmap=True)
    if not publish and model.layer not in ckpt.tensors:  # another weights file of the folder
        del ckpt
        _copy_file(src, dest)
        return 0
    obj = ckpt.obj
    if not isinstance(obj, dict):
        raise CatsplitError(f"{src} holds a {type(obj).__name__}, not a dict of tensors; catsplit cannot write it back")
    bare = _is_bare(ckpt, model.layer)
    if bare:
        obj = as_ordered(obj)
    for name, t in _with_mirrors(ckpt, src, replace).items():
        keys = ckpt.where.get(name)
        if keys is None:
            raise CatsplitError(
                f"{src}: the classifier {name!r} sits inside an object catsplit does not load (a pickled module?); "
                "catsplit cannot write it back. Save the model's state dict (torch.save(model.state_dict(), path)) and split that"
            )
        _set(obj, keys, t)
    if model.trust:
        _drop_opaque(obj, src, keep=ckpt.where[model.layer][0])
    if entry_here:
        _put_entry(model, obj, history_entry(edited), bare=bare)
        if model.format == MMACTION:
            obj["meta"], notes = mmaction.update_meta(obj["meta"], edited.labels)
            for note in notes:
                warn_caller(f"{src}: {note}", FormatWarning)
        elif model.format == PYTORCHVIDEO and isinstance(obj.get("cfg"), str):
            obj["cfg"], found = pytorchvideo.set_num_classes(obj["cfg"], edited.num_classes)
            if not found:
                warn_caller(f"{src}: its cfg has no MODEL.NUM_CLASSES to update", FormatWarning)
    stale = sorted(k for k in obj if isinstance(k, str) and k in TRAINING_STATE and k not in ("meta", ENTRY_KEY))
    if stale:
        warn_caller(
            f"{src}: {', '.join(stale)} (training state) is kept as it was and still has the old classifier's shape; "
            "use the written model for inference or fine-tuning with a fresh optimizer", FormatWarning,
        )
    before = os.path.getsize(src)
    legacy = ckpt.kind != TORCH_ZIP

    def write(tmp: Path) -> None:
        torch.save(obj, str(tmp), _use_new_zipfile_serialization=not legacy)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())

    if publish:
        with atomic_path(dest, overwrite=overwrite) as tmp:
            write(tmp)
        return os.path.getsize(dest) - before
    write(dest)
    return os.path.getsize(dest) - before


def _with_mirrors(ckpt: Any, src: Path, replace: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`replace` plus every other copy of the same layer (`model.fc` beside `module.fc`) that is bit-identical
    to it; a copy with other values (an EMA) is refused: one edited copy would leave the checkpoint inconsistent."""
    out = dict(replace)
    for name, new in replace.items():
        plain = strip_wrappers(name)
        old = ckpt.tensors[name]
        for other, t in ckpt.tensors.items():
            if other == name or other in replace or strip_wrappers(other) != plain or other.split(".", 1)[0] in TRAINING_STATE:
                continue
            if t.shape == old.shape and t.dtype == old.dtype and torch.equal(t, old):
                out[other] = new
            else:
                raise CatsplitError(
                    f"{src} holds the classifier twice, as {name!r} and {other!r} (e.g. an EMA copy) with other values; "
                    "catsplit edits one of them and would leave the other as it was. Split the copy you use on a "
                    "checkpoint that holds only it (e.g. torch.save(ckpt['state_dict_ema'], 'ema.pth'))"
                )
    return out


def _set(obj: Any, keys: tuple, value: torch.Tensor) -> None:
    for k in keys[:-1]:
        obj = obj[k]
    obj[keys[-1]] = value


def _drop_opaque(obj: dict, src: Path, *, keep: Any) -> None:
    """Top-level entries holding placeholders (`trust_checkpoint`) cannot be written back as the classes they
    stood for: they are left out, with a warning naming them (the entry holding the classifier is refused)."""
    if keep in obj and holds_opaque(obj[keep]):
        raise CatsplitError(
            f"{src}: {keep!r}, which holds the classifier, also holds objects of classes catsplit does not load "
            "(trust_checkpoint); they cannot be written back. Save the plain state dict and split that"
        )
    dropped = [k for k, v in obj.items() if holds_opaque(v)]
    for k in dropped:
        del obj[k]
    if dropped:
        warn_caller(
            f"{src}: {', '.join(map(str, dropped))} held objects of classes catsplit does not load (trust_checkpoint); "
            "they are left out of the written checkpoint", FormatWarning,
        )


def _is_bare(ckpt: Any, layer: str) -> bool:
    """True when the checkpoint is the state dict itself (the layer's tensor is a top-level entry)."""
    keys = ckpt.where.get(layer)
    return keys is not None and len(keys) == 1


def _put_entry(model: Model, obj: dict, entry: dict | None, *, bare: bool) -> None:
    """The catsplit entry where the format has room: mmaction2 `meta`, else the checkpoint dict, or the
    `_metadata` of a bare state dict (which `load_state_dict` ignores: an extra key would break `strict=True`)."""
    if model.format == MMACTION:
        meta = dict(obj["meta"])
        meta.pop(ENTRY_KEY, None)
        if entry is not None:
            meta[ENTRY_KEY] = entry
        obj["meta"] = meta
        return
    if not bare:
        obj.pop(ENTRY_KEY, None)
        if entry is not None:
            obj[ENTRY_KEY] = entry
        return
    meta = getattr(obj, STATE_DICT_METADATA)  # as_ordered gave it one
    meta.pop(ENTRY_KEY, None)
    if entry is not None:
        meta[ENTRY_KEY] = entry


def as_ordered(obj: Any) -> Any:
    """A bare state dict as an OrderedDict (keeps order; gives it the `_metadata` the entry goes in)."""
    if type(obj) is dict:
        obj = OrderedDict(obj)
    if getattr(obj, STATE_DICT_METADATA, None) is None and isinstance(obj, OrderedDict):
        setattr(obj, STATE_DICT_METADATA, OrderedDict())
    return obj
