"""catsplit.bench.diagnose: the consistency and mean-modifier measurements on constructed heads."""
import numpy as np
import pytest

from catsplit.bench import diagnose as Dg
from catsplit.bench import world as W
from catsplit.errors import CatsplitError

ACTIONS = ("push", "pull", "roll", "hit")  # share lr / rl; each has a few modifiers of its own


def compositional_head(tax, rng, noise=0.0):
    """w_(a, m) = u_a + z_m (+ noise): modifier directions shared by every action."""
    D = 32
    u = {c: rng.standard_normal(D) for c in tax.coarse}
    z = {m: rng.standard_normal(D) for m in set(tax.modifier.values())}
    labels = tax.labels
    W_ = np.stack([u[tax.coarse_of[f]] + z[tax.modifier[f]] + noise * rng.standard_normal(D) for f in labels])
    return W_.astype(np.float32), labels, z


def test_consistency_is_one_for_shared_directions_and_drops_with_noise():
    tax = W.taxonomy(W.WorldConfig(actions=ACTIONS))
    rng = np.random.default_rng(0)
    weight, labels, _ = compositional_head(tax, rng)
    vec = Dg.modifier_vectors(weight, labels, tax, tax.coarse)
    cons = Dg.consistency(vec)
    # lr is shared by all four actions; the group means differ (different modifier sets), so the
    # vectors agree up to each group's offset: high, not exactly 1
    assert cons["from left to right"] > 0.3
    assert set(cons) == {m for m, items in vec.items() if len(items) >= 2}
    noisy, _, _ = compositional_head(tax, np.random.default_rng(0), noise=20.0)
    assert Dg.consistency(Dg.modifier_vectors(noisy, labels, tax, tax.coarse))["from left to right"] < cons["from left to right"]


def test_mean_modifier_rows_recover_the_held_out_action():
    """With w = u_a + z_m and the same modifier set in every source action, the mean-modifier rows
    of a held-out action differ from each other exactly as its true rows do."""
    from types import SimpleNamespace

    mods = {"A": ("x", "y", "z"), "B": ("x", "y", "z"), "C": ("x", "y", "z"), "T": ("x", "y", "new")}
    fine = {a: [f"{a} {m}" for m in ms] for a, ms in mods.items()}
    modifier = {f"{a} {m}": m for a, ms in mods.items() for m in ms}
    tax = SimpleNamespace(fine=fine, modifier=modifier)
    rng = np.random.default_rng(1)
    D = 16
    u = {a: rng.standard_normal(D) for a in mods}
    z = {m: rng.standard_normal(D) for m in ("x", "y", "z", "new")}
    true = {f: u[f.split()[0]] + z[modifier[f]] for f in modifier}
    labels = fine["A"] + fine["B"] + fine["C"] + ["T"]
    coarse_row = np.mean([true[f] for f in fine["T"]], 0)  # the collapsed target's row
    weight = np.stack([true[l] for l in labels[:-1]] + [coarse_row]).astype(np.float32)
    vec = Dg.modifier_vectors(weight, labels, tax, ["A", "B", "C"])
    assert {m: len(v) for m, v in vec.items()} == {"x": 3, "y": 3, "z": 3}
    assert all(abs(c - 1.0) < 1e-5 for c in Dg.consistency(vec).values())
    rows = Dg.mean_modifier_rows(weight, labels, "T", fine["T"], tax, vec)
    np.testing.assert_allclose(rows["T new"], coarse_row, rtol=1e-6)  # never seen: the coarse row
    np.testing.assert_allclose(rows["T x"] - rows["T y"], true["T x"] - true["T y"], atol=1e-5)


def test_diagnose_names_what_is_missing(tmp_path):
    with pytest.raises(CatsplitError, match="A-linear.safetensors"):
        Dg.diagnose(str(tmp_path), encoder=None)


def test_diagnose_needs_cached_val_features_for_the_val_clips(tmp_path):
    for p in "AB":
        for name in (f"{p}-linear.safetensors", f"{p}-linear-features.npz", f"{p}-text4vis.safetensors",
                     f"{p}-text4vis-features.npz"):
            (tmp_path / name).write_bytes(b"")
    with pytest.raises(CatsplitError, match=r"A-linear-val-features.npz.*catsplit bench --eval-split val"):
        Dg.diagnose(str(tmp_path), encoder=None, eval_split="val")
    with pytest.raises(CatsplitError, match="eval_split must be 'test' or 'val'"):
        Dg.diagnose(str(tmp_path), encoder=None, eval_split="train")


def test_diagnose_reads_only_the_partitions_asked_for(tmp_path):
    for name in ("B-linear.safetensors", "B-linear-features.npz"):
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(CatsplitError, match=r"lacks \['A-linear.safetensors', 'A-linear-features.npz'\]"):
        Dg.diagnose(str(tmp_path), encoder=None, text4vis=False, partitions=["A"])
    with pytest.raises(CatsplitError, match="partitions must be"):
        Dg.diagnose(str(tmp_path), encoder=None, partitions=["C"])
