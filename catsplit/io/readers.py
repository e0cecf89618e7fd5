"""Readers of the small files users hand catsplit: label lists, JSON, clip-feature arrays.

One reader per kind, each raising a CatsplitError that names the file and the fix.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from catsplit.checks import label_list
from catsplit.errors import CatsplitError
from catsplit.formats.labels import labels_from_lines, labels_from_value

if TYPE_CHECKING:
    from os import PathLike

LABEL_SUFFIXES = {".json", ".txt"}


def parse_json(text: str, what: str) -> Any:
    """JSON text -> its value; anything Python's parser refuses is a CatsplitError naming `what`.

    Besides malformed JSON that is nesting too deep for the parser (`[[[[...`) and integers of more than
    4,300 digits (Python's limit on converting digit strings), which raise RecursionError and a plain
    ValueError.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatsplitError(f"{what} is not valid JSON ({exc.msg} at character {exc.pos})") from None
    except RecursionError:
        raise CatsplitError(f"{what} is JSON nested too deeply to read") from None
    except ValueError as exc:  # "Exceeds the limit (4300 digits) for integer string conversion"
        raise CatsplitError(f"{what} holds a number Python cannot read ({exc})") from None


def read_text(path: str | PathLike, what: str) -> str:
    """A small text file's content: UTF-8, a leading byte-order mark dropped (editors on Windows write one).

    Raises:
        CatsplitError naming `what` and the file: missing, unreadable, or not UTF-8 text.
    """
    p = Path(path)
    if not p.is_file():
        raise CatsplitError(f"{what} file {p} not found")
    try:
        return p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CatsplitError(
            f"{what} file {p} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"
        ) from None
    except OSError as exc:
        raise CatsplitError(f"{what} file {p} cannot be read ({exc.strerror or exc})") from None


def read_lines(path: str | PathLike, what: str) -> list[str]:
    """The non-blank lines of a text file, stripped (one label, sub or clip label per line)."""
    return [line.strip() for line in read_text(path, what).splitlines() if line.strip()]


def read_labels(labels: Sequence[str] | Mapping[Any, Any] | str | PathLike) -> list[str]:
    """Labels from a list, a mapping, a JSON file or a text file, in index order (`catsplit.formats.labels`).

    Mappings and JSON objects: `{label: index}`, `{index: label}` (int or digit-string keys), or a model
    config (`id2label`, `label_names`, `classes`). Text files: one label per line, or "index name" lines
    (`classInd.txt`). A byte-order mark and CRLF line ends are handled.
    """
    if isinstance(labels, str) and not Path(labels).is_file() and Path(labels).suffix.lower() not in LABEL_SUFFIXES:
        raise CatsplitError(f"labels={labels!r}: give a list of labels or the path of a .json or .txt labels file")
    if isinstance(labels, (str, os.PathLike)):
        p = Path(labels)  # a missing file: read_text's error
        if p.suffix.lower() == ".json":
            return labels_from_value(read_json(p, "labels"), f"labels file {p}")
        return labels_from_lines(read_lines(p, "labels"), f"labels file {p}")
    if isinstance(labels, Mapping):
        return labels_from_value(labels, "labels")
    return label_list(labels, "labels")


def read_json(path: str | PathLike, what: str) -> Any:
    """A JSON file's content; a missing file or bad JSON is a CatsplitError naming `what` and the path."""
    return parse_json(read_text(path, what), f"{what} file {Path(path)}")


def read_clips(features: str | Path, labels: str | Path | None = None) -> tuple[np.ndarray, list[Any] | None]:
    """Labelled clip features from files (what `catsplit finetune` reads).

    Args:
        features: `.npz` with an array `features` [N, D] (or a single array) and optionally `labels` [N]
            (label strings or integer indices into the head's labels); `.npy` holding [N, D];
            `.safetensors` with a tensor `features` [N, D] (or a single tensor) and optionally an integer
            tensor `labels` [N].
        labels: a JSON list (label strings or indices) or a text file with one label per line; it
            replaces labels stored in `features`.
    Returns:
        (features [N, D] as stored, labels or None when neither file has them).
    """
    from catsplit.io.arrays import read_arrays  # imports torch for .safetensors: not at the command line's start

    path = Path(features)
    arrays = read_arrays(path, "features file")
    if "" in arrays:  # .npy: the features alone
        arrays = {"features": arrays.pop("")}
    x = features_array(arrays, path)
    if labels is not None:
        return x, _read_clip_labels(Path(labels))
    if "labels" not in arrays:
        return x, None
    y = arrays["labels"]
    if y.ndim != 1:
        raise CatsplitError(f"labels in {path} must have shape [N], got {tuple(y.shape)}")
    if y.dtype.kind in "iu":
        return x, [int(v) for v in y]
    if y.dtype.kind in "US":
        return x, strings_of(y, path, "labels")
    raise CatsplitError(f"labels in {path} must be label strings or integer indices, got dtype {y.dtype}")


def features_array(arrays: dict[str, Any], path: Path, leave_out: tuple[str, ...] = ()) -> Any:
    """The [N, D] features among a file's arrays: the one named `features`, else the only array whose name is
    not in `leave_out`; checked for rank and number dtype."""
    named = {k: v for k, v in arrays.items() if k not in leave_out}
    if "features" in arrays:
        x = arrays["features"]
    elif len(named) == 1:
        x = next(iter(named.values()))
    else:
        raise CatsplitError(f"features file {path} holds {sorted(arrays)}; name the [N, D] array 'features'")
    if x.ndim != 2:
        raise CatsplitError(f"features in {path} must have shape [N, D], got {tuple(x.shape)}")
    if x.dtype.kind not in "iuf":
        raise CatsplitError(f"features in {path} must be numbers (float32), got dtype {x.dtype}")
    return x


def strings_of(y: Any, path: Path, what: str) -> list[str]:
    """A str (U) or UTF-8 bytes (S) array as Python strings."""
    if y.dtype.kind == "U":
        return [str(v) for v in y.tolist()]
    try:
        return [v.decode("utf-8") for v in y.tolist()]
    except UnicodeDecodeError as exc:
        raise CatsplitError(f"{what} in {path} are not UTF-8 text ({exc.reason}); store them as a str array") from None


def _read_clip_labels(path: Path) -> list[Any]:
    """A JSON list (strings or integer indices) or one label per line."""
    if path.suffix.lower() == ".json":
        data = read_json(path, "labels")
        if not isinstance(data, list):
            raise CatsplitError(f"labels file {path} must hold a JSON list with one label (or index) per feature row")
        return data
    return read_lines(path, "labels")



def read_unlabelled_clips(features: str | Path) -> tuple[np.ndarray, list[str] | None]:
    """Unlabelled clip features from a file (what `catsplit refine` and `relabel` read): the formats of
    `read_clips`, labels ignored; a `.npy` is memory-mapped (read chunk by chunk later, never whole).

    Returns:
        (features [N, D], clip ids: the `ids` array of a .npz / .safetensors as strings, or None).
    """
    from catsplit.io.arrays import map_npy, read_arrays

    path = Path(features)
    if path.suffix.lower() == ".npy":
        return features_array({"features": map_npy(path, "features file")}, path), None
    arrays = read_arrays(path, "features file")
    x = features_array(arrays, path, leave_out=("labels", "ids"))
    if "ids" not in arrays:
        return x, None
    y = arrays["ids"]
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise CatsplitError(f"ids in {path} must have shape [N] (one per feature row), got {tuple(y.shape)}")
    if y.dtype.kind in "iu":
        return x, [str(v) for v in y.tolist()]
    if y.dtype.kind in "US":
        return x, strings_of(y, path, "ids")
    raise CatsplitError(f"ids in {path} must be strings or integers, got dtype {y.dtype}")
