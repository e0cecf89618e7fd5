"""catsplit.bench.tools: the speed and check scripts run at a tiny size."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_chain_speed_script_restores_the_head_and_prints_medians(capsys):
    from catsplit.bench.tools.chain_speed import main

    main(["--labels", "40", "--edits", "3", "--repeats", "1"])
    assert "40 labels, 3 edits, 1 repeats: splits" in capsys.readouterr().out


def test_scale_benchmark_runs_at_a_tiny_size(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "catsplit.bench.tools.scale", "--rows", "300", "--dim", "16", "--repeats", "1", "--warm", "16", "--dir", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "time: catsplit / plain =" in out.stdout and "memory: catsplit peak / file size =" in out.stdout
    assert list(tmp_path.iterdir()) == []  # its temp folder is gone


def test_model_writeback_benchmark_runs_at_a_tiny_size(tmp_path):
    import pytest

    pytest.importorskip("transformers")
    out = subprocess.run(
        [sys.executable, "-m", "catsplit.bench.tools.model_writeback", "--size", "tiny", "--labels", "30", "--repeats", "1",
         "--warm", "16", "--dir", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "time: catsplit / copy =" in out.stdout and "memory: catsplit peak / model size =" in out.stdout
    assert list(tmp_path.iterdir()) == []  # its temp folder is gone


def test_refine_speed_script_runs_at_a_tiny_size():
    out = subprocess.run(
        [sys.executable, "-m", "catsplit.bench.tools.refine_speed", "--repeats", "1", "--clips", "5000", "--dim", "16",
         "--small-clips", "100"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "refine, 100 clips x 16, k = 8" in out.stdout and "x the read pass" in out.stdout
    assert "anonymous" in out.stdout and "the same sub for" in out.stdout
