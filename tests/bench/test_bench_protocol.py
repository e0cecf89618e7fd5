"""catsplit.bench.protocol: the paper's protocol over split targets, and the memo that shares edits between rows."""

import numpy as np
import pytest

import catsplit
from catsplit import CatsplitError
from catsplit.bench import rows as table_methods
from catsplit.bench.layout import read_layout
from catsplit.bench.protocol import Target, run_protocol
from catsplit.bench.report import markdown_table
from conftest import MODIFIERS, HashEncoder, class_clips, compositional_head

COARSE = "Pushing something"


def test_protocol_on_the_layout(layout):
    root, head, subs = layout
    targets = read_layout(root / "ann", root / "feats.npz", head, "A")
    enc = HashEncoder()
    # one target: no other class's training clips, so the rows that calibrate on them are left out here
    needs_others = [s for s in table_methods.LABEL_FREE if s[0] != "refine-alignment" or s[1] == "flat"]
    specs = [s for s in table_methods.DEFAULT if s not in needs_others] + [("finetune-2shot-alignment", "flat"), ("alignment-gate", "flat"),
                                     ("merge-alignment-seeds", "flat"), ("merge-zs-1shot-0.5", "flat")]
    results = run_protocol(head, targets, [table_methods.build(n, mo, enc) for n, mo in specs], seeds=[0, 1], progress=False)
    by = {(r["method"], r["mode"]): r for r in results}
    assert by[("coarse", "flat")]["generality"]["std"] == 0 and len(by[("coarse", "flat")]["seeds"]) == 1
    assert by[("alignment", "hierarchical")]["locality"]["mean"] == 100.0
    assert by[("alignment", "hierarchical")]["agreement"]["mean"] == 100.0
    assert by[("retrieval", "flat")]["generality"]["mean"] > by[("coarse", "flat")]["generality"]["mean"] + 30
    assert by[("oracle", "flat")]["generality"]["mean"] > 80
    assert len(by[("finetune-2shot-alignment", "flat")]["seeds"]) == 2
    for name in ("alignment-gate", "merge-alignment-seeds", "merge-zs-1shot-0.5"):
        assert by[(name, "flat")]["generality"]["mean"] > by[("coarse", "flat")]["generality"]["mean"], name
    table = markdown_table(results)
    assert table.count("\n") == len(results) + 1 and "| retrieval | flat |" in table


def test_targets_can_be_built_by_hand():
    head, subs, v, m = compositional_head(dim=16)
    rng = np.random.default_rng(1)
    x = np.concatenate([class_clips(v, m, s, 5, rng, 16) for s in subs])
    t = Target(coarse=COARSE, subs=subs, features=x, labels=[s for s in subs for _ in range(5)])
    (r,) = run_protocol(head, [t], [table_methods.build("retrieval", "flat", HashEncoder())], seeds=[0], progress=False)
    assert np.isnan(r["locality"]["mean"]) and r["generality"]["mean"] > 50


def _target(dim=16):
    head, subs, v, m = compositional_head(dim=dim, seed=3)
    rng = np.random.default_rng(1)

    def clips(mod, n, verb="Pushing"):
        return (v[verb] + m[mod] + 0.3 * rng.standard_normal((n, dim))).astype(np.float32)

    train = np.concatenate([clips(mod, 6) for mod in MODIFIERS])
    y = [s for s in subs for _ in range(6)]
    others = [f"{verb} something {mod}" for verb in ("Pulling", "Lifting") for mod in MODIFIERS]
    test = np.concatenate([clips(mod, 6) for mod in MODIFIERS] + [clips(lab.split(" something ")[1], 4, lab.split()[0]) for lab in others])
    labels = y + [lab for lab in others for _ in range(4)]
    return head, Target(coarse=COARSE, subs=subs, features=test, labels=labels, train_features=train, train_labels=y)


def test_merge_ends_and_shared_starts():
    """merge-zs-1shot-0 is the alignment edit, -1 its one-shot fine-tune; the shared edits are made once."""
    head, t = _target()
    enc = HashEncoder()
    names = ["alignment", "finetune-1shot-alignment", "merge-zs-1shot-0", "merge-zs-1shot-0.5", "merge-zs-1shot-1",
             "finetune-full", "oracle", "merge-alignment-seeds"]
    built = [table_methods.build(n, "flat", enc) for n in names]
    res = {r["method"]: r for r in run_protocol(head, [t], built, seeds=[0, 1], progress=False)}
    calls = enc.calls
    for a, b in (("merge-zs-1shot-0", "alignment"), ("merge-zs-1shot-1", "finetune-1shot-alignment")):
        assert [res[a][k] for k in ("generality", "locality", "agreement")] == [res[b][k] for k in ("generality", "locality", "agreement")]
    assert len(res["finetune-full"]["seeds"]) == 2 and len(res["oracle"]["seeds"]) == 1
    assert res["finetune-full"]["seeds"][0]["generality"] == res["oracle"]["seeds"][0]["generality"]
    # a second protocol over the same head and target reuses every edit: no text is encoded again
    again = run_protocol(head, [t], [table_methods.build(n, "flat", enc) for n in names], seeds=[0, 1], progress=False)
    assert enc.calls == calls
    assert [r["generality"] for r in again] == [res[n]["generality"] for n in names]


def test_label_free_rows_use_the_training_clips_without_their_labels():
    """refine-* and the calibration rows read train_features and other_features; never train_labels."""
    head, t = _target()
    rng = np.random.default_rng(4)
    others = [f"{verb} something {mod}" for verb in ("Pulling", "Lifting") for mod in MODIFIERS]
    _, _, v, m = compositional_head(dim=16, seed=3)
    t.other_features = np.concatenate([(v[lab.split()[0]] + m[lab.split(" something ")[1]] + 0.3 * rng.standard_normal((6, 16)))
                                       .astype(np.float32) for lab in others])
    t.train_labels = None  # refine and calibration must not need them
    enc = HashEncoder()
    specs = table_methods.LABEL_FREE + [("alignment", "flat"), ("retrieval", "flat")]
    res = {(r["method"], r["mode"]): r for r in run_protocol(head, [t], [table_methods.build(n, mo, enc) for n, mo in specs],
                                                               seeds=[0], progress=False)}
    assert res[("refine-alignment", "hierarchical")]["locality"]["mean"] == 100.0
    for name, mode in specs:
        assert not np.isnan(res[(name, mode)]["generality"]["mean"]), name
    # the rows are what the library gives
    from catsplit.edit import split

    flat = split(head, enc, COARSE, t.subs, method="retrieval")
    want = catsplit.refine(flat, t.train_features, others=t.other_features)
    got = table_methods.build("refine-retrieval", "flat", enc).edit(head, t, 0)
    assert got.equals(want)
    t.other_features = None
    with pytest.raises(CatsplitError, match="other than"):
        table_methods.build("alignment-calibrated", "flat", enc).edit(head, t, 0)


def test_finetune_from_refine_starts_at_the_refined_rows():
    head, t = _target()
    t.other_features = np.full((2, 16), 5.0, np.float32)  # two clips of other classes, far away
    enc = HashEncoder()
    tuned = table_methods.build("finetune-1shot-refine", "flat", enc).edit(head, t, 0)
    assert tuned.latest_record()["refine"]["clips"] == len(t.train_features) and "finetune" in tuned.latest_record()
