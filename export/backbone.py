"""The backbone to export in front of a head: a torch module named by `module:attr` or `file.py:attr`.

The error texts name the `catsplit export` options (--backbone, --backbone-weights, --weights-prefix)
that pass these arguments through.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from catsplit.errors import CatsplitError


def load_backbone(spec: str, weights: str | None = None, prefix: str = "") -> Any:
    """`module:attr` or `file.py:attr` -> a torch module (attr: a module, or a callable returning one).

    Args:
        spec: where the backbone is defined, e.g. `catsplit.bench.models:Backbone`.
        weights: optional state dict (safetensors, or a PyTorch file read with weights_only=True).
        prefix: keep only keys starting with it, stripped (e.g. `backbone.` inside a whole model).
    """
    import torch

    where, _, attr = spec.partition(":")
    if not where or not attr:
        raise CatsplitError(f"--backbone must look like package.module:name or file.py:name, got {spec!r}")
    try:
        if where.endswith(".py"):
            if not Path(where).is_file():
                raise CatsplitError(f"--backbone file {where} not found")
            loader = importlib.util.spec_from_file_location(Path(where).stem, where)
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
        else:
            module = _import_from_cwd(where)
    except ImportError as exc:
        raise CatsplitError(f"cannot import {where!r} for --backbone: {exc}") from None
    if not hasattr(module, attr):
        raise CatsplitError(f"{where} has no {attr!r}; check --backbone {spec}")
    obj = getattr(module, attr)
    backbone = obj if isinstance(obj, torch.nn.Module) else obj()
    if not isinstance(backbone, torch.nn.Module):
        raise CatsplitError(f"--backbone {spec} gave {type(backbone).__name__}, not a torch.nn.Module")
    if weights:
        state = _read_state(Path(weights))
        if prefix:
            state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            if not state:
                raise CatsplitError(f"no tensor in {weights} starts with --weights-prefix {prefix!r}")
        try:
            backbone.load_state_dict(state)
        except RuntimeError as exc:
            raise CatsplitError(f"--backbone-weights {weights} do not fit {spec}: {str(exc).splitlines()[0]}") from None
    return backbone.eval()


def _import_from_cwd(name: str) -> Any:
    """Import a module as `python -m` would: the current folder first on sys.path (the console script lacks it)."""
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def _read_state(path: Path) -> dict:
    import torch

    if not path.is_file():
        raise CatsplitError(f"--backbone-weights file {path} not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    from catsplit.formats.unpickler import torch_error

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch's weights_only message spans lines and bolds its advice: its reason, plain
        raise CatsplitError(f"cannot read {path} as a state dict ({type(exc).__name__}: {torch_error(exc)})") from None
    if not isinstance(state, dict):
        raise CatsplitError(f"{path} holds a {type(state).__name__}, not a state dict")
    return state
