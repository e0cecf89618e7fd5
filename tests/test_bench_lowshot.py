"""The low-shot, merge and gate rows of `catsplit bench`, the memo behind them, and the merge curve plot."""

import json

import numpy as np
import pytest

from catsplit import CatsplitError
from catsplit.bench import rows as table_methods
from catsplit.bench.protocol import Target, run_protocol
from catsplit.bench.report import curve_plot, merge_curves
from conftest import MODIFIERS, HashEncoder, compositional_head
from test_bench_protocol import layout  # noqa: F401 (fixture)

COARSE = "Pushing something"


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


def test_every_lowshot_row_can_be_named():
    specs = table_methods.specs(["lowshot"])
    names = [n for n, _ in specs]
    for init in ("random", "coarse", "alignment"):
        assert f"finetune-1shot-{init}" in names and f"finetune-5shot-{init}" in names
    assert {"finetune-full", "merge-alignment-seeds", "alignment-gate", "coarse", "alignment"} <= set(names)
    assert [n for n in names if n.startswith("merge-zs-1shot-")] == [f"merge-zs-1shot-{w}" for w in ("0", "0.25", "0.5", "0.75", "1")]
    for name, mode in specs:
        table_methods.build(name, mode, HashEncoder())
    assert table_methods.specs([]) == table_methods.DEFAULT
    assert table_methods.specs(["coarse", "default", "alignment:hierarchical"])[0] == ("coarse", "flat")
    assert len(table_methods.specs(["coarse", "default"])) == len(table_methods.DEFAULT)  # duplicates dropped
    for bad, msg in (("merge-zs-1shot-abc", "mixing weight"), ("merge-zs-1shot-1.5", "mixing weight"),
                     ("finetune-0shot-coarse", "at least 1 shot"), ("finetune-xshot-coarse", "finetune-<k>shot"),
                     ("finetune-1shot-text", "finetune-<k>shot"), ("nope", "unknown benchmark method")):
        with pytest.raises(CatsplitError, match=msg):
            table_methods.build(bad, "flat", HashEncoder())
    with pytest.raises(CatsplitError, match="no hierarchical mode"):
        table_methods.build("finetune-1shot-random", "hierarchical", HashEncoder())


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


def test_merge_curve_plot(tmp_path):
    def row(w, part, g, loc):
        return {"method": f"merge-zs-1shot-{w}", "mode": "flat", "partition": part,
                "generality": {"mean": g, "std": 1.0}, "locality": {"mean": loc, "std": 0.1}}

    results = [row("1", "A", 60, 97), row("0", "A", 40, 99), row("0.5", "A", 55, 98.5), row("0", "B", 35, 99),
               {"method": "alignment", "mode": "flat", "generality": {"mean": 1, "std": 0}, "locality": {"mean": 1, "std": 0}}]
    curves = merge_curves(results)
    assert list(curves) == ["A", "B"] and [w for w, _ in curves["A"]] == [0.0, 0.5, 1.0]
    curve_plot(results, tmp_path / "merge.png")
    assert (tmp_path / "merge.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # a PNG, though written via a temp name
    assert [p.name for p in tmp_path.iterdir()] == ["merge.png"]  # and no temp file left behind
    with pytest.raises(CatsplitError, match="no merge-zs-1shot"):
        curve_plot(results[-1:], tmp_path / "none.png")


def test_bench_cli_merge_plot(layout, monkeypatch, capsys):  # noqa: F811
    from catsplit.cli import main

    root, head, _ = layout
    monkeypatch.setattr("catsplit.encoders.load_text_encoder", lambda spec=None: HashEncoder())
    common = ["bench", "--annotations", str(root / "ann"), "--features", str(root / "feats.npz"),
              "--head", str(root / "head.safetensors"), "--seeds", "1", "--no-progress"]
    png, out = root / "merge.png", root / "r.json"
    assert main(common + ["--methods", "coarse", "--merge-plot", str(png)]) == 2  # checked before the run
    assert "--merge-plot draws" in capsys.readouterr().err and not png.exists()
    assert main(common + ["--methods", "merge-zs-1shot-0", "merge-zs-1shot-0.5", "merge-zs-1shot-1",
                          "--merge-plot", str(png), "--out", str(out)]) == 0
    assert png.stat().st_size > 1000
    assert [r["method"] for r in json.loads(out.read_text())["results"]] == [
        "merge-zs-1shot-0", "merge-zs-1shot-0.5", "merge-zs-1shot-1"]
    assert main(common + ["--methods", "merge-zs-1shot-0", "--merge-plot", str(png)]) == 2  # exists
    assert "--overwrite" in capsys.readouterr().err
