"""catsplit.bench.report: what a benchmark run leaves behind — the merge curves and their plot."""

import pytest

from catsplit import CatsplitError
from catsplit.bench.report import curve_plot, merge_curves


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


def test_plot_one_panel_per_partition_with_a_baseline_and_the_ablation_table(tmp_path):
    from catsplit.bench.report import ablation_table, plot

    def row(method, part, g, loc, mode="flat"):
        return {"method": method, "mode": mode, "partition": part, "generality": {"mean": g, "std": 0.5},
                "locality": {"mean": loc, "std": 0.1}, "agreement": {"mean": loc, "std": 0.1}, "seeds": [0]}

    pre = [row("alignment", "A", 48.0, 99.1), row("text4vis", "A", 30.0, 99.5), row("alignment", "B", 45.0, 99.0)]
    old = [row("alignment", "A", 40.0, 98.8), row("text4vis", "A", 31.0, 99.2)]
    plot(pre, tmp_path / "p.png", baseline=old)
    assert (tmp_path / "p.png").stat().st_size > 1000
    table = ablation_table(pre, old)
    assert "**partition A**" in table and "**partition B**" in table
    assert "| alignment | flat | 40.0 ± 0.5 | 48.0 ± 0.5 | +8.0 |" in table
    assert "| alignment | flat | n/a | 45.0 ± 0.5 | n/a |" in table  # no scratch row to match


def test_the_ablation_tool_writes_both_runs_side_by_side_as_json(tmp_path, capsys):
    import json

    from catsplit.bench.tools.ablation import main

    def run(g, split="test"):
        return {"config": {"eval_split": split, "train": {"pretrain": "verbs" if g > 41 else "none"}},
                "results": [{"method": "alignment", "mode": "flat", "partition": "A", "generality": {"mean": g, "std": 0.5},
                             "locality": {"mean": 99.0, "std": 0.1}, "agreement": {"mean": 99.0, "std": 0.1}, "seeds": [0]}]}

    for name, g in (("s.json", 40.0), ("p.json", 48.5)):
        (tmp_path / name).write_text(json.dumps(run(g)))
    out = tmp_path / "ab.json"
    assert main([str(tmp_path / "s.json"), str(tmp_path / "p.json"), "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["scratch"]["train"]["pretrain"] == "none" and doc["pretrained"]["train"]["pretrain"] == "verbs"
    (row,) = doc["rows"]
    assert row["generality_scratch"]["mean"] == 40.0 and row["generality_pretrained"]["mean"] == 48.5
    assert row["generality_delta"] == 8.5
    with pytest.raises(CatsplitError, match="exists"):  # never silently overwritten
        main([str(tmp_path / "s.json"), str(tmp_path / "p.json"), "--json", str(out)])
    (tmp_path / "v.json").write_text(json.dumps(run(48.5, "val")))
    with pytest.raises(CatsplitError, match="different clips"):
        main([str(tmp_path / "s.json"), str(tmp_path / "v.json")])
