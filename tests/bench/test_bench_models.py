"""catsplit.bench.models: the benchmark's base models, trained on a tiny rendered world."""

import numpy as np
import pytest
import torch

from catsplit.bench import models as M
from catsplit.bench import world as W
from catsplit.errors import CatsplitError

TINY = W.WorldConfig(seed=3, n_train=2, n_val=1, n_test=1)


@pytest.fixture(scope="module")
def tiny():
    return W.generate(TINY, progress=False)


def _stand_in_encoder(texts):
    """A deterministic bag-of-words embedding (E = 24)."""
    out = np.zeros((len(texts), 24), np.float32)
    for i, t in enumerate(texts):
        for w in t.lower().replace(".", "").split():
            out[i] += np.random.default_rng(sum(map(ord, w)) * 7919 + len(w)).normal(size=24)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_tiny_training_linear_and_text4vis(tiny, tmp_path):
    torch.set_num_threads(1)
    tax = tiny.taxonomy
    A, B = W.partition(tax, 0)
    labels, _ = W.mixed_labels(tax, A)
    cfg = M.TrainConfig(width=4, dim=32, epochs=1, batch_size=16, seed=0)
    model, rep = M.train_base(tiny, A, "linear", cfg, progress=False)
    assert rep.labels == labels and rep.best_epoch == 1 and 0.0 <= rep.val_acc <= 1.0
    assert 0.0 <= rep.test_acc <= 1.0
    head = M.export_head(model)
    D = model.backbone.dim
    assert D == 32
    assert head["weight"].shape == (len(labels), D) and head["bias"].shape == (len(labels),)
    assert head["labels"] == labels
    clips = tiny["test"].clips[:10]
    f = M.extract_features(model, clips)
    assert f.shape == (10, D) and f.dtype == np.float32
    logits = M.predict_logits(model, clips)
    assert np.allclose(f @ head["weight"].T + head["bias"], logits, atol=1e-4)
    # save / load / cache
    path = M.save_model(model, str(tmp_path / "a.safetensors"), cfg, rep)
    again, rep2 = M.load_model(path)
    assert rep2.best_epoch == rep.best_epoch and again.labels == labels
    assert np.allclose(M.extract_features(again, clips), f, atol=1e-5)
    calls = []

    def fit():
        calls.append(1)
        return model, rep

    _, _, hit = M.cached_train(str(tmp_path / "cache"), "A-linear", fit, cfg)
    _, _, hit2 = M.cached_train(str(tmp_path / "cache"), "A-linear", fit, cfg)
    assert (hit, hit2, len(calls)) == (False, True, 1)

    tmodel, trep = M.train_base(tiny, B, "text4vis", cfg, encoder=_stand_in_encoder, progress=False)
    tlabels, _ = W.mixed_labels(tax, B)
    th = M.export_head(tmodel)
    assert th["weight"].shape == (len(tlabels), 24) and th["kind"] == "text4vis"
    tf = M.extract_features(tmodel, clips)
    assert tf.shape == (10, 24)
    assert np.allclose(np.linalg.norm(tf, axis=1), 1.0, atol=1e-4)
    assert np.allclose(tf @ th["weight"].T, M.predict_logits(tmodel, clips), atol=1e-3)
    rows = M.text_rows(_stand_in_encoder, tlabels, M.TEMPLATES)
    assert np.allclose(th["weight"] / th["scale"], rows, atol=1e-5)
    tpath = M.save_model(tmodel, str(tmp_path / "t.safetensors"), cfg, trep)
    tagain, _ = M.load_model(tpath)
    assert np.allclose(M.extract_features(tagain, clips), tf, atol=1e-5)
    with pytest.raises(CatsplitError):
        M.train_base(tiny, B, "text4vis", cfg, progress=False)  # no encoder
