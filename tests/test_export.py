"""catsplit.export: ONNX export with the backbone, onnxruntime sessions, editing ONNX models, Triton."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import catsplit
from catsplit import CatsplitError
from conftest import HashEncoder, compositional_head

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
export = pytest.importorskip("catsplit.export")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

DIM = 32


class TinyBackbone(torch.nn.Module):
    """uint8 clips [N, T, H, W, 3] -> features [N, DIM]: a Conv3d, a ReLU and a mean, like the benchmark's."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv3d(3, DIM, 3, stride=2, padding=1)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        x = clips.permute(0, 4, 1, 2, 3).float() / 255.0
        return torch.relu(self.conv(x)).mean(dim=(2, 3, 4)) * 8.0


def clips(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 4, 8, 8, 3), dtype=torch.uint8, generator=g)


@pytest.fixture(scope="module")
def heads(retrieval_edits):
    return retrieval_edits  # (head, flat, hier, subs)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, heads):
    """The backbone with the flat and the hierarchical edit, each exported once (the exporter takes seconds)."""
    _, flat, hier, _ = heads
    folder = tmp_path_factory.mktemp("onnx")
    backbone = TinyBackbone().eval()
    paths = {}
    for name, head in (("flat", flat), ("hier", hier)):
        paths[name] = export.to_onnx(backbone, head, folder / f"{name}.onnx", clips(4))
    return backbone, paths


def head_nodes(path: Path) -> list[str]:
    return [n.op_type for n in onnx.load(str(path)).graph.node if n.name.startswith("catsplit_head/")]


def metadata(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


# --- to_onnx -------------------------------------------------------------------------------------
def test_flat_export_is_one_gemm_with_labels_and_matches_torch(exported, heads):
    backbone, paths = exported
    flat = heads[1]
    model = onnx.load(str(paths["flat"]))
    assert head_nodes(paths["flat"]) == ["Gemm"]
    assert [i.name for i in model.graph.input] == ["clips"] and [o.name for o in model.graph.output] == ["logits"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # dynamic batch axis
    meta = metadata(paths["flat"])
    assert json.loads(meta["catsplit.labels"]) == list(flat.labels)
    assert json.loads(meta["catsplit.history"]) == json.loads(json.dumps(list(flat.history)))
    assert meta["catsplit.output"] == "logits"
    sess = export.session(paths["flat"], "cpu")
    for n in (1, 3, 6):  # batch 1 and odd batches run on a graph traced with 4
        x = clips(n, seed=n)
        labels, probs = export.predict(sess, x.numpy())
        with torch.no_grad():
            f = backbone(x)
        assert labels.tolist() == flat.predict(f).tolist()
        np.testing.assert_allclose(probs, flat.probs(f).numpy(), atol=1e-5)


def test_hierarchical_export_is_gated_and_keeps_other_predictions(exported, heads):
    backbone, paths = exported
    head, _, hier, subs = heads
    assert metadata(paths["hier"])["catsplit.output"] == "probabilities"
    assert head_nodes(paths["hier"]).count("Gemm") == 2
    sess = export.session(paths["hier"], "cpu")
    x = clips(64, seed=7)
    labels, probs = export.predict(sess, x.numpy())
    with torch.no_grad():
        f = backbone(x)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probs, hier.probs(f).numpy(), atol=1e-5)
    before = head.predict(f)
    kept = before != "Pushing something"
    assert kept.any()
    assert (labels[kept] == before[kept]).all()  # locality: every other top-1 stays
    assert set(labels[~kept]) <= set(subs)


@pytest.mark.parametrize("opset", [13, 18])  # ReduceL2 takes its axes as an attribute before 18, an input from 18
def test_text_head_exports_with_normalisation(tmp_path, opset):
    enc = HashEncoder(dim=DIM)
    labels = ["Pushing something up", "Lifting something", "Dropping something onto something"]
    head = catsplit.text_head(labels, enc, scale=20.0)
    edited = catsplit.split(head, enc, "Lifting something", ["Lifting something up", "Lifting something slowly"], method="text")
    path = export.to_onnx(None, edited, tmp_path / "text.onnx", torch.randn(5, DIM), opset=opset)
    assert "ReduceL2" in head_nodes(path)
    assert [o.version for o in onnx.load(str(path)).opset_import] == [opset]
    f = torch.randn(9, DIM) * 3
    labels_out, probs = export.predict(export.session(path, "cpu"), f.numpy())
    np.testing.assert_allclose(probs, edited.probs(f).numpy(), atol=1e-5)
    assert labels_out.tolist() == edited.predict(f).tolist()


def test_verification_names_the_largest_difference(tmp_path, heads):
    head, flat, _, _ = heads
    path = export.to_onnx(None, flat, tmp_path / "flat.onnx", torch.randn(4, DIM))
    other = catsplit.Head(weight=flat.weight * 1.5, bias=flat.bias, labels=flat.labels)
    with pytest.raises(CatsplitError, match=r"disagree by [0-9.e+-]+ .*at clip \d+, label '"):
        export.check_model(path, None, other, torch.randn(4, DIM))


def test_failed_verification_leaves_no_file(tmp_path, heads, monkeypatch):
    from catsplit.export import exporter

    def broken(*args, **kwargs):
        raise CatsplitError("parity failed")

    monkeypatch.setattr(exporter, "check_model", broken)
    with pytest.raises(CatsplitError, match="parity failed"):
        export.to_onnx(None, heads[1], tmp_path / "m.onnx", torch.randn(4, DIM))
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_existing_file_and_bad_shapes(tmp_path, heads):
    head = heads[0]
    path = tmp_path / "m.onnx"
    path.write_bytes(b"keep me")
    with pytest.raises(CatsplitError, match="exists"):
        export.to_onnx(None, head, path, torch.randn(2, DIM))
    assert path.read_bytes() == b"keep me"
    export.to_onnx(None, head, path, torch.randn(2, DIM), overwrite=True)
    assert head_nodes(path) == ["Gemm"]
    with pytest.raises(CatsplitError, match=rf"features \[N, {DIM}\]"):
        export.to_onnx(None, head, tmp_path / "x.onnx", torch.randn(2, DIM + 1))
    with pytest.raises(CatsplitError, match=rf"features \[N, {DIM}\].*returned \(2, 7\)"):
        export.to_onnx(torch.nn.Linear(3, 7), head, tmp_path / "x.onnx", torch.randn(2, 3))
    with pytest.raises(CatsplitError, match="catsplit.Head"):
        export.to_onnx(None, "head.safetensors", tmp_path / "x.onnx", torch.randn(2, DIM))


# --- session / predict ---------------------------------------------------------------------------
def test_session_reports_a_missing_cuda_provider(tmp_path, heads):
    path = export.to_onnx(None, heads[0], tmp_path / "m.onnx", torch.randn(2, DIM))
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(CatsplitError, match="onnxruntime-gpu"):
        export.session(path, "cuda", strict=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sess = export.session(path, "cuda")
    assert [str(w.message) for w in caught if "CPU" in str(w.message)] and len(caught) == 1
    assert sess.get_providers() == ["CPUExecutionProvider"]
    assert export.session(path, "auto").get_providers() == ["CPUExecutionProvider"]
    with pytest.raises(CatsplitError, match="device must be one of"):
        export.session(path, "tpu")


@pytest.mark.skipif("CUDAExecutionProvider" not in ort.get_available_providers() or not torch.cuda.is_available(),
                    reason="needs onnxruntime-gpu and a CUDA device")
def test_cuda_session_with_io_binding(exported, heads):  # pragma: no cover - GPU machines only
    backbone, paths = exported
    sess = export.session(paths["hier"], "cuda", strict=True)
    assert sess.get_providers()[0] == "CUDAExecutionProvider"
    x = clips(8, seed=3)
    labels_host, probs_host = export.predict(sess, x.numpy())
    labels_dev, probs_dev = export.predict(sess, x.cuda())
    assert labels_dev.tolist() == labels_host.tolist()
    np.testing.assert_allclose(probs_dev, probs_host, atol=1e-5)


def test_predict_in_chunks_and_bad_input(exported):
    _, paths = exported
    sess = export.session(paths["flat"], "cpu")
    x = clips(7, seed=1).numpy()
    labels, probs = export.predict(sess, x)
    labels2, probs2 = export.predict(sess, x, batch_size=3)
    assert labels.tolist() == labels2.tolist()
    np.testing.assert_allclose(probs, probs2, atol=1e-6)
    with pytest.raises(CatsplitError, match="takes uint8"):
        export.predict(sess, x.astype(np.float32))
    with pytest.raises(CatsplitError, match="could not run the model on input of shape"):
        export.predict(sess, x[:, :2])



def test_output_name_is_read_once_per_session(exported, monkeypatch):
    from catsplit.export import runtime

    _, paths = exported
    calls = []
    parse = runtime._parse_output_name
    monkeypatch.setattr(runtime, "_parse_output_name", lambda sess, meta: calls.append(1) or parse(sess, meta))
    sess = export.session(paths["flat"], "cpu")
    x = clips(3, seed=2).numpy()
    first = export.predict(sess, x)
    second = export.predict(sess, x)  # the large catsplit.head JSON is not parsed again
    assert len(calls) == 1 and first[0].tolist() == second[0].tolist()
    assert runtime._OUTPUT_NAMES[sess] == json.loads(sess.get_modelmeta().custom_metadata_map["catsplit.head"])["output"]
    export.predict(export.session(paths["flat"], "cpu"), x)  # a new session is worked out anew
    assert len(calls) == 2

# --- edit_onnx -----------------------------------------------------------------------------------
def test_edit_onnx_on_an_exported_model_equals_exporting_the_edit(tmp_path, exported, heads):
    backbone, paths = exported
    head, flat, _, subs = heads
    enc = HashEncoder()
    out = export.edit_onnx(paths["flat"], enc, "Lifting something up", ["Lifting something up quickly", "Lifting something up slowly"],
                           tmp_path / "e.onnx", method="retrieval", mode="hierarchical")
    expected = catsplit.split(flat, enc, "Lifting something up", ["Lifting something up quickly", "Lifting something up slowly"],
                              method="retrieval", mode="hierarchical")
    meta = metadata(out)
    assert json.loads(meta["catsplit.labels"]) == list(expected.labels)
    assert [r["coarse"] for r in json.loads(meta["catsplit.history"])] == ["Pushing something", "Lifting something up"]
    assert meta["catsplit.output"] == "log_probabilities"  # the output that held logits: softmax(output) = p
    x = clips(16, seed=5)
    labels, probs = export.predict(export.session(out, "cpu"), x.numpy())
    with torch.no_grad():
        f = backbone(x)
    np.testing.assert_allclose(probs, expected.probs(f).numpy(), atol=1e-5)
    # and once more, flat, on the edited model
    out2 = export.edit_onnx(out, None, "Sliding something up", ["Sliding something up fast", "Sliding something up slowly"],
                            tmp_path / "e2.onnx", method="coarse")
    expected2 = catsplit.split(expected, None, "Sliding something up", ["Sliding something up fast", "Sliding something up slowly"],
                               method="coarse")
    _, probs2 = export.predict(export.session(out2, "cpu"), x.numpy())
    np.testing.assert_allclose(probs2, expected2.probs(f).numpy(), atol=1e-5)
    assert sum(1 for t in onnx.load(str(out2)).graph.initializer if t.name.endswith("/weight")) == 2  # old tensors dropped


LABELS = ["Pushing something left", "Pushing something right", "Holding something", "Dropping something"]


def foreign_model(path: Path, layout: str, *, softmax: bool, labels_in_metadata: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A model built with the onnx helper API: x [N, 6] -> MatMul -> Relu -> classifier (-> Softmax).

    Returns (the first layer, W [C, D], b [C]) so a test can compute the features itself.
    """
    rng = np.random.default_rng(1)
    w1 = rng.standard_normal((6, 10)).astype(np.float32)
    w = rng.standard_normal((len(LABELS), 10)).astype(np.float32)
    b = rng.standard_normal(len(LABELS)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="body"), helper.make_node("Relu", ["h"], ["feat"], name="relu")]
    inits = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b, "b")]
    last = "scores" if softmax else "out"
    if layout == "gemm-transB":  # weight [C, D]
        nodes.append(helper.make_node("Gemm", ["feat", "w", "b"], [last], name="fc", transB=1))
        inits.append(numpy_helper.from_array(w, "w"))
    elif layout == "gemm":  # weight [D, C]
        nodes.append(helper.make_node("Gemm", ["feat", "w", "b"], [last], name="fc"))
        inits.append(numpy_helper.from_array(np.ascontiguousarray(w.T), "w"))
    else:  # MatMul [D, C] + Add
        nodes += [helper.make_node("MatMul", ["feat", "w"], ["mm"], name="fc"), helper.make_node("Add", ["mm", "b"], [last], name="fc_bias")]
        inits.append(numpy_helper.from_array(np.ascontiguousarray(w.T), "w"))
    if softmax:
        nodes.append(helper.make_node("Softmax", [last], ["out"], name="softmax", axis=-1))
    graph = helper.make_graph(
        nodes, "foreign", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", len(LABELS)])], inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    if labels_in_metadata:
        entry = model.metadata_props.add()
        entry.key, entry.value = "labels", json.dumps(LABELS)
    onnx.save(model, str(path))
    return w1, w, b


@pytest.mark.parametrize("layout", ["gemm-transB", "gemm", "matmul-add"])
@pytest.mark.parametrize("softmax", [False, True])
@pytest.mark.parametrize("mode", ["flat", "hierarchical"])
def test_edit_onnx_on_models_built_with_the_helper_api(tmp_path, layout, softmax, mode):
    w1, w, b = foreign_model(tmp_path / "src.onnx", layout, softmax=softmax)
    subs = ["Holding something up", "Holding something down"]
    out = export.edit_onnx(tmp_path / "src.onnx", None, "Holding something", subs, tmp_path / "dst.onnx", method="coarse", mode=mode)
    expected = catsplit.split(catsplit.Head(weight=w, bias=b, labels=LABELS), None, "Holding something", subs, method="coarse", mode=mode)
    x = np.random.default_rng(2).standard_normal((11, 6)).astype(np.float32)
    f = np.maximum(x @ w1, 0)
    sess = export.session(out, "cpu")
    assert [o.name for o in sess.get_outputs()] == ["out"] and sess.get_outputs()[0].shape[1] == len(expected.labels)
    labels, probs = export.predict(sess, x)
    np.testing.assert_allclose(probs, expected.probs(f), atol=1e-5)
    raw = sess.run(None, {"x": x})[0]
    if mode == "flat" and not softmax:
        np.testing.assert_allclose(raw, expected.logits(f), atol=1e-4)  # still logits
    kept = expected.predict(f) != "Holding something up"  # subs of a coarse copy tie; the first wins in both
    assert (labels[kept] == expected.predict(f)[kept]).all()
    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    assert "MatMul" in ops and ops.count("Softmax") == (1 if mode == "flat" and softmax else 0) + (2 if mode == "hierarchical" else 0)


def test_edit_onnx_tie_warning_points_at_the_callers_line(tmp_path):
    """The hash encoder gives two subs with the same words one embedding: the warning names this file."""
    foreign_model(tmp_path / "src.onnx", "gemm", softmax=False)
    subs = ["Holding something from left to right", "Holding something from right to left"]
    with pytest.warns(catsplit.text.NearDuplicateWarning) as caught:
        export.edit_onnx(tmp_path / "src.onnx", HashEncoder(), "Holding something", subs, tmp_path / "dst.onnx", method="text")
    assert [w.filename for w in caught] == [__file__]


def test_edit_onnx_reads_labels_from_a_file(tmp_path):
    w1, w, b = foreign_model(tmp_path / "src.onnx", "gemm", softmax=False, labels_in_metadata=False)
    subs = ["Dropping something onto", "Dropping something into"]
    with pytest.raises(CatsplitError, match="pass labels="):
        export.edit_onnx(tmp_path / "src.onnx", None, "Dropping something", subs, tmp_path / "dst.onnx", method="coarse")
    (tmp_path / "labels.txt").write_text("\n".join(LABELS) + "\n")
    out = export.edit_onnx(tmp_path / "src.onnx", None, "Dropping something", subs, tmp_path / "dst.onnx",
                           labels=tmp_path / "labels.txt", method="coarse")
    assert json.loads(metadata(out)["catsplit.labels"]) == LABELS[:3] + subs


def test_edit_onnx_errors(tmp_path):
    foreign_model(tmp_path / "src.onnx", "gemm", softmax=False)
    src = tmp_path / "src.onnx"
    subs = ["Holding something up", "Holding something down"]
    with pytest.raises(CatsplitError, match=r"no Gemm or MatMul .* of 5 classes.*Gemm 'fc' \(4 outputs\)"):
        export.edit_onnx(src, None, "Holding something", subs, tmp_path / "d.onnx", labels=LABELS + ["extra"], method="coarse")
    with pytest.raises(CatsplitError, match="not in the head|not a label"):
        export.edit_onnx(src, None, "Juggling", subs, tmp_path / "d.onnx", method="coarse")
    with pytest.raises(CatsplitError, match="is the source model"):
        export.edit_onnx(src, None, "Holding something", subs, src, method="coarse")
    (tmp_path / "d.onnx").write_bytes(b"")
    with pytest.raises(CatsplitError, match="exists"):
        export.edit_onnx(src, None, "Holding something", subs, tmp_path / "d.onnx", method="coarse")
    (tmp_path / "junk.onnx").write_bytes(b"\x00not a model")
    with pytest.raises(CatsplitError, match="not a readable ONNX model"):
        export.edit_onnx(tmp_path / "junk.onnx", None, "Holding something", subs, tmp_path / "e.onnx", method="coarse")
    assert not (tmp_path / "e.onnx").exists()


def test_edit_onnx_needs_node_when_two_layers_match(tmp_path):
    rng = np.random.default_rng(0)
    w_a, w_b = (rng.standard_normal((4, 4)).astype(np.float32) for _ in range(2))
    nodes = [helper.make_node("Gemm", ["x", "wa"], ["h"], name="first", transB=1),
             helper.make_node("Gemm", ["h", "wb"], ["out"], name="second", transB=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 4]),
                               helper.make_tensor_value_info("h", TensorProto.FLOAT, ["N", 4])],
                              [numpy_helper.from_array(w_a, "wa"), numpy_helper.from_array(w_b, "wb")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(tmp_path / "two.onnx"))
    with pytest.raises(CatsplitError, match=r"several classifiers.*pass node="):
        export.edit_onnx(tmp_path / "two.onnx", None, "c", ["c x", "c y"], tmp_path / "d.onnx", labels=["a", "b", "c", "d"], method="coarse")
    out = export.edit_onnx(tmp_path / "two.onnx", None, "c", ["c x", "c y"], tmp_path / "d.onnx", labels=["a", "b", "c", "d"],
                           node="second", method="coarse")
    names = [n.name for n in onnx.load(str(out)).graph.node]
    assert "first" in names and "second" not in names


def test_external_data_outside_the_model_folder_is_refused(tmp_path):
    foreign_model(tmp_path / "src.onnx", "gemm-transB", softmax=False)
    model = onnx.load(str(tmp_path / "src.onnx"))
    (tmp_path / "models").mkdir()
    onnx.save_model(model, str(tmp_path / "models" / "m.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    model = onnx.load(str(tmp_path / "models" / "m.onnx"), load_external_data=False)
    for t in model.graph.initializer:
        for entry in t.external_data:
            if entry.key == "location":
                entry.value = "../secret.bin"
    onnx.save(model, str(tmp_path / "models" / "evil.onnx"))
    (tmp_path / "secret.bin").write_bytes((tmp_path / "models" / "weights.bin").read_bytes())
    with pytest.raises(CatsplitError, match="outside the model's folder"):
        export.edit_onnx(tmp_path / "models" / "evil.onnx", None, "Holding something", ["Holding something up", "Holding something down"],
                         tmp_path / "d.onnx", method="coarse")
    with pytest.raises(CatsplitError, match="escapes model directory"):  # onnxruntime's own check, passed on
        export.session(tmp_path / "models" / "evil.onnx", "cpu")
    with pytest.raises(CatsplitError, match="external data"):
        export.triton(tmp_path / "models" / "m.onnx", tmp_path / "repo", name="m", max_batch_size=4)
    # data beside the model is fine
    out = export.edit_onnx(tmp_path / "models" / "m.onnx", None, "Holding something", ["Holding something up", "Holding something down"],
                           tmp_path / "d.onnx", method="coarse")
    assert len(json.loads(metadata(out)["catsplit.labels"])) == 5


# --- triton --------------------------------------------------------------------------------------
def parse_pbtxt(text: str) -> dict:
    """A small reader for the protobuf text format subset of Triton configs (written independently of the writer)."""
    tokens = re.findall(r'"(?:[^"\\]|\\.)*"|[{}\[\],:]|[^\s{}\[\],:]+', text)
    pos = 0

    def value():
        nonlocal pos
        tok = tokens[pos]
        if tok == "{":
            pos += 1
            return message("}")
        if tok == "[":
            pos += 1
            items = []
            while tokens[pos] != "]":
                items.append(value())
                if tokens[pos] == ",":
                    pos += 1
            pos += 1
            return items
        pos += 1
        if tok.startswith('"'):
            return json.loads(tok)
        try:
            return int(tok)
        except ValueError:
            return tok

    def message(end):
        nonlocal pos
        out: dict = {}
        while pos < len(tokens) and tokens[pos] != end:
            key = tokens[pos]
            pos += 1
            if tokens[pos] == ":":
                pos += 1
            out[key] = value()
        pos += 1
        return out

    return message(None)


def test_triton_repository_matches_the_graph(tmp_path, exported, heads):
    _, paths = exported
    hier = heads[2]
    folder = export.triton(paths["hier"], tmp_path / "repo", name="clf", max_batch_size=16, instance="cpu")
    assert folder == tmp_path / "repo" / "clf"
    config = parse_pbtxt((folder / "config.pbtxt").read_text())
    model = onnx.load(str(paths["hier"]))
    assert config["name"] == "clf" and config["platform"] == "onnxruntime_onnx" and config["max_batch_size"] == 16
    (inp,), (out,) = config["input"], config["output"]
    graph_in, graph_out = model.graph.input[0], model.graph.output[0]
    assert inp["name"] == graph_in.name and inp["data_type"] == "TYPE_UINT8"
    assert inp["dims"] == [d.dim_value for d in graph_in.type.tensor_type.shape.dim[1:]]
    assert out["name"] == graph_out.name == "probabilities" and out["data_type"] == "TYPE_FP32"
    assert out["dims"] == [len(hier.labels)] and out["label_filename"] == "labels.txt"
    assert "dynamic_batching" in config and config["instance_group"] == [{"count": 1, "kind": "KIND_CPU"}]
    assert (folder / "labels.txt").read_text().splitlines() == list(hier.labels)
    assert (folder / "1" / "model.onnx").read_bytes() == Path(paths["hier"]).read_bytes()
    with pytest.raises(CatsplitError, match="exists"):
        export.triton(paths["hier"], tmp_path / "repo", name="clf", max_batch_size=16)
    export.triton(paths["flat"], tmp_path / "repo", name="clf", max_batch_size=4, overwrite=True)
    assert parse_pbtxt((folder / "config.pbtxt").read_text())["instance_group"] == [{"count": 1, "kind": "KIND_GPU"}]
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == ["clf"]  # no staging folders left


def test_triton_refuses_bad_arguments(tmp_path, exported):
    _, paths = exported
    for kwargs, match in [
        ({"name": "a/b", "max_batch_size": 4}, "plain folder name"),
        ({"name": "m", "max_batch_size": 0}, "max_batch_size"),
        ({"name": "m", "max_batch_size": 4, "instance": "tpu"}, "'gpu' or 'cpu'"),
    ]:
        with pytest.raises(CatsplitError, match=match):
            export.triton(paths["flat"], tmp_path / "repo", **kwargs)
    fixed = tmp_path / "fixed.onnx"
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    entry = model.metadata_props.add()
    entry.key, entry.value = "catsplit.labels", json.dumps(["a", "b", "c"])
    onnx.save(model, str(fixed))
    with pytest.raises(CatsplitError, match="fixed batch of 1"):
        export.triton(fixed, tmp_path / "repo", name="m", max_batch_size=4)


def test_import_of_catsplit_export_is_light():
    import subprocess
    import sys

    code = ("import sys, catsplit.export as cx; cx.to_onnx, cx.edit_onnx; "
            "print(sorted(m for m in ('onnx', 'onnxruntime', 'onnxscript', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_missing_onnx_names_the_extra(monkeypatch, tmp_path, heads):
    import builtins

    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    with pytest.raises(CatsplitError, match=r"catsplit\[onnx\]"):
        export.to_onnx(None, heads[0], tmp_path / "m.onnx", torch.randn(2, DIM))


@pytest.mark.parametrize("dtype", [np.float16, "bfloat16"])
def test_half_precision_heads_export_in_float32(tmp_path, dtype):
    head, subs, _, _ = compositional_head(dim=DIM)
    weight = torch.from_numpy(head.weight.numpy() if hasattr(head.weight, "numpy") else np.asarray(head.weight))
    weight = weight.to(torch.bfloat16 if dtype == "bfloat16" else torch.float16)
    half = catsplit.Head(weight=weight, bias=torch.as_tensor(head.bias).to(weight.dtype), labels=head.labels)
    edited = catsplit.split(half, HashEncoder(), "Pushing something", subs, method="retrieval", mode="hierarchical")
    path = export.to_onnx(None, edited, tmp_path / "half.onnx", torch.randn(4, DIM))
    assert {t.data_type for t in onnx.load(str(path)).graph.initializer if t.name.endswith(("weight", "bias"))} == {TensorProto.FLOAT}
    f = torch.randn(8, DIM)
    labels, probs = export.predict(export.session(path, "cpu"), f.numpy())
    np.testing.assert_allclose(probs, edited.probs(f).numpy(), atol=1e-5)


def test_split_onnx_takes_src_dst_first_like_split_file_and_edit_onnx_stays_its_alias(tmp_path):
    foreign_model(tmp_path / "src.onnx", "gemm", softmax=False)
    subs = ["Holding something up", "Holding something down"]
    a = export.split_onnx(tmp_path / "src.onnx", tmp_path / "a.onnx", None, "Holding something", subs, method="coarse")
    b = export.edit_onnx(tmp_path / "src.onnx", None, "Holding something", subs, tmp_path / "b.onnx", method="coarse")
    assert (a, b) == (tmp_path / "a.onnx", tmp_path / "b.onnx")
    assert a.read_bytes() == b.read_bytes()
    with pytest.raises(CatsplitError, match="exists"):  # the same options reach split_onnx through the alias
        export.edit_onnx(tmp_path / "src.onnx", None, "Holding something", subs, tmp_path / "b.onnx", method="coarse")
