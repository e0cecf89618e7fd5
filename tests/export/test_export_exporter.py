"""catsplit.export.exporter: backbone + edited head -> one ONNX graph, verified against torch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import catsplit
from catsplit import CatsplitError
from conftest import HashEncoder, compositional_head
from onnx_models import DIM, clips, edited_heads, export, exported, head_nodes, heads, metadata, onnx  # noqa: F401 (fixtures)

from onnx import TensorProto, helper, numpy_helper  # after onnx_models, which skips the module without onnx


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
    # one float32 Gemm, the base table's logits as the flat export computes them (the top-1 rule reads it),
    # and a float64 Gemm per table for the probabilities
    model = onnx.load(str(paths["hier"]))
    gemms = [n for n in model.graph.node if n.op_type == "Gemm" and n.name.startswith("catsplit_head/")]
    assert len(gemms) == 1 + len(hier.tables)
    desc = json.loads(metadata(paths["hier"])["catsplit.head"])
    base = gemms[0]
    assert list(base.input) == [desc["features"], desc["tables"][0]["weight"], desc["tables"][0]["bias"]]
    assert list(base.output) == [desc["base_logits"]]
    assert [o.name for o in model.graph.output] == ["probabilities", "top1"] and desc["top1"] == "top1"
    assert model.graph.output[1].type.tensor_type.elem_type == TensorProto.INT64
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


def test_import_of_catsplit_export_is_light():
    import subprocess
    import sys

    code = ("import sys, catsplit.export as cx; cx.to_onnx, cx.edit_onnx; "
            "print(sorted(m for m in ('onnx', 'onnxruntime', 'onnxscript', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


class Backbone(torch.nn.Module):
    def __init__(self, cast=None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv3d(3, DIM, 3, stride=2, padding=1)
        self.cast = cast

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(clips.permute(0, 4, 1, 2, 3).float() / 255.0)).mean(dim=(2, 3, 4))
        return x.to(self.cast) if self.cast is not None else x


@pytest.mark.parametrize("dtype, name", [(torch.float64, "float64"), (torch.float16, "float16")])
def test_to_onnx_refuses_features_that_are_not_float32(tmp_path, edited_heads, dtype, name):
    with pytest.raises(CatsplitError, match=rf"returns {name} features.*\.float\(\)"):
        export.to_onnx(Backbone(dtype).eval(), edited_heads[0], tmp_path / "m.onnx", clips(2), verify=False)
    assert not (tmp_path / "m.onnx").exists()


def test_to_onnx_names_the_example_the_backbone_fails_on(tmp_path, edited_heads):
    with pytest.raises(CatsplitError, match=r"backbone fails on example_input of shape \(2, 4, 8, 8, 4\) and dtype uint8"):
        export.to_onnx(Backbone().eval(), edited_heads[0], tmp_path / "m.onnx", clips(2, channels=4))


@pytest.mark.parametrize("example", [np.random.default_rng(0).standard_normal((3, DIM)), torch.randn(3, DIM).half(),
                                     [[0.5] * DIM] * 2])
def test_head_only_examples_are_cast_to_float32(tmp_path, edited_heads, example):
    path = export.to_onnx(None, edited_heads[0], tmp_path / "m.onnx", example)  # verified
    assert onnx.load(str(path)).graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT


def test_head_only_examples_must_be_floating(tmp_path, edited_heads):
    with pytest.raises(CatsplitError, match="float32 features; example_input has dtype int64"):
        export.to_onnx(None, edited_heads[0], tmp_path / "m.onnx", np.zeros((2, DIM), np.int64))


@pytest.mark.parametrize("opset", [30, 6, "17", True, 17.0])
def test_to_onnx_checks_the_opset(tmp_path, edited_heads, opset):
    with pytest.raises(CatsplitError, match=r"opset must be an integer from 7 to \d+"):
        export.to_onnx(None, edited_heads[0], tmp_path / "m.onnx", torch.randn(2, DIM), opset=opset)


def test_check_model_turns_shape_inference_errors_into_catsplit_errors(tmp_path, edited_heads):
    graph = helper.make_graph(  # float64 features into a float32 weight: the checker's shape inference fails
        [helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)], "g", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["N", DIM])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["N", 3])], [numpy_helper.from_array(np.zeros((3, DIM), np.float32), "w")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(tmp_path / "bad.onnx"))
    with pytest.raises(CatsplitError, match="fails onnx.checker"):
        export.check_model(tmp_path / "bad.onnx", None, edited_heads[0], torch.randn(2, DIM))


def test_heads_whose_logits_overflow_export_with_verification(tmp_path):
    """Verification compared NaN with NaN (never equal) and failed flat heads whose logits overflow alike in both
    runtimes; a hierarchical head gave NaN probabilities there. Now the flat logits agree (equal infinities), and
    the hierarchical probabilities, from float64 table logits, are finite."""
    big = float(np.finfo(np.float32).max)
    head = catsplit.Head(weight=np.array([[big], [-big], [1.0]], np.float32), labels=["a", "b", "c"])
    x = np.array([[big], [-big], [1.0], [0.0]], np.float32)  # a's logit is +inf, -inf, MAX, 0
    flat = export.to_onnx(None, head, tmp_path / "flat.onnx", x)  # verify=True: parity and top-1
    raw = export.session(flat, "cpu").run(None, {"clips": x})[0]
    assert np.isinf(raw[:2, :2]).all()
    hier = catsplit.split(head, None, "c", ["c0", "c1"], method="coarse", mode="hierarchical")
    path = export.to_onnx(None, hier, tmp_path / "hier.onnx", x)
    labels, probs = export.predict(export.session(path, "cpu"), x)
    assert np.isfinite(probs).all() and labels.tolist() == hier.predict(x).tolist() == ["a", "b", "a", "a"]
