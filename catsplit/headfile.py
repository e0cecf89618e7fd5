"""Reading and writing heads: catsplit's safetensors layout, foreign checkpoints, atomic writes.

The layout is specified in spec/head-format.md. In short: tensors `weight` [C, D] and `bias` [C]
for the base table, `sub.<i>.weight` / `sub.<i>.bias` for the table of the i-th hierarchical
split, `undo.<n>.*` for what flat edits removed; string metadata under `catsplit.*` keys.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import torch

from catsplit.errors import CatsplitError
from catsplit.head import _Checked, Head, check_history, check_undo, labels_by_index, label_list, make_table
from catsplit.text import check_templates

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
    if head._groups is not None:  # the head's own values: the attributes would copy them
        meta[KEY_GROUPS] = json.dumps(head._groups, ensure_ascii=False)
    if head._history:
        meta[KEY_HISTORY] = json.dumps(list(head._history), ensure_ascii=False)
    return tensors, meta


def save_head(head: Head, path: str | PathLike, *, overwrite: bool = False) -> None:
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
            as `catsplit.streaming` does. Either way the file is then fsynced and given its name.
    """
    from catsplit.atomic import atomic_path, check_destination

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


SAFETENSORS_CODES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64"}


def safetensors_header(tensors: Mapping[str, torch.Tensor], meta: Mapping[str, str]) -> bytes:
    """The header of a safetensors file holding `tensors` (written in `tensor_order`) and `meta`.

    Compact JSON, `__metadata__` first with its keys in the given order, then the tensors; padded
    with spaces to a multiple of 8 bytes. Deterministic: the same head gives the same bytes.

    Raises:
        UnicodeEncodeError: a string holds a lone surrogate.
    """
    header: dict[str, Any] = {"__metadata__": dict(meta)} if meta else {}
    offset = 0
    for name in tensor_order(tensors):
        t = tensors[name]
        code = SAFETENSORS_CODES.get(t.dtype)
        if code is None:
            raise CatsplitError(f"tensor {name!r} has dtype {t.dtype}; head files hold float32, float16, bfloat16 or float64")
        n = t.numel() * t.element_size()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return raw + b" " * (-len(raw) % 8)


def tensor_order(tensors: Mapping[str, torch.Tensor]) -> list[str]:
    """Data order, as the safetensors library writes it: larger elements first, then by name."""
    return sorted(tensors, key=lambda k: (-tensors[k].element_size(), k))


def write_safetensors(f: Any, header: bytes, tensors: Mapping[str, torch.Tensor]) -> None:
    """Write a safetensors file to the binary file object `f`, each tensor straight from its memory (no copy)."""
    f.write(len(header).to_bytes(8, "little"))
    f.write(header)
    for name in tensor_order(tensors):
        t = tensors[name].contiguous()
        if t.numel():
            f.write(memoryview(t.reshape(-1).view(torch.uint8).numpy()))


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
        return _load_from(path, _read_checkpoint(path), {}, key, labels, groups)
    # Header checked on open; only the tensors the head needs are read, each once, into fresh memory.
    with SafetensorsReader(path) as tensors:
        return _load_from(path, tensors, tensors.metadata, key, labels, groups)


def _load_from(
    path: Path, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, str], key: str | None,
    labels: Sequence[str] | str | PathLike | None, groups: Mapping[str, Sequence[str]] | None,
) -> Head:
    if KEY_FORMAT in meta and key is None:
        return _head_from_catsplit(path, tensors, meta, None if labels is None else read_labels(labels), groups)
    w, b = _find_linear(path, tensors, key)
    if labels is not None:
        labels = read_labels(labels)
    elif KEY_LABELS in meta:
        # Used as they are, never through read_labels: a string here must not be taken for a file to open.
        labels = _json_meta(path, meta, KEY_LABELS)
        if not isinstance(labels, list):
            raise CatsplitError(f"{path}: metadata {KEY_LABELS!r} must be a JSON list of labels, got {type(labels).__name__}")
    else:
        raise CatsplitError(
            f"{path} holds no labels; pass labels=[...] or a labels file (JSON list, JSON {{label: index}}, or one per line)"
        )
    foreign = {k: v for k, v in meta.items() if k not in OWN_KEYS}
    try:
        return Head(weight=w, bias=b, labels=labels, groups=groups, metadata=foreign)
    except CatsplitError as exc:
        raise CatsplitError(f"{path}: {exc}") from None


def read_labels(labels: Sequence[str] | Mapping[str, int] | str | PathLike) -> list[str]:
    """Labels from a list, a {label: index} mapping, a JSON file (list or {label: index}) or a text file (one label per line)."""
    if isinstance(labels, str) and not Path(labels).is_file() and Path(labels).suffix.lower() not in LABEL_SUFFIXES:
        raise CatsplitError(f"labels={labels!r}: give a list of labels or the path of a .json or .txt labels file")
    if isinstance(labels, (str, os.PathLike)):
        p = Path(labels)
        if not p.is_file():
            raise CatsplitError(f"labels file {p} not found")
        if p.suffix.lower() == ".json":
            data = read_json(p, "labels")
            if isinstance(data, dict):  # {label: index}, as the paper's labels.json
                return labels_by_index(data, f"labels file {p}")
            if isinstance(data, list):
                return data
            raise CatsplitError(f"labels file {p} must hold a JSON list or an object label -> index")
        return [line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    return label_list(labels, "labels")


def read_json(path: str | PathLike, what: str) -> Any:
    """A JSON file's content; a missing file or bad JSON is a CatsplitError naming `what` and the path."""
    p = Path(path)
    if not p.is_file():
        raise CatsplitError(f"{what} file {p} not found")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CatsplitError(f"{what} file {p} is not valid JSON: {exc}") from None


# --- the safetensors container, read by hand ----------------------------------------------
# The safetensors library maps the file into memory: a head loaded that way crashes the
# interpreter (SIGBUS) if another program truncates the file while the head is in use, and
# errors come from deep inside. This reader checks the whole header first (so a forged header
# fails before anything is allocated), then reads each tensor it is asked for, once, straight
# into the tensor's own memory.

MAX_HEADER_BYTES = 100_000_000  # the safetensors library's limit
MAX_DIMS = 64
# bits per element of every dtype the safetensors format defines
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "I16": 16, "U16": 16, "F16": 16,
    "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}
HEAD_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


@dataclass(frozen=True)
class _Entry:
    dtype: str
    shape: tuple[int, ...]
    begin: int  # byte offsets into the data section
    end: int


class SafetensorsReader(Mapping[str, torch.Tensor]):
    """An open safetensors file: `metadata`, tensor names and shapes from the checked header;
    `reader[name]` reads one float tensor into fresh memory. Use as a context manager.

    `mapped=True` (for `catsplit.streaming` only) maps the file read-only after the header check
    and returns tensors that are views of the mapping, without copying (`file_offset` tells where
    such a view's bytes lie in the file); a tensor whose offset does not suit its dtype, or every
    tensor where the file cannot be mapped, is read as usual. Views must not outlive the work on
    the file: a file truncated while they are in use crashes the interpreter (SIGBUS) when they are read.

    Raises:
        CatsplitError naming the file and the problem, on open (bad header) or on reading a
        tensor (not a float dtype, file shorter than its header says, no memory).
    """

    def __init__(self, path: str | PathLike, *, mapped: bool = False):
        self.path = Path(path)
        self._map: torch.Tensor | None = None
        self._mmap: mmap.mmap | None = None
        try:
            self._file = open(self.path, "rb")  # noqa: SIM115 - closed by close() / __exit__
        except OSError as exc:
            raise CatsplitError(f"{self.path}: cannot open ({exc.strerror or exc})") from None
        try:
            self.metadata, self._entries, self._data_start = _parse_header(self.path, self._file)
            if mapped:
                self._map_file()
        except BaseException:
            self.close()
            raise

    def _map_file(self) -> None:
        size = self._data_start + max((e.end for e in self._entries.values()), default=0)  # == the file's size
        try:
            self._mmap = mmap.mmap(self._file.fileno(), size, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # a file system that cannot map files: tensors are read as usual
            return
        with warnings.catch_warnings():  # read-only on purpose: the views are never written
            warnings.filterwarnings("ignore", message="The given buffer is not writable")
            self._map = torch.frombuffer(self._mmap, dtype=torch.uint8)

    def fileno(self) -> int:
        return self._file.fileno()

    def file_offset(self, t: torch.Tensor) -> int | None:
        """Where a contiguous view of the mapping (`mapped=True`) starts in the file; None for other tensors."""
        if self._map is None or not t.is_contiguous() or t.device.type != "cpu":
            return None
        offset = t.data_ptr() - self._map.data_ptr()
        return offset if 0 <= offset and offset + t.numel() * t.element_size() <= self._map.numel() else None

    def close(self) -> None:
        self._map = None
        if self._mmap is not None:
            try:
                self._mmap.close()
            except BufferError:  # views still alive: the mapping goes when the last of them does
                pass
            self._mmap = None
        self._file.close()

    def __enter__(self) -> SafetensorsReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self):
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def ndim(self, name: str) -> int:
        return len(self._entries[name].shape)

    def __getitem__(self, name: str) -> torch.Tensor:
        e = self._entries[name]
        dtype = HEAD_DTYPES.get(e.dtype)
        if dtype is None:
            raise CatsplitError(
                f"{self.path}: tensor {name!r} has dtype {e.dtype}; head tensors must be float "
                f"({', '.join(HEAD_DTYPES)}). Convert the layer to float before saving it"
            )
        n = e.end - e.begin
        start = self._data_start + e.begin
        if self._map is not None and n and start % dtype.itemsize == 0:
            return self._map[start : start + n].view(dtype).reshape(e.shape)  # zero-copy; misaligned ones are read
        try:
            buf = torch.empty(n, dtype=torch.uint8)
        except (RuntimeError, MemoryError):
            raise CatsplitError(f"{self.path}: not enough memory to read tensor {name!r} ({n} bytes)") from None
        if n:
            view = memoryview(buf.numpy())
            try:
                self._file.seek(self._data_start + e.begin)
                got = 0
                while got < n:
                    k = self._file.readinto(view[got:])
                    if not k:
                        raise CatsplitError(
                            f"{self.path}: the file ended {n - got} bytes before the end of tensor {name!r}; "
                            "it is truncated, or it changed while being read"
                        )
                    got += k
            except OSError as exc:
                raise CatsplitError(f"{self.path}: read error in tensor {name!r} ({exc.strerror or exc})") from None
        # safetensors stores little-endian; so does every platform torch ships for.
        return buf.view(dtype).reshape(e.shape)


def _read_exact(path: Path, f: Any, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise CatsplitError(f"{path}: the file ended early while reading its header; it is truncated, or it changed while being read")
    return data


def _parse_header(path: Path, f: Any) -> tuple[dict[str, str], dict[str, _Entry], int]:
    """(metadata, tensor entries, offset of the data section); every inconsistency is a CatsplitError."""

    def bad(problem: str, *, hint: bool = True) -> CatsplitError:
        more = (
            ". Is it truncated or damaged, or of another format? (PyTorch checkpoints need a .pt/.pth/.bin/.ckpt suffix)"
            if hint else ""
        )
        return CatsplitError(f"{path} is not a valid safetensors file: {problem}{more}")

    size = os.fstat(f.fileno()).st_size
    if size < 8:
        raise bad(f"it has {size} bytes, fewer than the 8 of the header length")
    n = int.from_bytes(_read_exact(path, f, 8), "little")
    if n > size - 8:
        raise bad(f"the header length field says {n} bytes, but only {size - 8} follow")
    if n > MAX_HEADER_BYTES:
        raise bad(f"the header length field says {n} bytes, more than the limit of {MAX_HEADER_BYTES}")
    raw = _read_exact(path, f, n)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad(f"the header is not UTF-8 text ({exc.reason} at file byte {8 + exc.start})") from None
    try:
        header = json.loads(text)
    except json.JSONDecodeError as exc:
        raise bad(f"the header is not valid JSON ({exc.msg} at character {exc.pos} of the header)") from None
    except RecursionError:
        raise bad("the header's JSON is nested too deeply") from None
    if not isinstance(header, dict):
        raise bad(f"the header is a JSON {type(header).__name__}, not an object")
    if _SURROGATE_ESCAPE.search(text) and not _utf8_encodable(header):
        raise bad("the header holds an unpaired surrogate escape (\\ud800-\\udfff), which is not text")
    meta = header.pop("__metadata__", None)
    if meta is None:
        meta = {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise bad("__metadata__ must be an object whose values are strings")
    entries: dict[str, _Entry] = {}
    for name, info in header.items():
        if not isinstance(info, dict):
            raise bad(f"the entry of tensor {name!r} is not an object")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
            raise bad(f"tensor {name!r} has an unknown dtype {dtype!r}")
        if not _naturals(shape) or len(shape) > MAX_DIMS:
            raise bad(f"tensor {name!r} has shape {_short(shape)}; a shape is a list of at most {MAX_DIMS} integers >= 0")
        if not _naturals(offsets) or len(offsets) != 2 or offsets[0] > offsets[1]:
            raise bad(f"tensor {name!r} has data_offsets {_short(offsets)}; expected [begin, end] with 0 <= begin <= end")
        bits = math.prod(shape) * DTYPE_BITS[dtype]  # Python ints: a forged 10^12-element shape is just a number
        if bits % 8 or bits // 8 != offsets[1] - offsets[0]:
            raise bad(
                f"tensor {name!r} of shape {shape} and dtype {dtype} needs {bits / 8:g} bytes, but its data_offsets "
                f"span {offsets[1] - offsets[0]}"
            )
        entries[name] = _Entry(dtype, tuple(shape), offsets[0], offsets[1])
    data_len = size - 8 - n
    pos = 0
    for name, e in sorted(entries.items(), key=lambda kv: (kv[1].begin, kv[1].end)):
        if e.begin != pos:
            raise bad(f"tensor {name!r} starts at data byte {e.begin}, expected {pos} (tensors overlap or leave a gap)")
        pos = e.end
    if pos > data_len:
        raise bad(
            f"the header describes {pos} bytes of tensor data but the file holds only {data_len}: it is truncated "
            "(an interrupted copy or download?)", hint=False,
        )
    if pos < data_len:
        raise bad(f"the header describes {pos} bytes of tensor data but the file holds {data_len} (trailing bytes)")
    return meta, entries, 8 + n


def _naturals(x: Any) -> bool:
    return isinstance(x, list) and all(type(v) is int and v >= 0 for v in x)


def _short(x: Any) -> str:
    r = repr(x)
    return r if len(r) <= 80 else r[:77] + "..."


def _utf8_encodable(obj: Any) -> bool:
    """False when a (parsed JSON) value holds a lone surrogate, which cannot be written back as UTF-8."""
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    except (RecursionError, ValueError):
        return False
    return True


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

    if isinstance(obj, torch.Tensor):  # torch.save(W, path): no name says what it is, nor where a bias would be
        raise CatsplitError(
            f"{path} holds a single tensor of shape {list(obj.shape)}, not a state dict, so catsplit cannot tell which "
            "layer it is. Save the layer by name, e.g. torch.save({'weight': W, 'bias': b}, path), or build the head "
            "directly: catsplit.Head(weight=torch.load(path), labels=[...])"
        )
    walk("", obj)
    return flat


def _find_linear(path: Path, tensors: Mapping[str, torch.Tensor], key: str | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The weight and bias of the linear layer named `key` (tolerating wrapper prefixes).

    Only the chosen tensors are read (shapes come from the header), so a large checkpoint costs
    the memory of its classifier layer, not of the whole model.
    """
    if key is None:
        if "weight" in tensors:
            return _float_tensor(path, tensors, "weight"), _float_tensor(path, tensors, "bias")
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
            bias = _float_tensor(path, tensors, stem + ".bias") if stem else None
            return _float_tensor(path, tensors, name), bias
    close = [k for k in tensors if key.split(".")[-1] in k][:10]
    raise CatsplitError(
        f"{path} has no 2-D tensor named {key!r} or {key + '.weight'!r}; tensors with a similar name: "
        f"{close or list(tensors)[:10]}"
    )


def _ndim(tensors: Mapping[str, torch.Tensor], name: str) -> int:
    return tensors.ndim(name) if isinstance(tensors, SafetensorsReader) else tensors[name].ndim


def _float_tensor(path: Path, tensors: Mapping[str, torch.Tensor], name: str) -> torch.Tensor | None:
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


def _json_meta(path: Path, meta: Mapping[str, str], key: str) -> Any:
    text = meta[key]
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatsplitError(f"{path}: metadata {key!r} is not valid JSON ({exc}); the file is damaged") from None
    except RecursionError:
        raise CatsplitError(f"{path}: metadata {key!r} is JSON nested too deeply; the file is damaged") from None
    if _SURROGATE_ESCAPE.search(text) and not _utf8_encodable(value):
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
        tables = [make_table(_float_tensor(path, tensors, "weight"), _float_tensor(path, tensors, "bias"), labels)]
        for entry in _json_meta(path, meta, KEY_TABLES) if KEY_TABLES in meta else []:
            prefix = entry["prefix"]
            if f"{prefix}.weight" not in tensors:
                raise CatsplitError(f"missing tensor {prefix}.weight")
            tables.append(
                make_table(
                    _float_tensor(path, tensors, f"{prefix}.weight"), _float_tensor(path, tensors, f"{prefix}.bias"),
                    entry["labels"], entry["parent"],
                    what=f"sub-head of {entry['parent']!r}",
                )
            )
        undo = check_undo({k: _float_tensor(path, tensors, k) for k in tensors if k.startswith("undo.")}, tables[0])
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
        foreign = {k: v for k, v in meta.items() if k not in OWN_KEYS}
        return Head(  # undo and history were checked above
            weight=None, tables=tuple(tables), groups=groups, history=_Checked(history), undo=_Checked(undo),
            metadata=foreign, kind=meta.get(KEY_KIND, "linear"), scale=scale, templates=templates,
        )
    except CatsplitError as exc:
        raise CatsplitError(str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CatsplitError(f"{path}: damaged catsplit metadata ({type(exc).__name__}: {exc})") from None
