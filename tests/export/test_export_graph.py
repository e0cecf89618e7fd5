"""catsplit.export.graph: a catsplit head as ONNX nodes — text heads' normalisation, every opset from 7."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import catsplit
from conftest import HashEncoder, compositional_head
from onnx_models import DIM, edited_heads, export, head_nodes, onnx  # noqa: F401 (fixtures)

from onnx import TensorProto, helper  # after onnx_models, which skips the module without onnx

ort = pytest.importorskip("onnxruntime")


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


@pytest.mark.parametrize("opset", [7, 8, 9, 10])
@pytest.mark.parametrize("which", ["flat", "hierarchical", "text", "no bias"])
def test_head_only_models_at_old_opsets(tmp_path, edited_heads, opset, which):
    if which == "text":
        enc = HashEncoder(dim=DIM)
        head = catsplit.text_head(["Pushing something up", "Lifting something", "Dropping something"], enc, scale=20.0)
        head = catsplit.split(head, enc, "Lifting something", ["Lifting something up", "Lifting something slowly"], method="text")
    elif which == "no bias":
        plain, subs, _, _ = compositional_head(dim=DIM, bias=False)
        head = catsplit.split(plain, HashEncoder(), "Pushing something", subs, method="retrieval", mode="hierarchical")
    else:
        head = edited_heads[which == "hierarchical"]
    path = export.to_onnx(None, head, tmp_path / "m.onnx", torch.randn(5, DIM), opset=opset)  # checker + parity with torch
    model = onnx.load(str(path))
    assert [o.version for o in model.opset_import] == [opset] and model.ir_version >= 4
    assert "Slice" not in [n.op_type for n in model.graph.node]


@pytest.mark.parametrize("output_kind", ["probabilities", "log_probabilities"])
def test_a_keep_split_hierarchical_head_gives_its_columns_in_its_label_order(tmp_path, output_kind):
    """The gated graph computes the columns table by table; a head whose labels leave that order (order="keep")
    gets them gathered into Head.labels order, and the order travels in the metadata to the head rebuilt."""
    from catsplit.export.graph import head_from_model, head_graph, head_metadata, set_metadata

    enc = HashEncoder()
    head, subs, _, _ = compositional_head(dim=DIM)
    edited = catsplit.split(head, enc, "Pushing something", subs, method="retrieval", mode="hierarchical", order="keep")
    assert edited.output_order is not None
    path = export.to_onnx(None, edited, tmp_path / "keep.onnx", torch.randn(4, DIM))  # verified against torch
    model = onnx.load(str(path))
    rebuilt = head_from_model(model, str(path))
    assert rebuilt.labels == edited.labels and rebuilt.output_order == edited.output_order
    f = torch.randn(11, DIM) * 3
    labels, probs = export.predict(export.session(path, "cpu"), f.numpy())
    np.testing.assert_allclose(probs, edited.probs(f).numpy(), atol=1e-5)
    assert labels.tolist() == edited.predict(f).tolist()
    # the same head as log-probabilities, in a graph of its own
    x = onnx.helper.make_tensor_value_info("features", onnx.TensorProto.FLOAT, ["batch", DIM])
    g = head_graph(edited, "features", "out", opset=17, output_kind=output_kind)
    y = onnx.helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, ["batch", edited.num_classes])
    m = onnx.helper.make_model(onnx.helper.make_graph(g.nodes, "g", [x], [y], g.initializers),
                               opset_imports=[onnx.helper.make_opsetid("", 17)], ir_version=8)
    set_metadata(m, head_metadata(edited, g))
    onnx.save(m, str(tmp_path / "g.onnx"))
    out = export.session(tmp_path / "g.onnx", "cpu").run(None, {"features": f.numpy()})[0]
    got = out if output_kind == "probabilities" else np.exp(out)  # Log of float32 probabilities: -inf where they underflow
    np.testing.assert_allclose(got, edited.probs(f).numpy(), atol=1e-5)


@pytest.mark.parametrize("opset", [7, 13, 18])
def test_the_top1_rule_takes_the_first_maximum_and_nan_as_the_largest_like_numpy(opset):
    """onnxruntime's ArgMax skips NaN (index 2 for [1, NaN, 2, NaN], numpy's and torch's argmax give 1), and a
    provider's ArgMax need not take the first of tied maxima: the top-1 nodes only ever give ArgMax a unique maximum."""
    from catsplit.export.graph import head_graph

    nan, inf = np.nan, np.inf
    z = np.array([[1, nan, 2, nan], [nan, 1, 5, inf], [1, inf, inf, 0], [2, 2, 2, 0], [-inf, -inf, -inf, -inf],
                  [3, 3, 1, 3], [0, 7, 7, 7], [-1, -2, -1, -3]], np.float32)  # the base logits, as the original computes them
    assert np.argmax(z[:2], axis=1).tolist() == [1, 0]
    head = catsplit.Head(weight=np.eye(4, 3, dtype=np.float32), labels=["a", "b", "c", "d"])
    edited = catsplit.split(head, None, "d", ["d0", "d1"], method="coarse", mode="hierarchical")
    g = head_graph(edited, "x", "probabilities", opset=opset, base_logits="z")
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3]), helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 4])]
    outputs = [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 5]), helper.make_tensor_value_info(g.top1, TensorProto.INT64, ["N"])]
    model = helper.make_model(helper.make_graph(g.nodes, "top1", inputs, outputs, g.initializers),
                              opset_imports=[helper.make_opsetid("", opset)], ir_version=max(4, helper.find_min_ir_version_for([helper.make_opsetid("", opset)])))
    onnx.checker.check_model(model, full_check=True)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((len(z), 3)).astype(np.float32)
    _, top1 = sess.run(None, {"x": x, "z": z})
    rows = np.argmax(z, axis=1)  # none of them is d, the gate: the answer is that label
    assert (rows != 3).all() and [edited.labels[j] for j in top1] == [head.labels[r] for r in rows]


