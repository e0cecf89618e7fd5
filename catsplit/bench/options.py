"""`catsplit bench --world-option KEY=VALUE --train-option KEY=VALUE`: change one field of a preset.

The world (`WorldConfig`) and the base-model training (`TrainConfig`) are frozen dataclasses with
chosen defaults. Options replace single fields, so a variant ("more sensor noise", "D = 128") is
one command, measured with `--eval-split val` before anyone looks at the test clips. Every
variant has its own cache folder: the cache key hashes both configurations.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Mapping, Sequence, TypeVar

from catsplit.errors import CatsplitError

C = TypeVar("C")

_TRUE, _FALSE = ("true", "yes", "1"), ("false", "no", "0")
SIGNED = {"logit_scale"}  # the only numeric field that may be negative (a log)


def _coerce(text: str, hint, where: str, signed: bool = False):
    """`text` as a value of type `hint`: bool, int, float, str, a tuple of str (comma-separated), or Optional of those."""
    if typing.get_origin(hint) is typing.Union:  # Optional[X]
        if text.lower() == "none":
            return None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if hint is bool:
        if text.lower() not in _TRUE + _FALSE:
            raise CatsplitError(f"{where}: {text!r} is not a boolean; write true or false")
        return text.lower() in _TRUE
    if hint is str:  # a name (e.g. pretrain=verbs); its owner checks it against its choices
        if not text:
            raise CatsplitError(f"{where}: give a value")
        return text
    if typing.get_origin(hint) is tuple:
        items = tuple(item.strip() for item in text.split(","))
        if not all(items):
            raise CatsplitError(f"{where}: {text!r} has an empty item; write a comma-separated list such as a,b")
        return items
    try:
        value = hint(text)  # int or float
    except ValueError:
        raise CatsplitError(f"{where}: {text!r} is not a valid {hint.__name__}") from None
    if not math.isfinite(value):
        raise CatsplitError(f"{where}: {text!r} is not a finite number")
    if value < 0 and not signed:
        raise CatsplitError(f"{where}: {value} is negative; give a value >= 0")
    return value


def override(preset: C, options: Sequence[str], flag: str, *, reserved: Mapping[str, str] | None = None) -> C:
    """A copy of the dataclass `preset` with `KEY=VALUE` options applied, values parsed by field type.

    Args:
        preset: a dataclass instance (WorldConfig or TrainConfig).
        options: "key=value" strings; tuple fields take comma-separated values, Optional fields "none".
        flag: the command-line flag, for error messages ("--world-option").
        reserved: keys set elsewhere (e.g. by their own flag), each with the reason given when an
            option names it: {"seed": "the world's seed has its own flag; use --world-seed"}.

    Returns:
        the new dataclass instance (the preset itself when `options` is empty).
    """
    hints = typing.get_type_hints(type(preset))
    fields = [f.name for f in dataclasses.fields(preset)]
    # A reserved key is refused before any option is parsed, whatever else is wrong with the others.
    for option in options:
        key = option.partition("=")[0].strip()
        if reserved and key in reserved:
            raise CatsplitError(f"{flag} {key}=...: {reserved[key]}")
    changes = {}
    for option in options:
        key, sep, text = option.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CatsplitError(f"{flag} {option!r}: write KEY=VALUE, e.g. {flag} {fields[0]}={getattr(preset, fields[0])}")
        if key not in hints:
            raise CatsplitError(f"{flag} {option!r}: unknown key {key!r}; choose from {fields}")
        if key in changes:
            raise CatsplitError(f"{flag} {key} is given twice; give it once")
        changes[key] = _coerce(text.strip(), hints[key], f"{flag} {key}", signed=key in SIGNED)
    return dataclasses.replace(preset, **changes) if changes else preset
