"""catsplit.texthead: text-embedding heads (after Text4Vis) — rows are template-averaged label embeddings,
logits = scale * cos."""

import math

import numpy as np
import pytest

import catsplit
from catsplit import CatsplitError, load_head
from catsplit.texthead import DEFAULT_SCALE, DEFAULT_TEMPLATES


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_valid_templates_still_work(encoder):
    for templates in (["a video of {}."], ["{label}!"], ["{{literal}} {}"], ["{0}"], (), None):
        h = catsplit.text_head(["a b", "c d"], encoder, templates=templates)
        assert h.templates == (tuple(templates) or None if templates is not None else None)
    with pytest.raises(CatsplitError, match="scale"):
        catsplit.text_head(["a b", "c d"], encoder, scale=True)


def test_rows_are_template_averaged_unit_embeddings_of_the_labels(encoder):
    labels = ["Pushing something", "Lifting something up"]
    head = catsplit.text_head(labels, encoder, templates=["a video of {}.", "{}!"], scale=5.0)
    assert (head.kind, head.scale, head.templates, head.labels, head.bias) == (
        "text", 5.0, ("a video of {}.", "{}!"), tuple(labels), None)
    want = [_unit(_unit(encoder([f"a video of {lab}.", f"{lab}!"])).mean(0)) for lab in ("pushing something", "lifting something up")]
    np.testing.assert_allclose(head.weight.numpy(), np.stack(want), atol=1e-6)
    bare = catsplit.text_head(labels, encoder, templates=None)  # the labels themselves, first letter lowered
    np.testing.assert_allclose(bare.weight.numpy(), _unit(encoder(["pushing something", "lifting something up"])), atol=1e-6)


def test_defaults_and_logits_are_scale_times_cosine(encoder):
    head = catsplit.text_head(["Pushing something", "Lifting something up"], encoder)
    assert head.templates == DEFAULT_TEMPLATES and head.scale == DEFAULT_SCALE == pytest.approx(1 / 0.07)
    x = np.random.default_rng(0).standard_normal((3, head.dim)).astype(np.float32) * 4
    np.testing.assert_allclose(head.logits(x), DEFAULT_SCALE * _unit(x) @ head.weight.numpy().T, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("scale", [0, -1.0, math.nan, math.inf, True, "2"])
def test_bad_scales_are_refused(encoder, scale):
    with pytest.raises(CatsplitError, match="scale must be a positive finite number"):
        catsplit.text_head(["a b", "c d"], encoder, scale=scale)


def test_a_text_head_keeps_its_scale_and_templates_in_its_file(tmp_path, encoder):
    head = catsplit.text_head(["Pushing something", "Lifting something up"], encoder, templates=["a {}."], scale=12.5)
    head.save(tmp_path / "t.safetensors")
    back = load_head(tmp_path / "t.safetensors")
    assert back.equals(head) and (back.kind, back.scale, back.templates) == ("text", 12.5, ("a {}.",))
