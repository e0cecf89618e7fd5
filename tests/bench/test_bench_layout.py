"""catsplit.bench.layout: the paper's benchmark layout, read from and written to disk (fixture `layout` in conftest)."""

import numpy as np
import pytest

import catsplit
from catsplit import CatsplitError
from catsplit.bench.layout import read_features, read_layout, write_layout

COARSE = "Pushing something"


def test_read_layout_builds_targets(layout):
    root, head, subs = layout
    (target,) = read_layout(root / "ann", root / "feats.npz", head, "A")
    assert target.coarse == COARSE and target.subs == subs
    assert target.features.shape == (8 * 5 + 4 * (len(head.labels) - 1), head.dim)
    assert target.labels[:8] == [subs[0]] * 8 and target.labels[-1] == head.labels[-1]
    assert target.train_features.shape == (30, head.dim) and set(target.train_labels) == set(subs)


def test_write_layout_never_writes_into_a_used_folder(layout):
    root, _, _ = layout
    before = sorted(p.name for p in (root / "ann").rglob("*"))
    with pytest.raises(CatsplitError, match="not an empty folder"):
        write_layout(root / "ann", {}, {"A": []}, {}, {})
    assert sorted(p.name for p in (root / "ann").rglob("*")) == before


def test_layout_errors(layout):
    root, head, _ = layout
    other = catsplit.Head(weight=head.weight, bias=head.bias, labels=list(reversed(head.labels)))
    with pytest.raises(CatsplitError, match="labels differ"):
        read_layout(root / "ann", root / "feats.npz", other, "A")
    with pytest.raises(CatsplitError, match="no features for"):
        read_layout(root / "ann", {}, head, "A")
    with pytest.raises(CatsplitError, match="group_scheme.json not found"):
        read_layout(root, root / "feats.npz", head, "A")
    csv = root / "ann" / "A" / COARSE / "unrelated_set.csv"
    csv.write_text(csv.read_text() + "videos/x.mp4,999\n")
    with pytest.raises(CatsplitError, match="label index 999"):
        read_layout(root / "ann", {**read_features(root / "feats.npz"), "videos/x.mp4": np.zeros(32)}, head, "A")
