"""catsplit.cli.bench: `catsplit bench` on a paper layout, its options and its plots."""

import json

from conftest import HashEncoder

COARSE = "Pushing something"


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


def test_bench_cli_merge_plot(layout, monkeypatch, capsys):
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


def test_cli_passes_the_options_to_the_world_run(monkeypatch):
    from catsplit.cli import main

    seen = {}
    monkeypatch.setattr("catsplit.encoders.load_text_encoder", lambda spec=None: None)
    monkeypatch.setattr("catsplit.bench.run.run_world", lambda **kw: seen.update(kw))
    assert main(["bench", "--world-option", "noise=10", "shake=0.5", "--train-option", "dim=128", "--no-progress"]) == 0
    assert seen["world_options"] == ["noise=10", "shake=0.5"] and seen["train_options"] == ["dim=128"]


def test_cli_refuses_options_that_cannot_apply(tmp_path, capsys):
    from catsplit.cli import main

    assert main(["bench", "--world-option", "seed=3", "--cache", str(tmp_path), "--no-progress"]) != 0
    assert "use --world-seed" in capsys.readouterr().err
    assert main(["bench", "--annotations", "a", "--features", "f", "--head", "h", "--train-option", "dim=8"]) != 0
    assert "drop --train-option" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_bench_refuses_bad_outputs_and_seed_counts_before_running(tmp_path, capsys):
    """These were quietly wrong, or failed only after the whole run: the plot replacing the results JSON,
    an unknown image format, --seeds 0 running 3 seeds and --seeds -1 writing an all-n/a file."""
    import pytest

    from catsplit.cli import main

    out = str(tmp_path / "r.json")
    assert main(["bench", "--quick", "--out", out, "--plot", out, "--cache", str(tmp_path / "c")]) == 2
    assert "--out and --plot name the same file" in capsys.readouterr().err
    assert main(["bench", "--quick", "--out", out, "--plot", str(tmp_path / "p.bmpx"), "--cache", str(tmp_path / "c")]) == 2
    assert "unknown image format 'bmpx'" in capsys.readouterr().err
    assert main(["bench", "--quick", "--out", str(tmp_path), "--cache", str(tmp_path / "c")]) == 2
    assert "is a folder" in capsys.readouterr().err
    for bad in ("0", "-1"):
        with pytest.raises(SystemExit) as exc:
            main(["bench", "--quick", "--seeds", bad, "--out", out])
        assert exc.value.code == 2 and "--seeds: must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "c").exists() and not (tmp_path / "r.json").exists()  # nothing ran
