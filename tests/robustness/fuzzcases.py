"""The cases of each kind of input: hypothesis strategies that draw a damaged copy of a seed file.

Each draws the files of one case, {path relative to the case folder: bytes} (None: the file is left out):
byte mutations (flips, truncation, insertion, runs of one byte), and structural ones that keep the container
readable so the damage reaches deeper: JSON edited inside safetensors headers and metadata, edit records
without keys, checkpoints holding cycles, deep nesting, sparse / meta / quantized / expanded tensors, ONNX
initializers whose data disagree with their dims or dtype, external-data locations, renamed nodes, arrays
of every dtype and shape (big-endian, float128, complex, objects), lying .npy headers and zip entries, CSV
rows, BERT configs of the wrong types.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from hypothesis import strategies as st

from fuzzkit import WEIRD_STRINGS, dump_json, json_file, json_values, mutated_bytes, mutated_json, read_tree, torch_bytes, weird_scalars
from fuzzseeds import DIM, seeds, seeds_labels

def _split_safetensors(blob: bytes) -> tuple[dict, bytes] | None:
    try:
        n = int.from_bytes(blob[:8], "little")
        header = json.loads(blob[8 : 8 + n])
    except Exception:  # noqa: BLE001 - a seed that is already damaged
        return None
    return (header, blob[8 + n :]) if isinstance(header, dict) else None


def _join_safetensors(header: dict, data: bytes) -> bytes:
    raw = dump_json(header)
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw + data


@st.composite
def safetensors_file(draw, blob: bytes) -> bytes:
    """A safetensors file derived from `blob`: byte mutations (half of them in the header), or structural edits of
    the header, where a metadata value that holds JSON (labels, tables, groups, history) is edited as JSON."""
    parts = _split_safetensors(blob)
    if parts is None or draw(st.integers(0, 2)) == 0:
        return draw(mutated_bytes(blob, hot=(0, 8 + int.from_bytes(blob[:8], "little"))))
    header, data = parts
    meta = header.get("__metadata__", {})
    tree: dict[str, Any] = {k: v for k, v in header.items() if k != "__metadata__"}
    parsed: dict[str, Any] = {}
    for k, v in meta.items():
        try:
            parsed[k] = ("json", json.loads(v))
        except ValueError:
            parsed[k] = ("text", v)
    tree["__metadata__"] = {k: v for k, (_, v) in parsed.items()}
    tree = draw(mutated_json(tree))
    if isinstance(tree, dict) and isinstance(tree.get("__metadata__"), dict) and draw(st.integers(0, 4)):
        tree["__metadata__"] = {
            k: dump_json(v).decode("utf-8", "surrogatepass") if (parsed.get(k, ("json",))[0] == "json" or not isinstance(v, str)) else v
            for k, v in tree["__metadata__"].items()
        }
    if not isinstance(tree, dict):
        return dump_json(tree)
    out = _join_safetensors(tree, data)
    if draw(st.integers(0, 3)) == 0:
        out = draw(mutated_bytes(out, rounds=1))
    return out


@st.composite
def head_files(draw) -> dict[str, bytes]:
    """A mutated catsplit head file: `head.safetensors`."""
    s = seeds()
    src = draw(st.sampled_from([s.head, s.edited, s.text_head, s.tuned_source, s.refinable]))
    return {"head.safetensors": draw(safetensors_file(src.read_bytes()))}


@st.composite
def history_files(draw) -> dict[str, bytes]:
    """An edited head whose `catsplit.history` records are edited (keys dropped, values of the wrong type)."""
    s = seeds()
    src = draw(st.sampled_from([s.edited, s.tuned_source, s.refinable]))
    header, data = _split_safetensors(src.read_bytes())
    meta = dict(header["__metadata__"])
    history = json.loads(meta["catsplit.history"])
    kind = draw(st.sampled_from(["drop", "drop", "value", "structure"]))
    i = draw(st.integers(0, len(history) - 1))
    rec = dict(history[i])
    if kind == "drop":
        for k in draw(st.lists(st.sampled_from(sorted(rec)), min_size=1, max_size=3, unique=True)):
            rec.pop(k, None)
        history[i] = rec
    elif kind == "value":
        rec[draw(st.sampled_from(sorted(rec) + ["op", "mode", "table", "row", "sub_table", "undo"]))] = draw(
            st.one_of(json_values(), st.sampled_from([-1, 99, 1.5, "flat", "hierarchical", "undo.9", "split", True])))
        history[i] = rec
    else:
        history = draw(mutated_json(history))
    meta["catsplit.history"] = dump_json(history).decode("utf-8", "surrogatepass")
    header["__metadata__"] = meta
    return {"head.safetensors": _join_safetensors(header, data)}


def _tensor_values() -> st.SearchStrategy:
    """Tensors of every kind a weights-only checkpoint can hold, most of them wrong for a head."""
    import warnings

    import torch

    def make(kind: str) -> Any:
        with warnings.catch_warnings():  # torch's notes on beta and deprecated tensor kinds
            warnings.simplefilter("ignore")
            return _make(kind)

    def _make(kind: str) -> Any:
        w = torch.randn(len(seeds_labels()), DIM)
        if kind == "ok":
            return w
        if kind == "sparse":
            return w.to_sparse()
        if kind == "sparse_csr":
            return w.to_sparse_csr()
        if kind == "meta":
            return torch.empty(len(seeds_labels()), DIM, device="meta")
        if kind == "quantized":
            return torch.quantize_per_tensor(w, 0.1, 0, torch.qint8)
        if kind == "complex":
            return w.to(torch.complex64)
        if kind == "int":
            return w.to(torch.int32)
        if kind == "bool":
            return w > 0
        if kind == "float8":
            return w.to(torch.float8_e4m3fn)
        if kind == "half":
            return w.half()
        if kind == "double":
            return w.double()
        if kind == "scalar":
            return torch.tensor(1.0)
        if kind == "3d":
            return w[None]
        if kind == "empty":
            return torch.empty(0, DIM)
        if kind == "nan":
            w[0, 0] = float("nan")
            return w
        if kind == "huge_view":  # one stored element seen as a huge tensor (stride 0)
            return torch.zeros(1, 1).expand(10**6, 10**6)
        if kind == "transposed":
            return torch.randn(DIM, len(seeds_labels())).t()
        if kind == "parameter":
            return torch.nn.Parameter(w)
        if kind == "wide":
            return torch.randn(len(seeds_labels()), DIM + 1)
        raise AssertionError(kind)

    kinds = ["ok", "sparse", "sparse_csr", "meta", "quantized", "complex", "int", "bool", "float8", "half", "double",
             "scalar", "3d", "empty", "nan", "huge_view", "transposed", "parameter", "wide"]
    return st.sampled_from(kinds).map(make)


@st.composite
def checkpoint_objects(draw, names: Sequence[str] = ("model.fc.weight", "model.fc.bias")) -> Any:
    """The object a checkpoint holds: the seed's state dict with one part replaced by something else."""
    import torch

    s = seeds()
    obj = torch.load(s.checkpoint, weights_only=True)
    sd = obj["state_dict"]
    kind = draw(st.sampled_from(["tensor", "tensor", "bias", "cycle", "deep", "keys", "container", "top"]))
    if kind == "tensor":
        sd[names[0]] = draw(_tensor_values())
    elif kind == "bias":
        sd[names[1]] = draw(st.one_of(_tensor_values(), st.just(torch.ones(3)), st.just(torch.ones(1, 99)), st.just(torch.tensor(2.0))))
    elif kind == "cycle":
        where = draw(st.sampled_from(["top", "state_dict", "list"]))
        if where == "top":
            obj["self"] = obj
        elif where == "state_dict":
            sd["model.loop"] = sd
        else:
            loop: list = []
            loop.append(loop)
            obj["history"] = {"runs": loop, "back": obj}
    elif kind == "deep":
        depth = draw(st.sampled_from([10, 200, 900, 990, 3000]))
        nested: Any = {"weight": sd["model.fc.weight"]}
        for _ in range(depth):
            nested = {"m": nested}
        obj["deep"] = nested
    elif kind == "keys":
        sd[draw(st.sampled_from([1, 2.5, (1, 2), None, True, "", "model.fc", "model.fc.weight.weight"]))] = sd[names[0]]
    elif kind == "container":
        obj = draw(st.sampled_from([[sd], (sd,), {"state_dict": [sd[names[0]], sd[names[1]]]}, {"state_dict": None}, {}, 3]))
    else:
        obj = {"model": obj, "module": {"state_dict": sd}}
    return obj


@st.composite
def checkpoint_files(draw) -> dict[str, bytes]:
    """A mutated PyTorch checkpoint `ckpt.pt`: structural (what it holds) or byte mutations of the zip."""
    import torch

    if draw(st.integers(0, 2)) == 0:
        return {"ckpt.pt": draw(mutated_bytes(seeds().checkpoint.read_bytes()))}
    return {"ckpt.pt": torch_bytes(draw(checkpoint_objects()))}


ONNX_TYPES = list(range(0, 24)) + [99]


def protobuf_text(raw: bytes) -> str:
    """Text a protobuf string field takes (valid UTF-8): lone surrogates written as JSON escapes."""
    return raw.decode("utf-8", "surrogatepass").encode("utf-8", "backslashreplace").decode("utf-8")


@st.composite
def onnx_files(draw, src: Path | None = None) -> dict[str, bytes]:
    """A mutated ONNX model `model.onnx` (and sometimes an external-data file beside it): bytes, initializers
    whose data disagree with their dims or dtype, external-data locations, metadata, renamed or dropped nodes."""
    import onnx

    s = seeds()
    src = src or draw(st.sampled_from([s.onnx_flat, s.onnx_hier, s.onnx_foreign, s.onnx_softmax]))
    if draw(st.integers(0, 3)) == 0:
        return {"model.onnx": draw(mutated_bytes(src.read_bytes()))}
    model = onnx.load(str(src))
    graph = model.graph
    files: dict[str, bytes] = {}
    for _ in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(["raw", "dtype", "dims", "typed", "external", "meta", "meta", "meta_drop",
                                     "rename", "drop_node", "outputs", "opset", "inputs", "attribute"]))
        inits = list(graph.initializer)
        t = draw(st.sampled_from(inits)) if inits else None
        if kind == "raw" and t is not None:
            raw = t.raw_data
            t.raw_data = draw(st.sampled_from([raw[: len(raw) // 2], raw[:-1], raw + b"\x00" * 4, b"", raw[:3]]))
        elif kind == "dtype" and t is not None:
            t.data_type = draw(st.sampled_from(ONNX_TYPES))
        elif kind == "dims" and t is not None:
            del t.dims[:]
            t.dims.extend(draw(st.lists(st.sampled_from([-1, 0, 1, 2, 6, 7, 21, 2**31, 2**40]), max_size=3)))
        elif kind == "typed" and t is not None:
            values = np.frombuffer(t.raw_data[: len(t.raw_data) // 4 * 4], dtype=np.float32)
            t.ClearField("raw_data")
            field = draw(st.sampled_from(["float_data", "int32_data", "double_data", "string_data", "int64_data"]))
            n = draw(st.sampled_from([len(values), len(values) - 1, 1, 0]))
            if field == "string_data":
                t.string_data.extend([b"x"] * n)
            elif field in ("int32_data", "int64_data"):
                getattr(t, field).extend([1] * n)
            else:
                getattr(t, field).extend(values[:n].tolist())
        elif kind == "external" and t is not None:
            location = draw(st.sampled_from(["w.bin", "missing.bin", "a\x00b.bin", "/etc/hostname", "../w.bin", "", ".",
                                             "sub/../w.bin", "w.bin\n", "%s"]))
            t.ClearField("raw_data")
            t.data_location = onnx.TensorProto.EXTERNAL
            del t.external_data[:]
            for key, value in [("location", location)] + draw(st.lists(st.tuples(
                    st.sampled_from(["offset", "length", "checksum", "other"]),
                    st.sampled_from(["0", "4", "-1", "x", "99999999999", ""])), max_size=2)):
                entry = t.external_data.add()
                entry.key, entry.value = key, value
            files["w.bin"] = draw(st.binary(max_size=64))
        elif kind in ("meta", "meta_drop") and model.metadata_props:
            entry = draw(st.sampled_from(list(model.metadata_props)))
            if kind == "meta_drop":
                model.metadata_props.remove(entry)
            else:
                try:
                    value = json.loads(entry.value)
                    entry.value = protobuf_text(dump_json(draw(mutated_json(value))))
                except (ValueError, RecursionError):  # not JSON, or nested past the parser by an earlier round
                    entry.value = protobuf_text(draw(st.sampled_from(WEIRD_STRINGS)).encode("utf-8", "surrogatepass"))
        elif kind == "rename" and graph.node:
            n = draw(st.sampled_from(list(graph.node)))
            what = draw(st.sampled_from(["name", "input", "output", "init"]))
            if what == "name":
                n.name = draw(st.sampled_from(["", "x", n.name.split("/")[-1]]))
            elif what == "input" and n.input:
                n.input[draw(st.integers(0, len(n.input) - 1))] = draw(st.sampled_from(["", "nowhere", n.output[0]]))
            elif what == "output":
                n.output[0] = draw(st.sampled_from(["", "renamed", n.input[0]]))
            elif t is not None:
                t.name = draw(st.sampled_from(["", "renamed", t.name.split("/")[-1]]))
        elif kind == "drop_node" and graph.node:
            graph.node.remove(draw(st.sampled_from(list(graph.node))))
        elif kind == "outputs" and graph.output:
            o = graph.output[0]
            choice = draw(st.sampled_from(["drop", "dims", "elem", "extra"]))
            if choice == "drop":
                graph.output.remove(o)
            elif choice == "dims" and o.type.tensor_type.HasField("shape"):
                d = o.type.tensor_type.shape.dim
                d[len(d) - 1].dim_value = draw(st.sampled_from([0, 1, 3, 999]))
            elif choice == "elem":
                o.type.tensor_type.elem_type = draw(st.sampled_from(ONNX_TYPES))
            elif graph.input:  # an earlier round may have dropped every input
                graph.output.append(graph.input[0])
        elif kind == "opset":
            model.opset_import[0].version = draw(st.sampled_from([0, 1, 6, 7, 13, 99]))
        elif kind == "inputs" and graph.input:
            i = graph.input[0]
            choice = draw(st.sampled_from(["elem", "rank", "drop"]))
            if choice == "elem":
                i.type.tensor_type.elem_type = draw(st.sampled_from(ONNX_TYPES))
            elif choice == "rank":
                i.type.tensor_type.shape.dim.add().dim_value = 2
            else:
                graph.input.remove(i)
        elif kind == "attribute" and graph.node:
            n = draw(st.sampled_from(list(graph.node)))
            a = n.attribute.add()
            a.name, a.type = draw(st.sampled_from(["axis", "transB", "alpha", "axes"])), onnx.AttributeProto.INT
            a.i = draw(st.sampled_from([-3, 0, 1, 5]))
    files["model.onnx"] = model.SerializeToString()
    return files


@st.composite
def text_lines_file(draw, blob: bytes) -> bytes:
    """A one-item-per-line text file: lines added, doubled or dropped, odd encodings, or byte mutations."""
    lines = blob.decode("utf-8").splitlines()
    kind = draw(st.sampled_from(["lines", "lines", "encoding", "bytes"]))
    if kind == "lines":
        for _ in range(draw(st.integers(1, 3))):
            op = draw(st.sampled_from(["insert", "dup", "drop", "edit"]))
            i = draw(st.integers(0, max(0, len(lines) - 1)))
            if op == "insert":
                lines.insert(i, draw(st.one_of(st.sampled_from(WEIRD_STRINGS), st.text(max_size=10))))
            elif op == "dup" and lines:
                lines.insert(i, lines[i].upper() if draw(st.booleans()) else lines[i])
            elif op == "drop" and lines:
                del lines[i]
            elif lines:
                lines[i] = lines[i] + draw(st.sampled_from(["\x00", "\x1b[31m", "\u2028", "\r", " ", "\ufeff", "\ud800"]))
        return "\n".join(lines).encode("utf-8", "surrogatepass")
    if kind == "encoding":
        text = "\n".join(lines)
        return draw(st.sampled_from([text.encode("utf-16"), text.encode("latin-1", "replace") + b"\xe9\xff",
                                     b"\xef\xbb\xbf" + text.encode(), text.replace("\n", "\r\n").encode(), b"",
                                     b"\n\n\n", text.encode() + b"\x00"]))
    return draw(mutated_bytes(blob))


LABEL_FILES = ("labels.json", "labels_map.json", "labels.txt", "subs.txt", "groups.json", "modifiers.json", "clip_labels.json")


@st.composite
def label_files(draw, name: str | None = None) -> dict[str, bytes]:
    """One of the label, subs, groups, modifiers or clip-label files, mutated."""
    name = name or draw(st.sampled_from(LABEL_FILES))
    blob = (seeds().root / name).read_bytes()
    if name.endswith(".json"):
        return {name: draw(json_file(json.loads(blob)))}
    return {name: draw(text_lines_file(blob))}


ARRAY_DTYPES = [">f4", ">f8", "<f2", "<f8", "g", "c8", "c16", "O", "U4", "S4", "?", "i1", "u8", ">i8", "M8[s]", "m8[s]",
                "V8", [("a", "<f4"), ("b", "<f4")], ("<f4", (2,))]


@st.composite
def mutated_array(draw, x: np.ndarray) -> np.ndarray:
    """`x` with the wrong dtype, shape or values: big-endian, float128, complex, objects, strings, NaN, ..."""
    kind = draw(st.sampled_from(["dtype", "dtype", "shape", "values"]))
    if kind == "dtype":
        dtype = np.dtype(draw(st.sampled_from(ARRAY_DTYPES)))
        if dtype.kind == "O":
            return x.astype(object)
        if dtype.kind in "US":
            return x.astype(dtype)
        if dtype.kind == "V" or dtype.fields or dtype.subdtype:
            return np.zeros(x.shape[:1], dtype=dtype) if dtype.fields or dtype.subdtype else np.zeros(x.shape, dtype)
        try:
            return x.astype(dtype)
        except (TypeError, ValueError):
            return np.zeros(x.shape, dtype=dtype)
    if kind == "shape":
        return draw(st.sampled_from([x[None], x[:, :, None], x[:0], x.reshape(-1), x[:, :-1], np.zeros((0, 0), x.dtype),
                                     np.concatenate([x, x[:, :1]], axis=1), x[:1], np.asarray(x[0, 0]), x.T]))
    x = x.astype(np.float64 if draw(st.booleans()) else x.dtype)
    i, j = draw(st.integers(0, x.shape[0] - 1)), draw(st.integers(0, x.shape[1] - 1))
    with np.errstate(over="ignore"):  # 1e300 into float32 is inf: one more value of the wrong kind
        x[i, j] = draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e300, -1e300, 3.5e38, 1e-320, -0.0]))
    return x


@st.composite
def mutated_clip_labels(draw, y: np.ndarray) -> np.ndarray | None:
    return draw(st.sampled_from([
        None, y[:-1], y[:, None], y.astype(object), np.array([1.5] * len(y)), np.array([-1] * len(y)),
        np.array([2**62] * len(y)), np.array([True] * len(y)), np.array([""] * len(y)), np.array(["no such label"] * len(y)),
        np.array([b"\xff\xfe"] * len(y)), np.arange(len(y)) + 100, np.array([0] * len(y), dtype=">i8"),
    ]))


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=arr.dtype.hasobject)
    return buf.getvalue()


def _npz_bytes(arrays: dict[str, np.ndarray], compressed: bool = False) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def _safetensors_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    from safetensors.numpy import save

    try:
        return save({k: np.ascontiguousarray(v) for k, v in arrays.items()})
    except Exception:  # noqa: BLE001 - a dtype safetensors cannot store: written by hand, dtype code of our choosing
        header, data, pos = {}, b"", 0
        for k, v in arrays.items():
            raw = np.ascontiguousarray(v).tobytes() if v.dtype.kind != "O" else b""
            header[k] = {"dtype": {"c": "C64", "f": "F64", "M": "I64", "m": "I64", "U": "U8", "S": "U8"}.get(v.dtype.kind, "U8"),
                         "shape": list(v.shape), "data_offsets": [pos, pos + len(raw)]}
            data, pos = data + raw, pos + len(raw)
        return _join_safetensors(header, data)


@st.composite
def npy_header_edit(draw, blob: bytes) -> bytes:
    """An .npy file whose header declares another shape (huge, negative), dtype or order than its data."""
    text = blob[10 : 10 + int.from_bytes(blob[8:10], "little")].decode("latin-1")
    new = draw(st.sampled_from([
        text.replace("'shape': (", "'shape': (1000000000000, "), text.replace("'shape': (", "'shape': (-1, "),
        text.replace("'shape': (", "'shape': (10**6, "), text.replace("False", "True"),
        text.replace("'descr': '<f4'", "'descr': '<f16'"), text.replace("'descr': '<f4'", "'descr': '|O'"),
        text.replace("'descr': '<f4'", "'descr': '>c32'"), text.replace("'descr': '<f4'", "'descr': 'x'"),
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'extra': __import__('os')}",
        text[: len(text) // 2], text.replace("}", ", 'x': [[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]}"),
    ]))
    raw = new.encode("latin-1", "replace")
    raw += b" " * (-(10 + len(raw) + 1) % 64) + b"\n"
    return blob[:8] + len(raw).to_bytes(2, "little") + raw + blob[10 + int.from_bytes(blob[8:10], "little") :]


@st.composite
def zip_edit(draw, blob: bytes) -> bytes:
    """An .npz (zip) file with a bad CRC, a member size or count that lies, or a damaged directory."""
    data = bytearray(blob)
    kind = draw(st.sampled_from(["crc", "crc", "size", "count", "name"]))
    if kind == "crc":  # flip a byte inside a member's data: the stored CRC no longer matches
        first = data.find(b"\x93NUMPY")
        i = draw(st.integers(max(first, 0) + 80, len(data) - 1)) if first >= 0 and first + 80 < len(data) else len(data) // 2
        data[i] ^= 0x55
    elif kind == "size":  # the central directory's uncompressed size of the first member: huge or tiny
        at = data.find(b"PK\x01\x02")
        if at >= 0:
            data[at + 24 : at + 28] = draw(st.sampled_from([0xFFFFFFF0, 0, 1, 2**31])).to_bytes(4, "little")
    elif kind == "count":
        at = data.find(b"PK\x05\x06")
        if at >= 0:
            data[at + 10 : at + 12] = draw(st.sampled_from([0, 1, 99, 65535])).to_bytes(2, "little")
    else:
        at = data.find(b"PK\x01\x02")
        if at >= 0:
            n = int.from_bytes(data[at + 28 : at + 30], "little")
            data[at + 46 : at + 46 + n] = draw(st.sampled_from([b"../" , b"\x00", b"\xff"])).ljust(n, b"x")[:n]
    return bytes(data)


@st.composite
def feature_files(draw, kind: str) -> dict[str, bytes]:
    """A mutated clip-feature file: `feats.npz` / `feats.npy` / `feats.safetensors` (labelled clips for finetune)
    or `batch.npy` / `batch.npz` (a batch for predict)."""
    s = seeds()
    src = {"npz": s.features_npz, "npy": s.features_npy, "safetensors": s.features_st, "batch_npy": s.batch_npy,
           "batch_npz": s.batch_npz}[kind]
    name = src.name
    blob = src.read_bytes()
    how = draw(st.sampled_from(["arrays", "arrays", "arrays", "container", "bytes"]))
    if how == "bytes":
        return {name: draw(mutated_bytes(blob))}
    if kind in ("npz", "batch_npz"):
        with np.load(src) as f:
            arrays = {k: f[k] for k in f.files}
    elif kind == "safetensors":
        from safetensors.numpy import load_file

        arrays = load_file(str(src))
    else:
        arrays = {"x": np.load(src)}
    main = "clips" if kind == "batch_npz" else "features" if "features" in arrays else "x"
    if how == "arrays":
        part = draw(st.sampled_from([main, main, "labels", "extra", "rename"]))
        if part == main:
            arrays[main] = draw(mutated_array(arrays[main]))
        elif part == "labels" and "labels" in arrays:
            y = draw(mutated_clip_labels(arrays["labels"]))
            if y is None:
                del arrays["labels"]
            else:
                arrays["labels"] = y
        elif part == "extra":
            arrays["other"] = arrays[main]
        elif len(arrays) > 0:
            arrays = {f"{k}_renamed": v for k, v in arrays.items()}
    if kind in ("npy", "batch_npy"):
        out = _npy_bytes(next(iter(arrays.values())) if arrays else np.zeros(0))
        if how == "container":
            out = draw(npy_header_edit(out))
        return {name: out}
    if kind == "safetensors":
        out = _safetensors_bytes(arrays)
        return {name: draw(safetensors_file(out)) if how == "container" else out}
    out = _npz_bytes(arrays, compressed=draw(st.booleans()))
    if how == "container":
        out = draw(zip_edit(out))
        if draw(st.booleans()):  # an npy member with a lying header
            member = draw(npy_header_edit(_npy_bytes(arrays[main])))
            import zipfile

            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as z:
                for k, v in arrays.items():
                    z.writestr(f"{k}.npy", member if k == main else _npy_bytes(v))
            out = buf.getvalue()
    return {name: out}


@st.composite
def csv_file(draw, blob: bytes) -> bytes:
    """A `video_path,label_index` CSV: rows with odd fields (NUL, quotes, non-integers), odd encodings, bytes."""
    kind = draw(st.sampled_from(["rows", "rows", "bytes"]))
    if kind == "bytes":
        return draw(mutated_bytes(blob))
    lines = blob.decode("utf-8").splitlines()
    i = draw(st.integers(0, max(0, len(lines) - 1)))
    bad = draw(st.sampled_from([
        "videos/x.mp4", "videos/x.mp4,", ",3", "videos/x.mp4,1.5", "videos/x.mp4,-1", "videos/x.mp4,999999999999999999999",
        'videos/"x.mp4,1', '"videos/x.mp4\n",1', "a\x00b,1", "videos/x.mp4,1,2,3", "\xff\xfe,1", "videos/nowhere.mp4,0",
        "videos/x.mp4,\u0661", "x" * 200000 + ",1", "videos/x.mp4, 1 ", "videos/x.mp4,1" * 3,
    ]))
    lines.insert(i, bad) if draw(st.booleans()) else lines.__setitem__(i, bad) if lines else lines.append(bad)
    return "\n".join(lines).encode("utf-8", "surrogateescape")


@st.composite
def layout_files(draw) -> dict[str, bytes | None]:
    """The paper's layout (`layout/...`) and its features (`layout_feats.npz`), one part of it damaged.
    A value None deletes that file."""
    s = seeds()
    files: dict[str, bytes | None] = {f"layout/{k}": v for k, v in read_tree(s.layout).items()}
    files["layout_feats.npz"] = s.layout_features.read_bytes()
    target = draw(st.sampled_from(["scheme", "scheme", "labels", "csv", "csv", "features", "features", "delete"]))
    if target == "scheme":
        files["layout/group_scheme.json"] = draw(json_file(json.loads(files["layout/group_scheme.json"])))
    elif target == "labels":
        files["layout/A/labels.json"] = draw(json_file(json.loads(files["layout/A/labels.json"])))
    elif target == "csv":
        name = draw(st.sampled_from(sorted(k for k in files if k.endswith(".csv"))))
        files[name] = draw(csv_file(files[name]))
    elif target == "features":
        with np.load(s.layout_features) as f:
            arrays = {k: f[k] for k in f.files}
        part = draw(st.sampled_from(["features", "features", "paths", "keyed", "container"]))
        if part == "features":
            arrays["features"] = draw(mutated_array(arrays["features"]))
        elif part == "paths":
            arrays["paths"] = draw(st.sampled_from([arrays["paths"][:-1], arrays["paths"].astype(object), arrays["paths"][:, None],
                                                    np.arange(len(arrays["paths"])), np.array([b"\xff"] * len(arrays["paths"]))]))
        elif part == "keyed":  # the other layout: one array per video path
            first = draw(mutated_array(arrays["features"]))
            arrays = {p: (first[0] if first.ndim and len(first) else first) if i == 0 else v
                      for i, (p, v) in enumerate(zip(arrays["paths"].tolist(), arrays["features"]))}
        files["layout_feats.npz"] = _npz_bytes(arrays) if part != "container" else draw(zip_edit(_npz_bytes(arrays)))
    else:
        files[draw(st.sampled_from(sorted(files)))] = None
    return files


@st.composite
def config_json(draw, cfg: dict) -> bytes:
    """A BERT config.json with fields of the wrong type or size (or a mutated JSON text)."""
    if draw(st.integers(0, 2)) == 0:
        return draw(json_file(cfg))
    cfg = dict(cfg)
    for _ in range(draw(st.integers(1, 2))):
        key = draw(st.sampled_from(sorted(cfg)))
        cfg[key] = draw(st.one_of(
            st.sampled_from([0, -1, 1, 3, 7, 10**9, 10**18, 2**63, 1.5, "8", None, True, [], {}, "relu", "bert", "gelu_fast",
                             float("nan"), float("inf"), 1e-30, -1e-12, "absolute", "relative_key"]),
            weird_scalars()))
    return dump_json(cfg)


@st.composite
def encoder_files(draw, kind: str | None = None) -> dict[str, bytes | None]:
    """A text-encoder folder `encoder/` (tiny BERT, or ONNX + tokenizer) with one file damaged or missing."""
    s = seeds()
    kind = kind or draw(st.sampled_from(["bert", "bert", "onnx"]))
    folder = s.bert if kind == "bert" else s.onnx_encoder
    files: dict[str, bytes | None] = {f"encoder/{k}": v for k, v in read_tree(folder).items()}
    target = draw(st.sampled_from(["config.json", "config.json", "tokenizer.json", "weights", "weights", "delete"]
                                  if kind == "bert" else ["tokenizer.json", "weights", "weights", "delete"]))
    if target == "config.json":
        files["encoder/config.json"] = draw(config_json(json.loads(files["encoder/config.json"])))
    elif target == "tokenizer.json":
        files["encoder/tokenizer.json"] = draw(json_file(json.loads(files["encoder/tokenizer.json"])))
    elif target == "weights" and kind == "bert":
        files["encoder/model.safetensors"] = draw(safetensors_file(files["encoder/model.safetensors"]))
    elif target == "weights":
        files["encoder/model.onnx"] = draw(onnx_files(folder / "model.onnx"))["model.onnx"]
    else:
        files[draw(st.sampled_from(sorted(files)))] = None
    return files


@st.composite
def backbone_weight_files(draw) -> dict[str, bytes]:
    """Backbone weights `backbone.safetensors` or `backbone.pt`, damaged: bytes, header, or what the state dict holds."""
    import torch

    s = seeds()
    if draw(st.booleans()):
        return {"backbone.safetensors": draw(safetensors_file(s.backbone_st.read_bytes()))}
    if draw(st.integers(0, 2)) == 0:
        return {"backbone.pt": draw(mutated_bytes(s.backbone_pt.read_bytes()))}
    state: Any = dict(torch.load(s.backbone_pt, weights_only=True))
    key = draw(st.sampled_from(sorted(state)))
    kind = draw(st.sampled_from(["tensor", "tensor", "value", "drop", "extra", "container"]))
    if kind == "tensor":
        state[key] = draw(_tensor_values())
    elif kind == "value":
        state[key] = draw(st.sampled_from([None, 3, "x", [torch.ones(1)], {"a": torch.ones(1)}, 1.5]))
    elif kind == "drop":
        del state[key]
    elif kind == "extra":
        state[draw(st.sampled_from(["extra", "", "conv", "conv.weight.x", 1]))] = torch.ones(2)
    else:
        state = draw(st.sampled_from([[state], {"state_dict": state}, torch.ones(3), None, {"self": None}]))
        if isinstance(state, dict) and "self" in state:
            state["self"] = state
    return {"backbone.pt": torch_bytes(state)}


@st.composite
def json_text_files(draw) -> dict[str, bytes]:
    """One of the JSON files a command reads (labels, groups, modifiers, clip labels), holding any JSON text:
    the seed edited, an arbitrary value, or arbitrary bytes that look like JSON."""
    name = draw(st.sampled_from(["labels.json", "labels_map.json", "groups.json", "modifiers.json", "clip_labels.json"]))
    seed = json.loads((seeds().root / name).read_bytes())
    text = draw(st.one_of(
        json_file(seed),
        json_values(max_leaves=20).map(dump_json),
        st.lists(st.sampled_from(list('{}[]",:0123456789-+.eE \\u"tfnrl') + ["null", "true", "1e999", "NaN"]),
                 max_size=40).map(lambda t: "".join(t).encode()),
        st.binary(max_size=40),
    ))
    return {name: text}
