"""The benchmark layout published with the paper, for users who hold the videos' features.

    DIR/group_scheme.json        {"group_scheme": {coarse: [fine, ...]}, "A": [coarse, ...], "B": [...]}
    DIR/A/labels.json            label text -> index of the partition's base model
    DIR/A/<coarse>/ft_set.csv          video_path,label_index   (training clips of the coarse class)
    DIR/A/<coarse>/equivalent_set.csv  (held-out clips of the coarse class: generality)
    DIR/A/<coarse>/unrelated_set.csv   (held-out clips of every other class: locality)

CSV files have no header. Sub indices continue after the last base index (the first sub is
len(labels.json)), in the order of group_scheme[coarse]. Features: a safetensors or .npz file
mapping each video_path to its feature vector (or holding arrays "paths" and "features").
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from catsplit.bench.protocol import Target
from catsplit.errors import CatsplitError
from catsplit.checks import labels_by_index
from catsplit.io.readers import read_json, read_text
from catsplit.io.safetensors import short_repr
from catsplit.head import Head


def read_rows(path: Path) -> list[tuple[str, int]]:
    """`video_path,label_index` rows of a CSV without header (UTF-8 text, read with `read_text`)."""
    text = read_text(path, "CSV")
    rows = []
    try:
        for n, row in enumerate(csv.reader(io.StringIO(text, newline="")), 1):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 2:
                raise CatsplitError(f"{path}:{n}: expected 'video_path,label_index', got {short_repr(row)}")
            index = row[-1].strip()
            if not index.isascii() or not index.lstrip("-").isdigit():
                raise CatsplitError(f"{path}:{n}: label index {short_repr(row[-1])} is not an integer")
            rows.append((row[0].strip(), int(index)))
    except csv.Error as exc:  # a NUL byte, an unclosed quote, a field over the csv module's limit
        raise CatsplitError(f"{path}: not a valid CSV file ({exc}); write one 'video_path,label_index' per line") from None
    return rows


def read_features(path: str | Path) -> Mapping[str, np.ndarray]:
    """video_path -> feature vector [D] (float32), from .npz or .safetensors (`catsplit.io.arrays.read_arrays`):
    arrays "paths" [N] and "features" [N, D], or one array per video path; every value finite."""
    from catsplit.io.arrays import finite_rows, read_arrays

    path = Path(path)
    if path.suffix.lower() not in (".npz", ".safetensors"):
        raise CatsplitError(f"features file {path}: use .npz or .safetensors (video_path -> feature)")
    arrays = read_arrays(path, "features file")
    if "paths" in arrays and "features" in arrays:
        paths, x = arrays["paths"], arrays["features"]
        if paths.ndim != 1 or paths.dtype.kind != "U":
            raise CatsplitError(f"features file {path}: 'paths' must be a 1-D str array of video paths, got {paths.dtype} "
                                f"{tuple(paths.shape)}")
        if x.ndim != 2 or x.dtype.kind not in "iuf" or len(x) != len(paths):
            raise CatsplitError(f"features file {path}: 'features' must be numbers of shape [{len(paths)}, D] (one row per "
                                f"path), got {x.dtype} {tuple(x.shape)}")
        x = finite_rows(x, f"features file {path}").astype(np.float32)
        return dict(zip(paths.tolist(), x))
    out = {}
    for name, v in arrays.items():
        if v.dtype.kind not in "iuf":
            raise CatsplitError(f"features file {path}: array {name!r} must hold numbers, got dtype {v.dtype}")
        out[name] = finite_rows(v.reshape(1, -1), f"features file {path}, array {name!r},")[0].astype(np.float32)
    return out


def read_scheme(path: Path, partition: str) -> dict:
    """group_scheme.json: {"group_scheme": {coarse: [fine, ...]}, "A": [coarse, ...], "B": [...]}, every part checked."""
    scheme = read_json(path, "group scheme")
    if not isinstance(scheme, dict) or "group_scheme" not in scheme or partition not in scheme:
        raise CatsplitError(f"{path} must hold 'group_scheme' and {partition!r}")
    groups = scheme["group_scheme"]
    if not isinstance(groups, dict) or not all(
        isinstance(fine, list) and all(isinstance(f, str) for f in fine) for fine in groups.values()
    ):
        raise CatsplitError(f"{path}: 'group_scheme' must map each coarse label to a list of fine labels (strings)")
    coarse = scheme[partition]
    if not isinstance(coarse, list) or not all(isinstance(c, str) for c in coarse):
        raise CatsplitError(f"{path}: {partition!r} must be a list of coarse labels (strings)")
    return scheme


def coarse_folder(root: Path, coarse: str) -> Path:
    """The folder of a coarse class: its text as is, or with spaces/slashes as underscores."""
    for name in (coarse, coarse.replace("/", "_"), coarse.replace(" ", "_"), coarse.replace(" ", "_").replace("/", "_")):
        if (root / name).is_dir():
            return root / name
    raise CatsplitError(f"no folder for {coarse!r} under {root}")


def read_layout(annotations: str | Path, features: str | Path | Mapping[str, np.ndarray], head: Head,
                partition: str = "A") -> list[Target]:
    """Targets of one partition of the paper's layout, with their features.

    Args:
        annotations: the folder holding group_scheme.json.
        features: features file, or a mapping video_path -> vector.
        head: the partition's base model head; its labels must be labels.json in index order.
        partition: "A" or "B".
    Returns:
        one Target per coarse class of the partition, in group_scheme order.
    """
    root = Path(annotations)
    if not (root / "group_scheme.json").is_file():
        raise CatsplitError(f"{root / 'group_scheme.json'} not found; is --annotations the folder that holds group_scheme.json?")
    scheme = read_scheme(root / "group_scheme.json", partition)
    label_index = read_json(root / partition / "labels.json", "labels")
    if not isinstance(label_index, dict):
        raise CatsplitError(f"{root / partition / 'labels.json'} must map label text -> index")
    base = labels_by_index(label_index, f"{root / partition / 'labels.json'}")
    if list(head.labels) != base:
        diff = [(i, a, b) for i, (a, b) in enumerate(zip(head.labels, base)) if a != b][:3]
        raise CatsplitError(
            f"the head's labels differ from {root / partition / 'labels.json'} (first differences {diff}, "
            f"{len(head.labels)} vs {len(base)} labels); load the head with labels='{root / partition / 'labels.json'}'"
        )
    feats = read_features(features) if not isinstance(features, Mapping) else features
    targets = []
    for coarse in scheme[partition]:
        subs = list(scheme["group_scheme"].get(coarse, []))
        if coarse not in base or len(subs) < 2:
            raise CatsplitError(f"{coarse!r}: must be a label of {partition}/labels.json with >= 2 fine labels in group_scheme")
        folder = coarse_folder(root / partition, coarse)

        def name(index: int, where: Path) -> str:
            if 0 <= index < len(base):
                return base[index]
            if 0 <= index - len(base) < len(subs):
                return subs[index - len(base)]
            raise CatsplitError(f"{where}: label index {index} is neither a base label (< {len(base)}) nor a sub of {coarse!r}")

        def load(file: str) -> tuple[np.ndarray, list[str]]:
            rows = read_rows(folder / file)
            missing = [p for p, _ in rows if p not in feats]
            if missing:
                raise CatsplitError(f"{folder / file}: no features for {len(missing)} videos, e.g. {missing[:3]}")
            sizes = sorted({feats[p].shape[0] for p, _ in rows})
            if len(sizes) > 1 or (sizes and sizes[0] != head.dim):
                raise CatsplitError(f"{folder / file}: its videos' features have {sizes} values; the head's dim is {head.dim}")
            x = np.stack([feats[p] for p, _ in rows]) if rows else np.zeros((0, head.dim), np.float32)
            return x.astype(np.float32), [name(i, folder / file) for _, i in rows]

        x_eq, y_eq = load("equivalent_set.csv")
        x_un, y_un = load("unrelated_set.csv")
        if any(y not in subs for y in y_eq) or any(y in subs or y == coarse for y in y_un):
            raise CatsplitError(f"{folder}: equivalent_set must hold subs of {coarse!r} only, unrelated_set other classes only")
        target = Target(coarse=coarse, subs=subs, features=np.concatenate([x_eq, x_un]), labels=y_eq + y_un)
        if (folder / "ft_set.csv").is_file():
            target.train_features, target.train_labels = load("ft_set.csv")
        targets.append(target)
    # clips of other classes for calibration (unlabelled): the other targets' training clips, never held-out ones
    for t in targets:
        rest = [o.train_features for o in targets if o is not t and o.train_features is not None and len(o.train_features)]
        t.other_features = np.concatenate(rest) if rest else None
    return targets


def write_layout(root: str | Path, group_scheme: Mapping[str, Sequence[str]], partitions: Mapping[str, Sequence[str]],
                 base_labels: Mapping[str, Sequence[str]], sets: Mapping[tuple[str, str, str], Sequence[tuple[str, int]]]) -> None:
    """Write a layout in the paper's format (the tests build theirs with it) into a new or empty folder.

    Args:
        root: output folder.
        group_scheme: coarse -> fine labels.
        partitions: {"A": [coarse...], "B": [...]}.
        base_labels: partition -> base model labels in index order.
        sets: (partition, coarse, "ft_set" | "equivalent_set" | "unrelated_set") -> rows (video_path, index).
    """
    root = Path(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise CatsplitError(f"{root} exists and is not an empty folder; write the layout into a new folder")
    root.mkdir(parents=True, exist_ok=True)
    (root / "group_scheme.json").write_text(json.dumps({"group_scheme": dict(group_scheme), **dict(partitions)}, indent=1))
    for p, labels in base_labels.items():
        (root / p).mkdir(exist_ok=True)
        (root / p / "labels.json").write_text(json.dumps({lab: i for i, lab in enumerate(labels)}, indent=1))
    for (p, coarse, kind), rows in sets.items():
        folder = root / p / coarse
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / f"{kind}.csv").open("w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows)
