import json
import subprocess
import sys

import pytest

import catsplit
from catsplit.cli import main
from catsplit.demo import DemoConfig, run_demo
from conftest import HashEncoder, compositional_head

COARSE = "Pushing something"


@pytest.fixture
def head_file(tmp_path, monkeypatch):
    # The CLI loads its encoder by name; point the default at the offline hash encoder.
    monkeypatch.setattr("catsplit.encoders.load_text_encoder", lambda spec=None: HashEncoder())
    head, subs, _, _ = compositional_head()
    path = tmp_path / "head.safetensors"
    head.save(path)
    return path, head, subs


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


def test_cli_errors_are_one_line_messages(head_file, capsys, tmp_path):
    path, _, _ = head_file
    code = main(["split", str(path), "--coarse", "Pushing somthing", "--sub", "a b", "--sub", "c d", "-o", str(tmp_path / "o.safetensors")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("catsplit: error:") and "did you mean 'Pushing something'" in err
    assert "Traceback" not in err


def test_cli_warnings_are_one_line_messages_without_a_source_location(head_file, capsys, tmp_path):
    """subs[0] / subs[1] differ only in word order: the hash encoder cannot tell them apart."""
    import warnings

    path, _, subs = head_file
    args = ["split", str(path), "--coarse", COARSE, "--sub", subs[0], "--sub", subs[1], "--method", "alignment",
            "-o", str(tmp_path / "o.safetensors")]
    shown_before = warnings.showwarning
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(args) == 0
    err = capsys.readouterr().err
    assert err.startswith("catsplit: warning: method='alignment': the text encoder barely tells these apart")
    assert repr(subs[0]) in err and ".py:" not in err and "runpy" not in err
    assert warnings.showwarning is shown_before  # the CLI's format does not leak into the caller


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


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "catsplit", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "split" in out.stdout and "inspect" in out.stdout


def test_demo_splits_above_chance():
    lines = []
    res = run_demo(HashEncoder(), cfg=DemoConfig(), out=lines.append)
    assert res["hierarchical"]["locality"] == 1.0
    assert res["flat"]["generality"] > 2 / 6  # chance among the 6 subs is 1/6
    assert any("Predictions on held-out clips" in line for line in lines)
