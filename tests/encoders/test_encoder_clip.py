"""catsplit.encoders.clip: CLIP's text tower from a Hugging Face folder, against transformers on random weights."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from catsplit.encoders import CLIPTextEncoder, load_text_encoder
from catsplit.errors import CatsplitError

pytest.importorskip("transformers")
from clip_reference import clip_folder, reference  # noqa: E402

TEXTS = ["pushing something from left to right", "a cat", "pulling something from right to left",
         "zebra xylophone!", "Lifting   a CUP up", "moving something towards the camera"]


@pytest.fixture(scope="module", params=["text", "projection", "full"])
def folder(request, tmp_path_factory):
    kind = request.param
    return (kind, *clip_folder(tmp_path_factory.mktemp(kind), kind))


def test_the_tower_matches_transformers(folder):
    kind, path, model, tokenizer = folder
    enc = load_text_encoder(path)  # chosen by the folder's config.json model_type
    assert isinstance(enc, CLIPTextEncoder)
    assert enc.dim == (16 if kind == "text" else 12)  # the projection into the joint space when the weights have one
    ours = enc(TEXTS)
    assert ours.dtype == np.float32 and ours.shape == (len(TEXTS), enc.dim)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(ours, reference(model, tokenizer, TEXTS, kind), atol=1e-5)
    i, j = np.triu_indices(len(TEXTS), 1)
    assert np.abs(ours[i] - ours[j]).max(axis=1).min() > 1e-3  # every text gets its own embedding
    # one text at a time (no padding) gives the same rows: padding never reaches the end-of-text state
    np.testing.assert_allclose(np.concatenate([enc([t]) for t in TEXTS]), ours, atol=1e-5)


def test_the_tokenisation_is_transformers_clip_tokenizer(folder):
    _, path, _, tokenizer = folder
    enc = CLIPTextEncoder(path)
    ours = [e.ids[: sum(e.attention_mask)] for e in enc.tokenizer.encode_batch(TEXTS)]
    assert ours == tokenizer(TEXTS)["input_ids"]
    assert all(ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id for ids in ours)


@pytest.mark.parametrize("overrides", [{"hidden_act": "gelu"}, {"eos_token_id": 2}, {"layer_norm_eps": 1e-3}])
def test_config_variants_match_transformers(tmp_path, overrides):
    """gelu instead of quick_gelu; an old config whose eos_token_id 2 means "pool at the highest id"."""
    path, model, tokenizer = clip_folder(tmp_path / "m", "projection", seed=1, **overrides)
    np.testing.assert_allclose(CLIPTextEncoder(path)(TEXTS), reference(model, tokenizer, TEXTS, "projection"), atol=1e-5)


def test_projection_can_be_left_out_and_is_never_invented(tmp_path):
    import torch

    path, model, tokenizer = clip_folder(tmp_path / "p", "projection")
    bare = CLIPTextEncoder(path, projection=False)
    assert bare.dim == 16
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        pooled = torch.nn.functional.normalize(model.text_model(**batch).pooler_output, dim=1)
    np.testing.assert_allclose(bare(TEXTS), pooled.numpy(), atol=1e-5)
    text, _, _ = clip_folder(tmp_path / "t", "text")
    with pytest.raises(CatsplitError, match="no text_projection.weight"):
        CLIPTextEncoder(text, projection=True)


def _edited(src: Path, dst: Path, config=None, drop: str | None = None) -> Path:
    shutil.copytree(src, dst)
    if config is not None:
        cfg = json.loads((dst / "config.json").read_text())
        config(cfg)
        (dst / "config.json").write_text(json.dumps(cfg))
    if drop is not None:
        from safetensors.numpy import load_file, save_file

        tensors = load_file(str(dst / "model.safetensors"))
        save_file({k: v for k, v in tensors.items() if not k.endswith(drop)}, str(dst / "model.safetensors"))
    return dst


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.update(hidden_act="swish"), "hidden_act 'swish' is not supported"),
    (lambda c: c.update(num_attention_heads=3), "hidden_size is not a multiple of num_attention_heads"),
    (lambda c: c.update(hidden_size="16"), "hidden_size must be a positive integer, got '16'"),
    (lambda c: c.pop("vocab_size"), "lacks vocab_size"),
    (lambda c: c.update(eos_token_id=10**6), "eos_token_id must be a token id"),
    (lambda c: c.update(layer_norm_eps=-1), "layer_norm_eps must be a small positive number"),
    (lambda c: c.update(num_hidden_layers=3), "encoder.layers.2.self_attn.q_proj.weight' missing"),
    (lambda c: c.update(max_position_embeddings=30), r"position_embedding.weight has shape \(24, 16\), config says \(30, 16\)"),
])
def test_bad_text_configs_are_named(tmp_path, edit, message):
    path, _, _ = clip_folder(tmp_path / "ok", "text")
    with pytest.raises(CatsplitError, match=message):
        load_text_encoder(_edited(path, tmp_path / "bad", edit))


def test_bad_clip_model_folders_are_named(tmp_path):
    path, _, _ = clip_folder(tmp_path / "ok", "full")
    with pytest.raises(CatsplitError, match="needs a text_config object"):
        load_text_encoder(_edited(path, tmp_path / "a", lambda c: c.pop("text_config")))
    with pytest.raises(CatsplitError, match="final_layer_norm.weight' missing"):
        load_text_encoder(_edited(path, tmp_path / "b", drop="final_layer_norm.weight"))
    with pytest.raises(CatsplitError, match=r"max_length must be in \[3, 24\]"):
        CLIPTextEncoder(path, max_length=77)
    with pytest.warns(UserWarning, match="truncated to 8"):
        out = CLIPTextEncoder(path, max_length=8)(["pushing something from left to right and back again"])
    assert out.shape == (1, 12)
