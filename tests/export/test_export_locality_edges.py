"""Hierarchical locality at the edges of float32 through onnxruntime (hypothesis, 1,000 examples per property in CI).

The exported original against the exported hierarchical edit, a foreign model against its `split_onnx` edit (and
that edit against a second one), and flat exports against `Head.predict`: features and weights up to float32's
largest finite value, exact ties and one-ulp gaps. A longer run:

    CATSPLIT_EDGE_EXAMPLES=10000 .venv/bin/python -m pytest -q tests/export/test_export_locality_edges.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from hypothesis import event, given
from hypothesis import strategies as st

from edges import EDGE, MAX, hierarchical_edits, scratch_folder, tied_rows
from onnx_models import export, onnx

from onnx import TensorProto, helper, numpy_helper  # after onnx_models, which skips the module without onnx

import catsplit


def run(path: Path, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """export.predict's labels and probabilities, and every raw output by name."""
    sess = export.session(path, "cpu", threads=1)
    labels, probs = export.predict(sess, x)
    raw = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {sess.get_inputs()[0].name: x})))
    return labels, probs, raw


def kept_top1(before: np.ndarray, after: np.ndarray, coarse: str) -> None:
    kept = before != coarse
    assert (after[kept] == before[kept]).all(), list(zip(before[kept], after[kept]))


@EDGE
@given(hierarchical_edits())
def test_the_exported_hierarchical_edit_keeps_every_top1_but_the_split_class(case):
    with scratch_folder() as tmp:
        original = export.to_onnx(None, case.original, Path(tmp) / "original.onnx", case.x, verify=False)
        edited = export.to_onnx(None, case.edited, Path(tmp) / "edited.onnx", case.x, verify=False)
        before, _, _ = run(original, case.x)
        after, probs, raw = run(edited, case.x)
    assert not np.isnan(raw["probabilities"]).any() and not np.isnan(probs).any()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    kept_top1(before, after, case.coarse)
    assert raw["top1"].dtype == np.int64 and after.tolist() == [case.edited.labels[j] for j in raw["top1"]]


def foreign_model(path: Path, head: catsplit.Head, layout: str, post: str | None) -> None:
    """A model not written by catsplit: features [N, D] -> its own classifier (-> Softmax / LogSoftmax)."""
    w = np.asarray(head.weight, np.float32)  # [C, D]
    b = None if head.bias is None else np.asarray(head.bias, np.float32)
    inits = [] if b is None else [numpy_helper.from_array(b, "b")]
    last = "scores" if post else "out"
    if layout == "gemm-transB":
        nodes = [helper.make_node("Gemm", ["x", "w"] + (["b"] if b is not None else []), [last], name="fc", transB=1)]
        inits.append(numpy_helper.from_array(w, "w"))
    elif layout == "gemm":
        nodes = [helper.make_node("Gemm", ["x", "w"] + (["b"] if b is not None else []), [last], name="fc")]
        inits.append(numpy_helper.from_array(np.ascontiguousarray(w.T), "w"))
    else:  # MatMul [D, C] (+ Add)
        mm = "mm" if b is not None else last
        nodes = [helper.make_node("MatMul", ["x", "w"], [mm], name="fc")]
        if b is not None:
            nodes.append(helper.make_node("Add", ["mm", "b"], [last], name="fc_bias"))
        inits.append(numpy_helper.from_array(np.ascontiguousarray(w.T), "w"))
    if post:
        nodes.append(helper.make_node(post, [last], ["out"], name="post", axis=-1))
    graph = helper.make_graph(
        nodes, "foreign", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", head.dim])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", head.num_classes])], inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    entry = model.metadata_props.add()
    entry.key, entry.value = "catsplit.labels", json.dumps(list(head.labels))  # export.predict reads the original too
    onnx.save(model, str(path))


@EDGE
@given(hierarchical_edits(kinds=("linear",), chain=False), st.sampled_from(["gemm-transB", "gemm", "matmul"]),
       st.sampled_from([None, "Softmax", "LogSoftmax"]), st.data())
def test_split_onnx_keeps_every_top1_but_the_split_class(case, layout, post, data):
    head = case.original
    with scratch_folder() as tmp:
        src, dst, dst2 = Path(tmp) / "src.onnx", Path(tmp) / "dst.onnx", Path(tmp) / "dst2.onnx"
        foreign_model(src, head, layout, post)
        export.split_onnx(src, dst, None, case.coarse, ["t0", "t1"], method="coarse", mode="hierarchical")
        before, _, _ = run(src, case.x)
        after, probs, raw = run(dst, case.x)
        assert not np.isnan(probs).any() and not any(np.isnan(v).any() for v in raw.values() if v.dtype.kind == "f")
        kept_top1(before, after, case.coarse)
        # a second split, of a sub or another label, through the metadata the first one wrote (its classifier kept)
        second = data.draw(st.sampled_from([None, "t0", "t1"] + [lab for lab in head.labels if lab != case.coarse]))
        if second is not None:
            export.split_onnx(dst, dst2, None, second, ["u0", "u1"], method="coarse", mode="hierarchical")
            twice, probs2, _ = run(dst2, case.x)
            assert not np.isnan(probs2).any()
            kept_top1(after, twice, second)


@st.composite
def flat_heads(draw):
    n, dim = draw(st.integers(2, 5)), draw(st.integers(1, 3))
    w = draw(tied_rows(n, dim))
    bias = draw(st.one_of(st.none(), tied_rows(n, 1).map(lambda b: b[:, 0])))
    head = catsplit.Head(weight=w, bias=bias, labels=[f"a{i}" for i in range(n)])
    # inputs that make two logits tie or lie one ulp apart: x = 1 gives the column itself (dim 1, no bias: x * w exactly)
    x = draw(tied_rows(draw(st.integers(1, 12)), dim))
    return head, np.concatenate([x, np.ones((1, dim), np.float32), np.full((1, dim), MAX, np.float32)])


@EDGE
@given(flat_heads())
def test_a_flat_export_predicts_the_argmax_of_its_logits(case):
    head, x = case
    with scratch_folder() as tmp:
        labels, _, raw = run(export.to_onnx(None, head, Path(tmp) / "flat.onnx", x, verify=False), x)
    logits = raw["logits"]
    assert labels.tolist() == [head.labels[j] for j in np.argmax(logits, axis=1)]  # never the argmax of a rounded softmax
    # where onnxruntime's float32 logits are torch's bit for bit, export.predict and Head.predict agree
    ours = head.logits(x)
    same = (logits.view(np.uint32) == ours.view(np.uint32)).all(axis=1)
    event(f"rows with bit-identical logits: {'all' if same.all() else 'some' if same.any() else 'none'}")
    assert (labels[same] == head.predict(x)[same]).all()
