"""catsplit.bench.run: `catsplit bench` on the rendered world, end to end, and its caches."""

import json

import numpy as np
import pytest

from catsplit import CatsplitError
from catsplit.bench.rows import DEFAULT
from conftest import HashEncoder


def test_cached_features_write_once_atomically_and_read_back(tmp_path):
    from catsplit.bench.run import cached_features, read_features

    arrays = {"x": np.arange(6, dtype=np.float32).reshape(2, 3), "labels": np.array(["a", "b"])}
    calls = []
    path = tmp_path / "A-linear-features.npz"
    got = cached_features(path, lambda: calls.append(1) or arrays)
    again = cached_features(path, lambda: calls.append(1) or arrays)  # cached: make() is not called again
    assert calls == [1] and [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left
    with np.load(path) as f:  # a plain .npz, as before
        plain = {k: f[k] for k in f.files}
    for out in (got, again, read_features(path), plain):
        assert out.keys() == arrays.keys() and all(np.array_equal(out[k], arrays[k]) for k in arrays)


def test_world_run_end_to_end_and_cached(tmp_path, capsys):
    """A tiny world (4 actions, a few clips, 1 epoch): every stage runs, the second run starts at evaluation."""
    from catsplit.bench.models import TrainConfig
    from catsplit.bench.run import run_world
    from catsplit.bench.world import ACTIONS, WorldConfig

    wc = WorldConfig(seed=0, n_train=4, n_val=2, n_test=3, actions=tuple(list(ACTIONS)[:4]))
    tc = TrainConfig(epochs=1, width=4, dim=32, batch_size=8, pretrain="none")
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
        on_val = diagnose(second["config"]["cache"], HashEncoder(), world_config=wc, eval_split="val",
                          methods=["coarse", "retrieval", "alignment:hierarchical", "oracle"])
    assert set(report) == {"A", "B"}
    for p, r in report.items():
        # every row of the standard table, by modifier family, besides the bound and the Text4Vis split
        standard = {name if mode == "flat" else f"{name}:{mode}" for name, mode in DEFAULT}
        assert set(r["generality"]) == standard | {"mean-modifier bound", "text4vis"}
        # each row's "all" is the table's generality for that row, on the test clips and on the val clips
        for table, rep in ((second, r), (val, on_val[p])):
            for row in ("coarse", "retrieval", "alignment:hierarchical", "oracle"):
                name, _, mode = row.partition(":")
                want = [x for x in table["results"] if x["partition"] == p and (x["method"], x["mode"]) == (name, mode or "flat")]
                assert rep["generality"][row]["all"] == pytest.approx(want[0]["generality"]["mean"]), (p, row)
        assert all(-1.0001 <= c <= 1.0001 for c in r["consistency"].values())
        for fams in r["generality"].values():
            assert "all" in fams and all(0.0 <= g <= 100.0 for g in fams.values())
        # its Text4Vis split is the table's text4vis flat row
        t4v = [x for x in second["results"] if x["partition"] == p and (x["method"], x["mode"]) == ("text4vis", "flat")][0]
        assert r["generality"]["text4vis"]["all"] == pytest.approx(t4v["generality"]["mean"])
