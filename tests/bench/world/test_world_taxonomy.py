"""catsplit.bench.world.taxonomy: actions, modifiers, partitions and mixed-granularity label sets."""
import numpy as np
import pytest

from catsplit.bench import world as W
from catsplit.errors import CatsplitError

SMALL_ACTIONS = ("push", "pull", "pick", "squeeze")


def test_taxonomy_constraints():
    tax = W.taxonomy()
    assert len(tax.coarse) >= 14
    assert all(len(tax.fine[c]) >= 2 for c in tax.coarse)
    assert len(tax.labels) >= 60
    assert len(set(tax.labels)) == len(tax.labels)
    for c in tax.coarse:
        for f in tax.fine[c]:
            assert f == f"{c} {tax.modifier[f]}"  # fine = coarse + " " + modifier
            assert tax.coarse_of[f] == c
    # shared modifiers of every family, and a few novel ones that belong to one action only
    shared = set(tax.shared)
    for m in ("from left to right", "from right to left", "up", "down", "towards the camera",
              "away from the camera", "onto something", "into something", "next to something",
              "behind something", "so that it falls off the table",
              "so that it almost falls off but doesn't", "on its own", "together with another thing",
              "together with two other things", "but only pretending", "so that it spins", "slightly"):
        assert m in shared, m
    assert len(tax.novel) >= 3
    for m in tax.novel:
        owners = {c for c in tax.coarse for f in tax.fine[c] if tax.modifier[f] == m}
        assert len(owners) == 1
    # every shared modifier belongs to >= 4 actions, so both halves of a partition usually see it
    for m in shared:
        owners = {c for c in tax.coarse for f in tax.fine[c] if tax.modifier[f] == m}
        assert len(owners) >= 4, (m, owners)
    # every action shares most of its modifiers with other actions
    for c in tax.coarse:
        mods = [tax.modifier[f] for f in tax.fine[c]]
        assert sum(m in shared for m in mods) >= len(mods) / 2


def test_taxonomy_subset_and_errors():
    tax = W.taxonomy(W.WorldConfig(actions=SMALL_ACTIONS))
    assert tax.coarse == [W.ACTIONS[a][0] for a in SMALL_ACTIONS]
    with pytest.raises(CatsplitError):
        W.taxonomy(W.WorldConfig(actions=("push", "nope")))
    with pytest.raises(CatsplitError):
        W.render_clip(W.ClipSpec("push", "onto"), np.random.default_rng(0))  # not a push modifier


def test_partition_seeded_disjoint():
    tax = W.taxonomy()
    A, B = W.partition(tax, 0)
    assert (A, B) == W.partition(tax, 0)
    assert not set(A) & set(B)
    assert set(A) | set(B) == set(tax.coarse)
    assert len(A) == len(tax.coarse) // 2
    assert A == [c for c in tax.coarse if c in A]  # taxonomy order
    assert any(W.partition(tax, s)[0] != A for s in range(1, 5))


def test_mixed_labels():
    tax = W.taxonomy()
    A, B = W.partition(tax, 1)
    labels, mapping = W.mixed_labels(tax, A)
    assert len(labels) == len(set(labels)) == len(A) + sum(len(tax.fine[c]) for c in B)
    for c in A:
        assert c in labels
        assert all(mapping[f] == c for f in tax.fine[c])
        assert not any(f in labels for f in tax.fine[c])
    for c in B:
        assert c not in labels
        assert all(mapping[f] == f and f in labels for f in tax.fine[c])
    assert set(mapping) == set(tax.labels)
    idx = np.arange(len(tax.labels))
    y, labels2 = W.mixed_targets(tax, idx, A)
    assert labels2 == labels
    assert [labels[i] for i in y] == [mapping[f] for f in tax.labels]
    with pytest.raises(CatsplitError):
        W.mixed_labels(tax, ["Juggling something"])
