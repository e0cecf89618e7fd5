import json
import os

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import catsplit
from catsplit import CatsplitError, Head, load_head
from conftest import compositional_head


def _labels(n):
    return [f"class {i}" for i in range(n)]


@pytest.mark.parametrize("mode", ["flat", "hierarchical"])
def test_roundtrip_after_split(tmp_path, encoder, head_and_subs, mode):
    head, subs = head_and_subs
    edited = catsplit.split(head, encoder, "Pushing something", subs, method="retrieval", mode=mode)
    path = tmp_path / "edited.safetensors"
    edited.save(path)
    loaded = load_head(path)
    assert loaded.equals(edited)
    assert loaded.labels == edited.labels
    x = np.random.default_rng(0).standard_normal((7, head.dim)).astype(np.float32)
    np.testing.assert_array_equal(loaded.logits(x), edited.logits(x))
    # and the loaded file can be undone to the original, bit for bit
    assert catsplit.unsplit(loaded, "Pushing something").equals(head)


@pytest.mark.parametrize("dtype, code", [(torch.float16, "F16"), (torch.bfloat16, "BF16")])
def test_half_precision_files_are_not_upcast(tmp_path, encoder, dtype, code):
    head, subs, _, _ = compositional_head()
    head = Head(weight=head.weight.to(dtype), bias=head.bias.to(dtype), labels=head.labels)
    edited = catsplit.split(head, encoder, "Pushing something", subs, method="alignment")
    assert edited.dtype == dtype
    path = tmp_path / "h.safetensors"
    edited.save(path)
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    assert header["weight"]["dtype"] == code and header["bias"]["dtype"] == code
    assert load_head(path).equals(edited)


def test_foreign_metadata_is_kept(tmp_path):
    src = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.ones(2, 3), "bias": torch.zeros(2)}, str(src), metadata={"author": "someone", "format": "pt"})
    head = load_head(src, labels=["a", "b"])
    assert head.metadata == {"author": "someone", "format": "pt"}
    out = tmp_path / "out.safetensors"
    head.save(out)
    with safe_open(str(out), "pt") as f:
        meta = f.metadata()
    assert meta["author"] == "someone" and json.loads(meta["catsplit.labels"]) == ["a", "b"]


def test_save_refuses_to_overwrite(tmp_path):
    head = Head(weight=np.ones((2, 2)), labels=["a", "b"])
    path = tmp_path / "h.safetensors"
    path.write_bytes(b"precious")
    with pytest.raises(CatsplitError, match="overwrite=True"):
        head.save(path)
    assert path.read_bytes() == b"precious"
    head.save(path, overwrite=True)
    assert load_head(path).equals(head)
    assert sorted(os.listdir(tmp_path)) == ["h.safetensors"]  # no temp file left behind


def test_save_into_missing_folder_is_an_error(tmp_path):
    head = Head(weight=np.ones((2, 2)), labels=["a", "b"])
    with pytest.raises(CatsplitError, match="does not exist"):
        head.save(tmp_path / "nope" / "h.safetensors")


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
    with pytest.raises(CatsplitError, match="key="):
        load_head(ckpt, labels=["a", "b", "c"])


def test_load_linear_module():
    lin = torch.nn.Linear(5, 2)
    head = load_head(lin, labels=["x", "y"])
    assert head.num_classes == 2 and head.dim == 5
    with pytest.raises(CatsplitError, match="labels"):
        load_head(lin)


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


def test_corrupt_files_give_catsplit_errors(tmp_path):
    head = Head(weight=np.ones((2, 2)), labels=["a", "b"])
    good = tmp_path / "good.safetensors"
    head.save(good)
    data = good.read_bytes()
    cases = {
        "truncated": data[: len(data) - 5],
        "empty": b"",
        "header": data[:10] + b"\xff" + data[11:],
        "huge length": (10**12).to_bytes(8, "little") + data[8:],
    }
    for name, blob in cases.items():
        p = tmp_path / f"{name}.safetensors"
        p.write_bytes(blob)
        with pytest.raises(CatsplitError) as err:
            load_head(p)
        assert str(p) in str(err.value), name
    with pytest.raises(CatsplitError, match="no such file"):
        load_head(tmp_path / "missing.safetensors")


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
    for history, message in [('{"op": "split"}', "JSON list"), ('[{"op": "split", "coarse": "x", "subs": ["a", "b"], "mode": "flat", "undo": "undo.0"}]', "missing undo")]:
        save_file({"weight": torch.ones(2, 3)}, str(p), metadata={"catsplit.format": "1", "catsplit.labels": labels, "catsplit.history": history})
        with pytest.raises(CatsplitError, match=message):
            load_head(p)
    save_file({"weight": torch.ones(2, 3)}, str(p), metadata={"catsplit.format": "1", "catsplit.labels": labels, "catsplit.scale": "nan"})
    with pytest.raises(CatsplitError, match="finite"):
        load_head(p)


def test_saved_files_get_the_usual_permissions(tmp_path):
    head = Head(weight=np.ones((2, 2)), labels=["a", "b"])
    old = os.umask(0o022)
    try:
        head.save(tmp_path / "h.safetensors")
    finally:
        os.umask(old)
    assert (tmp_path / "h.safetensors").stat().st_mode & 0o777 == 0o644
    os.chmod(tmp_path / "h.safetensors", 0o640)
    head.save(tmp_path / "h.safetensors", overwrite=True)
    assert (tmp_path / "h.safetensors").stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_written_files_match_the_safetensors_library(tmp_path, encoder, dtype):
    """catsplit writes the container itself: same header (as JSON) and data as safetensors.torch.save_file."""
    from safetensors.torch import load_file

    from catsplit.io.headfile import head_tensors

    head, subs, _, _ = compositional_head()
    head = Head(weight=head.weight.to(dtype), bias=head.bias.to(dtype), labels=head.labels, metadata={"origin": "ünï"})
    edited = catsplit.split(head, encoder, "Pushing something", subs[:2], method="coarse", mode="hierarchical")
    edited = catsplit.split(edited, encoder, "Lifting something up", ["Lifting something up a", "Lifting something up b"], method="coarse")
    ours, theirs = tmp_path / "ours.safetensors", tmp_path / "theirs.safetensors"
    edited.save(ours)
    tensors, meta = head_tensors(edited)
    save_file(tensors, str(theirs), metadata=meta)

    def parts(p):
        blob = p.read_bytes()
        n = int.from_bytes(blob[:8], "little")
        return n, json.loads(blob[8 : 8 + n]), blob[8 + n :]

    assert parts(ours) == parts(theirs)
    again = load_file(str(ours))
    assert set(again) == set(tensors) and all(torch.equal(again[k], tensors[k]) for k in tensors)
    edited.save(tmp_path / "twice.safetensors")
    assert (tmp_path / "twice.safetensors").read_bytes() == ours.read_bytes()  # deterministic
