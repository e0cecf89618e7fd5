"""The footguns issue 15 closes: a head file never replaces a whole model, a head file is never written under
another format's suffix (catsplit.io.headfile.check_head_destination), and errors relayed from torch carry no
ANSI escape codes."""

import os

import pytest
import torch
from safetensors.torch import save_file

import catsplit
from catsplit import CatsplitError
from format_models import LABELS, TinyVideoNet


def _head(n=len(LABELS), dim=8):
    return catsplit.Head(weight=torch.randn(n, dim), bias=torch.zeros(n), labels=[f"c{i}" for i in range(n)])


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".bin", ".ckpt", ".onnx", ".json"])
def test_a_head_file_under_another_formats_suffix_is_refused(tmp_path, suffix):
    with pytest.raises(CatsplitError, match=f"a head file is safetensors; name it x.safetensors.*save_model"):
        _head().save(tmp_path / f"x{suffix}")
    assert os.listdir(tmp_path) == []


def test_other_names_are_written_as_given(tmp_path):
    for name in ("x.safetensors", "x", "x.head", "x.safetensors.3"):
        _head().save(tmp_path / name)
        assert catsplit.load_head(tmp_path / name).num_classes == len(LABELS)


def test_a_head_file_never_replaces_a_whole_model(tmp_path):
    net = TinyVideoNet()
    model = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(model))
    before = model.read_bytes()
    head = catsplit.load_head(model, labels=LABELS)
    with pytest.raises(CatsplitError, match="holds a model of 4 tensors.*save_model"):
        head.save(model, overwrite=True)
    with pytest.raises(CatsplitError, match="holds a model"):
        catsplit.split_file(model, model, None, LABELS[1], ["a b", "a c"], method="coarse", labels=LABELS, overwrite=True)
    assert model.read_bytes() == before
    ckpt = tmp_path / "model"  # a PyTorch checkpoint under a name with no suffix
    torch.save(net.state_dict(), ckpt)
    with pytest.raises(CatsplitError, match="holds a PyTorch checkpoint"):
        head.save(ckpt, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["model", "model.safetensors"]


def test_a_head_file_still_replaces_a_head_file(tmp_path):
    path = tmp_path / "h.safetensors"
    _head().save(path)
    _head(3).save(path, overwrite=True)
    assert catsplit.load_head(path).num_classes == 3
    save_file({"weight": torch.ones(2, 3), "bias": torch.ones(2)}, str(path))  # a foreign head on its own
    _head(4).save(path, overwrite=True)
    assert catsplit.load_head(path).num_classes == 4
    path.write_bytes(b"garbage")  # nothing catsplit recognises as a model
    _head(5).save(path, overwrite=True)
    assert catsplit.load_head(path).num_classes == 5


def test_relayed_torch_errors_have_no_escape_codes(tmp_path):
    import argparse

    path = tmp_path / "train.pt"
    torch.save({"fc.weight": torch.ones(2, 3), "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(Exception) as raw:  # torch's own message bolds its advice
        torch.load(path)
    assert "\x1b[" in str(raw.value)
    with pytest.raises(CatsplitError) as err:
        catsplit.load_head(path, labels=["a", "b"])
    assert "\x1b" not in str(err.value) and "argparse.Namespace" in str(err.value)


def test_backbone_weights_refused_by_torch_come_without_escape_codes(tmp_path):
    import argparse

    from catsplit.export.backbone import load_backbone

    path = tmp_path / "backbone.pt"
    torch.save({"weight": torch.ones(2, 3), "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(CatsplitError, match="cannot read .* as a state dict") as err:
        load_backbone("torch.nn:Identity", weights=str(path))
    assert "\x1b" not in str(err.value) and "\n" not in str(err.value) and "argparse.Namespace" in str(err.value)
