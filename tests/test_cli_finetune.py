"""`catsplit finetune`: the files it reads, what it writes, and its one-line errors."""

import json

import numpy as np
import pytest
import torch

import catsplit
from catsplit import CatsplitError
from catsplit.cli import main
from catsplit.io.readers import read_clips
from conftest import MODIFIERS, compositional_head

COARSE = "Pushing something"


def _bits(t):
    return t.contiguous().view(torch.uint8).numpy().tobytes()


@pytest.fixture
def setup(tmp_path):
    """An edited head on disk and 6 labelled clips per sub (class centre + noise)."""
    head, subs, v, m = compositional_head(dim=16, seed=2)
    edited = catsplit.split(head, None, COARSE, subs, method="coarse")
    path = tmp_path / "edited.safetensors"
    edited.save(path)
    rng = np.random.default_rng(0)
    x = np.concatenate([v["Pushing"] + m[mod] + 0.3 * rng.standard_normal((6, 16)) for mod in MODIFIERS]).astype(np.float32)
    y = [s for s in subs for _ in range(6)]
    return tmp_path, path, edited, x, y


def test_finetune_from_npz(setup, capsys):
    tmp, path, edited, x, y = setup
    np.savez(tmp / "clips.npz", features=x, labels=np.array(y))
    out = tmp / "tuned.safetensors"
    assert main(["finetune", str(path), str(tmp / "clips.npz"), "--shots", "2", "--seed", "3", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "fine-tuned the 5 sub rows of 'Pushing something' on 10 clips (2 per sub, seed 3)" in captured.out
    assert str(out) in captured.out
    assert captured.err == ""  # the progress bar draws only on a terminal
    tuned = catsplit.load_head(out)
    k = 5
    assert _bits(tuned.weight[:-k]) == _bits(edited.weight[:-k]) and _bits(tuned.bias[:-k]) == _bits(edited.bias[:-k])
    assert not torch.equal(tuned.weight[-k:], edited.weight[-k:])
    assert tuned.equals(catsplit.finetune(edited, x, y, shots=2, seed=3))  # the CLI is the Python API
    assert tuned.history[-1]["finetune"]["shots"] == 2


@pytest.mark.parametrize("kind", ["npy+json", "npy+txt", "safetensors", "npz+override"])
def test_finetune_other_inputs(setup, kind):
    from safetensors.numpy import save_file

    tmp, path, edited, x, y = setup
    idx = [edited.labels.index(s) for s in y]
    if kind.startswith("npy"):
        np.save(tmp / "clips.npy", x)
        feats = tmp / "clips.npy"
        labels = tmp / ("labels.json" if kind == "npy+json" else "labels.txt")
        labels.write_text(json.dumps(idx) if kind == "npy+json" else "\n".join(y) + "\n")
        extra = ["--labels", str(labels)]
    elif kind == "safetensors":
        feats = tmp / "clips.safetensors"
        save_file({"features": x, "labels": np.array(idx, dtype=np.int64)}, str(feats))
        extra = []
    else:  # --labels replaces the labels stored in the npz
        feats = tmp / "clips.npz"
        np.savez(feats, features=x, labels=np.array(["Pulling something up"] * len(y)))
        (tmp / "labels.json").write_text(json.dumps(y))
        extra = ["--labels", str(tmp / "labels.json")]
    out = tmp / "tuned.safetensors"
    assert main(["finetune", str(path), str(feats), "-o", str(out), "--max-epochs", "3", *extra]) == 0
    expected = catsplit.finetune(edited, x, y, config=catsplit.FinetuneConfig(max_epochs=3))
    assert catsplit.load_head(out).equals(expected)


def test_finetune_never_overwrites_without_asking(setup, capsys):
    tmp, path, edited, x, y = setup
    np.savez(tmp / "clips.npz", features=x, labels=np.array(y))
    out = tmp / "tuned.safetensors"
    out.write_bytes(b"keep me")
    args = ["finetune", str(path), str(tmp / "clips.npz"), "--max-epochs", "2", "-o"]
    assert main(args + [str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == b"keep me"
    before = path.read_bytes()
    assert main(args + [str(path)]) == 2  # the input itself
    assert "--overwrite" in capsys.readouterr().err and path.read_bytes() == before
    assert main(args + [str(out), "--overwrite"]) == 0
    assert catsplit.load_head(out).history[-1]["finetune"]["clips"] == len(y)
    assert main(args + [str(path), "--overwrite"]) == 0
    assert catsplit.load_head(path).history[-1]["finetune"]["clips"] == len(y)


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("catsplit: error:") and err.count("\n") == 1 and "Traceback" not in err
    return err


def test_finetune_errors_are_one_line(setup, capsys):
    tmp, path, edited, x, y = setup
    out = str(tmp / "o.safetensors")

    def clips(name, **arrays):
        np.savez(tmp / name, **arrays)
        return str(tmp / name)

    good = clips("good.npz", features=x, labels=np.array(y))
    assert "no labels" in _error(capsys, ["finetune", str(path), clips("nolabels.npz", features=x), "-o", out])
    assert "not in the head's label space" in _error(
        capsys, ["finetune", str(path), clips("bad.npz", features=x, labels=np.array(["nope"] * len(y))), "-o", out])
    assert "outside the head's" in _error(
        capsys, ["finetune", str(path), clips("idx.npz", features=x, labels=np.full(len(y), 999)), "-o", out])
    nan = x.copy()
    nan[3, 1] = np.nan
    assert "NaN" in _error(capsys, ["finetune", str(path), clips("nan.npz", features=nan, labels=np.array(y)), "-o", out])
    assert "too few" in _error(capsys, ["finetune", str(path), good, "--shots", "7", "-o", out])
    assert "positive integer" in _error(capsys, ["finetune", str(path), good, "--shots", "0", "-o", out])
    assert "one label per row" in _error(
        capsys, ["finetune", str(path), clips("short.npz", features=x, labels=np.array(y[:-1])), "-o", out])
    assert "shape [N, 16]" in _error(
        capsys, ["finetune", str(path), clips("dim.npz", features=x[:, :8], labels=np.array(y)), "-o", out])
    assert "lr" in _error(capsys, ["finetune", str(path), good, "--lr", "-1", "-o", out])
    assert "batch_size" in _error(capsys, ["finetune", str(path), good, "--batch-size", "0", "-o", out])
    assert "not readable" in _error(
        capsys, ["finetune", str(path), clips("obj.npz", features=x, labels=np.array(y, dtype=object)), "-o", out])
    assert "not found" in _error(capsys, ["finetune", str(path), str(tmp / "missing.npz"), "-o", out])
    (tmp / "clips.csv").write_text("1,2\n")
    assert "use .npz" in _error(capsys, ["finetune", str(path), str(tmp / "clips.csv"), "-o", out])
    assert "name the [N, D] array 'features'" in _error(capsys, ["finetune", str(path), str(path), "-o", out])
    (tmp / "labels.json").write_text(json.dumps({"a": 0}))
    assert "JSON list" in _error(capsys, ["finetune", str(path), good, "--labels", str(tmp / "labels.json"), "-o", out])
    head, _, _, _ = compositional_head(dim=16, seed=2)
    head.save(tmp / "plain.safetensors")
    assert "no split" in _error(capsys, ["finetune", str(tmp / "plain.safetensors"), good, "-o", out])
    assert not (tmp / "o.safetensors").exists()


def test_read_clips_conventions(tmp_path):
    x = np.zeros((3, 4), dtype=np.float16)
    np.savez(tmp_path / "one.npz", x)  # a single unnamed array is the features
    feats, labels = read_clips(tmp_path / "one.npz")
    assert feats.dtype == np.float16 and feats.shape == (3, 4) and labels is None
    np.savez(tmp_path / "two.npz", a=x, b=x)
    with pytest.raises(CatsplitError, match="name the \\[N, D\\] array 'features'"):
        read_clips(tmp_path / "two.npz")
    np.save(tmp_path / "flat.npy", np.zeros(4))
    with pytest.raises(CatsplitError, match="shape \\[N, D\\]"):
        read_clips(tmp_path / "flat.npy")
    np.savez(tmp_path / "fl.npz", features=x, labels=np.array([0.5, 1.0, 2.0]))
    with pytest.raises(CatsplitError, match="strings or integer indices"):
        read_clips(tmp_path / "fl.npz")
    (tmp_path / "labels.txt").write_text("a b\n\nc d\n")
    assert read_clips(tmp_path / "one.npz", tmp_path / "labels.txt")[1] == ["a b", "c d"]


def test_progress_bar_draws_only_on_a_terminal(setup, monkeypatch):
    import io
    import sys

    tmp, path, edited, x, y = setup

    class Tty(io.StringIO):
        def isatty(self):
            return True

    quiet = io.StringIO()
    monkeypatch.setattr(sys, "stderr", quiet)
    catsplit.finetune(edited, x, y, config=catsplit.FinetuneConfig(max_epochs=3), progress=True)
    assert quiet.getvalue() == ""
    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    catsplit.finetune(edited, x, y, config=catsplit.FinetuneConfig(max_epochs=3), progress=True)
    assert "finetune [" in tty.getvalue() and "loss" in tty.getvalue()
