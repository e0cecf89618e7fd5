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
from typing import Any, Mapping

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
    if where.endswith(".py") and not Path(where).is_file():
        raise CatsplitError(f"--backbone file {where} not found")
    try:  # the user's code: whatever it raises is reported as its failure, in one line
        if where.endswith(".py"):
            loader = importlib.util.spec_from_file_location(Path(where).stem, where)
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
        else:
            module = _import_from_cwd(where)
    except CatsplitError:
        raise
    except Exception as exc:  # ImportError, SyntaxError, and anything the module's own code raises
        raise CatsplitError(f"cannot import {where!r} for --backbone ({type(exc).__name__}: {_first_line(exc)})") from None
    if not hasattr(module, attr):
        raise CatsplitError(f"{where} has no {attr!r}; check --backbone {spec}")
    obj = getattr(module, attr)
    if isinstance(obj, torch.nn.Module):
        backbone = obj
    elif callable(obj):
        try:
            backbone = obj()
        except CatsplitError:
            raise
        except Exception as exc:
            raise CatsplitError(
                f"--backbone {spec}: calling {attr}() failed ({type(exc).__name__}: {_first_line(exc)}); name a torch "
                "module, or a function or class that builds one without arguments"
            ) from None
    else:
        backbone = obj
    if not isinstance(backbone, torch.nn.Module):
        raise CatsplitError(f"--backbone {spec} gave {type(backbone).__name__}, not a torch.nn.Module")
    if weights:
        state = read_state_dict(Path(weights))
        if prefix:
            state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            if not state:
                raise CatsplitError(f"no tensor in {weights} starts with --weights-prefix {prefix!r}")
        try:
            backbone.load_state_dict(state)
        except Exception as exc:  # torch raises RuntimeError for shapes and keys, others for odd values
            raise CatsplitError(
                f"--backbone-weights {weights} do not fit {spec} ({type(exc).__name__}: {_first_line(exc)}); check "
                "--weights-prefix and that the weights are this backbone's"
            ) from None
    return backbone.eval()


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


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


def read_state_dict(path: Path) -> dict:
    """The backbone's state dict: safetensors through catsplit's checked reader, PyTorch files unpickled with
    weights_only=True; nested mappings flattened to dotted names, every tensor dense (io.checkpoint)."""
    from catsplit.io.checkpoint import check_plain, flatten, load_weights_only
    from catsplit.io.safetensors import read_safetensors

    if not path.is_file():
        raise CatsplitError(f"--backbone-weights file {path} not found")
    if path.suffix.lower() == ".safetensors":
        return read_safetensors(path, "--backbone-weights file")[0]
    state = load_weights_only(path)
    if not isinstance(state, Mapping):
        raise CatsplitError(f"{path} holds a {type(state).__name__}, not a state dict; save model.state_dict()")
    flat = flatten(path, state)
    if not flat:
        raise CatsplitError(f"{path} holds no tensors; save model.state_dict()")
    return {name: check_plain(path, name, t) for name, t in flat.items()}
