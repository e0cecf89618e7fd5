"""catsplit.io.checkpoint: PyTorch checkpoints, read with weights_only=True, and the classifier layer in them."""

import json

import pytest
import torch

import catsplit
from catsplit import CatsplitError, load_head


def test_load_checkpoint_with_key_and_label_files(tmp_path):
    lin = torch.nn.Linear(4, 3)
    ckpt = tmp_path / "model.pt"
    torch.save({"state_dict": {"backbone.conv.weight": torch.ones(2, 2, 3), "head.fc.weight": lin.weight.data,
                               "head.fc.bias": lin.bias.data}}, ckpt)
    (tmp_path / "labels.json").write_text(json.dumps({"b": 1, "a": 0, "c": 2}))
    (tmp_path / "labels.txt").write_text("a\nb\nc\n")
    (tmp_path / "list.json").write_text(json.dumps(["a", "b", "c"]))
    heads = [load_head(ckpt, key="head.fc", labels=str(tmp_path / name)) for name in ("labels.json", "labels.txt", "list.json")]
    for h in heads:
        assert h.labels == ("a", "b", "c")
        assert torch.equal(h.weight, lin.weight.data) and torch.equal(h.bias, lin.bias.data)
    by_weight_name = load_head(ckpt, key="head.fc.weight", labels=["a", "b", "c"])
    assert by_weight_name.equals(heads[0])
    with pytest.raises(CatsplitError, match="similar name"):
        load_head(ckpt, key="head.cls", labels=["a", "b", "c"])
    # no key: head.fc is a known classifier name (issue 15); a layer of no known name still needs key=
    assert load_head(ckpt, labels=["a", "b", "c"]).equals(heads[0])
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {"backbone.conv.weight": torch.ones(2, 2, 3), "out_layer.weight": lin.weight.data}}, other)
    with pytest.raises(CatsplitError, match="key="):
        load_head(other, labels=["a", "b", "c"])


def test_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pt"
    torch.save({"weight": Evil()}, path)
    with pytest.raises(CatsplitError, match="weights_only"):
        load_head(path, labels=["a"])
    assert not marker.exists()


def test_a_checkpoint_of_a_bare_tensor_says_so(tmp_path):
    torch.save(torch.randn(3, 4), tmp_path / "bare.pt")
    with pytest.raises(CatsplitError, match="holds a single tensor of shape \\[3, 4\\], not a state dict"):
        catsplit.load_head(tmp_path / "bare.pt", labels=["a", "b", "c"])
    torch.save({"w": torch.randn(3, 4)}, tmp_path / "named.pt")
    with pytest.raises(CatsplitError, match="no tensor named 'weight'.*\\['w'\\]"):
        catsplit.load_head(tmp_path / "named.pt", labels=["a", "b", "c"])
