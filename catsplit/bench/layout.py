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
import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from catsplit.bench.protocol import Target
from catsplit.errors import CatsplitError
from catsplit.io.readers import read_json
from catsplit.head import Head


def read_rows(path: Path) -> list[tuple[str, int]]:
    """`video_path,label_index` rows of a CSV without header."""
    if not path.is_file():
        raise CatsplitError(f"{path} not found")
    rows = []
    with path.open(newline="", encoding="utf-8") as f:
        for n, row in enumerate(csv.reader(f), 1):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 2:
                raise CatsplitError(f"{path}:{n}: expected 'video_path,label_index', got {row!r}")
            try:
                rows.append((row[0].strip(), int(row[-1])))
            except ValueError:
                raise CatsplitError(f"{path}:{n}: label index {row[-1]!r} is not an integer") from None
    return rows


def read_features(path: str | Path) -> Mapping[str, np.ndarray]:
    """video_path -> feature vector, from safetensors or npz."""
    path = Path(path)
    if not path.is_file():
        raise CatsplitError(f"features file {path} not found")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            if "paths" in data.files and "features" in data.files:
                return dict(zip((str(p) for p in data["paths"]), data["features"].astype(np.float32)))
            return {k: data[k].astype(np.float32).reshape(-1) for k in data.files}
    from safetensors.numpy import load_file

    try:
        return {k: v.astype(np.float32).reshape(-1) for k, v in load_file(str(path)).items()}
    except Exception as exc:
        raise CatsplitError(f"{path} is neither .npz nor a readable safetensors file ({exc})") from None


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
    scheme = read_json(root / "group_scheme.json", "group scheme")
    if not isinstance(scheme, dict) or "group_scheme" not in scheme or partition not in scheme:
        raise CatsplitError(f"{root / 'group_scheme.json'} must hold 'group_scheme' and {partition!r}")
    label_index = read_json(root / partition / "labels.json", "labels")
    if not isinstance(label_index, dict):
        raise CatsplitError(f"{root / partition / 'labels.json'} must map label text -> index")
    base = [lab for lab, _ in sorted(label_index.items(), key=lambda kv: int(kv[1]))]
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
