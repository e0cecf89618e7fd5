"""catsplit.cli.edit: `catsplit split`, `unsplit`, `inspect` and `finetune` — the files they read, what they
write, and their one-line errors."""

import json

import numpy as np
import pytest
import torch

import catsplit
from catsplit import load_head
from catsplit.cli import main
from catsplit.io.streaming import HeadSource
from conftest import compositional_head

COARSE = "Pushing something"


def test_split_inspect_unsplit(head_file, tmp_path, capsys):
    path, head, subs = head_file
    out = tmp_path / "edited.safetensors"
    args = ["split", str(path), "--coarse", COARSE, "--method", "retrieval", "-o", str(out)]
    for s in subs:
        args += ["--sub", s]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "from left to right" in printed and str(out) in printed
    edited = catsplit.load_head(out)
    assert list(edited.labels[-len(subs):]) == subs

    assert main(["inspect", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["classes"] == len(edited.labels) and report["history"][0]["coarse"] == COARSE
    assert report["groups"]["Pulling something"][0] == "Pulling something from left to right"
    assert main(["inspect", str(path), "--coarse", COARSE, "--sub", subs[0], "--sub", subs[1]]) == 0
    text = capsys.readouterr().out
    assert "inferred from label text" in text and "would use these modifiers" in text

    back = tmp_path / "back.safetensors"
    assert main(["unsplit", str(out), "--coarse", COARSE, "-o", str(back)]) == 0
    assert catsplit.load_head(back).equals(head)


def test_cli_never_overwrites_without_asking(head_file, tmp_path, capsys):
    path, head, subs = head_file
    before = path.read_bytes()
    args = ["split", str(path), "--coarse", COARSE, "--sub", subs[0], "--sub", subs[1], "--method", "coarse", "-o", str(path)]
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert path.read_bytes() == before
    assert main(args + ["--overwrite"]) == 0
    assert catsplit.load_head(path).num_classes == head.num_classes + 1


def test_subs_file_groups_and_modifiers_files(head_file, tmp_path):
    path, head, subs = head_file
    (tmp_path / "subs.txt").write_text("\n".join(subs[:2]) + "\n")
    (tmp_path / "mods.json").write_text(json.dumps({subs[0]: "left to right"}))
    (tmp_path / "groups.json").write_text(json.dumps({"Pulling something": [lab for lab in head.labels if lab.startswith("Pulling")]}))
    out = tmp_path / "o.safetensors"
    assert main(["split", str(path), "--coarse", COARSE, "--subs-file", str(tmp_path / "subs.txt"), "--method", "retrieval",
                 "--modifiers", str(tmp_path / "mods.json"), "--groups", str(tmp_path / "groups.json"), "-o", str(out)]) == 0
    rec = catsplit.load_head(out).history[-1]
    assert rec["modifiers"][subs[0]] == "left to right"
    assert {m["label"] for m in rec["details"]["matches"].values()} <= set(head.labels)
    assert all(m["label"].startswith("Pulling") for m in rec["details"]["matches"].values())


def test_cli_split_checks_the_destination_before_running_the_method(tmp_path, monkeypatch, capsys):
    head, subs, _, _ = compositional_head(dim=16)
    head.save(tmp_path / "h.safetensors")
    out = tmp_path / "o.safetensors"
    out.write_bytes(b"keep me")

    def no_encoder(spec=None):
        raise AssertionError("the encoder was loaded although the output exists")

    monkeypatch.setattr("catsplit.encoders.load_text_encoder", no_encoder)
    args = ["split", str(tmp_path / "h.safetensors"), "--coarse", COARSE, "--sub", subs[0], "--sub", subs[1], "-o"]
    assert main(args + [str(out)]) == 2
    assert "exists" in capsys.readouterr().err and out.read_bytes() == b"keep me"
    assert main(args + [str(tmp_path / "missing" / "o.safetensors")]) == 2
    assert "does not exist" in capsys.readouterr().err


def reference(src, dst, encoder, coarse, subs, **options):
    """The ordinary path split_file must match."""
    catsplit.split(load_head(src), encoder, coarse, subs, **options).save(dst)
    return dst.read_bytes()


def test_cli_split_streams_a_catsplit_file(tmp_path, monkeypatch, capsys):
    from catsplit.cli import main

    head, subs, _, _ = compositional_head()
    src = tmp_path / "h.safetensors"
    head.save(src)
    want = reference(src, tmp_path / "ref.safetensors", None, "Pushing something", subs, method="coarse", mode="hierarchical")
    calls = []
    real = HeadSource._write
    monkeypatch.setattr(HeadSource, "_write", lambda self, *a: calls.append(1) or real(self, *a))
    argv = ["split", str(src), "--coarse", "Pushing something", *[x for s in subs for x in ("--sub", s)],
            "--method", "coarse", "--mode", "hierarchical", "-o", str(tmp_path / "out.safetensors")]
    assert main(argv) == 0
    assert calls == [1] and (tmp_path / "out.safetensors").read_bytes() == want
    assert "split 'Pushing something' -> 5 subs (coarse, hierarchical); wrote" in capsys.readouterr().out


def _bits(t):
    return t.contiguous().view(torch.uint8).numpy().tobytes()


def test_finetune_from_npz(tuning_setup, capsys):
    tmp, path, edited, x, y = tuning_setup
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
def test_finetune_other_inputs(tuning_setup, kind):
    from safetensors.numpy import save_file

    tmp, path, edited, x, y = tuning_setup
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


def test_finetune_never_overwrites_without_asking(tuning_setup, capsys):
    tmp, path, edited, x, y = tuning_setup
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


def test_finetune_errors_are_one_line(tuning_setup, capsys):
    tmp, path, edited, x, y = tuning_setup
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
    assert "latest edit is no edit; split first" in _error(capsys, ["finetune", str(tmp / "plain.safetensors"), good, "-o", out])
    assert not (tmp / "o.safetensors").exists()


def test_cli_finetune_with_a_negative_seed_is_a_one_line_error(tmp_path, capsys):
    head, subs, _, _ = compositional_head(dim=16)
    catsplit.split(head, None, COARSE, subs, method="coarse").save(tmp_path / "e.safetensors")
    np.savez(tmp_path / "c.npz", features=np.ones((10, 16), np.float32), labels=np.array([subs[i % 5] for i in range(10)]))
    code = main(["finetune", str(tmp_path / "e.safetensors"), str(tmp_path / "c.npz"), "--seed", "-1", "--shots", "2",
                 "-o", str(tmp_path / "o.safetensors")])
    err = capsys.readouterr().err
    assert code == 2 and "seed must be an integer" in err and "Traceback" not in err
    assert not (tmp_path / "o.safetensors").exists()


@pytest.mark.parametrize("mode", ["flat", "hierarchical"])
def test_split_order_keep_moves_no_other_class_and_unsplits(head_file, tmp_path, capsys, mode):
    path, head, subs = head_file
    out = tmp_path / "kept.safetensors"
    args = ["split", str(path), "--coarse", COARSE, "--method", "coarse", "--mode", mode, "--order", "keep", "-o", str(out)]
    for s in subs:
        args += ["--sub", s]
    assert main(args) == 0
    j = head.labels.index(COARSE)
    assert f"{subs[0]!r} keeps index {j}" in capsys.readouterr().out
    edited = load_head(out)
    assert edited.labels[j] == subs[0]
    assert [lab for i, lab in enumerate(edited.labels[: head.num_classes]) if i != j] == [lab for lab in head.labels if lab != COARSE]
    back = tmp_path / "back.safetensors"
    assert main(["unsplit", str(out), "--coarse", COARSE, "-o", str(back)]) == 0
    assert load_head(back).equals(head)
    with pytest.raises(SystemExit):
        main(args[:-1] + [str(tmp_path / "x.safetensors"), "--order", "first"])
    assert "invalid choice: 'first'" in capsys.readouterr().err
