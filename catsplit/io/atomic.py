"""Atomic file writes: a temp file in the destination folder, fsync, then one rename or link.

Every file catsplit writes (head files, ONNX models, benchmark results and models) goes through
`atomic_path`. A reader sees the old file or the new one, never a mix; a process killed mid-write
leaves the destination as it was, plus at most a stray `.<name>.<8 random>.tmp` beside it.
Without `overwrite` an existing file is never replaced, not even one that appears while we
write: the final step is then a hard link, which fails if the name exists.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from catsplit.errors import CatsplitError

TEMP_SUFFIX = ".tmp"


def check_destination(path: str | os.PathLike, *, overwrite: bool, example: str = "out.file") -> Path:
    """The destination as a Path; a CatsplitError if it is a folder, exists (without overwrite) or has no folder.

    Args:
        example: a file name to suggest when `path` is a folder.
    """
    path = checked_path(path, "output file")
    try:  # Path.is_dir raises for a name the file system refuses (too long)
        if path.is_dir():
            raise CatsplitError(f"{path} is a folder; give a file name such as {path / example}")
        if path.exists() and not overwrite:
            raise CatsplitError(f"{path} exists; choose another name or pass overwrite=True (CLI: --overwrite)")
        folder = path.parent if str(path.parent) else Path(".")
        if not folder.is_dir():
            raise CatsplitError(f"folder {folder} does not exist; create it first")
    except OSError as exc:
        raise CatsplitError(f"cannot write {str(path)[:200]} ({exc.strerror or exc}); give a shorter or other name") from None
    return path


def checked_path(path: str | os.PathLike, what: str) -> Path:
    """`path` as a Path; a CatsplitError for one no file system takes (a NUL byte, not text)."""
    try:
        text = os.fspath(path)
    except TypeError:
        raise CatsplitError(f"{what} must be a path, got {type(path).__name__}") from None
    if (b"\0" if isinstance(text, bytes) else "\0") in text:
        raise CatsplitError(f"{what} {text!r} holds a NUL byte, which no file name can; give another name")
    return Path(os.fsdecode(text))


def resolved(path: str | os.PathLike) -> Path:
    """`Path(path).resolve()`, or the absolute path when the system cannot resolve it (a name too long, a loop)."""
    p = checked_path(path, "path")
    try:
        return p.resolve()
    except (OSError, RuntimeError):
        return p.absolute()


def make_folder(path: str | os.PathLike, what: str, hint: str) -> Path:
    """Create the folder `path` (and its parents) if missing; an OS error is a CatsplitError naming it.

    Args:
        what: what the folder is for, e.g. "cache folder".
        hint: how to choose another, e.g. "pass --cache FOLDER".
    """
    folder = checked_path(path, what)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # a file where the folder, or a folder above it, should be
        raise CatsplitError(f"{what} {folder} is not a folder (it or a parent is a file); {hint}") from None
    except OSError as exc:
        raise CatsplitError(f"cannot create the {what} {folder} ({exc.strerror or exc}); {hint}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CatsplitError(f"the {what} {folder} is not writable; {hint}")
    return folder


@contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = False, example: str = "out.file") -> Iterator[Path]:
    """Yield a temp path to write; when the block ends without error, it becomes `path`.

    The block may also read the temp file back (to verify it) before it gets its name. OS
    errors (disk full, permissions) become a CatsplitError saying `path` is untouched.

    Args:
        path: the destination file.
        overwrite: replace an existing file; without it an existing file is an error.
        example: a file name to suggest when `path` is a folder.
    """
    path = check_destination(path, overwrite=overwrite, example=example)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, name = tempfile.mkstemp(prefix=f".{temp_stem(path.name)}.", suffix=TEMP_SUFFIX, dir=folder)
    except OSError as exc:
        raise CatsplitError(f"cannot create a temp file in {folder} to write {path}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        # mkstemp makes the file owner-only; give it the mode a plain open() would (or the replaced file's).
        os.chmod(tmp, file_mode(path if overwrite and path.exists() else None))
        publish(tmp, path, overwrite=overwrite)
        fsync_dir(folder)
    except OSError as exc:
        raise CatsplitError(f"cannot write {path}: {exc.strerror or exc}; {path} is untouched") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def publish(tmp: Path, path: Path, *, overwrite: bool) -> None:
    """Give a finished temp file its name: a rename when overwriting, else a link that refuses an existing name."""
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails if the name appeared meanwhile: never clobber a file we did not mean to
    except FileExistsError:
        raise CatsplitError(f"{path} appeared while saving; choose another name or pass overwrite=True") from None
    except OSError:  # file systems without hard links
        if path.exists():
            raise CatsplitError(f"{path} exists; pass overwrite=True") from None
        os.replace(tmp, path)


def temp_stem(name: str) -> str:
    """`name`, shortened so that `.<name>.<8 random>.tmp` fits the usual 255-byte limit of a file name."""
    budget = 255 - len(".") - len(".") - 8 - len(TEMP_SUFFIX)
    while len(name.encode("utf-8", "surrogateescape")) > budget:
        name = name[:-1]
    return name


def file_mode(existing: Path | None) -> int:
    """The mode of the file being replaced, else what a plain open() would give (0o666 minus the umask)."""
    if existing is not None:
        return existing.stat().st_mode & 0o7777
    return 0o666 & ~umask()


def umask() -> int:
    """The process umask, read without changing it where Linux allows (os.umask sets it, racing other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_dir(folder: Path) -> None:
    """Make a rename durable (best effort: some file systems cannot fsync a folder)."""
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


# --- folders: rename without replacing, swap in one step -----------------------------------------
# os.replace/os.rename put a folder over an *empty* folder without a word, and replacing a non-empty one
# takes two renames (a crash between them leaves neither). Linux's renameat2 does both in one step:
# RENAME_NOREPLACE fails if the target appeared meanwhile, RENAME_EXCHANGE swaps two paths atomically.
_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2
_AT_FDCWD = -100
_RENAMEAT2: list = [None]  # libc's renameat2 once looked up, or False where there is none


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """renameat2(src, dst, flags): True when done, False where the system has no renameat2; OSError on failure."""
    if _RENAMEAT2[0] is None:
        try:
            import ctypes

            fn = ctypes.CDLL(None, use_errno=True).renameat2
            fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
            _RENAMEAT2[0] = (fn, ctypes)
        except (OSError, AttributeError, ImportError):
            _RENAMEAT2[0] = False
    if not _RENAMEAT2[0]:
        return False
    fn, ctypes = _RENAMEAT2[0]
    if fn(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (38, 22, 95):  # ENOSYS, EINVAL (flag unknown to the file system), EOPNOTSUPP: not here
        return False
    raise OSError(err, os.strerror(err), str(dst))


def rename_new(src: Path, dst: Path) -> None:
    """Rename the folder `src` to `dst`, which must not exist: FileExistsError if it does, even when it
    appears at the last moment (elsewhere than Linux: checked just before an ordinary rename)."""
    if _renameat2(src, dst, _RENAME_NOREPLACE):
        return
    if os.path.lexists(dst):
        raise FileExistsError(17, "File exists", str(dst))
    os.rename(src, dst)


def swap_in(new: Path, dst: Path) -> Path | None:
    """Put the folder `new` at `dst`, keeping what was there: returns where the old folder now is (for the
    caller to delete), or None when `dst` did not exist. On Linux one atomic exchange: `dst` is never missing."""
    if not os.path.lexists(dst):
        try:
            rename_new(new, dst)
            return None
        except FileExistsError:  # appeared meanwhile: exchange with it
            pass
    if _renameat2(new, dst, _RENAME_EXCHANGE):
        return new  # the old folder now has the new one's temporary name
    old = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".old", dir=dst.parent))
    os.replace(dst, old / dst.name)  # two renames: a crash between them leaves the old one in `old`
    os.replace(new, dst)
    return old
