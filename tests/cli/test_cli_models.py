"""The command line on models in their own formats (issue 15's contract): split a Hugging Face folder with no
--key and no --labels, unsplit it back, split a plain checkpoint into a whole checkpoint, and the footguns."""

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import catsplit
from catsplit.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "formats"))
from format_models import COARSE, LABELS, SUBS, TinyVideoNet, hf_model, mmaction_checkpoint, video  # noqa: E402


def _subs():
    return [arg for s in SUBS for arg in ("--sub", s)]


@pytest.fixture(scope="module")
def videomae(tmp_path_factory):
    pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("hf") / "videomae"
    model = hf_model("videomae")
    model.save_pretrained(folder)
    return folder, model.eval()


def test_split_and_unsplit_a_hugging_face_folder(videomae, tmp_path, capsys):
    transformers = pytest.importorskip("transformers")
    folder, model = videomae
    out, back = tmp_path / "out", tmp_path / "back"
    assert main(["split", str(folder), "--coarse", COARSE, *_subs(), "--method", "coarse", "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    edited, info = transformers.AutoModelForVideoClassification.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert list(edited.config.id2label.values())[-2:] == SUBS
    with torch.no_grad():
        before, after = model(pixel_values=video()).logits, edited.eval()(pixel_values=video()).logits
    kept = [lab for lab in LABELS if lab != COARSE]
    assert torch.equal(after[:, : len(kept)], before[:, [LABELS.index(lab) for lab in kept]])
    assert main(["unsplit", str(out), "--coarse", COARSE, "-o", str(back)]) == 0
    assert (back / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()
    assert json.loads((back / "config.json").read_text())["id2label"] == json.loads((folder / "config.json").read_text())["id2label"]



def test_order_keep_moves_no_other_class_id_of_a_hugging_face_folder(videomae, tmp_path, capsys):
    transformers = pytest.importorskip("transformers")
    folder, model = videomae
    out, back = tmp_path / "out", tmp_path / "back"
    assert main(["split", str(folder), "--coarse", COARSE, *_subs(), "--method", "coarse", "--order", "keep", "-o", str(out)]) == 0
    assert f"keeps index {LABELS.index(COARSE)}" in capsys.readouterr().out
    edited = transformers.AutoModelForVideoClassification.from_pretrained(out).eval()
    id2label = edited.config.id2label
    # every other class keeps its id, the first sub takes the coarse class's, the others come last
    assert [id2label[i] for i in range(len(LABELS))] == [SUBS[0] if lab == COARSE else lab for lab in LABELS]
    assert [id2label[i] for i in range(len(LABELS), len(id2label))] == SUBS[1:]
    with torch.no_grad():
        before, after = model(pixel_values=video()).logits, edited(pixel_values=video()).logits
    for i, lab in enumerate(LABELS):
        if lab != COARSE:
            assert torch.equal(after[:, i], before[:, i]), lab
    assert main(["unsplit", str(out), "--coarse", COARSE, "-o", str(back)]) == 0
    assert (back / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()

def test_split_a_checkpoint_writes_the_whole_state_dict(tmp_path, capsys):
    net = TinyVideoNet()
    torch.save(net.state_dict(), tmp_path / "model.pt")
    (tmp_path / "labels.txt").write_text("\n".join(LABELS) + "\n")
    out = tmp_path / "out.pt"
    args = ["split", str(tmp_path / "model.pt"), "--labels", str(tmp_path / "labels.txt"), "--coarse", COARSE, *_subs(),
            "--method", "coarse", "-o", str(out)]
    assert main(args) == 0
    written = torch.load(out, weights_only=True)
    assert set(written) == set(net.state_dict()) and written["fc.weight"].shape == (len(LABELS) + 1, 8)
    TinyVideoNet(classes=len(LABELS) + 1).load_state_dict(written)  # strict: nothing missing, nothing extra
    back = tmp_path / "back.pt"
    assert main(["unsplit", str(out), "--coarse", COARSE, "-o", str(back)]) == 0  # labels travel with the model
    assert all(torch.equal(v, torch.load(back)[k]) for k, v in net.state_dict().items())
    head_only = tmp_path / "head.safetensors"
    assert main([*args[:-1], str(head_only), "--head-only"]) == 0
    assert catsplit.load_head(head_only).num_classes == len(LABELS) + 1
    assert main([*args[:-1], str(tmp_path / "o.safetensors")]) == 2
    assert "written back as one" in capsys.readouterr().err


def test_the_model_file_footgun_is_closed(videomae, tmp_path, capsys):
    import shutil

    folder = tmp_path / "videomae"
    shutil.copytree(videomae[0], folder)
    weights = folder / "model.safetensors"
    before = weights.read_bytes()
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps(LABELS))
    args = ["split", str(weights), "--key", "classifier", "--labels", str(labels), "--coarse", COARSE, *_subs(),
            "--method", "coarse", "-o", str(weights), "--overwrite"]
    assert main(args) == 2  # the folder's config.json would no longer fit: split the folder
    assert "split the folder instead" in capsys.readouterr().err and weights.read_bytes() == before
    assert main([*args, "--head-only"]) == 2  # nor does a head file replace the whole model
    assert "holds a model of" in capsys.readouterr().err and weights.read_bytes() == before
    elsewhere = tmp_path / "model.safetensors"
    assert main([*args[:-2], str(elsewhere)]) == 0  # a standalone copy: the whole model
    assert len(load_file(elsewhere)) == len(load_file(weights))


def test_errors_are_one_line(tmp_path, videomae, capsys):
    folder, _ = videomae
    args = ["split", str(folder), "--coarse", COARSE, *_subs(), "--method", "coarse", "--mode", "hierarchical",
            "-o", str(tmp_path / "out")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("catsplit: error: ") and err.count("\n") == 1 and "ONNX" in err
    assert not (tmp_path / "out").exists()
    (tmp_path / "taken").mkdir()
    assert main([*args[:-4], "-o", str(tmp_path / "taken")]) == 2
    assert "exists" in capsys.readouterr().err


def test_trust_checkpoint_on_the_command_line(tmp_path, capsys):
    mmaction_checkpoint(tmp_path / "epoch_3.pth", training=True)
    args = ["split", str(tmp_path / "epoch_3.pth"), "--coarse", COARSE, *_subs(), "--method", "coarse",
            "-o", str(tmp_path / "out.pth")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--trust-checkpoint" in err and "\x1b" not in err and err.count("\n") == 1
    assert main([*args, "--trust-checkpoint"]) == 0
    warnings = capsys.readouterr().err
    assert "catsplit: warning:" in warnings and "message_hub" in warnings
    assert (tmp_path / "out_label_map.txt").read_text().splitlines()[-2:] == SUBS
    assert main(["inspect", str(tmp_path / "out.pth"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["history"][0]["coarse"] == COARSE
