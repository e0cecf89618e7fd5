"""Class names in the shapes models and datasets ship them, turned into one list in index order.

Every reader of labels goes through these (`catsplit.io.readers.read_labels` for files and values
given as `labels=`, the model readers for the labels a model carries):

* a list of names;
* `{label: index}` (the paper's labels.json; indices ints or digit strings, SSv2 writes `"0"`), with
  the Kinetics quirk of keys wrapped in double quotes (`{"\\"abseiling\\"": 0}`, PySlowFast's
  `kinetics_classnames.json`) undone;
* `{index: label}` with int or digit-string keys (Hugging Face `id2label`, timm `label_names` with gaps);
* a model config: `id2label` (Hugging Face `config.json`), `label_names` (timm, also under
  `pretrained_cfg`), `classes` (mmengine `dataset_meta`);
* text lines, one label per line, or "index name" lines (UCF101 / HMDB51 `classInd.txt`: `1 ApplyEyeMakeup`),
  0- or 1-based, in any order.

Pure functions: no files are opened here (`catsplit.io.readers` reads them).
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from catsplit.checks import labels_by_index
from catsplit.errors import CatsplitError

# "index name" lines: an integer, then a separator (white space, comma, colon or semicolon), then the name
_INDEX_LINE = re.compile(r"\s*([0-9]+)(?:\s*[,:;]\s*|\s+)(\S.*?)\s*")
_DIGITS = re.compile(r"\s*[0-9]+\s*")

# keys of a model config that hold its labels, most specific first
CONFIG_LABEL_KEYS = ("id2label", "label_names", "labels", "classes")


def labels_from_value(value: Any, what: str = "labels") -> list[str]:
    """Labels from a parsed JSON value or a Python list / mapping (see the module docstring).

    Raises:
        CatsplitError naming `what` when the value holds no labels or they are not indexed 0..n-1.
    """
    if isinstance(value, Mapping):
        found = labels_from_config(value, what)
        if found is not None:
            return found
        return labels_from_mapping(value, what)
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise CatsplitError(f"{what} must hold a JSON list or an object label -> index, got {type(value).__name__}")
    return list(value)


def labels_from_config(config: Mapping[str, Any], what: str = "labels") -> list[str] | None:
    """The labels of a model config (`id2label`, `label_names`, `labels`, `classes`, also inside
    `pretrained_cfg`), or None when it names none."""
    for key in CONFIG_LABEL_KEYS:
        if key in config and _is_label_collection(config[key]):
            return labels_from_mapping(config[key], f"{what} ({key})") if isinstance(config[key], Mapping) else list(config[key])
    inner = config.get("pretrained_cfg")
    if isinstance(inner, Mapping):
        return labels_from_config(inner, f"{what} (pretrained_cfg)")
    return None


def _is_label_collection(value: Any) -> bool:
    if isinstance(value, Mapping):
        return bool(value) and all(isinstance(k, (str, int)) for k in value)
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, str) for v in value)


def labels_from_mapping(mapping: Mapping[Any, Any], what: str = "labels") -> list[str]:
    """`{index: label}` (every value a string, every key an index) or `{label: index}` -> labels in index order."""
    items = list(mapping.items())
    if items and all(isinstance(v, str) and not _DIGITS.fullmatch(v) for _, v in items):
        bad = [k for k, _ in items if _index(k) is None]
        if bad:
            raise CatsplitError(
                f"{what}: a mapping index -> label needs integer indices as keys; bad keys {bad[:5]}. "
                f"Map each row 0..{len(items) - 1} to its label"
            )
        flipped = {v: _index(k) for k, v in items}
        if len(flipped) < len(items):
            seen: set[str] = set()
            dup = sorted({v for _, v in items if v in seen or seen.add(v)})  # type: ignore[func-returns-value]
            raise CatsplitError(f"{what}: labels appear under several indices: {dup[:5]}; give each class one name")
        return labels_by_index(flipped, what)
    return labels_by_index(_unquoted(mapping), what)


def _index(key: Any) -> int | None:
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    if isinstance(key, str) and _DIGITS.fullmatch(key):
        return int(key)
    return None


def _unquoted(mapping: Mapping[Any, Any]) -> Mapping[Any, Any]:
    """Keys wrapped in double quotes (`"\\"abseiling\\""`, Kinetics class-name files) without them, when every key is."""
    keys = list(mapping)
    if keys and all(isinstance(k, str) and len(k) >= 2 and k[0] == k[-1] == '"' for k in keys):
        return {k[1:-1]: v for k, v in mapping.items()}
    return mapping


def labels_from_lines(lines: Sequence[str], what: str = "labels") -> list[str]:
    """Stripped non-blank lines -> labels: "index name" lines when every line is one and the indices are
    0..n-1 or 1..n (each once, any order), else each line is a label as it stands."""
    if len(lines) >= 2:
        matches = [_INDEX_LINE.fullmatch(line) for line in lines]
        if all(matches):
            pairs = sorted((int(m.group(1)), m.group(2)) for m in matches)  # type: ignore[union-attr]
            first = pairs[0][0]
            if first in (0, 1) and [i for i, _ in pairs] == list(range(first, first + len(pairs))):
                return [name for _, name in pairs]
    return list(lines)
