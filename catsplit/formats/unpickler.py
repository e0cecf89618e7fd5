"""Training checkpoints that `torch.load(weights_only=True)` refuses, opened without running their code.

timm's `train.py` stores an `argparse.Namespace`, mmengine a `HistoryBuffer`, PySlowFast numpy
scalars: classes `weights_only=True` does not know, so it refuses the whole file. With
`trust_checkpoint=True` catsplit still loads the file with torch's restricted unpickler (which only
builds tensors, storages and plain containers, and calls nothing else); each class it does not know is
first read off the pickle without executing it (`pickletools`) and then stands for an `Opaque`
placeholder: an inert object that keeps the arguments and state the pickle gives it and has no
behaviour. Nothing named in the file is imported or called. Modules torch blocks outright (`os`,
`subprocess`, ...) stay refused.
"""

from __future__ import annotations

import io
import pickletools
import re
import zipfile
from pathlib import Path
from typing import Any, Iterator

import torch

from catsplit.errors import CatsplitError

_NEVER = {"builtins", "__builtin__", "os", "posix", "nt", "sys", "subprocess", "importlib", "runpy", "pickle", "_pickle", "shutil"}
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")  # CSI escape sequences (torch bolds part of its messages)


class Opaque:
    """An object of a class catsplit does not load: the pickle's arguments and state, inert.

    Attributes:
        args: what the pickle passed to the class (or function) it named.
        state: what it passed to `__setstate__`, or None.
    """

    pickled_as = "?"  # module.name in the file; set on each placeholder class

    def __new__(cls, *args: Any, **kwargs: Any) -> Opaque:
        obj = object.__new__(cls)
        object.__setattr__(obj, "args", args)
        object.__setattr__(obj, "state", None)
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        object.__setattr__(self, "state", state)

    def __repr__(self) -> str:
        return f"<{self.pickled_as}, not loaded>"


def placeholder(full_name: str) -> type[Opaque]:
    """A new `Opaque` subclass standing for the class or function `full_name` ("module.Name")."""
    module, _, name = full_name.rpartition(".")
    return type(name or full_name, (Opaque,), {"pickled_as": full_name, "__module__": f"catsplit.opaque.{module}"})


def globals_in_pickles(path: Path) -> set[str]:
    """Every "module.name" a checkpoint's pickles name (GLOBAL opcodes), read without executing them.

    A zip archive's `data.pkl`; for a legacy file, the pickles at its start (torch's magic number,
    protocol, system info, then the object), as far as they parse.
    """
    names: set[str] = set()
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            data = [n for n in zf.namelist() if n.endswith("data.pkl")]
            if data:
                names |= _globals(io.BytesIO(zf.read(data[0])))
        return names  # torch's own scan (get_unsafe_globals_in_checkpoint) reads zip archives only
    with open(path, "rb") as f:
        for _ in range(4):
            try:
                names |= _globals(f)
            except Exception:  # noqa: BLE001 - the raw storage bytes after the pickles, or damage: torch reports it
                break
    return names


def _globals(f: Any) -> set[str]:
    found = set()
    for op, arg, _ in _ops(f):
        if op.name in ("GLOBAL", "INST") and isinstance(arg, str):
            found.add(".".join(arg.split(" ", 1)))
    return found


def _ops(f: Any) -> Iterator[tuple[Any, Any, Any]]:
    return pickletools.genops(f)


def load_trusted(path: Path, *, mmap: bool = False) -> Any:
    """`torch.load(path, weights_only=True)` with every unknown class of the file standing for an `Opaque`.

    Raises:
        whatever torch.load raises (the caller turns it into a CatsplitError).
    """
    # Builtins (exec, eval, getattr, __import__...) and the modules torch blocks never get a stand-in: they stay refused.
    stand_ins = [
        (placeholder(name), name) for name in sorted(globals_in_pickles(path))
        if name.split(".", 1)[0] not in _NEVER
    ]
    with torch.serialization.safe_globals(stand_ins):
        return torch.load(str(path), map_location="cpu", weights_only=True, mmap=mmap)


def torch_error(exc: BaseException) -> str:
    """The useful line of an error torch raised, without ANSI escapes: the unpickler's own reason when
    there is one (`Unsupported global: GLOBAL argparse.Namespace ...`), else the first line."""
    text = _ANSI.sub("", str(exc))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if "WeightsUnpickler error:" in line:
            return line.split("WeightsUnpickler error:", 1)[1].strip()
    reasons = [line for line in lines if not line.startswith(_PREAMBLE)]
    return (reasons or lines or [type(exc).__name__])[0]


# lines of torch's weights_only message that are advice, not the reason
_PREAMBLE = ("Weights only load failed", "(1)", "(2)", "Check the documentation")


def refusal(path: Path, exc: BaseException) -> CatsplitError:
    """The error for a checkpoint `weights_only=True` refused: the reason, and the opt-in."""
    return CatsplitError(
        f"{path} could not be loaded as a PyTorch checkpoint with weights_only=True ({type(exc).__name__}: "
        f"{torch_error(exc)}). catsplit never unpickles code. If the file is a training checkpoint (timm train.py, "
        "mmengine, PySlowFast), pass trust_checkpoint=True (CLI: --trust-checkpoint): its unknown classes are then "
        "kept as inert placeholders and still nothing in it runs. Or re-save the checkpoint as a plain state dict "
        "(torch.save(model.state_dict(), path)) or as safetensors"
    )


def holds_opaque(obj: Any, depth: int = 0) -> bool:
    """True when a loaded object holds an `Opaque` placeholder anywhere in its containers."""
    if isinstance(obj, Opaque):
        return True
    if depth > 50:
        return False
    if isinstance(obj, dict):
        return any(holds_opaque(v, depth + 1) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(holds_opaque(v, depth + 1) for v in obj)
    return False
