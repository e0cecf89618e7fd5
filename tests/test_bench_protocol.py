"""The protocol and the paper-layout reader, on a layout the test writes itself."""

import json

import numpy as np
import pytest

import catsplit
from catsplit import CatsplitError
from catsplit.bench import rows as table_methods
from catsplit.bench.layout import read_features, read_layout, write_layout
from catsplit.bench.protocol import Target, run_protocol
from catsplit.bench.report import markdown_table
from conftest import MODIFIERS, VERBS, HashEncoder, compositional_head

COARSE = "Pushing something"


def _clips(v, m, label, n, rng, dim):
    verb = label.split()[0]
    mod = label[len(verb) + len(" something "):]
    centre = v[verb] + (m[mod] if mod else np.mean(list(m.values()), axis=0))
    return (centre + 0.3 * rng.standard_normal((n, dim))).astype(np.float32)


@pytest.fixture
def layout(tmp_path):
    """Partition A collapses 'Pushing something'; features: class centre + noise."""
    dim = 32
    head, subs, v, m = compositional_head(dim=dim, seed=5)
    rng = np.random.default_rng(0)
    fine = {f"{verb} something": [f"{verb} something {mod}" for mod in MODIFIERS] for verb in VERBS}
    base = head.labels
    feats, sets = {}, {}
    n_base = len(base)
    for kind, n in (("ft_set", 6), ("equivalent_set", 8)):
        rows = []
        for j, s in enumerate(subs):
            for i in range(n):
                path = f"videos/{kind}/{j}_{i}.mp4"
                feats[path] = _clips(v, m, s, 1, rng, dim)[0]
                rows.append((path, n_base + j))
        sets[("A", COARSE, kind)] = rows
    rows = []
    for li, lab in enumerate(base):
        if lab == COARSE:
            continue
        for i in range(4):
            path = f"videos/other/{li}_{i}.mp4"
            feats[path] = _clips(v, m, lab, 1, rng, dim)[0]
            rows.append((path, li))
    sets[("A", COARSE, "unrelated_set")] = rows
    write_layout(tmp_path / "ann", fine, {"A": [COARSE], "B": []}, {"A": base}, sets)
    np.savez(tmp_path / "feats.npz", paths=np.array(list(feats)), features=np.stack(list(feats.values())))
    head.save(tmp_path / "head.safetensors")
    return tmp_path, head, subs


def test_read_layout_builds_targets(layout):
    root, head, subs = layout
    (target,) = read_layout(root / "ann", root / "feats.npz", head, "A")
    assert target.coarse == COARSE and target.subs == subs
    assert target.features.shape == (8 * 5 + 4 * (len(head.labels) - 1), head.dim)
    assert target.labels[:8] == [subs[0]] * 8 and target.labels[-1] == head.labels[-1]
    assert target.train_features.shape == (30, head.dim) and set(target.train_labels) == set(subs)


def test_protocol_on_the_layout(layout):
    root, head, subs = layout
    targets = read_layout(root / "ann", root / "feats.npz", head, "A")
    enc = HashEncoder()
    specs = table_methods.DEFAULT + [("finetune-2shot-alignment", "flat"), ("alignment-gate", "flat"),
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


def test_bench_cli_on_the_layout(layout, monkeypatch, capsys):
    from catsplit.cli import main

    root, head, _ = layout
    monkeypatch.setattr("catsplit.encoders.load_text_encoder", lambda spec=None: HashEncoder())
    out, png = root / "results.json", root / "plot.png"
    code = main(["bench", "--annotations", str(root / "ann"), "--features", str(root / "feats.npz"),
                 "--head", str(root / "head.safetensors"), "--seeds", "1", "--out", str(out), "--plot", str(png),
                 "--methods", "coarse", "retrieval", "alignment:hierarchical", "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| retrieval | flat |" in printed
    data = json.loads(out.read_text())
    assert data["config"]["partition"] == "A" and data["config"]["targets"] == [COARSE]
    assert [r["method"] for r in data["results"]] == ["coarse", "retrieval", "alignment"]
    assert png.stat().st_size > 1000
    # --eval-split chooses clips of the rendered world; the layout has its own held-out sets
    code = main(["bench", "--annotations", str(root / "ann"), "--features", str(root / "feats.npz"),
                 "--head", str(root / "head.safetensors"), "--eval-split", "val", "--no-progress"])
    assert code != 0 and "--eval-split is for the rendered world" in capsys.readouterr().err


def test_targets_can_be_built_by_hand():
    head, subs, v, m = compositional_head(dim=16)
    rng = np.random.default_rng(1)
    x = np.concatenate([_clips(v, m, s, 5, rng, 16) for s in subs])
    t = Target(coarse=COARSE, subs=subs, features=x, labels=[s for s in subs for _ in range(5)])
    (r,) = run_protocol(head, [t], [table_methods.build("retrieval", "flat", HashEncoder())], seeds=[0], progress=False)
    assert np.isnan(r["locality"]["mean"]) and r["generality"]["mean"] > 50


def test_world_run_end_to_end_and_cached(tmp_path, capsys):
    """A tiny world (4 actions, a few clips, 1 epoch): every stage runs, the second run starts at evaluation."""
    from catsplit.bench.models import TrainConfig
    from catsplit.bench.run import run_world
    from catsplit.bench.world import ACTIONS, WorldConfig

    wc = WorldConfig(seed=0, n_train=4, n_val=2, n_test=3, actions=tuple(list(ACTIONS)[:4]))
    tc = TrainConfig(epochs=1, width=4, dim=32, batch_size=8)
    kw = dict(seeds=1, cache=str(tmp_path / "cache"), encoder=HashEncoder(), progress=False,
              world_config=wc, train_config=tc, methods=["coarse", "retrieval", "alignment:hierarchical", "oracle"])
    first = run_world(out=str(tmp_path / "r.json"), plot_path=str(tmp_path / "r.png"), **kw)
    assert {r["partition"] for r in first["results"]} == {"A", "B"}
    names = [(r["method"], r["mode"]) for r in first["results"] if r["partition"] == "A"]
    assert names == [("coarse", "flat"), ("retrieval", "flat"), ("alignment", "hierarchical"), ("oracle", "flat"),
                     ("text4vis", "flat"), ("text4vis", "hierarchical")]
    assert not any(m["from_cache"] for m in first["config"]["base_models"].values())
    assert json.loads((tmp_path / "r.json").read_text())["config"]["world"]["n_train"] == 4
    second = run_world(**kw)
    assert all(m["from_cache"] for m in second["config"]["base_models"].values())
    assert [r["generality"] for r in second["results"]] == [r["generality"] for r in first["results"]]
    assert "partition A" in capsys.readouterr().out
    # the same protocol on the val clips: other clips, same models (from the cache), recorded in the config
    val = run_world(eval_split="val", **kw)
    assert val["config"]["eval_split"] == "val" and all(m["from_cache"] for m in val["config"]["base_models"].values())
    clips = {r["partition"]: sum(t["clips"] for t in r["seeds"][0]["targets"]) for r in val["results"] if r["method"] == "coarse"}
    n_subs = {p: sum(len(ACTIONS[a][1]) for a in wc.actions if ACTIONS[a][0] in val["config"]["partitions"][p]) for p in "AB"}
    assert clips == {p: wc.n_val * n_subs[p] for p in "AB"}
    assert list((tmp_path / "cache").rglob("A-linear-val-features.npz"))
    with pytest.raises(CatsplitError, match="eval_split"):
        run_world(eval_split="train", **kw)
    # a variant of the world and of the training: recorded, trained into its own cache folder
    variant = run_world(world_options=["noise=0"], train_options=["dim=16"], **kw)
    assert variant["config"]["world"]["noise"] == 0 and variant["config"]["train"]["dim"] == 16
    assert variant["config"]["world"]["n_train"] == 4  # applied on top of the given configuration
    assert variant["config"]["cache"] != second["config"]["cache"]
    assert not any(m["from_cache"] for m in variant["config"]["base_models"].values())
    # the diagnostics read the same cache
    from catsplit.bench.diagnose import diagnose

    import warnings

    from catsplit.text import NearDuplicateWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", NearDuplicateWarning)  # its report gives the cosines; no warning per edit
        report = diagnose(second["config"]["cache"], HashEncoder(), world_config=wc)
    assert set(report) == {"A", "B"}
    for p, r in report.items():
        assert set(r["generality"]) == {"alignment", "mean-modifier bound", "text4vis"}
        assert all(-1.0001 <= c <= 1.0001 for c in r["consistency"].values())
        for fams in r["generality"].values():
            assert "all" in fams and all(0.0 <= g <= 100.0 for g in fams.values())
        # its Text4Vis split is the table's text4vis flat row
        t4v = [x for x in second["results"] if x["partition"] == p and (x["method"], x["mode"]) == ("text4vis", "flat")][0]
        assert r["generality"]["text4vis"]["all"] == pytest.approx(t4v["generality"]["mean"])
