"""PyTorchVideo and PySlowFast checkpoints (`.pyth`): where the head and the class count live.

A checkpoint is `{"model_state": {...}}`, PySlowFast training checkpoints add `epoch`,
`optimizer_state` and `cfg` (the training config as YAML text, with `MODEL:` / `NUM_CLASSES: 400`).
The head is `blocks.<N>.proj` for the PyTorchVideo model zoo (Slow, SlowFast, X3D, R(2+1)D, CSN:
the last block's projection) and `head.projection` for PySlowFast models (`head.proj` for MViT).
The files carry no class names: Kinetics ones ship as `kinetics_classnames.json` (`{"\\"abseiling\\"": 0, ...}`).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

HEADS = ("head.projection", "head.proj")  # besides blocks.<N>.proj, which catsplit.formats.statedict knows
_MODEL_SECTION = re.compile(r"^MODEL:[ \t]*\n((?:[ \t]+.*\n?|[ \t]*\n)*)", re.MULTILINE)
_NUM_CLASSES = re.compile(r"^([ \t]+NUM_CLASSES:[ \t]*)([0-9]+)", re.MULTILINE)


def is_checkpoint(obj: Any) -> bool:
    """A PyTorchVideo / PySlowFast checkpoint: a dict with a `model_state` dict."""
    return isinstance(obj, Mapping) and isinstance(obj.get("model_state"), Mapping)


def set_num_classes(cfg_text: str, n: int) -> tuple[str, bool]:
    """YAML `cfg_text` with `MODEL.NUM_CLASSES` set to `n`; (text, whether it was found)."""
    section = _MODEL_SECTION.search(cfg_text)
    if section is None:
        return cfg_text, False
    body = section.group(1)
    indent = re.match(r"[ \t]*", body).group(0) if body else ""  # type: ignore[union-attr]
    for m in _NUM_CLASSES.finditer(body):
        if m.group(1)[: len(indent)] == indent and not m.group(1)[len(indent)].isspace():
            start = section.start(1) + m.start(2)
            return cfg_text[:start] + str(n) + cfg_text[section.start(1) + m.end(2):], True
    return cfg_text, False
