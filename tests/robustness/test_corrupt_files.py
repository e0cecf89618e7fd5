"""Damaged and hostile head files: each gives a CatsplitError that names the file and the problem."""

import json
import struct

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import catsplit
from catsplit import CatsplitError, Head, load_head
from conftest import compositional_head


def _header(blob: bytes) -> tuple[dict, bytes]:
    n = int.from_bytes(blob[:8], "little")
    return json.loads(blob[8 : 8 + n]), blob[8 + n :]


def _with_header(header: dict, data: bytes) -> bytes:
    raw = json.dumps(header).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw + data


def _catsplit_meta(labels):
    return {"catsplit.format": "1", "catsplit.labels": json.dumps(labels)}


def _refused(path, *needles):
    with pytest.raises(CatsplitError) as err:
        load_head(path)
    message = str(err.value)
    assert str(path) in message, message
    for needle in needles:
        assert needle in message, message
    return message


@pytest.fixture
def good(tmp_path, encoder):
    head, subs, _, _ = compositional_head()
    edited = catsplit.split(head, encoder, "Pushing something", subs[:2], method="retrieval", mode="hierarchical")
    edited = catsplit.split(edited, encoder, "Lifting something up", ["Lifting something up fast", "Lifting something up slowly"], method="coarse")
    path = tmp_path / "good.safetensors"
    edited.save(path)
    return path, path.read_bytes()


def test_the_fixture_file_loads(good):
    path, _ = good
    head = load_head(path)
    assert head.is_hierarchical and len(head.history) == 2


@pytest.mark.parametrize("keep", [0, 4, 8, 9, 100, -1, -100])
def test_truncated_files(tmp_path, good, keep):
    _, blob = good
    p = tmp_path / "cut.safetensors"
    p.write_bytes(blob[:keep] if keep >= 0 else blob[:keep])
    _refused(p, "not a valid safetensors file")


def test_header_length_beyond_the_file(tmp_path, good):
    _, blob = good
    p = tmp_path / "h.safetensors"
    for n in (len(blob), 10**12, 2**64 - 1):
        p.write_bytes(n.to_bytes(8, "little") + blob[8:])
        _refused(p, "header length field says")


def test_header_that_claims_more_data_than_the_file_holds(tmp_path, good):
    _, blob = good
    header, data = _header(blob)
    header["weight"]["shape"][0] += 1000  # and offsets to match: the data runs past the end of the file
    b, e = header["weight"]["data_offsets"]
    header["weight"]["data_offsets"] = [b, e + 1000 * header["weight"]["shape"][1] * 4]
    p = tmp_path / "more.safetensors"
    p.write_bytes(_with_header(header, data))
    _refused(p, "it is truncated")


def test_forged_huge_tensor_fails_before_allocating(tmp_path, good, monkeypatch):
    _, blob = good
    header, data = _header(blob)
    header["weight"]["shape"] = [10**6, 10**6]  # 10^12 elements, 4 TB
    header["weight"]["data_offsets"] = [0, 4 * 10**12]
    p = tmp_path / "huge.safetensors"
    p.write_bytes(_with_header(header, data))
    sizes = []
    real_empty = torch.empty

    def spy(*args, **kwargs):
        sizes.append(args)
        return real_empty(*args, **kwargs)

    monkeypatch.setattr(torch, "empty", spy)
    _refused(p, "not a valid safetensors file")
    assert sizes == []  # refused from the header alone
    # the same with offsets that agree with the shape: the file is far too short
    header["weight"]["data_offsets"] = [0, 4 * 10**12]
    header = {k: v for k, v in header.items() if k in ("weight", "__metadata__")}
    p.write_bytes(_with_header(header, data))
    _refused(p, "it is truncated")
    assert sizes == []


@pytest.mark.parametrize(
    "edit, needle",
    [
        (lambda h: h.__setitem__("weight", "oops"), "is not an object"),
        (lambda h: h["weight"].__setitem__("dtype", "F99"), "unknown dtype"),
        (lambda h: h["weight"].__setitem__("shape", [-1, 32]), "has shape"),
        (lambda h: h["weight"].__setitem__("shape", [True, 32]), "has shape"),
        (lambda h: h["weight"].__setitem__("shape", "32"), "has shape"),
        (lambda h: h["weight"].__setitem__("data_offsets", [5]), "data_offsets"),
        (lambda h: h["weight"].__setitem__("data_offsets", list(reversed(h["weight"]["data_offsets"]))), "data_offsets"),
        (lambda h: h["weight"].__setitem__("dtype", "F16"), "needs"),  # size no longer matches
        (lambda h: h.__setitem__("__metadata__", {"catsplit.format": 1}), "__metadata__"),
        (lambda h: h.__setitem__("__metadata__", ["x"]), "__metadata__"),
        (lambda h: h["weight"].__setitem__("data_offsets", [0, h["weight"]["data_offsets"][1] - h["weight"]["data_offsets"][0]]), "overlap or leave a gap"),
    ],
)
def test_header_edits(tmp_path, good, edit, needle):
    _, blob = good
    header, data = _header(blob)
    edit(header)
    p = tmp_path / "edited.safetensors"
    p.write_bytes(_with_header(header, data))
    _refused(p, needle)


def test_header_that_is_not_json_or_not_text(tmp_path, good):
    _, blob = good
    n = int.from_bytes(blob[:8], "little")
    p = tmp_path / "bad.safetensors"
    p.write_bytes(blob[:8] + b"[" + blob[9:])  # a list, then garbage
    _refused(p, "not valid JSON")
    p.write_bytes(blob[:8] + b"\xff" + blob[9:])
    _refused(p, "not UTF-8")
    p.write_bytes(_with_header([1, 2], b""))
    _refused(p, "not an object")
    p.write_bytes(blob[: 8 + n] + blob[8 + n :] + b"\0" * 8)  # trailing bytes
    _refused(p, "trailing bytes")
    deep = "[" * 100_000 + "]" * 100_000
    raw = ('{"a": ' + deep + "}").encode()
    raw += b" " * (-len(raw) % 8)
    p.write_bytes(len(raw).to_bytes(8, "little") + raw)
    _refused(p, "nested too deeply")


def test_flipped_bytes_in_the_header_never_escape(tmp_path, good):
    _, blob = good
    n = int.from_bytes(blob[:8], "little")
    p = tmp_path / "flip.safetensors"
    rng = np.random.default_rng(0)
    for pos in rng.choice(np.arange(8, 8 + n), size=60, replace=False):
        for mask in (0x01, 0x20, 0x80):
            mutated = bytearray(blob)
            mutated[pos] ^= mask
            p.write_bytes(bytes(mutated))
            try:
                head = load_head(p)
            except CatsplitError as exc:
                assert str(p) in str(exc)
            else:
                assert isinstance(head, Head)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.uint8, torch.bool, torch.float8_e4m3fn])
def test_non_float_weights_are_refused(tmp_path, dtype):
    p = tmp_path / "int.safetensors"
    w = torch.ones(2, 3).to(dtype)
    save_file({"weight": w}, str(p), metadata=_catsplit_meta(["a", "b"]))
    _refused(p, "'weight' has dtype", "must be float")
    save_file({"weight": torch.ones(2, 3), "bias": torch.ones(2).to(dtype)}, str(p), metadata=_catsplit_meta(["a", "b"]))
    _refused(p, "'bias' has dtype")
    # foreign files and checkpoints alike
    save_file({"fc.weight": w}, str(p))
    with pytest.raises(CatsplitError, match="'fc.weight' has dtype"):
        load_head(p, key="fc", labels=["a", "b"])
    if dtype != torch.float8_e4m3fn:
        q = tmp_path / "int.pt"
        torch.save({"fc.weight": w}, q)
        with pytest.raises(CatsplitError, match="'fc.weight' has dtype") as err:
            load_head(q, key="fc", labels=["a", "b"])
        assert str(q) in str(err.value)


def test_non_float_undo_tensor_is_refused(tmp_path, good):
    _, blob = good
    header, data = _header(blob)
    assert header["undo.1.weight"]["dtype"] == "F32"
    header["undo.1.weight"]["dtype"] = "I32"  # same size: only the dtype is wrong
    p = tmp_path / "undo.safetensors"
    p.write_bytes(_with_header(header, data))
    _refused(p, "'undo.1.weight' has dtype I32")


def test_missing_tensors(tmp_path, good):
    path, blob = good
    head = load_head(path)
    tensors, meta = catsplit.io.headfile.head_tensors(head)
    for name, needle in [("weight", "missing the tensor 'weight'"), ("sub.1.weight", "missing tensor sub.1.weight"),
                         ("undo.1.weight", "missing undo tensor")]:
        p = tmp_path / f"no-{name}.safetensors"
        save_file({k: v for k, v in tensors.items() if k != name}, str(p), metadata=meta)
        _refused(p, needle)
    p = tmp_path / "no-bias.safetensors"
    save_file({k: v for k, v in tensors.items() if k != "sub.1.bias"}, str(p), metadata=meta)
    _refused(p, "bias")


@pytest.mark.parametrize("key", ["catsplit.labels", "catsplit.tables", "catsplit.groups", "catsplit.history", "catsplit.templates"])
def test_metadata_that_is_not_json(tmp_path, good, key):
    path, _ = good
    head = load_head(path)
    tensors, meta = catsplit.io.headfile.head_tensors(head.evolve(groups={"Pulling": ["Pulling something up"]}, templates=("{}",)))
    meta[key] = meta[key][:-3] + "}{"
    p = tmp_path / "meta.safetensors"
    save_file(tensors, str(p), metadata=meta)
    _refused(p, f"metadata {key!r} is not valid JSON")


def test_metadata_with_wrong_json_types(tmp_path, good):
    path, _ = good
    tensors, meta = catsplit.io.headfile.head_tensors(load_head(path))
    p = tmp_path / "types.safetensors"
    for key, value, needle in [
        ("catsplit.labels", '{"a": 1}', "must be a list of strings"),
        ("catsplit.labels", "[1, 2]", "non-empty strings"),
        ("catsplit.tables", '[{"parent": "x"}]', "damaged catsplit metadata"),
        ("catsplit.tables", '["sub.1"]', "damaged catsplit metadata"),
        ("catsplit.groups", "[1]", "groups must be a mapping"),
        ("catsplit.history", '"split"', "JSON list"),
        ("catsplit.templates", '"a {}"', "'catsplit.templates' is damaged: templates must be a list of strings"),
        ("catsplit.scale", "abc", "damaged catsplit metadata"),
        ("catsplit.scale", "1e999", "finite"),
        ("catsplit.kind", "conv", "kind"),
        ("catsplit.format", "3", "Upgrade catsplit"),  # "2" is read (catsplit.order)
        ("catsplit.labels", '["a\\ud800"]', "unpaired surrogate"),
        ("catsplit.labels", "[" * 50_000 + "]" * 50_000, "nested too deeply"),
    ]:
        save_file(tensors, str(p), metadata={**meta, key: value})
        _refused(p, needle)


def test_label_count_disagreeing_with_rows(tmp_path, good):
    path, _ = good
    tensors, meta = catsplit.io.headfile.head_tensors(load_head(path))
    labels = json.loads(meta["catsplit.labels"])
    p = tmp_path / "count.safetensors"
    for wrong in (labels[:-1], labels + ["one more"]):
        save_file(tensors, str(p), metadata={**meta, "catsplit.labels": json.dumps(wrong)})
        _refused(p, f"{tensors['weight'].shape[0]} weight rows but {len(wrong)} labels")
    tables = json.loads(meta["catsplit.tables"])
    tables[0]["labels"] = tables[0]["labels"][:1]
    save_file(tensors, str(p), metadata={**meta, "catsplit.tables": json.dumps(tables)})
    _refused(p, "2 weight rows but 1 labels")


def test_non_finite_values_name_the_row(tmp_path):
    w = np.zeros((3000, 400), np.float32)  # several blocks of check_finite
    w[2718, 7] = np.inf
    labels = [f"class {i}" for i in range(3000)]
    p = tmp_path / "inf.safetensors"
    save_file({"weight": torch.from_numpy(w)}, str(p), metadata=_catsplit_meta(labels))
    _refused(p, "row(s) 2718 ('class 2718')")


def test_surrogate_escapes_in_the_header_are_refused(tmp_path):
    p = tmp_path / "sur.safetensors"
    data = struct.pack("<2f", 1.0, 2.0)
    header = {"__metadata__": {"note": "PLACEHOLDER"}, "weight": {"dtype": "F32", "shape": [1, 2], "data_offsets": [0, 8]}}
    raw = json.dumps(header).replace("PLACEHOLDER", "\\ud800").encode()
    raw += b" " * (-len(raw) % 8)
    p.write_bytes(len(raw).to_bytes(8, "little") + raw + data)
    _refused(p, "unpaired surrogate")


def test_files_changed_while_open_fail_cleanly(tmp_path, good):
    from catsplit.io.safetensors import SafetensorsReader

    path, blob = good
    p = tmp_path / "shrinking.safetensors"
    p.write_bytes(blob)
    with SafetensorsReader(p) as reader:
        with open(p, "r+b") as f:
            f.truncate(len(blob) - 64)  # another program cuts the file after the header was read
        with pytest.raises(CatsplitError, match="ended .* before the end of tensor"):
            for name in reader:
                reader[name]


def test_directories_fifos_and_unreadable_paths(tmp_path):
    import os

    with pytest.raises(CatsplitError, match="no such file"):
        load_head(tmp_path)
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    with pytest.raises(CatsplitError, match="no such file"):
        load_head(fifo)  # not opened: opening a FIFO would block


def test_undo_tensors_of_the_wrong_shape_dtype_or_value(tmp_path, good):
    """Found by the fuzz test: a 0-d undo bias loaded, then broke Head.equals and unsplit."""
    path, _ = good
    head = load_head(path)
    tensors, meta = catsplit.io.headfile.head_tensors(head)
    p = tmp_path / "undo.safetensors"
    for name, value, needle in [
        ("undo.1.bias", torch.tensor(0.5), "expected float32 [1]"),
        ("undo.1.weight", torch.ones(2, head.dim), f"expected float32 [1, {head.dim}]"),
        ("undo.1.weight", torch.ones(1, head.dim, dtype=torch.float64), "is float64"),
        ("undo.1.weight", torch.full((1, head.dim), float("nan")), "NaN or inf"),
    ]:
        save_file({**tensors, name: value}, str(p), metadata=meta)
        _refused(p, f"undo tensor {name!r}", needle)


HUGE = "9" * 5000  # more digits than Python converts (its integer string limit is 4,300)


def _forged(path, header: str) -> None:
    raw = header.encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(len(raw).to_bytes(8, "little") + raw)


@pytest.mark.parametrize("where", ["shape", "offsets", "labels metadata"])
def test_a_json_integer_of_more_than_4300_digits_is_a_catsplit_error(tmp_path, where):
    """json.loads raises a plain ValueError for such integers (not a JSONDecodeError): it escaped load_head."""
    path = tmp_path / "h.safetensors"
    if where == "shape":
        _forged(path, '{"weight":{"dtype":"F32","shape":[' + HUGE + ',2],"data_offsets":[0,0]}}')
    elif where == "offsets":
        _forged(path, '{"weight":{"dtype":"F32","shape":[0,2],"data_offsets":[0,' + HUGE + ']}}')
    else:
        meta = {"catsplit.format": "1", "catsplit.labels": "[" + HUGE + "]", "catsplit.kind": "linear"}
        _forged(path, json.dumps({"__metadata__": meta, "weight": {"dtype": "F32", "shape": [0, 2], "data_offsets": [0, 0]}}))
    with pytest.raises(CatsplitError, match="number Python cannot read"):
        load_head(path)
    with pytest.raises(CatsplitError, match="number Python cannot read"):
        catsplit.split_file(path, tmp_path / "out.safetensors", None, "a", ["a 1", "a 2"], method="coarse")


def test_a_labels_file_with_a_huge_integer_is_a_catsplit_error(tmp_path):
    from safetensors.torch import save_file

    save_file({"weight": torch.ones(2, 3)}, str(tmp_path / "w.safetensors"))
    (tmp_path / "labels.json").write_text('{"a": 0, "b": ' + HUGE + "}")
    with pytest.raises(CatsplitError, match=r"labels file .*labels.json holds a number Python cannot read"):
        load_head(tmp_path / "w.safetensors", labels=tmp_path / "labels.json")


def test_onnx_label_metadata_with_a_huge_integer_is_a_catsplit_error():
    pytest.importorskip("onnx")
    from catsplit.export.graph import output_labels

    with pytest.raises(CatsplitError, match="model.onnx: metadata 'catsplit.labels' holds a number Python cannot read"):
        output_labels({"catsplit.labels": "[" + HUGE + "]"}, "model.onnx")
