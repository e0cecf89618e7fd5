"""catsplit.export.runtime: onnxruntime sessions on the device asked for, and labelled predictions."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

import catsplit
from catsplit import CatsplitError
from onnx_models import DIM, clips, edited_heads, export, exported, head_model, heads, onnx  # noqa: F401 (fixtures)

ort = pytest.importorskip("onnxruntime")


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


def test_predict_on_an_empty_batch(head_model, edited_heads):
    sess = export.session(head_model, "cpu")
    for batch_size in (None, 4):
        labels, probs = export.predict(sess, np.zeros((0, DIM), np.float32), batch_size=batch_size)
        assert labels.shape == (0,) and probs.shape == (0, len(edited_heads[0].labels))
    with pytest.raises(CatsplitError, match="batch_size must be >= 1, got 0"):
        export.predict(sess, np.zeros((0, DIM), np.float32), batch_size=0)


def test_predict_takes_a_flat_models_top1_from_its_logits_not_a_rounded_softmax(tmp_path):
    """Logits one ulp apart have the same float32 softmax: its argmax took the earlier label, Head.predict the larger."""
    small = np.float32(1e-3)
    head = catsplit.Head(weight=np.array([[small], [np.nextafter(small, np.float32(1))], [-1.0]], np.float32), labels=["a", "b", "c"])
    x = np.array([[1.0], [-1.0], [0.0]], np.float32)  # logits (s, s+ulp, -1), (-s, -s-ulp, 1), (0, 0, 0)
    path = export.to_onnx(None, head, tmp_path / "flat.onnx", x)
    labels, probs = export.predict(export.session(path, "cpu"), x)
    assert probs[0, 0] == probs[0, 1]  # the rounded softmax cannot tell a from b
    assert labels.tolist() == ["b", "c", "a"] == head.predict(x).tolist()


def test_predict_reads_the_exact_top1_output_of_a_hierarchical_model(tmp_path):
    """c's two subs copy c's row, so their probabilities tie, and a's and b's tie once rounded; the top-1 rule
    decides from the base logits, where b leads a by one ulp, and the first of the tied subs wins."""
    small = np.float32(1e-3)
    head = catsplit.Head(weight=np.array([[small], [np.nextafter(small, np.float32(1))], [-1.0]], np.float32), labels=["a", "b", "c"])
    edited = catsplit.split(head, None, "c", ["c0", "c1"], method="coarse", mode="hierarchical")
    x = np.array([[1.0], [-1.0]], np.float32)
    path = export.to_onnx(None, edited, tmp_path / "hier.onnx", x)
    sess = export.session(path, "cpu")
    labels, probs = export.predict(sess, x)
    assert probs[0, 0] == probs[0, 1] and probs[1, 2] == probs[1, 3]  # a and b tie once rounded, and so do c0, c1
    assert [o.name for o in sess.get_outputs()] == ["probabilities", "top1"]
    assert labels.tolist() == ["b", "c0"] == edited.predict(x).tolist()


def test_predict_refuses_a_top1_output_outside_the_labels(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Identity", ["x"], ["scores"]),
             helper.make_node("ArgMax", ["x"], ["arg"], axis=1, keepdims=0),
             helper.make_node("Add", ["arg", "five"], ["top1"])]
    graph = helper.make_graph(
        nodes, "damaged", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 2]), helper.make_tensor_value_info("top1", TensorProto.INT64, ["N"])],
        [numpy_helper.from_array(np.array(5, np.int64), "five")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    for key, value in (("catsplit.labels", json.dumps(["a", "b"])), ("catsplit.output", "logits"),
                       ("catsplit.head", json.dumps({"output": "scores", "top1": "top1"}))):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(tmp_path / "damaged.onnx"))
    with pytest.raises(CatsplitError, match=r"'top1' output must hold one label index in \[0, 2\) per clip"):
        export.predict(export.session(tmp_path / "damaged.onnx", "cpu"), np.zeros((3, 2), np.float32))
