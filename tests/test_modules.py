"""catsplit.modules: `Head.to_module` — nn.Linear for flat heads, CosineLinear for flat text heads, GatedHead for
hierarchical ones (the log-probabilities of Head.logits bit for bit, the exact top-1 of Head.predict_index), and
GatedHead through torch.onnx.export."""

import numpy as np
import pytest
import torch

import catsplit
from catsplit import CatsplitError, Head
from catsplit.modules import CosineLinear, GatedHead
from conftest import HashEncoder, compositional_head

COARSE = "Pushing something"


def _bits(t):
    return t.detach().contiguous().view(torch.uint8).numpy().tobytes()


def _features(head, n=64, seed=0):
    """Clips around every row, so that each label (the gates too) is some clip's top-1, plus noise."""
    g = torch.Generator().manual_seed(seed)
    rows = torch.cat([t.weight.float() for t in head.tables])
    pick = torch.randint(0, rows.shape[0], (n,), generator=g)
    return 3 * rows[pick] + torch.randn(n, head.dim, generator=g)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("bias", [True, False])
def test_a_flat_head_becomes_an_nn_linear_in_its_dtype(dtype, bias):
    base, subs, _, _ = compositional_head(bias=bias)
    head = Head(weight=base.weight.to(dtype), bias=None if base.bias is None else base.bias.to(dtype), labels=base.labels)
    edited = catsplit.split(head, None, COARSE, subs, method="coarse", order="keep")
    layer = edited.to_module()
    assert type(layer) is torch.nn.Linear and layer.weight.dtype == dtype
    assert (layer.in_features, layer.out_features) == (edited.dim, edited.num_classes)
    assert _bits(layer.weight) == _bits(edited.weight)
    assert (layer.bias is None) == (not bias) and (layer.bias is None or _bits(layer.bias) == _bits(edited.bias))
    x = _features(edited)
    with torch.no_grad():
        got = layer.float()(x)  # the same scores, up to the rounding of another matmul
    np.testing.assert_allclose(got.numpy(), edited.logits(x).numpy(), rtol=1e-5, atol=1e-4)
    with torch.no_grad():
        layer.weight.mul_(2)  # a copy: the head is untouched
    assert _bits(edited.weight) != _bits(layer.weight.to(dtype))


def test_a_flat_text_head_becomes_a_cosine_layer_with_its_logits():
    enc = HashEncoder()
    head = catsplit.text_head(["Lifting something up", "Dropping something", COARSE], enc, scale=1 / 0.07)
    edited = catsplit.split(head, enc, COARSE, ["Pushing something left", "Pushing something right"], method="text")
    module = edited.to_module()
    assert isinstance(module, CosineLinear)
    x = 5 * torch.randn(9, head.dim)
    with torch.no_grad():
        assert torch.equal(module(x), edited.logits(x))


def _hierarchical_heads():
    enc = HashEncoder()
    head, subs, _, _ = compositional_head()
    out = {}
    for order in ("append", "keep"):
        h = catsplit.split(head, enc, COARSE, subs, method="retrieval", mode="hierarchical", order=order)
        h = catsplit.split(h, enc, subs[1], [subs[1] + " fast", subs[1] + " slowly"], method="retrieval",
                           mode="hierarchical", order=order)  # nested: a gate's sub is a gate
        out[f"nested-{order}"] = catsplit.split(h, None, "Lifting something up", ["Lifting something up a", "Lifting something up b"],
                                                method="coarse", order=order)  # and a flat split of the base
    text = catsplit.text_head(["Lifting something up", "Dropping something", COARSE], enc)
    out["text"] = catsplit.split(text, enc, COARSE, ["Pushing something left", "Pushing something right"], method="text",
                                 mode="hierarchical")
    nobias = Head(weight=head.weight, labels=head.labels)
    out["no-bias"] = catsplit.split(nobias, None, COARSE, subs, method="coarse", mode="hierarchical", order="keep")
    return out


HIERARCHICAL = _hierarchical_heads()


@pytest.mark.parametrize("name", list(HIERARCHICAL))
def test_a_hierarchical_head_becomes_a_gated_module_with_its_logits_and_exact_top1(name):
    head = HIERARCHICAL[name]
    module = head.to_module(top1=True)
    assert isinstance(module, GatedHead) and module.labels == head.labels
    assert [tuple(layer.weight.shape) for layer in module.tables] == [tuple(t.weight.shape) for t in head.tables]
    x = _features(head)
    with torch.no_grad():
        logp, top1 = module(x)
        assert torch.equal(head.to_module()(x), logp)
    assert logp.dtype == torch.float32 and torch.equal(logp, head.logits(x))  # bit for bit
    np.testing.assert_array_equal(top1.numpy(), head.predict_index(x))
    gated = np.isin(head.predict(x), [s for t in head.tables[1:] for s in t.labels])
    assert gated.any() and (~gated).any()  # both branches of the top-1 rule are exercised


def test_top1_is_for_hierarchical_heads_and_a_boolean():
    head, subs, _, _ = compositional_head()
    with pytest.raises(CatsplitError, match="top1=True is for hierarchical heads.*argmax"):
        head.to_module(top1=True)
    with pytest.raises(CatsplitError, match="top1 must be True or False"):
        HIERARCHICAL["text"].to_module(top1="yes")


def test_a_gated_module_in_a_half_precision_head_keeps_the_dtype_and_scores_in_float32():
    base, subs, _, _ = compositional_head()
    head = Head(weight=base.weight.half(), bias=base.bias.half(), labels=base.labels)
    edited = catsplit.split(head, None, COARSE, subs, method="coarse", mode="hierarchical")
    module = edited.to_module()
    assert {p.dtype for p in module.parameters()} == {torch.float16}
    x = _features(edited)
    with torch.no_grad():
        assert torch.equal(module(x.half()), edited.logits(x.half().float()))


def test_the_gated_module_exports_with_torch_onnx(tmp_path):
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    head = HIERARCHICAL["nested-keep"]
    module = head.to_module(top1=True).eval()
    x = _features(head, n=40)
    path = tmp_path / "gated.onnx"
    torch.onnx.export(module, (x[:2],), str(path), input_names=["features"], output_names=["log_probabilities", "top1"],
                      dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True, external_data=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logp, top1 = session.run(None, {"features": x.numpy()})
    np.testing.assert_allclose(logp, head.logits(x).numpy(), atol=1e-5)
    np.testing.assert_array_equal(top1, head.predict_index(x))
