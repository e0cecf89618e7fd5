"""catsplit.cli.deploy: `catsplit export`, `predict`, `edit-onnx` and `triton`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import catsplit
from catsplit.cli import main
from conftest import BACKBONE, HashEncoder, compositional_head

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

COARSE = "Pushing something"


@pytest.fixture
def head_file(tmp_path, monkeypatch):
    monkeypatch.setattr("catsplit.encoders.load_text_encoder", lambda spec=None: HashEncoder())
    head, subs, _, _ = compositional_head(dim=32)
    edited = catsplit.split(head, HashEncoder(), COARSE, subs, method="retrieval", mode="hierarchical")
    path = tmp_path / "head.safetensors"
    edited.save(path)
    return path, edited


def test_export_predict_triton_with_a_backbone(head_file, tmp_path, capsys):
    path, head = head_file
    (tmp_path / "mybackbone.py").write_text(BACKBONE)
    torch.manual_seed(0)
    from safetensors.torch import save_file

    import importlib.util

    spec = importlib.util.spec_from_file_location("mybackbone", tmp_path / "mybackbone.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    backbone = module.Backbone().eval()
    save_file({f"backbone.{k}": v.contiguous() for k, v in backbone.state_dict().items()}, tmp_path / "model.safetensors")

    model = tmp_path / "m.onnx"
    assert main(["export", str(path), "--backbone", f"{tmp_path / 'mybackbone.py'}:Backbone",
                 "--backbone-weights", str(tmp_path / "model.safetensors"), "--weights-prefix", "backbone.",
                 "--example-shape", "2,4,8,8,3", "-o", str(model)]) == 0
    assert "verified" in capsys.readouterr().out

    clips = np.random.default_rng(0).integers(0, 256, (5, 4, 8, 8, 3), dtype=np.uint8)
    np.save(tmp_path / "clips.npy", clips)
    assert main(["predict", str(model), str(tmp_path / "clips.npy"), "--device", "cpu", "--top", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    with torch.no_grad():
        expected = head.predict(backbone(torch.from_numpy(clips)))
    assert [r["label"] for r in report["predictions"]] == expected.tolist()
    assert all(len(r["top"]) == 3 for r in report["predictions"])

    assert main(["triton", str(model), "--repo", str(tmp_path / "repo"), "--name", "clf", "--max-batch-size", "8"]) == 0
    assert (tmp_path / "repo" / "clf" / "labels.txt").read_text().splitlines() == list(head.labels)


def test_export_head_only_then_edit_onnx(head_file, tmp_path, capsys):
    path, head = head_file
    model = tmp_path / "head.onnx"
    assert main(["export", str(path), "-o", str(model)]) == 0
    edited = tmp_path / "edited.onnx"
    args = ["edit-onnx", str(model), "--coarse", "Lifting something up", "--sub", "Lifting something up fast",
            "--sub", "Lifting something up slowly", "--method", "retrieval", "-o", str(edited)]
    assert main(args) == 0
    f = np.random.default_rng(1).standard_normal((6, 32)).astype(np.float32)
    np.savez(tmp_path / "f.npz", clips=f)
    capsys.readouterr()
    assert main(["predict", str(edited), str(tmp_path / "f.npz"), "--json"]) == 0
    labels = [r["label"] for r in json.loads(capsys.readouterr().out)["predictions"]]
    expected = catsplit.split(head, HashEncoder(), "Lifting something up", ["Lifting something up fast", "Lifting something up slowly"],
                              method="retrieval")
    assert labels == expected.predict(f).tolist()
    assert main(args) == 2  # exists: never overwritten without --overwrite
    assert "exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["export", "{head}", "--backbone", "nopackage_xyz:Thing", "--example-shape", "2,3", "-o", "{tmp}/m.onnx"], "cannot import"),
        (["export", "{head}", "--backbone", "torch.nn", "-o", "{tmp}/m.onnx"], "package.module:name"),
        (["export", "{head}", "--backbone", "torch.nn:Identity", "-o", "{tmp}/m.onnx"], "--example-shape"),
        (["export", "{head}", "--example-shape", "2,x", "-o", "{tmp}/m.onnx"], "integers separated by commas"),
        (["predict", "{tmp}/missing.onnx", "{tmp}/c.npy"], "no ONNX model"),
        (["predict", "{tmp}/missing.onnx", "{tmp}/c.npy", "--top", "0"], "--top must be at least 1"),
        (["predict", "{tmp}/missing.onnx", "{tmp}/c.npy", "--top", "-2"], "--top must be at least 1"),
        (["triton", "{tmp}/missing.onnx", "--repo", "{tmp}/r", "--name", "m", "--max-batch-size", "4"], "no ONNX model"),
    ],
)
def test_deployment_commands_report_bad_input(head_file, tmp_path, capsys, argv, message):
    path, _ = head_file
    argv = [a.format(head=path, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("catsplit: error:") and message in err


def test_export_head_only_with_a_float16_example(head_file, tmp_path, capsys):
    path, _ = head_file
    assert main(["export", str(path), "--example-dtype", "float16", "-o", str(tmp_path / "m.onnx")]) == 0  # cast to float32
    assert "verified" in capsys.readouterr().out


def test_edit_onnx_order_keep_moves_no_other_column(head_file, tmp_path, capsys):
    path, head = head_file
    model = tmp_path / "head.onnx"
    assert main(["export", str(path), "-o", str(model)]) == 0
    edited = tmp_path / "edited.onnx"
    target = "Lifting something up"
    assert main(["edit-onnx", str(model), "--coarse", target, "--sub", target + " fast", "--sub", target + " slowly",
                 "--method", "coarse", "--order", "keep", "-o", str(edited)]) == 0
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(edited)).metadata_props}
    labels = json.loads(meta["catsplit.labels"])
    j = head.labels.index(target)
    assert labels[j] == target + " fast" and labels[: j] == list(head.labels[:j]) and labels[j + 1 : head.num_classes] == list(head.labels[j + 1 :])
    assert main(["triton", str(edited), "--repo", str(tmp_path / "repo"), "--name", "clf", "--max-batch-size", "8"]) == 0
    assert (tmp_path / "repo" / "clf" / "labels.txt").read_text().splitlines() == labels


def test_predict_lists_the_models_top1_first(tmp_path, capsys):
    """Logits one ulp apart round to one probability: the ranking by probability put the earlier label first."""
    small = np.float32(1e-3)
    head = catsplit.Head(weight=np.array([[small], [np.nextafter(small, np.float32(1))], [-1.0]], np.float32), labels=["a", "b", "c"])
    model = tmp_path / "m.onnx"
    import catsplit.export as cx

    cx.to_onnx(None, head, model, np.ones((2, 1), np.float32))
    np.save(tmp_path / "x.npy", np.ones((1, 1), np.float32))
    assert main(["predict", str(model), str(tmp_path / "x.npy"), "--device", "cpu", "--top", "2"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("0\tb (") and "\ta (" in line
