"""catsplit.export.onnx_edit: split a class inside an existing ONNX model — models exported by catsplit, built
with the onnx helper API, or written by other tools (weights as graph inputs, old IR versions and opsets, a
classifier output also read by a Softmax)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import catsplit
from catsplit import CatsplitError
from conftest import HashEncoder
from onnx_models import clips, export, exported, heads, metadata, onnx  # noqa: F401 (fixtures)

from onnx import TensorProto, helper, numpy_helper  # after onnx_models, which skips the module without onnx

LABELS = ["Pushing something left", "Pushing something right", "Holding something", "Dropping something"]
SUBS = ["Holding something up", "Holding something down"]
RNG = np.random.default_rng(1)
W1 = RNG.standard_normal((6, 10)).astype(np.float32)
W = RNG.standard_normal((4, 10)).astype(np.float32)
B = RNG.standard_normal(4).astype(np.float32)
X = np.random.default_rng(2).standard_normal((7, 6)).astype(np.float32)
FEATURES = np.maximum(X @ W1, 0)


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
    outputs = ["out"] + (["top1"] if mode == "hierarchical" else [])  # a hierarchical head adds its exact top-1
    assert [o.name for o in sess.get_outputs()] == outputs and sess.get_outputs()[0].shape[1] == len(expected.labels)
    labels, probs = export.predict(sess, x)
    np.testing.assert_allclose(probs, expected.probs(f), atol=1e-5)
    raw = sess.run(None, {"x": x})[0]
    if mode == "flat" and not softmax:
        np.testing.assert_allclose(raw, expected.logits(f), atol=1e-4)  # still logits
    kept = expected.predict(f) != "Holding something up"  # subs of a coarse copy tie; the first wins in both
    assert (labels[kept] == expected.predict(f)[kept]).all()
    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    # flat: the model's Softmax stays; hierarchical: it goes, and the top-1 reads the same Softmax of the logits
    assert "MatMul" in ops and ops.count("Softmax") == (1 if softmax else 0)
    assert ops.count("LogSoftmax") == (2 if mode == "hierarchical" else 0)  # one per table, in float64
    if mode == "hierarchical":  # the vendor's classifier stays: its output is the base logits the top-1 reads
        names = [n.name for n in onnx.load(str(out)).graph.node]
        assert "fc" in names and ("fc_bias" in names) == (layout == "matmul-add")


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
    with pytest.raises(CatsplitError, match="outside the model's folder"):  # the checked reader, before onnxruntime
        export.session(tmp_path / "models" / "evil.onnx", "cpu")
    with pytest.raises(CatsplitError, match="external data"):
        export.triton(tmp_path / "models" / "m.onnx", tmp_path / "repo", name="m", max_batch_size=4)
    # data beside the model is fine
    out = export.edit_onnx(tmp_path / "models" / "m.onnx", None, "Holding something", ["Holding something up", "Holding something down"],
                           tmp_path / "d.onnx", method="coarse")
    assert len(json.loads(metadata(out)["catsplit.labels"])) == 5


def test_split_onnx_takes_src_dst_first_like_split_file_and_edit_onnx_stays_its_alias(tmp_path):
    foreign_model(tmp_path / "src.onnx", "gemm", softmax=False)
    subs = ["Holding something up", "Holding something down"]
    a = export.split_onnx(tmp_path / "src.onnx", tmp_path / "a.onnx", None, "Holding something", subs, method="coarse")
    b = export.edit_onnx(tmp_path / "src.onnx", None, "Holding something", subs, tmp_path / "b.onnx", method="coarse")
    assert (a, b) == (tmp_path / "a.onnx", tmp_path / "b.onnx")
    assert a.read_bytes() == b.read_bytes()
    with pytest.raises(CatsplitError, match="exists"):  # the same options reach split_onnx through the alias
        export.edit_onnx(tmp_path / "src.onnx", None, "Holding something", subs, tmp_path / "b.onnx", method="coarse")


def vendor_model(path: Path, *, dtype=np.float32, bias_shape=(4,), weights_as_inputs=False, ir=8, opset=17) -> Path:
    """x [N, 6] -> MatMul -> Relu -> Gemm (transB) -> out, labels in the metadata, as other tools write it."""
    et = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="body"), helper.make_node("Relu", ["h"], ["feat"], name="relu"),
             helper.make_node("Gemm", ["feat", "w", "b"], ["out"], name="fc", transB=1)]
    inits = [numpy_helper.from_array(W1.astype(dtype), "w1"), numpy_helper.from_array(W.astype(dtype), "w"),
             numpy_helper.from_array(B.reshape(bias_shape).astype(dtype), "b")]
    inputs = [helper.make_tensor_value_info("x", et, ["N", 6])]
    if weights_as_inputs:  # IR < 4 requires it; torch's keep_initializers_as_inputs=True does it too
        inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in inits]
    graph = helper.make_graph(nodes, "vendor", inputs, [helper.make_tensor_value_info("out", et, ["N", 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir)
    entry = model.metadata_props.add()
    entry.key, entry.value = "labels", json.dumps(LABELS)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def expected(mode: str):
    return catsplit.split(catsplit.Head(weight=W, bias=B, labels=LABELS), None, "Holding something", SUBS, method="coarse", mode=mode)


@pytest.mark.parametrize("ir, opset", [(8, 17), (4, 9), (3, 8)])
@pytest.mark.parametrize("mode", ["flat", "hierarchical"])
def test_edit_onnx_on_models_listing_their_weights_as_inputs(tmp_path, ir, opset, mode):
    src = vendor_model(tmp_path / "src.onnx", weights_as_inputs=True, ir=ir, opset=opset)
    out = export.edit_onnx(src, None, "Holding something", SUBS, tmp_path / "dst.onnx", method="coarse", mode=mode)
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == ir
    if mode == "flat":
        assert "w" not in {i.name for i in model.graph.input}  # the old weight left graph.input too
    else:  # the vendor's classifier stays (the top-1 reads its logits), and so does its weight
        assert "w" in {t.name for t in model.graph.initializer} and "w" in {i.name for i in model.graph.input}
    sess = export.session(out, "cpu")
    assert [i.name for i in sess.get_inputs()] == ["x"]  # nothing else to feed
    _, probs = export.predict(sess, X)
    np.testing.assert_allclose(probs, expected(mode).probs(FEATURES), atol=1e-5)
    assert "Slice" not in [n.op_type for n in model.graph.node]


def test_a_gemm_bias_of_shape_1_by_c(tmp_path):
    src = vendor_model(tmp_path / "src.onnx", bias_shape=(1, 4))
    out = export.edit_onnx(src, None, "Holding something", SUBS, tmp_path / "dst.onnx", method="coarse")
    _, probs = export.predict(export.session(out, "cpu"), X)
    np.testing.assert_allclose(probs, expected("flat").probs(FEATURES), atol=1e-5)


@pytest.mark.parametrize("order", [("logits", "probs"), ("probs", "logits")])
@pytest.mark.parametrize("mode", ["flat", "hierarchical"])
def test_a_classifier_output_also_read_by_a_softmax_stays_the_model_output(tmp_path, order, mode):
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["logits"], name="fc", transB=1),
             helper.make_node("Softmax", ["logits"], ["probs"], name="sm", axis=1)]
    graph = helper.make_graph(
        nodes, "two", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 10])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", 4]) for name in order],
        [numpy_helper.from_array(W, "w"), numpy_helper.from_array(B, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    entry = model.metadata_props.add()
    entry.key, entry.value = "labels", json.dumps(LABELS)
    onnx.save(model, str(tmp_path / "two.onnx"))

    out = export.edit_onnx(tmp_path / "two.onnx", None, "Holding something", SUBS, tmp_path / "dst.onnx", method="coarse", mode=mode)
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["catsplit.output"] == ("logits" if mode == "flat" else "log_probabilities")
    assert json.loads(meta["catsplit.head"])["output"] == "logits"
    f = np.random.default_rng(5).standard_normal((9, 10)).astype(np.float32)
    sess = export.session(out, "cpu")
    _, probs = export.predict(sess, f)  # reads `logits`, wherever it is among the outputs
    np.testing.assert_allclose(probs, expected(mode).probs(f), atol=1e-5)
    raw = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"x": f})))
    np.testing.assert_allclose(raw["probs"], expected(mode).probs(f), atol=1e-5)  # the Softmax still gives probabilities


def test_edit_onnx_refuses_a_float16_classifier(tmp_path):
    src = vendor_model(tmp_path / "src.onnx", dtype=np.float16)
    with pytest.raises(CatsplitError, match=r"'feat' is float16.*float32"):
        export.edit_onnx(src, None, "Holding something", SUBS, tmp_path / "dst.onnx", method="coarse")
    assert not (tmp_path / "dst.onnx").exists()


def test_editing_a_text_head_model_keeps_the_rows_it_stores(tmp_path):
    """A text head's rows are stored as scale * normalize(W); normalising those again and scaling does not give the
    same bits, so an edit that rebuilt them changed the base logits the top-1 reads. The untouched tables keep theirs."""
    rng = np.random.default_rng(3)
    labels = ["Pushing something", "Lifting something", "Dropping something", "Holding something"]
    head = catsplit.Head(weight=rng.standard_normal((4, 16)).astype(np.float32), labels=labels, kind="text", scale=7.3)
    src = export.to_onnx(None, head, tmp_path / "text.onnx", torch.randn(4, 16))
    stored = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(src)).graph.initializer}["catsplit_head/t0/weight"]
    again = torch.nn.functional.normalize(torch.tensor(stored), dim=-1) * 7.3
    assert not np.array_equal(again.numpy(), stored)  # what rebuilding the rows would have stored
    subs = ["Lifting something up", "Lifting something slowly"]
    first = export.split_onnx(src, tmp_path / "first.onnx", None, "Lifting something", subs, method="coarse", mode="hierarchical")
    second = export.split_onnx(first, tmp_path / "second.onnx", None, "Holding something", ["Holding it up", "Holding it down"],
                               method="coarse", mode="hierarchical")
    for path in (first, second):
        rows = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
        assert rows["catsplit_head/t0/weight"].tobytes() == stored.tobytes()
    x = np.random.default_rng(4).standard_normal((4000, 16)).astype(np.float32)
    before, _ = export.predict(export.session(src, "cpu"), x)
    after, _ = export.predict(export.session(first, "cpu"), x)
    twice, _ = export.predict(export.session(second, "cpu"), x)
    kept = before != "Lifting something"
    assert (after[kept] == before[kept]).all()
    kept = after != "Holding something"
    assert (twice[kept] == after[kept]).all()
