"""catsplit.export on unusual models and arguments: weights listed as graph inputs, old IR versions and
opsets, a classifier output read by a Softmax too, features that are not float32, bad arguments."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import catsplit
from catsplit import CatsplitError
from conftest import HashEncoder, compositional_head

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
export = pytest.importorskip("catsplit.export")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

DIM = 32
LABELS = ["Pushing something left", "Pushing something right", "Holding something", "Dropping something"]
SUBS = ["Holding something up", "Holding something down"]
RNG = np.random.default_rng(1)
W1 = RNG.standard_normal((6, 10)).astype(np.float32)
W = RNG.standard_normal((4, 10)).astype(np.float32)
B = RNG.standard_normal(4).astype(np.float32)
X = np.random.default_rng(2).standard_normal((7, 6)).astype(np.float32)
FEATURES = np.maximum(X @ W1, 0)


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


@pytest.fixture(scope="module")
def heads(retrieval_edits):
    return retrieval_edits[1:3]  # (flat, hier)


# --- edit_onnx -----------------------------------------------------------------------------------
@pytest.mark.parametrize("ir, opset", [(8, 17), (4, 9), (3, 8)])
@pytest.mark.parametrize("mode", ["flat", "hierarchical"])
def test_edit_onnx_on_models_listing_their_weights_as_inputs(tmp_path, ir, opset, mode):
    src = vendor_model(tmp_path / "src.onnx", weights_as_inputs=True, ir=ir, opset=opset)
    out = export.edit_onnx(src, None, "Holding something", SUBS, tmp_path / "dst.onnx", method="coarse", mode=mode)
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == ir and "w" not in {i.name for i in model.graph.input}  # the old weight left graph.input too
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


# --- to_onnx -------------------------------------------------------------------------------------
class Backbone(torch.nn.Module):
    def __init__(self, cast=None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv3d(3, DIM, 3, stride=2, padding=1)
        self.cast = cast

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(clips.permute(0, 4, 1, 2, 3).float() / 255.0)).mean(dim=(2, 3, 4))
        return x.to(self.cast) if self.cast is not None else x


def clips(n: int, channels: int = 3) -> torch.Tensor:
    return torch.randint(0, 256, (n, 4, 8, 8, channels), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("dtype, name", [(torch.float64, "float64"), (torch.float16, "float16")])
def test_to_onnx_refuses_features_that_are_not_float32(tmp_path, heads, dtype, name):
    with pytest.raises(CatsplitError, match=rf"returns {name} features.*\.float\(\)"):
        export.to_onnx(Backbone(dtype).eval(), heads[0], tmp_path / "m.onnx", clips(2), verify=False)
    assert not (tmp_path / "m.onnx").exists()


def test_to_onnx_names_the_example_the_backbone_fails_on(tmp_path, heads):
    with pytest.raises(CatsplitError, match=r"backbone fails on example_input of shape \(2, 4, 8, 8, 4\) and dtype uint8"):
        export.to_onnx(Backbone().eval(), heads[0], tmp_path / "m.onnx", clips(2, channels=4))


@pytest.mark.parametrize("example", [np.random.default_rng(0).standard_normal((3, DIM)), torch.randn(3, DIM).half(),
                                     [[0.5] * DIM] * 2])
def test_head_only_examples_are_cast_to_float32(tmp_path, heads, example):
    path = export.to_onnx(None, heads[0], tmp_path / "m.onnx", example)  # verified
    assert onnx.load(str(path)).graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT


def test_head_only_examples_must_be_floating(tmp_path, heads):
    with pytest.raises(CatsplitError, match="float32 features; example_input has dtype int64"):
        export.to_onnx(None, heads[0], tmp_path / "m.onnx", np.zeros((2, DIM), np.int64))


@pytest.mark.parametrize("opset", [30, 6, "17", True, 17.0])
def test_to_onnx_checks_the_opset(tmp_path, heads, opset):
    with pytest.raises(CatsplitError, match=r"opset must be an integer from 7 to \d+"):
        export.to_onnx(None, heads[0], tmp_path / "m.onnx", torch.randn(2, DIM), opset=opset)


@pytest.mark.parametrize("opset", [7, 8, 9, 10])
@pytest.mark.parametrize("which", ["flat", "hierarchical", "text", "no bias"])
def test_head_only_models_at_old_opsets(tmp_path, heads, opset, which):
    if which == "text":
        enc = HashEncoder(dim=DIM)
        head = catsplit.text_head(["Pushing something up", "Lifting something", "Dropping something"], enc, scale=20.0)
        head = catsplit.split(head, enc, "Lifting something", ["Lifting something up", "Lifting something slowly"], method="text")
    elif which == "no bias":
        plain, subs, _, _ = compositional_head(dim=DIM, bias=False)
        head = catsplit.split(plain, HashEncoder(), "Pushing something", subs, method="retrieval", mode="hierarchical")
    else:
        head = heads[which == "hierarchical"]
    path = export.to_onnx(None, head, tmp_path / "m.onnx", torch.randn(5, DIM), opset=opset)  # checker + parity with torch
    model = onnx.load(str(path))
    assert [o.version for o in model.opset_import] == [opset] and model.ir_version >= 4
    assert "Slice" not in [n.op_type for n in model.graph.node]


def test_check_model_turns_shape_inference_errors_into_catsplit_errors(tmp_path, heads):
    graph = helper.make_graph(  # float64 features into a float32 weight: the checker's shape inference fails
        [helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)], "g", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["N", DIM])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["N", 3])], [numpy_helper.from_array(np.zeros((3, DIM), np.float32), "w")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(tmp_path / "bad.onnx"))
    with pytest.raises(CatsplitError, match="fails onnx.checker"):
        export.check_model(tmp_path / "bad.onnx", None, heads[0], torch.randn(2, DIM))


# --- predict and triton --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def head_model(tmp_path_factory, heads):
    return export.to_onnx(None, heads[0], tmp_path_factory.mktemp("m") / "head.onnx", torch.randn(2, DIM))


def test_predict_on_an_empty_batch(head_model, heads):
    sess = export.session(head_model, "cpu")
    for batch_size in (None, 4):
        labels, probs = export.predict(sess, np.zeros((0, DIM), np.float32), batch_size=batch_size)
        assert labels.shape == (0,) and probs.shape == (0, len(heads[0].labels))
    with pytest.raises(CatsplitError, match="batch_size must be >= 1, got 0"):
        export.predict(sess, np.zeros((0, DIM), np.float32), batch_size=0)


def test_triton_refuses_a_file_as_repository(tmp_path, head_model):
    (tmp_path / "afile").write_text("")
    for repo in (tmp_path / "afile", tmp_path / "afile" / "sub"):
        with pytest.raises(CatsplitError, match="is not a folder"):
            export.triton(head_model, repo, name="m", max_batch_size=4)


@pytest.mark.parametrize("name", ['a"b', "a\nb", "a/b", "a\\b", "a b", "..", "", "mod\u00e8le"])
def test_triton_refuses_names_outside_the_safe_characters(tmp_path, head_model, name):
    with pytest.raises(CatsplitError, match="plain folder name"):
        export.triton(head_model, tmp_path / "repo", name=name, max_batch_size=4)


def test_triton_escapes_tensor_names(tmp_path, heads):
    from google.protobuf import text_format

    odd = 'features "x"\\1'
    path = export.to_onnx(None, heads[0], tmp_path / "m.onnx", torch.randn(2, DIM), input_name=odd)
    folder = export.triton(path, tmp_path / "repo", name="m-1.0", max_batch_size=4)
    line = next(t.strip() for t in (folder / "config.pbtxt").read_text().splitlines() if t.strip().startswith("name: \"features"))
    assert text_format.Parse(line, TensorProto()).name == odd  # read back by protobuf's own text-format parser
