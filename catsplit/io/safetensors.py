"""The safetensors container, read and written by hand.

Writing: a deterministic header (the same head gives the same bytes) and each tensor written
straight from its memory. Reading: the whole header is checked first (so a forged header fails
before anything is allocated), then each tensor asked for is read, once, into its own memory.
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
from typing import TYPE_CHECKING, Any, Mapping

import torch

from catsplit.errors import CatsplitError

if TYPE_CHECKING:
    from os import PathLike


# --- writing -----------------------------------------------------------------------------
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
# every dtype of the format that torch holds (what `SafetensorsReader.tensor` reads: weights of other models, features)
TORCH_DTYPES = {
    **HEAD_DTYPES, "BOOL": torch.bool, "U8": torch.uint8, "I8": torch.int8, "I16": torch.int16, "U16": torch.uint16,
    "I32": torch.int32, "U32": torch.uint32, "I64": torch.int64, "U64": torch.uint64, "C64": torch.complex64,
    "F8_E5M2": torch.float8_e5m2, "F8_E4M3": torch.float8_e4m3fn,
}


SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


@dataclass(frozen=True)
class TensorEntry:
    """One tensor of a safetensors header: dtype code ("F32", "I64", ...), shape, byte range in the data section."""

    dtype: str
    shape: tuple[int, ...]
    begin: int  # byte offsets into the data section
    end: int


class SafetensorsReader(Mapping[str, torch.Tensor]):
    """An open safetensors file: `metadata`, tensor names and shapes from the checked header;
    `reader[name]` reads one float tensor into fresh memory. Use as a context manager.

    `mapped=True` (for `catsplit.io.streaming` only) maps the file read-only after the header check
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

    def shape(self, name: str) -> tuple[int, ...]:
        """A tensor's shape, from the header (nothing is read)."""
        return self._entries[name].shape

    def entry(self, name: str) -> TensorEntry:
        """A tensor's header entry (dtype code, shape, byte range in the data section)."""
        return self._entries[name]

    @property
    def data_start(self) -> int:
        """The file offset of the data section (8 + header length)."""
        return self._data_start

    def __getitem__(self, name: str) -> torch.Tensor:
        e = self._entries[name]
        dtype = HEAD_DTYPES.get(e.dtype)
        if dtype is None:
            raise CatsplitError(
                f"{self.path}: tensor {name!r} has dtype {e.dtype}; head tensors must be float "
                f"({', '.join(HEAD_DTYPES)}). Convert the layer to float before saving it"
            )
        return self._read(name, e, dtype)

    def tensor(self, name: str) -> torch.Tensor:
        """Tensor `name` in any dtype torch holds (integer, boolean, float8, complex ...), read into fresh memory.

        Raises:
            CatsplitError: a dtype torch has no type for (F4, F6, F8_E8M0), or the reasons of `reader[name]`.
        """
        e = self._entries[name]
        dtype = TORCH_DTYPES.get(e.dtype)
        if dtype is None:
            raise CatsplitError(
                f"{self.path}: tensor {name!r} has dtype {e.dtype}, which catsplit cannot read; store it as one of "
                f"{', '.join(TORCH_DTYPES)}"
            )
        return self._read(name, e, dtype)

    def _read(self, name: str, e: _Entry, dtype: torch.dtype) -> torch.Tensor:
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


def read_safetensors(path: str | PathLike, what: str = "safetensors file") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Every tensor of a safetensors file (any dtype torch holds) and its metadata, through the checked reader.

    What reads other models' weights (a backbone's, a text encoder's) and feature files uses this, never the
    safetensors library: a damaged file gives a CatsplitError naming it, not the library's own error.

    Args:
        what: what the file is, for the message when it is missing (e.g. "--backbone-weights file").
    Returns:
        (name -> tensor, metadata).
    """
    p = Path(path)
    if not p.is_file():
        raise CatsplitError(f"{what} {p} not found")
    with SafetensorsReader(p) as reader:
        return {name: reader.tensor(name) for name in reader}, dict(reader.metadata)


def _read_exact(path: Path, f: Any, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise CatsplitError(f"{path}: the file ended early while reading its header; it is truncated, or it changed while being read")
    return data


def _parse_header(path: Path, f: Any) -> tuple[dict[str, str], dict[str, TensorEntry], int]:
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
    except ValueError as exc:  # an integer of more than 4,300 digits (Python's limit on digit strings)
        raise bad(f"the header holds a number Python cannot read ({exc})") from None
    if not isinstance(header, dict):
        raise bad(f"the header is a JSON {type(header).__name__}, not an object")
    if SURROGATE_ESCAPE.search(text) and not utf8_encodable(header):
        raise bad("the header holds an unpaired surrogate escape (\\ud800-\\udfff), which is not text")
    meta = header.pop("__metadata__", None)
    if meta is None:
        meta = {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise bad("__metadata__ must be an object whose values are strings")
    entries: dict[str, TensorEntry] = {}
    for name, info in header.items():
        if not isinstance(info, dict):
            raise bad(f"the entry of tensor {name!r} is not an object")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
            raise bad(f"tensor {name!r} has an unknown dtype {dtype!r}")
        if not _naturals(shape) or len(shape) > MAX_DIMS:
            raise bad(f"tensor {name!r} has shape {short_repr(shape)}; a shape is a list of at most {MAX_DIMS} integers >= 0")
        if not _naturals(offsets) or len(offsets) != 2 or offsets[0] > offsets[1]:
            raise bad(f"tensor {name!r} has data_offsets {short_repr(offsets)}; expected [begin, end] with 0 <= begin <= end")
        bits = math.prod(shape) * DTYPE_BITS[dtype]  # Python ints: a forged 10^12-element shape is just a number
        if bits % 8 or bits // 8 != offsets[1] - offsets[0]:
            raise bad(
                f"tensor {name!r} of shape {short_repr(shape)} and dtype {dtype} needs {bits // 8}"
                f"{f' bytes and {bits % 8} bits' if bits % 8 else ' bytes'}, but its data_offsets "
                f"span {offsets[1] - offsets[0]}"
            )
        entries[name] = TensorEntry(dtype, tuple(shape), offsets[0], offsets[1])
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


def short_repr(x: Any) -> str:
    r = repr(x)
    return r if len(r) <= 80 else r[:77] + "..."


def utf8_encodable(obj: Any) -> bool:
    """False when a (parsed JSON) value holds a lone surrogate, which cannot be written back as UTF-8."""
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    except (RecursionError, ValueError):
        return False
    return True

