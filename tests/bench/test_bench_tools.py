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


def test_export_check_runs_on_a_tiny_model_and_finds_the_labels_in_the_metadata(tmp_path, capsys):
    """A tiny linear model over the world's mixed labels: both edits export, agree with torch, carry their labels."""
    import pytest

    pytest.importorskip("onnxruntime")
    import numpy as np

    from catsplit.bench import models, world
    from catsplit.bench.tools.export_check import main

    tax = world.taxonomy()
    labels, _ = world.mixed_labels(tax, tax.coarse[:1])
    rng = np.random.default_rng(0)
    clips = rng.integers(0, 255, size=(16, 16, 32, 32, 3), dtype=np.uint8)
    y = np.arange(16) % len(labels)
    cfg = models.TrainConfig(epochs=1, width=4, dim=32, batch_size=8, pretrain="none")
    model, report = models.train("linear", labels, clips, y, clips[:4], y[:4], cfg, progress=False)
    path = models.save_model(model, str(tmp_path / "A-linear.safetensors"), cfg, report)
    assert main([path, "--method", "coarse", "--clips", "1"]) in (0, None)
    out = capsys.readouterr().out
    assert out.count("top-1 agreement with torch 100.00 %") == 2, out
    assert out.count("labels in metadata match: True") == 2, out
