"""Reading models: file kinds from the bytes (catsplit.formats.detect), labels in the shapes datasets ship them
(catsplit.formats.labels), finding the classifier (catsplit.formats.statedict), training checkpoints
(catsplit.formats.unpickler)."""

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import catsplit
from catsplit import CatsplitError
from catsplit.formats.detect import PICKLE, SAFETENSORS, TORCH_ZIP, UNKNOWN, file_kind
from catsplit.formats.labels import labels_from_lines, labels_from_value
from catsplit.formats.unpickler import Opaque
from catsplit.io.readers import read_labels
from format_models import LABELS, TinyVideoNet


# --- file kinds ------------------------------------------------------------------------------------
def test_the_kind_comes_from_the_bytes(tmp_path):
    state = {"fc.weight": torch.ones(2, 3)}
    torch.save(state, tmp_path / "a.pyth")
    torch.save(state, tmp_path / "b.weights", _use_new_zipfile_serialization=False)
    save_file(state, str(tmp_path / "c.pt"))
    (tmp_path / "d.bin").write_bytes(b"GGUF" + bytes(20))
    assert [file_kind(tmp_path / n) for n in ("a.pyth", "b.weights", "c.pt", "d.bin")] == [TORCH_ZIP, PICKLE, SAFETENSORS, UNKNOWN]
    for name in ("a.pyth", "b.weights", "c.pt"):  # each read for what it is (the .pyth was parsed as safetensors)
        assert catsplit.load_head(tmp_path / name, key="fc", labels=["x", "y"]).dim == 3


def test_a_checkpoint_under_a_safetensors_name_is_named_not_unpickled(tmp_path):
    torch.save({"weight": torch.ones(2, 3)}, tmp_path / "model.safetensors")
    with pytest.raises(CatsplitError, match="not a valid safetensors file.*holds a PyTorch checkpoint .*rename it"):
        catsplit.load_head(tmp_path / "model.safetensors", labels=["a", "b"])


def test_a_weights_file_inside_a_model_folder_points_at_the_folder(tmp_path):
    from format_models import timm_folder

    timm_folder(tmp_path / "m")
    with pytest.raises(CatsplitError, match="holds no labels.*give the folder"):
        catsplit.load_head(tmp_path / "m" / "model.safetensors")


# --- labels ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [
    {"0": "a", "1": "b", "2": "c"},  # Hugging Face id2label (string keys)
    {0: "a", 2: "c", 1: "b"},  # int keys, any order
    {"a": 0, "b": 1, "c": 2},  # {label: index}
    {"a": "0", "b": "1", "c": "2"},  # SSv2 labels.json
    {'"a"': 0, '"b"': 1, '"c"': 2},  # Kinetics kinetics_classnames.json: the keys keep their quotes
    {"architectures": ["X"], "id2label": {"1": "b", "0": "a", "2": "c"}, "label2id": {"a": 0}},  # a config.json
    {"architecture": "x", "label_names": ["a", "b", "c"], "pretrained_cfg": {}},  # timm
    {"pretrained_cfg": {"label_names": ["a", "b", "c"]}},
    ["a", "b", "c"],
])
def test_labels_in_every_shape(tmp_path, value):
    assert labels_from_value(value) == ["a", "b", "c"]
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(value))
    assert read_labels(path) == ["a", "b", "c"]
    if isinstance(value, dict) and all(isinstance(k, (str, int)) for k in value):
        assert read_labels(value) == ["a", "b", "c"]


def test_index_name_lines_as_classInd(tmp_path):
    path = tmp_path / "classInd.txt"
    path.write_bytes("\ufeff1 ApplyEyeMakeup\r\n2 ApplyLipstick\r\n3 Archery\r\n".encode())  # BOM, CRLF, 1-based
    assert read_labels(path) == ["ApplyEyeMakeup", "ApplyLipstick", "Archery"]
    assert labels_from_lines(["2, c", "0, a", "1, b"]) == ["a", "b", "c"]  # 0-based, any order
    # lines that only start with numbers stay labels as they are
    assert labels_from_lines(["3 people dancing", "2 people hugging"]) == ["3 people dancing", "2 people hugging"]
    assert labels_from_lines(["1 a", "3 b"]) == ["1 a", "3 b"]  # a gap: not an index


def test_a_config_json_as_labels_and_bad_mappings(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "videomae", "id2label": {"0": "x", "1": "y"}}))
    assert read_labels(config) == ["x", "y"]
    with pytest.raises(CatsplitError, match="indices must be exactly 0..1"):
        labels_from_value({"0": "x", "5": "y"})
    with pytest.raises(CatsplitError, match="several indices"):
        labels_from_value({"0": "x", "1": "x"})
    with pytest.raises(CatsplitError, match="index -> label needs integer indices"):
        labels_from_value({"zero": "x", "1": "y"})


# --- finding the classifier ------------------------------------------------------------------------
def test_known_names_and_row_count_rank_the_candidates(tmp_path):
    torch.save({"state_dict": {"module.backbone.proj.weight": torch.ones(5, 4), "module.head.fc.weight": torch.ones(5, 4),
                               "module.fc.weight": torch.ones(7, 4)}}, tmp_path / "m.pt")
    head = catsplit.load_head(tmp_path / "m.pt", labels=LABELS)  # head.fc (known, 5 rows) beats fc (known, 7 rows)
    assert head.num_classes == 5 and head.bias is None
    seven = [f"c{i}" for i in range(7)]
    assert catsplit.load_head(tmp_path / "m.pt", labels=seven).num_classes == 7  # now fc has one row per label


def test_training_state_is_never_a_candidate(tmp_path):
    net = TinyVideoNet()
    torch.save({"model": net.state_dict(), "optimizer": {"state": {"fc.weight": torch.zeros(5, 8)}}}, tmp_path / "m.pt")
    assert torch.equal(catsplit.load_head(tmp_path / "m.pt", labels=LABELS).weight, net.fc.weight)


def test_ambiguity_names_the_best_candidates(tmp_path):
    torch.save({"state_dict": {"fc.weight": torch.ones(5, 4)}, "state_dict_ema": {"fc.weight": torch.ones(5, 4)},
                "state_dict_ema2": {"fc.weight": torch.ones(5, 4)}}, tmp_path / "m.pt")
    pattern = r"several layers could be the classifier with 5 rows.*'state_dict.fc' \[5, 4\], 'state_dict_ema.fc' \[5, 4\].*key="
    with pytest.raises(CatsplitError, match=pattern):
        catsplit.load_head(tmp_path / "m.pt", labels=LABELS)
    torch.save({"x.weight": torch.ones(5, 4), "y.weight": torch.ones(3, 4)}, tmp_path / "n.pt")
    with pytest.raises(CatsplitError, match=r"no layer with a known classifier name.*5 rows \(one per label\): \['x.weight'\]"):
        catsplit.load_head(tmp_path / "n.pt", labels=LABELS)


# --- training checkpoints --------------------------------------------------------------------------
class _Marker:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


class Plain:
    """An unknown class: refused by default, a placeholder with the opt-in."""

    def __init__(self):
        self.epoch = 3


def test_trust_checkpoint_loads_unknown_classes_as_placeholders(tmp_path):
    net = TinyVideoNet()
    path = tmp_path / "train.pt"
    torch.save({"model": net.state_dict(), "info": Plain()}, path)
    with pytest.raises(CatsplitError) as err:
        catsplit.load_head(path, labels=LABELS)
    message = str(err.value)
    assert "trust_checkpoint=True" in message and "Plain" in message and "\x1b" not in message  # torch bolds parts of it
    head = catsplit.load_head(path, labels=LABELS, trust_checkpoint=True)
    assert torch.equal(head.weight, net.fc.weight)
    from catsplit.io.checkpoint import open_checkpoint

    info = open_checkpoint(path, trust=True).obj["info"]
    assert isinstance(info, Opaque) and info.state == {"epoch": 3} and not isinstance(info, Plain)


@pytest.mark.parametrize("legacy", [False, True])
def test_trust_checkpoint_still_runs_nothing(tmp_path, legacy):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"fc.weight": torch.ones(2, 3), "x": _Marker(marker)}, path, _use_new_zipfile_serialization=not legacy)
    with pytest.raises(CatsplitError, match="even with trust_checkpoint=True.*never runs code"):
        catsplit.load_head(path, labels=["a", "b"], trust_checkpoint=True)
    (tmp_path / "raw.pt").write_bytes(pickle.dumps({"fc.weight": _Marker(marker)}, protocol=2))
    with pytest.raises(CatsplitError):
        catsplit.load_head(tmp_path / "raw.pt", labels=["a", "b"], trust_checkpoint=True)
    assert not marker.exists()


def test_a_pickled_module_is_read_with_trust_but_not_written(tmp_path):
    net = TinyVideoNet()
    torch.save(net, tmp_path / "whole.pt")
    head = catsplit.load_head(tmp_path / "whole.pt", labels=LABELS, trust_checkpoint=True)
    assert torch.equal(head.weight, net.fc.weight)
    new = catsplit.split(head, None, "bowling", ["bowling a", "bowling b"], method="coarse")
    with pytest.raises(CatsplitError, match="holds a .*not a dict of tensors|inside an object catsplit does not load"):
        catsplit.save_model(new, tmp_path / "whole.pt", tmp_path / "out.pt", labels=LABELS, trust_checkpoint=True)
    assert not (tmp_path / "out.pt").exists() and Path(tmp_path / "whole.pt").is_file()


def test_mmaction_num_classes_is_set_in_the_cls_head_only_at_its_own_level():
    from catsplit.formats.mmaction import set_num_classes

    cfg = (
        "model = dict(type='Recognizer3D', backbone=dict(num_classes=7),\n"
        "    cls_head=dict(type='I3DHead', loss_cls=dict(type='CE', num_classes=3, note='a ) in quotes'),\n"
        "                  in_channels=2048, num_classes=400, label=\"x]\"),\n"
        "    data_preprocessor=dict(num_classes=400))\n"
    )
    text, found = set_num_classes(cfg, 403)
    assert found
    assert "in_channels=2048, num_classes=403," in text  # the head's own field
    assert "num_classes=3, note='a ) in quotes'" in text  # a nested dict's field, past a quoted bracket
    assert "backbone=dict(num_classes=7)" in text and "data_preprocessor=dict(num_classes=400)" in text
    assert set_num_classes("model = dict(backbone=dict(num_classes=7))", 5) == ("model = dict(backbone=dict(num_classes=7))", False)
