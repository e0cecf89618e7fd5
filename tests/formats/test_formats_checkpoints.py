"""timm folders, mmaction2 and PyTorchVideo checkpoints, plain state dicts (catsplit.formats.timm, mmaction,
pytorchvideo, model, writer). timm, mmaction2 and PyTorchVideo cannot be installed here: their layouts are
built by hand from their documented formats (tests/formats/format_models.py says which)."""

import json
import os
import warnings
from collections import OrderedDict

import pytest
import torch
from safetensors.torch import load_file, save_file

import catsplit
from catsplit import CatsplitError
from catsplit.formats.writer import FormatWarning
from format_models import (
    COARSE, LABELS, SUBS, TinyVideoNet, kinetics_classnames, mmaction_checkpoint, pytorchvideo_checkpoint, timm_folder,
    timm_train_checkpoint,
)


def _split(head):
    return catsplit.split(head, None, COARSE, SUBS, method="coarse")


def _same_other_rows(old, new):
    """Every label kept by the split has its row and bias bit for bit; the subs have catsplit's rows."""
    for lab in old.labels:
        if lab != COARSE:
            i, j = old.labels.index(lab), new.labels.index(lab)
            assert torch.equal(old.weight[i], new.weight[j]) and torch.equal(old.bias[i], new.bias[j]), lab


# --- timm ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("weights", ["model.safetensors", "pytorch_model.bin"])
@pytest.mark.parametrize("flat", [False, True])
def test_timm_folder_round_trip(tmp_path, weights, flat):
    net = timm_folder(tmp_path / "timm", weights=weights, flat=flat)
    head = catsplit.load_head(tmp_path / "timm")  # classifier from pretrained_cfg, labels from label_names
    assert head.labels == tuple(LABELS) and torch.equal(head.weight, net.fc.weight)
    new = _split(head)
    out = catsplit.save_model(new, tmp_path / "timm", tmp_path / "edited")
    config = json.loads((out / "config.json").read_text())
    assert config["num_classes"] == len(new.labels)
    names = config["labels"] if flat else config["label_names"]
    assert names == list(new.labels)
    if not flat:
        assert config["pretrained_cfg"]["num_classes"] == len(new.labels)
        assert config["pretrained_cfg"]["classifier"] == "head.fc"
    state = load_file(out / weights) if weights.endswith(".safetensors") else torch.load(out / weights)
    assert torch.equal(state["head.fc.weight"], new.weight) and torch.equal(state["stem.weight"], net.backbone.weight)
    loaded = catsplit.load_head(out)
    assert loaded.equals(new)
    back = catsplit.save_model(catsplit.unsplit(loaded, COARSE), out, tmp_path / "back")
    assert catsplit.load_head(back).equals(head)
    if weights.endswith(".safetensors"):
        assert (back / weights).read_bytes() == (tmp_path / "timm" / weights).read_bytes()


def test_timm_model_with_two_classifiers_is_refused_without_a_key(tmp_path):
    timm_folder(tmp_path / "timm")
    config = json.loads((tmp_path / "timm" / "config.json").read_text())
    config["pretrained_cfg"]["classifier"] = ["head", "head_dist"]
    (tmp_path / "timm" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CatsplitError, match="2 classifiers \\(head, head_dist\\)"):
        catsplit.load_head(tmp_path / "timm")
    assert catsplit.load_head(tmp_path / "timm", key="head.fc").num_classes == len(LABELS)


def test_timm_train_checkpoint_needs_the_opt_in(tmp_path):
    path = tmp_path / "checkpoint-9.pth.tar"
    net = timm_train_checkpoint(path)
    with pytest.raises(CatsplitError, match="trust_checkpoint=True.*--trust-checkpoint") as err:
        catsplit.load_head(path, labels=LABELS)
    assert "argparse.Namespace" in str(err.value) and "\x1b" not in str(err.value)
    head = catsplit.load_head(path, labels=LABELS, trust_checkpoint=True)  # head.fc under state_dict.
    assert torch.equal(head.weight, net.fc.weight)
    with pytest.warns(FormatWarning) as caught:
        out = catsplit.save_model(_split(head), path, tmp_path / "edited.pth.tar", labels=LABELS, trust_checkpoint=True)
    text = " ".join(str(w.message) for w in caught)
    assert "args" in text and "optimizer" in text  # the Namespace is left out, the optimizer state kept (with a warning)
    written = torch.load(out, weights_only=True)  # loads without the opt-in now
    assert "args" not in written and written["epoch"] == 9 and written["metric"] == 71.5
    assert catsplit.unsplit(catsplit.load_head(out), COARSE).equals(head)


# --- mmaction2 -------------------------------------------------------------------------------------
@pytest.mark.parametrize("head_name", ["fc_cls", "fc2"])
def test_mmaction_checkpoint_round_trip(tmp_path, head_name):
    path = tmp_path / "i3d.pth"
    net = mmaction_checkpoint(path, head=head_name)
    head = catsplit.load_head(path)  # labels from meta.dataset_meta.classes
    assert head.labels == tuple(LABELS) and torch.equal(head.weight, net.fc.weight)
    new = _split(head)
    out = catsplit.save_model(new, path, tmp_path / "i3d_split.pth")
    written = torch.load(out, weights_only=True)
    assert torch.equal(written["state_dict"][f"cls_head.{head_name}.weight"], new.weight)
    assert torch.equal(written["state_dict"]["backbone.conv1.conv.weight"], torch.load(path)["state_dict"]["backbone.conv1.conv.weight"])
    meta = written["meta"]
    assert list(meta["dataset_meta"]["classes"]) == list(new.labels)
    assert "num_classes=6," in meta["cfg"] and "in_channels=8" in meta["cfg"]
    assert (tmp_path / "i3d_split_label_map.txt").read_text().splitlines() == list(new.labels)
    assert catsplit.unsplit(catsplit.load_head(out), COARSE).equals(head)


def test_mmengine_training_checkpoint_with_trust(tmp_path):
    path = tmp_path / "epoch_3.pth"
    mmaction_checkpoint(path, training=True)
    with pytest.raises(CatsplitError, match="HistoryBuffer.*trust_checkpoint=True"):
        catsplit.load_head(path)
    head = catsplit.load_head(path, trust_checkpoint=True)
    assert head.labels == tuple(LABELS)
    with pytest.warns(FormatWarning) as caught:
        out = catsplit.save_model(_split(head), path, tmp_path / "out.pth", trust_checkpoint=True)
    text = " ".join(str(w.message) for w in caught)
    assert "message_hub held objects of classes catsplit does not load" in text and "optimizer (training state)" in text
    written = torch.load(out, weights_only=True)
    assert "message_hub" not in written and "optimizer" in written
    assert written["meta"]["catsplit"]["history"][0]["coarse"] == COARSE


def test_mmaction_without_classes_takes_a_label_map(tmp_path):
    path = tmp_path / "tsn.pth"
    mmaction_checkpoint(path, classes=False)
    with pytest.raises(CatsplitError, match="holds no labels.*labels="):
        catsplit.load_head(path)
    (tmp_path / "label_map.txt").write_text("\n".join(LABELS) + "\n")
    assert catsplit.load_head(path, labels=tmp_path / "label_map.txt").labels == tuple(LABELS)


# --- PyTorchVideo / PySlowFast ---------------------------------------------------------------------
@pytest.mark.parametrize("head_name", ["blocks.5.proj", "head.projection"])
def test_pytorchvideo_checkpoint_round_trip(tmp_path, head_name):
    path = tmp_path / "SLOW_8x8_R50.pyth"  # a zip archive under .pyth: read for what it is, not by its suffix
    net = pytorchvideo_checkpoint(path, head=head_name, training=True)
    names = kinetics_classnames(tmp_path / "kinetics_classnames.json")
    head = catsplit.load_head(path, labels=names)
    assert head.labels == tuple(LABELS) and torch.equal(head.weight, net.fc.weight)
    new = _split(head)
    with pytest.warns(FormatWarning, match="optimizer_state .*old classifier's shape"):
        out = catsplit.save_model(new, path, tmp_path / "split.pyth", labels=names)
    written = torch.load(out, weights_only=True)
    assert torch.equal(written["model_state"][f"{head_name}.weight"], new.weight) and written["epoch"] == 196
    assert "  NUM_CLASSES: 6\n" in written["cfg"] and "BATCH_SIZE: 64" in written["cfg"]
    loaded = catsplit.load_head(out)  # the labels travel in the catsplit entry
    assert loaded.labels == new.labels
    assert catsplit.unsplit(loaded, COARSE).equals(head)


# --- plain state dicts -----------------------------------------------------------------------------
@pytest.mark.parametrize("wrapper", ["", "module.", "_orig_mod.", "model.", "state_dict_ema."])
@pytest.mark.parametrize("legacy", [False, True])
def test_plain_state_dicts_round_trip(tmp_path, wrapper, legacy):
    net = TinyVideoNet()
    state = OrderedDict((wrapper + k, v) for k, v in net.state_dict().items())
    path = tmp_path / "model.pt"
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    head = catsplit.load_head(path, labels=LABELS)  # `fc` found without a key
    new = _split(head)
    out = catsplit.save_model(new, path, tmp_path / "out.pt", labels=LABELS)
    written = torch.load(out, weights_only=True)
    assert list(written) == list(state)  # the state dict itself, no extra key
    assert torch.equal(written[wrapper + "fc.weight"], new.weight)
    assert torch.equal(written[wrapper + "backbone.weight"], net.backbone.weight)
    fresh = TinyVideoNet(classes=len(new.labels))
    fresh.load_state_dict(OrderedDict((k[len(wrapper):], v) for k, v in written.items()), strict=True)
    loaded = catsplit.load_head(out)
    assert loaded.equals(new)
    back = catsplit.save_model(catsplit.unsplit(loaded, COARSE), out, tmp_path / "back.pt")
    assert catsplit.load_head(back, labels=LABELS).equals(head)
    assert all(torch.equal(v, torch.load(back)[k]) for k, v in state.items())


def test_a_safetensors_state_dict_keeps_its_history_in_its_metadata(tmp_path):
    net = TinyVideoNet()
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path), metadata={"format": "pt"})
    head = catsplit.load_head(path, labels=LABELS)
    new = _split(head)
    out = catsplit.save_model(new, path, tmp_path / "out.safetensors", labels=LABELS)
    assert torch.equal(load_file(out)["backbone.weight"], net.backbone.weight)
    back = catsplit.save_model(catsplit.unsplit(catsplit.load_head(out), COARSE), out, tmp_path / "back.safetensors")
    assert back.read_bytes() == path.read_bytes()


def test_the_same_layer_under_two_wrappers(tmp_path):
    net = TinyVideoNet()
    same = {"model": net.state_dict(), "module": net.state_dict()}
    torch.save(same, tmp_path / "twice.pt")
    with pytest.raises(CatsplitError, match="several layers could be the classifier.*'model.fc'.*'module.fc'"):
        catsplit.load_head(tmp_path / "twice.pt", labels=LABELS)
    head = catsplit.load_head(tmp_path / "twice.pt", labels=LABELS, key="model.fc")
    new = _split(head)
    out = catsplit.save_model(new, tmp_path / "twice.pt", tmp_path / "out.pt", key="model.fc", labels=LABELS)
    written = torch.load(out)
    assert torch.equal(written["model"]["fc.weight"], new.weight) and torch.equal(written["module"]["fc.weight"], new.weight)
    ema = {"state_dict": net.state_dict(), "state_dict_ema": TinyVideoNet(seed=5).state_dict()}
    torch.save(ema, tmp_path / "ema.pt")
    head = catsplit.load_head(tmp_path / "ema.pt", labels=LABELS, key="state_dict.fc")
    with pytest.raises(CatsplitError, match="holds the classifier twice.*state_dict_ema.fc.weight"):
        catsplit.save_model(_split(head), tmp_path / "ema.pt", tmp_path / "ema-out.pt", key="state_dict.fc", labels=LABELS)
    assert not (tmp_path / "ema-out.pt").exists()


def test_writes_are_refused_before_anything_is_written(tmp_path):
    net = TinyVideoNet()
    path = tmp_path / "model.pt"
    torch.save(net.state_dict(), path)
    head = catsplit.load_head(path, labels=LABELS)
    new = _split(head)
    (tmp_path / "taken.pt").write_bytes(b"x")
    with pytest.raises(CatsplitError, match="exists"):
        catsplit.save_model(new, path, tmp_path / "taken.pt", labels=LABELS)
    with pytest.raises(CatsplitError, match="PyTorch checkpoint and is written back as one.*--head-only"):
        catsplit.save_model(new, path, tmp_path / "out.safetensors", labels=LABELS)
    wider = catsplit.Head(weight=torch.zeros(6, 9), bias=torch.zeros(6), labels=list(new.labels))
    with pytest.raises(CatsplitError, match="does not fit the classifier 'fc'.*dim 8"):
        catsplit.save_model(wider, path, tmp_path / "out.pt", labels=LABELS)
    with pytest.raises(CatsplitError, match="does not fit"):
        catsplit.save_model(catsplit.Head(weight=new.weight.double(), bias=new.bias.double(), labels=list(new.labels)),
                            path, tmp_path / "out.pt", labels=LABELS)
    assert sorted(os.listdir(tmp_path)) == ["model.pt", "taken.pt"]


def test_overwriting_the_model_in_place(tmp_path):
    net = TinyVideoNet()
    path = tmp_path / "model.pt"
    torch.save(net.state_dict(), path)
    head = catsplit.load_head(path, labels=LABELS)
    new = _split(head)
    catsplit.save_model(new, path, path, labels=LABELS, overwrite=True)
    assert catsplit.load_head(path).equals(new)
    assert sorted(os.listdir(tmp_path)) == ["model.pt"]  # no temp file left


def test_no_warning_for_a_plain_state_dict(tmp_path):
    torch.save(TinyVideoNet().state_dict(), tmp_path / "model.pt")
    head = catsplit.load_head(tmp_path / "model.pt", labels=LABELS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        catsplit.save_model(_split(head), tmp_path / "model.pt", tmp_path / "out.pt", labels=LABELS)
