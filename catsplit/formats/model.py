"""open_model: the user's model as it is on disk (folder or file, any of the formats catsplit knows),
its classifier as a `Head`, and what writing it back needs.

Formats (spec/model-formats.md): a Hugging Face transformers folder, a timm folder, a mmaction2
checkpoint, a PyTorchVideo / PySlowFast checkpoint, a plain (possibly wrapped) PyTorch state dict, a
safetensors state dict. Which one comes from the bytes and the content, never from the file's
suffix. Only the classifier's tensors are read into memory (PyTorch zip checkpoints are memory-mapped
while they are looked at, and the head is copied out).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import torch

from catsplit.errors import CatsplitError
from catsplit.formats import huggingface, mmaction, pytorchvideo, timm
from catsplit.formats.detect import (
    HUGGINGFACE, MODEL_SUFFIXES, PICKLE, SAFETENSORS, TIMM, TORCH_ZIP, UNKNOWN, describe_kind, file_kind, folder_kind,
)
from catsplit.formats.history import ENTRY_KEY, Entry, read_entry
from catsplit.formats.statedict import is_training_state, weight_stem
from catsplit.head import Head
from catsplit.io.checkpoint import Checkpoint, float_tensor, locate_linear, open_checkpoint
from catsplit.io.keys import KEY_FORMAT, KEY_LABELS, OWN_KEYS
from catsplit.io.readers import parse_json, read_json, read_labels
from catsplit.io.safetensors import SafetensorsReader

if TYPE_CHECKING:
    from os import PathLike

STATE_DICT = "torch"  # a plain or wrapped PyTorch state dict
SAFETENSORS_STATE_DICT = "safetensors"
MMACTION = "mmaction2"
PYTORCHVIDEO = "pytorchvideo"

# weight files of a model folder, in the order transformers and timm prefer them
WEIGHT_FILES = (
    "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json",
    "pytorch_model.pth", "model.pth", "open_clip_model.safetensors", "open_clip_pytorch_model.bin",
)


@dataclass
class Model:
    """A model on disk and its classifier.

    Attributes:
        path: the folder or file the user gave.
        format: "huggingface", "timm", "mmaction2", "pytorchvideo", "torch" or "safetensors".
        head: the classifier as a `Head` (with the edit history the model carries).
        layer: the classifier weight's full tensor name in its file (`classifier.weight`,
            `state_dict.cls_head.fc_cls.weight`); its bias is the same stem + `.bias`.
        files: every weights file that holds the layer (a folder may have safetensors and .bin copies,
            or shards), with the shard index that names it (None for a single file).
        config: a folder's `config.json` content.
        whole: the file holds tensors besides the layer (a model, not a head on its own).
        trust: the checkpoint was opened with trust_checkpoint=True.
    """

    path: Path
    format: str
    head: Head
    layer: str
    files: list[tuple[Path, Path | None]] = field(default_factory=list)
    config: dict[str, Any] | None = None
    whole: bool = True
    trust: bool = False

    @property
    def is_folder(self) -> bool:
        return self.format in (HUGGINGFACE, TIMM)

    @property
    def bias_name(self) -> str:
        stem = weight_stem(self.layer)
        return "bias" if self.layer == "weight" else f"{stem}.bias"


def is_head_file(path: str | PathLike) -> bool:
    """True for a catsplit head file (safetensors with `catsplit.format`), which `load_head` reads itself."""
    p = Path(path)
    if not p.is_file() or container_of(p) != SAFETENSORS:
        return False
    try:
        with SafetensorsReader(p) as reader:
            return KEY_FORMAT in reader.metadata
    except CatsplitError:
        return False


def open_model(
    path: str | PathLike, *, key: str | None = None, labels: Any = None,
    groups: Mapping[str, Sequence[str]] | None = None, trust_checkpoint: bool = False,
) -> Model:
    """Open a model in its own format and read its classifier.

    Args:
        path: a model folder (or its `config.json`), or a weights / checkpoint file.
        key: the classifier layer; None to take the one the format names, else the best-ranked known name.
        labels: the class names (list, mapping or labels file) when the model does not carry them, or to
            replace them on an unedited model.
        groups: pseudo-coarse groups for the head.
        trust_checkpoint: open training checkpoints whose classes weights_only=True refuses, with inert
            placeholders (nothing from the file runs).
    Raises:
        CatsplitError naming the path and the fix.
    """
    p = Path(path)
    if p.is_file() and p.name == "config.json":
        p = p.parent
    if p.is_dir():
        return _open_folder(p, key, labels, groups, trust_checkpoint)
    if not p.is_file():
        raise CatsplitError(f"{p}: no such file")
    if container_of(p) == SAFETENSORS:
        with SafetensorsReader(p) as reader:
            if KEY_FORMAT in reader.metadata and key is None:
                raise CatsplitError(f"{p} is a catsplit head file, not a model; load it with catsplit.load_head")
            return _from_safetensors(p, reader, SAFETENSORS_STATE_DICT, key, labels, groups, hint=_beside_config(p))
    return _from_checkpoint(p, open_checkpoint(p, trust=trust_checkpoint, mmap=True), key, labels, groups, trust_checkpoint)


def container_of(path: Path) -> str:
    """How to read a file: SAFETENSORS, or TORCH_ZIP / PICKLE for torch.load.

    From the bytes; a `.safetensors` name is always read as safetensors (a pickle under that name is
    refused, never unpickled), and bytes of no known kind go to the reader the suffix names, whose
    error then says what is wrong.
    """
    if path.suffix.lower() == ".safetensors":
        return SAFETENSORS
    kind = file_kind(path)
    if kind == UNKNOWN:
        return PICKLE if path.suffix.lower() in MODEL_SUFFIXES else SAFETENSORS
    return kind


def container_hint(path: Path) -> str:
    """For a `.safetensors` file that is not one: what its bytes are instead, and the fix."""
    kind = file_kind(path)
    if kind in (TORCH_ZIP, PICKLE):
        return f" It holds {describe_kind(kind)}: rename it (e.g. {path.with_suffix('.pt').name}) to have it read as one"
    return ""


def _beside_config(p: Path) -> str:
    if (p.parent / "config.json").is_file():
        return f"; {p.parent} has a config.json: give the folder ({p.parent}) to read the labels from it"
    return ""


# --- folders ---------------------------------------------------------------------------------------
def _open_folder(folder: Path, key: str | None, labels: Any, groups: Any, trust: bool) -> Model:
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise CatsplitError(
            f"{folder} is a folder without a config.json (no such file: {cfg_path}); give a Hugging Face or timm model "
            "folder, or the weights file itself"
        )
    config = read_json(cfg_path, "model config")
    fmt = folder_kind(config)
    if fmt is None:
        raise CatsplitError(
            f"{cfg_path} is neither a Hugging Face transformers config (architectures, model_type) nor a timm one "
            "(architecture, pretrained_cfg); give the weights file itself with key= and labels="
        )
    if fmt == HUGGINGFACE:
        layer_key = key or huggingface.classifier_name(config, cfg_path)
        own_labels = huggingface.config_labels(config, cfg_path)
    else:
        layer_key = key or timm.classifier_name(config, cfg_path)
        own_labels = timm.config_labels(config, cfg_path)
    files = weight_files(folder, layer_key)
    weights, _ = files[0]
    entry = read_entry(config.get(ENTRY_KEY), f'{cfg_path} "catsplit"')
    labels = _labels(labels, own_labels, entry, cfg_path, "id2label" if fmt == HUGGINGFACE else "label_names")
    if container_of(weights) == SAFETENSORS:
        with SafetensorsReader(weights) as reader:
            model = _from_safetensors(weights, reader, fmt, layer_key, labels, groups, entry=entry)
    else:
        model = _from_checkpoint(weights, open_checkpoint(weights, trust=trust, mmap=True), layer_key, labels, groups, trust,
                                 fmt=fmt, entry=entry)
    model.path, model.files, model.config = folder, files, config
    return model


def weight_files(folder: Path, layer_key: str | None) -> list[tuple[Path, Path | None]]:
    """The weights files of a model folder that hold the classifier (`layer_key`, or any for None), with
    the shard index naming each (None for an unsharded file)."""
    found: list[tuple[Path, Path | None]] = []
    for name in WEIGHT_FILES:
        p = folder / name
        if not p.is_file():
            continue
        if name.endswith(".index.json"):
            index = read_json(p, "shard index")
            weight_map = index.get("weight_map") if isinstance(index, Mapping) else None
            if not isinstance(weight_map, Mapping):
                raise CatsplitError(f"shard index {p} has no weight_map; it is damaged")
            names = [layer_key, f"{layer_key}.weight"] if layer_key else [n for n in weight_map if n.endswith(".weight")]
            shard = next((weight_map[n] for n in names if n in weight_map), None)
            if isinstance(shard, str) and (folder / shard).is_file() and Path(shard).name == shard:
                found.append((folder / shard, p))
        else:
            found.append((p, None))
    if not found:
        raise CatsplitError(
            f"{folder} holds no weights file ({', '.join(WEIGHT_FILES[:3])}, ...) with the classifier"
            f"{f' {layer_key!r}' if layer_key else ''}; download the weights too"
        )
    return found


# --- files -----------------------------------------------------------------------------------------
def _labels(given: Any, own: list[str] | None, entry: Entry, where: Path, field_name: str, hint: str = "") -> list[str]:
    """The labels: `labels=` (only for an unedited model), else the model's own, else those its catsplit entry keeps."""
    if given is not None:
        if entry.history:
            raise CatsplitError(
                f"{where} carries catsplit edits under its labels; labels= can only name the classes of an unedited model"
            )
        return read_labels(given)
    if own is None:
        own = entry.labels
    if own is None:
        raise CatsplitError(
            f"{where} holds no labels ({field_name}); pass labels=[...] or a labels file (JSON list, JSON "
            f"{{label: index}}, or one per line; CLI: --labels){hint}"
        )
    return own


def _from_safetensors(
    path: Path, reader: SafetensorsReader, fmt: str, key: str | None, labels: Any, groups: Any, *,
    hint: str = "", entry: Entry | None = None,
) -> Model:
    """A model from an open safetensors file. For a folder's weights `labels` and `entry` are the folder's
    (resolved); for a file on its own they come from its metadata unless `labels=` was given."""
    meta = reader.metadata
    if entry is None:  # a file on its own
        entry = read_entry(meta.get(ENTRY_KEY), f'{path} metadata "catsplit"')
        stored = _meta_labels(path, meta) if labels is None else None
        labels = _labels(labels, stored, entry, path, f"metadata {KEY_LABELS!r}", hint)
    layer = locate_linear(path, reader, key, n_labels=len(labels))
    w = float_tensor(path, reader, layer)
    b = float_tensor(path, reader, _bias_of(layer))
    foreign = {k: v for k, v in meta.items() if k not in OWN_KEYS and k != ENTRY_KEY}
    head = _head(path, w, b, labels, groups, entry, foreign)
    whole = any(name not in (layer, _bias_of(layer)) for name in reader)
    return Model(path=path, format=fmt, head=head, layer=layer, files=[(path, None)], whole=whole)


def head_from_safetensors(
    path: Path, reader: SafetensorsReader, key: str | None, labels: Any, groups: Any,
) -> Head:
    """The head of a safetensors file that is not a catsplit head file (or is read with `key=`)."""
    return _from_safetensors(path, reader, SAFETENSORS_STATE_DICT, key, labels, groups, hint=_beside_config(path)).head


def _meta_labels(path: Path, meta: Mapping[str, str]) -> list[str] | None:
    if KEY_LABELS not in meta:
        return None
    # Used as they are, never through read_labels: a string here must not be taken for a file to open.
    value = parse_json(meta[KEY_LABELS], f"{path}: metadata {KEY_LABELS!r}")
    if not isinstance(value, list):
        raise CatsplitError(f"{path}: metadata {KEY_LABELS!r} must be a JSON list of labels, got {type(value).__name__}")
    return value


def _from_checkpoint(
    path: Path, ckpt: Checkpoint, key: str | None, labels: Any, groups: Any, trust: bool, *,
    fmt: str | None = None, entry: Entry | None = None,
) -> Model:
    """A model from a loaded checkpoint. For a folder's weights `fmt`, `labels` and `entry` are the
    folder's (resolved); for a file on its own the checkpoint's layout says them."""
    obj = ckpt.obj
    prefer: Sequence[str] = ()
    if fmt is None:  # a file on its own
        own = None
        if mmaction.is_checkpoint(obj):
            fmt, prefer = MMACTION, mmaction.HEADS
            own = mmaction.meta_labels(obj["meta"])
            entry = read_entry(obj["meta"].get(ENTRY_KEY), f'{path} meta["catsplit"]')
        elif pytorchvideo.is_checkpoint(obj):
            fmt, prefer = PYTORCHVIDEO, pytorchvideo.HEADS
            entry = read_entry(obj.get(ENTRY_KEY), f'{path} ["catsplit"]')
        else:
            fmt = STATE_DICT
            entry = read_entry(torch_entry(obj), f'{path} ["catsplit"]')
        labels = _labels(labels, own, entry, path, "class names")
    assert entry is not None
    layer = locate_linear(path, ckpt.tensors, key, n_labels=len(labels), prefer=prefer)
    w = float_tensor(path, ckpt.tensors, layer)
    b = float_tensor(path, ckpt.tensors, _bias_of(layer))
    # Copies: the checkpoint is memory-mapped, and the head must outlive the file (as load_head's heads do).
    w = w.clone() if w is not None else None
    b = b.clone() if b is not None else None
    head = _head(path, w, b, labels, groups, entry, {})
    model_tensors = [n for n in ckpt.tensors if not is_training_state(n)]
    whole = any(name not in (layer, _bias_of(layer)) for name in model_tensors)
    return Model(path=path, format=fmt, head=head, layer=layer, files=[(path, None)], whole=whole, trust=trust)


def torch_entry(obj: Any) -> Any:
    """The `catsplit` entry of a torch checkpoint: a top-level key, or the state dict's `_metadata`."""
    if isinstance(obj, Mapping) and isinstance(obj.get(ENTRY_KEY), (Mapping, str)):
        return obj[ENTRY_KEY]
    meta = getattr(obj, "_metadata", None)  # torch's state-dict metadata attribute (catsplit.formats.writer writes it)
    if isinstance(meta, Mapping) and ENTRY_KEY in meta:
        return meta[ENTRY_KEY]
    return None


def _bias_of(layer: str) -> str:
    return "bias" if layer == "weight" else f"{weight_stem(layer) or layer}.bias"


def _head(
    path: Path, w: torch.Tensor | None, b: torch.Tensor | None, labels: Sequence[str], groups: Any,
    entry: Entry, metadata: Mapping[str, str],
) -> Head:
    if groups is None:
        groups = entry.groups
    try:
        return Head(
            weight=w, bias=b, labels=labels, groups=groups, history=entry.history, undo=entry.undo, metadata=metadata,
        )
    except CatsplitError as exc:
        raise CatsplitError(str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}") from None
