"""Array files users hand catsplit (clip features, batches, benchmark features): .npy, .npz and .safetensors, checked.

`read_arrays` is the one reader of these files. It parses the containers itself, so that whatever the
bytes, the result is a dict of plain numeric or text arrays, or a CatsplitError naming the file, the
problem and the fix: never numpy's, zipfile's or safetensors' own errors, never a pickle, never an
allocation larger than the file. Refused: object arrays (pickles), structured and subarray dtypes,
complex numbers, floats wider than 64 bits (float128), dates; a declared shape whose bytes the file does not
hold; a damaged zip (bad CRC, wrong sizes). Big-endian arrays are converted to the machine's byte order.
"""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from catsplit.errors import CatsplitError

if TYPE_CHECKING:
    from os import PathLike

# kinds of the dtypes returned: bool, signed and unsigned integers, floats of at most 64 bits, text
PLAIN_KINDS = "biufUS"
MAX_NPY_HEADER = 1 << 16  # bytes of an .npy header (numpy writes about 128; it refuses more than 10,000 itself)


def npy_header(f: IO[bytes]) -> tuple:
    """(shape, fortran_order, dtype) of the `.npy` header at `f`'s position, versions 1.0 and 2.0; ValueError otherwise."""
    from numpy.lib import format as npformat

    version = npformat.read_magic(f)
    if version == (1, 0):
        return npformat.read_array_header_1_0(f, max_header_size=MAX_NPY_HEADER)
    if version == (2, 0):
        return npformat.read_array_header_2_0(f, max_header_size=MAX_NPY_HEADER)
    raise ValueError(f"format version {version} is not one catsplit reads (1.0 or 2.0)")


def read_arrays(path: str | PathLike, what: str) -> dict[str, np.ndarray]:
    """Every array of a `.npy` (one array, named "" here), `.npz` or `.safetensors` file, checked and in memory.

    Args:
        path: the file.
        what: what the file is for the messages, e.g. "features file".
    Returns:
        name -> array (dtype kind in `PLAIN_KINDS`, native byte order, writable).
    """
    p = Path(path)
    if not p.is_file():
        raise CatsplitError(f"{what} {p} not found")
    suffix = p.suffix.lower()
    where = f"{what} {p}"
    if suffix == ".safetensors":
        return _read_safetensors(p, where)
    if suffix not in (".npy", ".npz"):
        raise CatsplitError(f"{where}: use .npz, .npy or .safetensors")  # named by its suffix, as numpy does
    try:
        if suffix == ".npy":
            with open(p, "rb") as f:
                return {"": _read_npy(f, os.fstat(f.fileno()).st_size, where)}
        return _read_npz(p, where)
    except CatsplitError:
        raise
    except MemoryError:
        raise CatsplitError(f"{where}: not enough memory to read it") from None
    except Exception as exc:  # zipfile, zlib and the OS raise many types for a damaged file
        raise CatsplitError(f"{where} is damaged or not a numpy file ({type(exc).__name__}: {_first_line(exc)})") from None


def _read_npz(path: Path, where: str) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            if info.is_dir():
                continue
            if not info.filename.endswith(".npy"):
                raise CatsplitError(f"{where}: member {info.filename!r} is not an .npy array; write the file with numpy.savez")
            name = info.filename[: -len(".npy")]
            with z.open(info) as f:
                out[name] = _read_npy(f, info.file_size, f"{where}, array {name!r}")
                while f.read(1 << 20):  # the rest, if any: reading to the end checks the member's CRC
                    pass
    return out


def _read_npy(f: IO[bytes], size: int, where: str) -> np.ndarray:
    """One .npy array from `f`, which holds `size` bytes from its current position."""
    start = f.tell()
    try:
        shape, fortran, dtype = npy_header(f)
    except CatsplitError:
        raise
    except Exception as exc:  # a damaged header: ValueError, SyntaxError, tokenize errors, RecursionError ...
        raise CatsplitError(f"{where}: not a valid .npy array ({type(exc).__name__}: {_first_line(exc)})") from None
    check_dtype(dtype, where)
    if not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape):
        raise CatsplitError(f"{where}: the header declares shape {shape!r}; a shape is a tuple of sizes >= 0")
    count = math.prod(shape)
    need = count * dtype.itemsize
    used = f.tell() - start
    if need > size - used:
        raise CatsplitError(
            f"{where}: the header declares shape {shape} of {dtype} ({need} bytes), but the file holds only "
            f"{max(size - used, 0)}; it is truncated or damaged"
        )
    data = bytearray(need)
    view = memoryview(data)
    got = 0
    while got < need:
        k = f.readinto(view[got:])
        if not k:
            raise CatsplitError(f"{where}: the data ended {need - got} bytes early; the file is truncated")
        got += k
    arr = np.frombuffer(data, dtype=dtype, count=count).reshape(shape, order="F" if fortran else "C")
    return native(arr)


def check_dtype(dtype: np.dtype, where: str) -> None:
    """Refuse every dtype but bool, integers, floats of <= 64 bits and text, naming the fix."""
    if dtype.hasobject:
        raise CatsplitError(f"{where} is not readable: it holds Python objects (a pickle), which catsplit never loads; "
                            "store numbers, and label strings as a str array (np.array(labels, dtype=str))")
    if dtype.fields is not None or dtype.subdtype is not None or dtype.kind == "V":
        raise CatsplitError(f"{where} has the structured dtype {dtype}; store one plain numeric array per name")
    if dtype.kind == "c":
        raise CatsplitError(f"{where} holds complex numbers ({dtype}); store real features (float32)")
    if dtype.kind == "f" and dtype.itemsize > 8:
        raise CatsplitError(f"{where} holds {dtype.itemsize * 8}-bit floats (float128); store float64 or float32")
    if dtype.kind not in PLAIN_KINDS:
        raise CatsplitError(f"{where} has dtype {dtype}; store numbers (float32) or label strings")


def native(arr: np.ndarray) -> np.ndarray:
    """`arr` in the machine's byte order (a big-endian array is converted, values unchanged), writable."""
    if arr.dtype.byteorder in "<>":  # numpy writes the native order as "="
        return arr.astype(arr.dtype.newbyteorder("="))
    return arr if arr.flags.writeable else arr.copy()


def _read_safetensors(path: Path, where: str) -> dict[str, np.ndarray]:
    import torch

    from catsplit.io.safetensors import read_safetensors

    tensors, _ = read_safetensors(path, where)
    out = {}
    for name, t in tensors.items():
        if t.is_complex():
            raise CatsplitError(f"{where}: tensor {name!r} holds complex numbers; store real features (float32)")
        if t.dtype in (torch.bfloat16, torch.float8_e5m2, torch.float8_e4m3fn):  # no numpy type: widened, exactly
            t = t.to(torch.float32)
        out[name] = t.numpy()
    return out


def read_batch(path: str | PathLike) -> np.ndarray:
    """A batch of model inputs [N, ...] (what `catsplit predict` reads): `.npy`, or the array `clips` of an
    `.npz` / `.safetensors` file (or its only array); numbers only, floats finite."""
    arrays = read_arrays(path, "input file")
    if len(arrays) == 1:
        (name, x), = arrays.items()
    elif "clips" in arrays:
        name, x = "clips", arrays["clips"]
    else:
        raise CatsplitError(f"input file {path} holds arrays {sorted(arrays)}; name the input `clips`")
    if x.ndim < 1:
        raise CatsplitError(f"input file {path}: the batch must have a batch axis [N, ...], got a scalar")
    if x.dtype.kind not in "biuf":
        raise CatsplitError(f"input file {path}: the batch must hold numbers, got dtype {x.dtype}")
    return finite_rows(x, f"input file {path}" + (f", array {name!r}," if name else ""))


def finite_rows(x: np.ndarray, where: str) -> np.ndarray:
    """`x` [N, ...] as it is when every value is finite; else a CatsplitError naming the first rows that are not."""
    if x.dtype.kind == "f" and x.size and not np.isfinite(x).all():
        rows = np.nonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))[0][:5].tolist()
        raise CatsplitError(f"{where} holds NaN or inf in row(s) {rows}; fix or drop those rows")
    return x


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


def map_npy(path: str | PathLike, what: str) -> np.ndarray:
    """A `.npy` file memory-mapped read-only, its header checked as `read_arrays` checks it; nothing is read.

    For clip features too large for memory (`catsplit refine` / `relabel` read them chunk by chunk).
    """

    p = Path(path)
    where = f"{what} {p}"
    if not p.is_file():
        raise CatsplitError(f"{where} not found")
    try:
        with open(p, "rb") as f:
            shape, fortran, dtype = npy_header(f)
            offset = f.tell()
            size = os.fstat(f.fileno()).st_size
    except CatsplitError:
        raise
    except Exception as exc:
        raise CatsplitError(f"{where}: not a valid .npy array ({type(exc).__name__}: {_first_line(exc)})") from None
    check_dtype(dtype, where)
    if not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape):
        raise CatsplitError(f"{where}: the header declares shape {shape!r}; a shape is a tuple of sizes >= 0")
    need = math.prod(shape) * dtype.itemsize
    if need > size - offset:
        raise CatsplitError(
            f"{where}: the header declares shape {shape} of {dtype} ({need} bytes), but the file holds only "
            f"{max(size - offset, 0)}; it is truncated or damaged"
        )
    if need == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(p, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")
