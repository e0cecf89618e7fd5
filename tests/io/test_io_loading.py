"""catsplit.io.loading: load_head from a catsplit head file, a foreign file or a torch.nn.Linear."""

import json

import pytest
import torch
from safetensors.torch import save_file

import catsplit
from catsplit import CatsplitError, load_head
from conftest import compositional_head


def test_load_linear_module():
    lin = torch.nn.Linear(5, 2)
    head = load_head(lin, labels=["x", "y"])
    assert head.num_classes == 2 and head.dim == 5
    with pytest.raises(CatsplitError, match="labels"):
        load_head(lin)


def test_label_count_mismatch_in_metadata(tmp_path):
    p = tmp_path / "bad.safetensors"
    save_file({"weight": torch.ones(2, 3)}, str(p), metadata={"catsplit.format": "1", "catsplit.labels": json.dumps(["a"])})
    with pytest.raises(CatsplitError, match="2 weight rows but 1 labels"):
        load_head(p)
    save_file({"weight": torch.ones(2, 3)}, str(p), metadata={"catsplit.format": "1", "catsplit.labels": "[not json"})
    with pytest.raises(CatsplitError, match="not valid JSON"):
        load_head(p)


def test_labels_argument_for_catsplit_files(tmp_path, encoder):
    p = tmp_path / "nolabels.safetensors"
    save_file({"weight": torch.ones(2, 3)}, str(p), metadata={"catsplit.format": "1"})
    with pytest.raises(CatsplitError, match="pass labels="):
        load_head(p)
    assert load_head(p, labels=["a", "b"]).labels == ("a", "b")
    head, subs, _, _ = compositional_head()
    edited = catsplit.split(head, encoder, "Pushing something", subs, method="coarse", mode="hierarchical")
    q = tmp_path / "edited.safetensors"
    edited.save(q)
    with pytest.raises(CatsplitError, match="unedited head"):
        load_head(q, labels=[f"l{i}" for i in range(head.num_classes)])


def test_damaged_structure_is_refused(tmp_path):
    labels = json.dumps(["a", "b"])
    p = tmp_path / "h.safetensors"
    # a sub-head whose gate does not exist
    tables = json.dumps([{"parent": "zzz", "labels": ["c", "d"], "prefix": "sub.1"}])
    save_file({"weight": torch.ones(2, 3), "sub.1.weight": torch.ones(2, 3)}, str(p),
              metadata={"catsplit.format": "1", "catsplit.labels": labels, "catsplit.tables": tables})
    with pytest.raises(CatsplitError, match="gate 'zzz'"):
        load_head(p)
    # a label in two tables
    tables = json.dumps([{"parent": "a", "labels": ["b", "d"], "prefix": "sub.1"}])
    save_file({"weight": torch.ones(2, 3), "sub.1.weight": torch.ones(2, 3)}, str(p),
              metadata={"catsplit.format": "1", "catsplit.labels": labels, "catsplit.tables": tables})
    with pytest.raises(CatsplitError, match="appears twice"):
        load_head(p)
    # history that is not a list of records, or that lost its undo tensor
    flat_split = json.dumps([{"op": "split", "coarse": "x", "subs": ["a", "b"], "method": "coarse", "mode": "flat",
                              "table": 0, "row": 0, "undo": "undo.0"}])
    for history, message in [('{"op": "split"}', "JSON list"), (flat_split, "missing undo")]:
        save_file({"weight": torch.ones(2, 3)}, str(p), metadata={"catsplit.format": "1", "catsplit.labels": labels, "catsplit.history": history})
        with pytest.raises(CatsplitError, match=message):
            load_head(p)
    save_file({"weight": torch.ones(2, 3)}, str(p), metadata={"catsplit.format": "1", "catsplit.labels": labels, "catsplit.scale": "nan"})
    with pytest.raises(CatsplitError, match="finite"):
        load_head(p)


def test_blank_labels_in_a_file_are_refused_naming_the_file(tmp_path):
    from safetensors.torch import save_file
    import torch

    p = tmp_path / "blank.safetensors"
    save_file({"weight": torch.ones(2, 3)}, str(p), metadata={"catsplit.format": "1", "catsplit.labels": json.dumps(["a", "\u200b"])})
    with pytest.raises(CatsplitError, match="non-empty") as err:
        load_head(p)
    assert str(p) in str(err.value)
