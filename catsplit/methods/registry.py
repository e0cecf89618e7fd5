"""The zero-shot methods by name: one record each (see `catsplit.methods.base.Method`).

Each method lives in its own module and defines its `METHOD` record there; adding a method means
writing that module and adding it to `_MODULES` below. `split`, the CLI's choices, the benchmark's
rows and every error text read this table.
"""

from __future__ import annotations

from catsplit.errors import CatsplitError
from catsplit.methods import alignment, coarse, retrieval, text
from catsplit.methods.base import Method

_MODULES = (alignment, retrieval, text, coarse)  # the order of help texts and CLI choices

METHODS: dict[str, Method] = {m.METHOD.name: m.METHOD for m in _MODULES}


def get_method(name: object) -> Method:
    """The registered method called `name`, or a CatsplitError listing the names."""
    method = METHODS.get(name) if isinstance(name, str) else None
    if method is None:
        raise CatsplitError(f"unknown method {name!r}; choose one of {sorted(METHODS)}")
    return method


def gate_methods() -> list[str]:
    """Names of the methods whose edits the similarity gate can scale."""
    return [name for name, m in METHODS.items() if m.accepts_gate]
