"""catsplit.cli: the `catsplit` command — its entry point, and errors and warnings as one line each."""

import subprocess
import sys

from catsplit.cli import main

COARSE = "Pushing something"


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "catsplit", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "split" in out.stdout and "inspect" in out.stdout


def test_cli_errors_are_one_line_messages(head_file, capsys, tmp_path):
    path, _, _ = head_file
    code = main(["split", str(path), "--coarse", "Pushing somthing", "--sub", "a b", "--sub", "c d", "-o", str(tmp_path / "o.safetensors")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("catsplit: error:") and "did you mean 'Pushing something'" in err
    assert "Traceback" not in err


def test_cli_warnings_are_one_line_messages_without_a_source_location(head_file, capsys, tmp_path):
    """subs[0] / subs[1] differ only in word order: the hash encoder cannot tell their labels apart (method text)."""
    import warnings

    path, _, subs = head_file
    args = ["split", str(path), "--coarse", COARSE, "--sub", subs[0], "--sub", subs[1], "--method", "text",
            "-o", str(tmp_path / "o.safetensors")]
    shown_before = warnings.showwarning
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(args) == 0
    err = capsys.readouterr().err
    assert err.startswith("catsplit: warning: method='text': the text encoder barely tells these apart")
    assert repr(subs[0]) in err and ".py:" not in err and "runpy" not in err
    assert warnings.showwarning is shown_before  # the CLI's format does not leak into the caller


def test_split_raw_modifiers_encodes_modifiers_as_written(head_file, tmp_path):
    """--raw-modifiers: the record has no modifier_text and the rows are those of normalise_modifiers=False."""
    import catsplit

    path, _, subs = head_file
    outs = {}
    for flag in ([], ["--raw-modifiers"]):
        out = tmp_path / f"o{len(flag)}.safetensors"
        assert main(["split", str(path), "--coarse", COARSE, "--sub", subs[0], "--sub", subs[1], "--method", "retrieval",
                     *flag, "-o", str(out)]) == 0
        outs[bool(flag)] = catsplit.load_head(out).latest_record()
    assert "modifier_text" in outs[False]["details"] and "modifier_text" not in outs[True]["details"]


def test_an_error_quoting_a_line_break_is_still_one_line(capsys, tmp_path):
    """A file name (or a name read from a file) holding line breaks is quoted with them escaped."""
    bad = tmp_path / "a\nb\u2028c.safetensors"
    assert main(["inspect", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("catsplit: error:"), err
    assert "a\\nb\\u2028c.safetensors" in err, err


def test_split_calibrate_scale_writes_what_the_python_api_writes(head_file, tmp_path, capsys):
    """--calibrate scale: the file is split(..., calibrate="scale") saved, its record names the calibration;
    a hierarchical split refuses it with a one-line error that says why."""
    import catsplit
    from conftest import HashEncoder

    path, head, subs = head_file
    out = tmp_path / "cal.safetensors"
    args = ["split", str(path), "--coarse", COARSE, "--sub", subs[0], "--sub", subs[1], "--method", "alignment"]
    assert main([*args, "--calibrate", "scale", "-o", str(out)]) == 0
    want = tmp_path / "want.safetensors"
    catsplit.split(head, HashEncoder(), COARSE, subs[:2], method="alignment", calibrate="scale").save(want)
    assert out.read_bytes() == want.read_bytes()
    assert catsplit.load_head(out).latest_record()["calibration"] == {"scale": True}
    plain = tmp_path / "plain.safetensors"
    assert main([*args, "-o", str(plain)]) == 0
    assert plain.read_bytes() != out.read_bytes()
    capsys.readouterr()
    assert main([*args, "--mode", "hierarchical", "--calibrate", "scale", "-o", str(tmp_path / "h.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "calibrate='scale' is for flat splits" in err, err
    assert not (tmp_path / "h.safetensors").exists()
