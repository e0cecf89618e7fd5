"""One case per category of damaged input that used to end in a Python traceback (issue 16, item 8).

Each case builds one hostile file (or destination) and runs the command that reads it, in-process: it must
exit with status 2 and print exactly one `catsplit: error:` line naming the problem. Before the checked
readers (catsplit/io/arrays.py, catsplit/io/onnx_model.py, the checkpoint walk, the BERT config check, the
layout reader, the history check, io.atomic.make_folder) every one of these raised instead.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from safetensors.torch import save_file

import fuzzcommands as commands
from fuzzkit import cli_case, read_tree, run_cli, torch_bytes
from fuzzseeds import COARSE, DIM, seeds


def _error(argv) -> str:
    """Run a command that must be refused; returns its one error line."""
    cli_case(argv, must_fail=True)
    return run_cli(argv).err.strip()


def _inspect_ckpt(path: Path) -> list:
    return ["inspect", path, "--key", "model.fc", "--labels", seeds().labels_json]


def _state(**extra):
    s = seeds()
    obj = torch.load(s.checkpoint, weights_only=True)
    obj.update(extra)
    return obj


# --- PyTorch checkpoints ------------------------------------------------------------------------------


def _cyclic():
    obj = _state()
    obj["self"] = obj
    return obj


def _deep():
    obj = _state()
    nested = {"weight": torch.ones(2, 2)}
    for _ in range(990):
        nested = {"m": nested}
    obj["deep"] = nested
    return obj


def _with_weight(t):
    obj = _state()
    obj["state_dict"]["model.fc.weight"] = t
    return obj


CHECKPOINTS = {
    "self-referential dict": (_cyclic, "contains itself"),
    "dicts nested 990 deep": (_deep, "nested more than"),
    "sparse weight": (lambda: _with_weight(torch.randn(21, DIM).to_sparse()), "sparse"),
    "meta-device weight": (lambda: _with_weight(torch.empty(21, DIM, device="meta")), "device 'meta'"),
    "expanded weight": (lambda: _with_weight(torch.zeros(1, 1).expand(10**6, 10**6)), "share memory"),
}


@pytest.mark.parametrize("case", sorted(CHECKPOINTS))
def test_checkpoints(case, tmp_path):
    make, needle = CHECKPOINTS[case]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (tmp_path / "ckpt.pt").write_bytes(torch_bytes(make()))
    for argv in (_inspect_ckpt(tmp_path / "ckpt.pt"),
                 commands.checkpoint_commands(tmp_path)["split"], commands.checkpoint_commands(tmp_path)["export"]):
        err = _error(argv)
        assert needle in err and str(tmp_path / "ckpt.pt") in err, err


# --- head files -------------------------------------------------------------------------------------


def test_a_shape_whose_size_overflows_a_float_is_refused(tmp_path):
    """2 x 10^200 x 10^200 float32 bits: the size message divided it as a float (OverflowError)."""
    header = json.dumps({"weight": {"dtype": "F32", "shape": [10**200, 10**200], "data_offsets": [0, 4]}}).encode()
    header += b" " * (-len(header) % 8)
    path = tmp_path / "head.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 4)
    assert "needs" in _error(["inspect", path, "--labels", seeds().labels_json])


def _edited_with_history(tmp_path, edit) -> Path:
    blob = seeds().tuned_source.read_bytes()
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + n])
    history = json.loads(header["__metadata__"]["catsplit.history"])
    edit(history)
    header["__metadata__"]["catsplit.history"] = json.dumps(history)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path = tmp_path / "head.safetensors"
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + blob[8 + n :])
    return path


MISSING = "the history is damaged"
HISTORIES = {  # damage of the latest record -> {command: what its error says}; None: the command works
    "record without method": (lambda h: h[-1].pop("method"), {"inspect": "'method' must be", "finetune": MISSING,
                                                              "unsplit": MISSING, "split": MISSING}),
    "record without table": (lambda h: h[-1].pop("table"), {"inspect": "'table' must be", "finetune": MISSING}),
    "mode of the wrong type": (lambda h: h[-1].update(mode=["flat"]), {"inspect": "'mode' must be", "finetune": MISSING}),
    "table out of range": (lambda h: h[-1].update(table=7), {"inspect": None, "finetune": "does not match the head",
                                                            "unsplit": "is damaged"}),
}


@pytest.mark.parametrize("case", sorted(HISTORIES))
def test_history_records_missing_a_key(case, tmp_path):
    edit, expected = HISTORIES[case]
    path = _edited_with_history(tmp_path, edit)
    argv_of = commands.head_commands(tmp_path)
    argv_of["unsplit"][argv_of["unsplit"].index("--coarse") + 1] = COARSE
    for name, needle in expected.items():
        if needle is None:
            assert run_cli(argv_of[name]).code == 0, name
            continue
        err = _error(argv_of[name])
        assert needle in err and (name != "inspect" or str(path) in err), (name, err)  # inspect: an error on loading


def test_a_record_of_another_kind_is_shown_by_inspect(tmp_path):
    """Records whose op is not "split" are kept as they are: inspect printed them as splits (KeyError 'coarse')."""
    path = _edited_with_history(tmp_path, lambda h: h.append({"op": "note", "text": "relabelled by hand"}))
    out = run_cli(["inspect", path])
    assert out.code == 0 and "note:" in out.out and "relabelled by hand" in out.out, out.err


# --- ONNX models ------------------------------------------------------------------------------------


def _model(src: Path | None = None):
    return onnx.load(str(src or seeds().onnx_flat))


def _weight(model):
    return next(t for t in model.graph.initializer if t.name.endswith("t0/weight"))


def _short_raw(m):
    t = _weight(m)
    t.raw_data = t.raw_data[: len(t.raw_data) // 2]


def _string_dtype(m):
    _weight(m).data_type = onnx.TensorProto.STRING


def _undefined_dtype(m):
    _weight(m).data_type = onnx.TensorProto.UNDEFINED


def _nul_location(m):
    t = _weight(m)
    t.ClearField("raw_data")
    t.data_location = onnx.TensorProto.EXTERNAL
    entry = t.external_data.add()
    entry.key, entry.value = "location", "w\0.bin"


def _renamed_nodes(m):
    for n in m.graph.node:
        n.name = n.name.replace("catsplit_head/", "")


def _renamed_weight(m):
    _weight(m).name = "renamed"


def _deep_head_metadata(m):
    for p in m.metadata_props:
        if p.key == "catsplit.head":
            p.value = "[" * 100_000 + "]" * 100_000


def _undefined_input_type(m):
    m.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.UNDEFINED  # onnx.checker: bare ValueError


ONNX_CASES = {
    "graph input of undefined element type": (_undefined_input_type, ("edit-onnx", "predict", "triton"),
                                              "declared with element type 0"),
    "raw data shorter than its dims": (_short_raw, ("edit-onnx", "predict", "triton"), "needs"),
    "string initializer": (_string_dtype, ("edit-onnx",), "string tensor"),
    "undefined element type": (_undefined_dtype, ("edit-onnx", "predict", "triton"), "element type 0"),
    "NUL in an external-data location": (_nul_location, ("edit-onnx", "predict"), "not a file name"),
    "catsplit metadata with renamed nodes": (_renamed_nodes, ("edit-onnx",), "were the head's nodes renamed"),
    "catsplit metadata naming a renamed tensor": (_renamed_weight, ("edit-onnx",), "renamed or removed"),
}


def test_predict_does_not_need_the_head_description(tmp_path):
    """predict reads only the labels; a damaged description made it raise RecursionError, now it is not needed."""
    model = _model()
    _deep_head_metadata(model)
    (tmp_path / "model.onnx").write_bytes(model.SerializeToString())
    out = run_cli(commands.onnx_commands(tmp_path)["predict"])
    assert out.code == 0 and out.escaped is None, out.err


@pytest.mark.parametrize("case", sorted(ONNX_CASES))
def test_onnx_models(case, tmp_path):
    damage, names, needle = ONNX_CASES[case]
    model = _model()
    damage(model)
    (tmp_path / "model.onnx").write_bytes(model.SerializeToString())
    argv_of = commands.onnx_commands(tmp_path)
    for name in names:
        err = _error(argv_of[name])
        assert needle in err and str(tmp_path / "model.onnx") in err, (name, err)


# --- clip-feature files -----------------------------------------------------------------------------


def _npz(arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _bad_crc() -> bytes:
    """The seed batch (.npz, stored uncompressed) with one byte of its data changed: the zip's CRC no longer matches."""
    blob = bytearray(seeds().batch_npz.read_bytes())
    blob[blob.find(b"\x93NUMPY") + 140] ^= 0x55  # past the 128-byte .npy header: in the array's data
    return bytes(blob)


def _npy(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=arr.dtype.hasobject)
    return buf.getvalue()


def _labelled(x, y) -> bytes:
    return _npz({"features": x, "labels": y})


def _x() -> np.ndarray:
    return np.load(seeds().features_npy)


def _y() -> np.ndarray:
    return np.load(seeds().features_npz)["labels"]


FEATURES = {
    "npz cut short": ("feats.npz", lambda: _npz({"features": _x()})[:-30], "damaged or not a numpy file"),
    "big-endian features": ("feats.npz", lambda: _labelled(_x().astype(">f4"), _y()), None),
    "float128 features": ("feats.npz", lambda: _labelled(_x().astype(np.longdouble), _y()), "float128"),
    "complex features": ("feats.npz", lambda: _labelled(_x().astype(np.complex64), _y()), "complex"),
    "object features": ("feats.npy", lambda: _npy(_x().astype(object)), "Python objects"),
    "labels that are not UTF-8": ("feats.npz", lambda: _labelled(_x(), np.array([b"\xff\xfe"] * len(_x()))), "not UTF-8"),
    "npy header with a malformed shape": ("feats.npy", lambda: _npy(_x()).replace(b"(6, 6)", b"(6,,6)"), "not a valid .npy"),
}


@pytest.mark.parametrize("case", sorted(FEATURES))
def test_feature_files(case, tmp_path):
    name, make, needle = FEATURES[case]
    (tmp_path / name).write_bytes(make())
    kind = commands.FEATURE_FILES[name]
    argv = commands.feature_commands(tmp_path, kind)["finetune"]
    if needle is None:  # converted to the machine's byte order: the same values, and the command works
        assert run_cli(argv).code == 0
        return
    err = _error(argv)
    assert needle in err and str(tmp_path / name) in err, err


BATCHES = {
    "huge declared shape": (lambda: _huge_npy(), "declares shape"),
    "empty file": (lambda: b"", "not a valid .npy"),
    "NaN in the batch": (lambda: _npy(np.full((2, 6), np.nan, np.float32)), "NaN"),
}


def _huge_npy() -> bytes:
    """An .npy whose header declares 10^13 rows over 72 bytes of data (numpy allocated 65 TiB, or tried)."""
    from numpy.lib import format as npformat

    buf = io.BytesIO()
    npformat.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (10**13, 6)})
    return buf.getvalue() + np.zeros(18, np.float32).tobytes()


def test_a_batch_with_a_bad_crc(tmp_path):
    (tmp_path / "batch.npz").write_bytes(_bad_crc())
    err = _error(commands.feature_commands(tmp_path, "batch_npz")["predict"])
    assert "CRC" in err and str(tmp_path / "batch.npz") in err, err


@pytest.mark.parametrize("case", sorted(BATCHES))
def test_batches(case, tmp_path):
    make, needle = BATCHES[case]
    (tmp_path / "batch.npy").write_bytes(make())
    err = _error(commands.feature_commands(tmp_path, "batch_npy")["predict"])
    assert needle in err and str(tmp_path / "batch.npy") in err, err


# --- the paper's layout -----------------------------------------------------------------------------


def _layout(tmp_path: Path, edit) -> list:
    files = {**{f"layout/{k}": v for k, v in read_tree(seeds().layout).items()},
             "layout_feats.npz": seeds().layout_features.read_bytes()}
    edit(files)
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    return commands.layout_commands(tmp_path)["bench"]


def _csv_name(files) -> str:
    return next(k for k in sorted(files) if k.endswith("equivalent_set.csv"))


def _scheme(value):
    return lambda files: files.__setitem__("layout/group_scheme.json", json.dumps(value).encode())


def _layout_features(**arrays):
    def edit(files):
        with np.load(seeds().layout_features) as f:
            base = {k: f[k] for k in f.files}
        base.update(arrays)
        files["layout_feats.npz"] = _npz(base)
    return edit


def _feature_rows(fn):
    with np.load(seeds().layout_features) as f:
        x = f["features"]
    return fn(x)


LAYOUTS = {
    "CSV that is not UTF-8": (lambda f: f.__setitem__(_csv_name(f), b"\xff\xfe" + f[_csv_name(f)]), "not UTF-8"),
    "CSV field over the csv limit": (lambda f: f.__setitem__(_csv_name(f), b"x" * 200_000 + b",1\n"), "not a valid CSV"),
    "group_scheme of the wrong shape": (_scheme({"group_scheme": {COARSE: 3}, "A": [COARSE]}), "'group_scheme' must map"),
    "partition not a list": (_scheme({"group_scheme": {}, "A": 7}), "must be a list"),
    "labels.json with an object index": (lambda f: f.__setitem__("layout/A/labels.json", json.dumps({"a": {}}).encode()),
                                         "integer indices"),
    "NaN features": (_layout_features(features=_feature_rows(lambda x: np.where(np.arange(x.size).reshape(x.shape) == 0, np.nan, x))),
                     "NaN"),
    "complex features": (_layout_features(features=_feature_rows(lambda x: x.astype(np.complex64))), "complex"),
    "structured features": (_layout_features(features=_feature_rows(lambda x: np.zeros(len(x), [("a", "<f4")]))), "structured"),
    "features of another size": (_layout_features(features=_feature_rows(lambda x: x[:, :-1])), "the head's dim"),
    "object paths": (_layout_features(paths=np.array(["x"], dtype=object)), "Python objects"),
}


@pytest.mark.parametrize("case", sorted(LAYOUTS))
def test_layouts(case, tmp_path):
    edit, needle = LAYOUTS[case]
    err = _error(_layout(tmp_path, edit))
    assert needle in err, err


# --- text-encoder folders ---------------------------------------------------------------------------


def _encoder(tmp_path: Path, kind: str, edit) -> Path:
    folder = tmp_path / "encoder"
    files = read_tree({"bert": seeds().bert, "clip": seeds().clip, "onnx": seeds().onnx_encoder}[kind])
    edit(files)
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def _config(**changes):
    def edit(files):
        cfg = json.loads(files["config.json"])
        cfg.update(changes)
        files["config.json"] = json.dumps(cfg).encode()
    return edit


def _onnx_rank3_input(files):
    m = onnx.load_from_string(files["model.onnx"])
    m.graph.input[0].type.tensor_type.shape.dim.add().dim_value = 2
    files["model.onnx"] = m.SerializeToString()


def _template_with_unknown_token(files):
    tok = json.loads(files["tokenizer.json"])
    tok["post_processor"]["special_tokens"].pop("[CLS]")
    files["tokenizer.json"] = json.dumps(tok).encode()


def _sparse_token_id(files):
    """A token id far past the embedding table, in a vocabulary of a few dozen tokens (IndexError at the first text)."""
    tok = json.loads(files["tokenizer.json"])
    vocab = tok["model"]["vocab"]
    vocab[next(t for t in vocab if vocab[t] == max(vocab.values()))] = 10**9
    files["tokenizer.json"] = json.dumps(tok).encode()


ENCODERS = {
    "token id past the embedding table": ("bert", _sparse_token_id, "token ids up to 1000000000"),
    "CLIP token id past the embedding table": ("clip", _sparse_token_id, "token ids up to 1000000000"),
    "config.json not JSON": ("bert", lambda f: f.__setitem__("config.json", b"{hidden_size: 8"), "not valid JSON"),
    "config.json not UTF-8": ("bert", lambda f: f.__setitem__("config.json", b"\xff" + f["config.json"]), "not UTF-8"),
    "num_attention_heads a list": ("bert", _config(num_attention_heads=[2]), "num_attention_heads must be"),
    "config.json holding null": ("bert", lambda f: f.__setitem__("config.json", b"null"), "must hold a JSON object"),
    "max_position_embeddings null": ("bert", _config(max_position_embeddings=None), "max_position_embeddings must be"),
    "layer_norm_eps a string": ("bert", _config(layer_norm_eps="1e-12"), "layer_norm_eps"),
    "layer_norm_eps past float's range": ("bert", _config(layer_norm_eps=10**400), "layer_norm_eps"),
    "num_hidden_layers 10^9": ("bert", _config(num_hidden_layers=10**9), "missing"),
    "num_attention_heads 0": ("bert", _config(num_attention_heads=0), "positive integer"),
    "weights cut short": ("bert", lambda f: f.__setitem__("model.safetensors", f["model.safetensors"][:-9]), "truncated"),
    "template naming an undefined token": ("bert", _template_with_unknown_token, "special token"),
    "ONNX graph that fails on token ids": ("onnx", _onnx_rank3_input, "fails on a batch of token ids"),
    "CLIP config.json not JSON": ("clip", lambda f: f.__setitem__("config.json", b'{"model_type": "clip"'), "not valid JSON"),
    "CLIP hidden_act unknown": ("clip", _config(hidden_act="swish"), "hidden_act 'swish' is not supported"),
    "CLIP num_hidden_layers 10^9": ("clip", _config(num_hidden_layers=10**9), "missing"),
    "CLIP eos_token_id outside the vocabulary": ("clip", _config(eos_token_id=10**6), "eos_token_id must be a token id"),
    "CLIP model without text_config": ("clip", _config(model_type="clip"), "needs a text_config object"),
    "CLIP weights cut short": ("clip", lambda f: f.__setitem__("model.safetensors", f["model.safetensors"][:-9]), "truncated"),
    "CLIP tokenizer without the end-of-text token": ("clip", _config(eos_token_id=4), "without the end-of-text token"),
}


@pytest.mark.parametrize("case", sorted(ENCODERS))
def test_encoder_folders(case, tmp_path):
    kind, edit, needle = ENCODERS[case]
    folder = _encoder(tmp_path, kind, edit)
    err = _error(commands.encoder_commands(tmp_path)["split"])
    assert needle in err and str(folder) in err, err


# --- backbone weights and code ----------------------------------------------------------------------


def test_corrupt_backbone_weights(tmp_path):
    s = seeds()
    (tmp_path / "backbone.safetensors").write_bytes(s.backbone_st.read_bytes()[:-5])
    assert "truncated" in _error(commands.backbone_commands(tmp_path, "backbone.safetensors")["export"])
    state = dict(torch.load(s.backbone_pt, weights_only=True))
    state[1] = torch.ones(2)  # a key that is not a string
    (tmp_path / "backbone.pt").write_bytes(torch_bytes(state))
    assert "do not fit" in _error(commands.backbone_commands(tmp_path, "backbone.pt")["export"])


def test_a_backbone_file_that_does_not_import(tmp_path):
    (tmp_path / "bb.py").write_text("def Backbone(:\n")
    argv = ["export", seeds().head, "--backbone", f"{tmp_path / 'bb.py'}:Backbone", "--example-shape", "1,1", "-o",
            tmp_path / "m.onnx"]
    assert "SyntaxError" in _error(argv)
    (tmp_path / "bb.py").write_text("def Backbone(width):\n    return None\n")
    assert "calling Backbone() failed" in _error(argv)


def test_an_example_batch_too_large_to_allocate(tmp_path):
    argv = ["export", seeds().head, "--example-shape", f"{10**7},{10**7}", "-o", tmp_path / "m.onnx"]
    assert "not enough memory" in _error(argv)


# --- destinations -----------------------------------------------------------------------------------


@pytest.fixture
def unwritable(tmp_path) -> Path:
    """A folder this process cannot write in (as root, which ignores permissions: read-only /sys)."""
    import tempfile

    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        for candidate in (folder, Path("/sys")):
            try:
                fd, name = tempfile.mkstemp(dir=candidate)
            except OSError:
                yield candidate
                return
            os.close(fd)
            os.unlink(name)
        pytest.skip("no folder here that this process cannot write")
    finally:
        folder.chmod(0o755)


def test_unwritable_cache_and_repository_folders(tmp_path, unwritable):
    s = seeds()
    (tmp_path / "afile").write_text("")
    for cache in (unwritable / "cache", tmp_path / "afile" / "cache"):
        err = _error(["bench", "--quick", "--cache", cache, "--encoder", s.bert, "--no-progress", "--out", tmp_path / "r.json"])
        assert "cache folder" in err and "--cache" in err, err
    for repo in (unwritable / "repo", tmp_path / "afile" / "repo"):
        err = _error(["triton", s.onnx_flat, "--repo", repo, "--name", "m", "--max-batch-size", "2"])
        assert "repo" in err, err


def test_output_names_no_file_system_takes(tmp_path):
    s = seeds()
    for out in (tmp_path / "a\0b.safetensors", tmp_path / ("x" * 300 + ".safetensors")):
        for argv in (commands.head_commands(tmp_path)["split"][:-1] + [out],
                     ["unsplit", s.edited, "--coarse", "Lifting something up", "-o", out]):
            argv[1] = s.head if argv[0] == "split" else argv[1]
            err = _error(argv)
            assert "NUL" in err or "name too long" in err.lower(), err


# --- arrays handed to the Python API ----------------------------------------------------------------


def test_weights_and_features_of_every_layout_and_byte_order():
    """Big-endian arrays are the same numbers (converted); float128, sparse and meta tensors are refused in one
    line. torch.from_numpy raised ValueError / TypeError on the first two, .cpu() NotImplementedError on meta."""
    from catsplit import CatsplitError, Head

    w = np.arange(6, dtype=np.float32).reshape(3, 2)
    head = Head(weight=w.astype(">f4"), labels=["a", "b", "c"])
    assert np.array_equal(head.weight.numpy(), w) and head.dtype == torch.float32
    for bad, needle in [(w.astype(np.longdouble), "float64"), (torch.from_numpy(w).to_sparse(), "sparse"),
                        (torch.empty(3, 2, device="meta"), "meta")]:
        with pytest.raises(CatsplitError, match=needle):
            Head(weight=bad, labels=["a", "b", "c"])
