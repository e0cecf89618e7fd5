"""Tests of the rendered benchmark world (catsplit.bench.world) and its base models."""
import io
import math

import numpy as np
import pytest
import torch

from catsplit.bench import models as M
from catsplit.bench import world as W
from catsplit.progress import Progress, progress
from catsplit.errors import CatsplitError

TINY = W.WorldConfig(seed=3, n_train=2, n_val=1, n_test=1)
SMALL_ACTIONS = ("push", "pull", "pick", "squeeze")


@pytest.fixture(scope="module")
def tiny():
    return W.generate(TINY, progress=False)


# ---- taxonomy --------------------------------------------------------------------------------

def test_taxonomy_constraints():
    tax = W.taxonomy()
    assert len(tax.coarse) >= 14
    assert all(len(tax.fine[c]) >= 2 for c in tax.coarse)
    assert len(tax.labels) >= 60
    assert len(set(tax.labels)) == len(tax.labels)
    for c in tax.coarse:
        for f in tax.fine[c]:
            assert f == f"{c} {tax.modifier[f]}"  # fine = coarse + " " + modifier
            assert tax.coarse_of[f] == c
    # shared modifiers of every family, and a few novel ones that belong to one action only
    shared = set(tax.shared)
    for m in ("from left to right", "from right to left", "up", "down", "towards the camera",
              "away from the camera", "onto something", "into something", "next to something",
              "behind something", "so that it falls off the table",
              "so that it almost falls off but doesn't", "on its own", "together with another thing",
              "together with two other things", "but only pretending", "so that it spins", "slightly"):
        assert m in shared, m
    assert len(tax.novel) >= 3
    for m in tax.novel:
        owners = {c for c in tax.coarse for f in tax.fine[c] if tax.modifier[f] == m}
        assert len(owners) == 1
    # every shared modifier belongs to >= 4 actions, so both halves of a partition usually see it
    for m in shared:
        owners = {c for c in tax.coarse for f in tax.fine[c] if tax.modifier[f] == m}
        assert len(owners) >= 4, (m, owners)
    # every action shares most of its modifiers with other actions
    for c in tax.coarse:
        mods = [tax.modifier[f] for f in tax.fine[c]]
        assert sum(m in shared for m in mods) >= len(mods) / 2


def test_taxonomy_subset_and_errors():
    tax = W.taxonomy(W.WorldConfig(actions=SMALL_ACTIONS))
    assert tax.coarse == [W.ACTIONS[a][0] for a in SMALL_ACTIONS]
    with pytest.raises(CatsplitError):
        W.taxonomy(W.WorldConfig(actions=("push", "nope")))
    with pytest.raises(CatsplitError):
        W.render_clip(W.ClipSpec("push", "onto"), np.random.default_rng(0))  # not a push modifier


def test_partition_seeded_disjoint():
    tax = W.taxonomy()
    A, B = W.partition(tax, 0)
    assert (A, B) == W.partition(tax, 0)
    assert not set(A) & set(B)
    assert set(A) | set(B) == set(tax.coarse)
    assert len(A) == len(tax.coarse) // 2
    assert A == [c for c in tax.coarse if c in A]  # taxonomy order
    assert any(W.partition(tax, s)[0] != A for s in range(1, 5))


def test_mixed_labels():
    tax = W.taxonomy()
    A, B = W.partition(tax, 1)
    labels, mapping = W.mixed_labels(tax, A)
    assert len(labels) == len(set(labels)) == len(A) + sum(len(tax.fine[c]) for c in B)
    for c in A:
        assert c in labels
        assert all(mapping[f] == c for f in tax.fine[c])
        assert not any(f in labels for f in tax.fine[c])
    for c in B:
        assert c not in labels
        assert all(mapping[f] == f and f in labels for f in tax.fine[c])
    assert set(mapping) == set(tax.labels)
    idx = np.arange(len(tax.labels))
    y, labels2 = W.mixed_targets(tax, idx, A)
    assert labels2 == labels
    assert [labels[i] for i in y] == [mapping[f] for f in tax.labels]
    with pytest.raises(CatsplitError):
        W.mixed_labels(tax, ["Juggling something"])


# ---- rendering ---------------------------------------------------------------------------------

def test_every_label_renders_and_moves():
    tax = W.taxonomy()
    for label in tax.labels:
        spec = W.ClipSpec.of(tax, label, TINY)
        clip = W.render_clip(spec, W.clip_rng(0, "train", label, 0))
        assert clip.shape == (16, 32, 32, 3) and clip.dtype == np.uint8
        # something happens: first and last frames differ beyond the sensor noise
        assert np.abs(clip[0].astype(int) - clip[-1].astype(int)).mean() > 1.0, label


def test_render_deterministic_and_seed_dependent():
    spec = W.ClipSpec("throw", "onto", size=40, frames=12)
    a = W.render_clip(spec, W.clip_rng(5, "val", "x", 2))
    b = W.render_clip(spec, W.clip_rng(5, "val", "x", 2))
    c = W.render_clip(spec, W.clip_rng(6, "val", "x", 2))
    assert a.shape == (12, 40, 40, 3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def _scene(action, mod, seed):
    sc = W._Scene(W.ClipSpec(action, mod), np.random.default_rng(seed))
    W._build(sc, action, mod)
    return sc


@pytest.mark.parametrize("mod", ["lr", "rl", "up", "down", "tow", "away", "pretend", "two", "three", "spin"])
def test_modifier_effect_is_shared_across_actions(mod):
    """A modifier does the same thing to the object whatever the action."""
    actions = [a for a, (_, mods) in W.ACTIONS.items() if mod in mods]
    assert len(actions) >= 2
    for a in actions:
        for seed in range(3):
            sc = _scene(a, mod, seed)
            o = sc.objects[0]
            dx, dy = o.x[-1] - o.x[0], o.y[-1] - o.y[0]
            size = o.hw[-1] / o.hw[0]
            if mod == "lr":
                assert dx > 0.2, (a, dx)
            elif mod == "rl":
                assert dx < -0.2, (a, dx)
            elif mod in ("up", "down"):
                assert (dy < -0.2 if mod == "up" else dy > 0.2) and abs(size - 1) < 1e-6, (a, dy)
            elif mod == "tow":
                assert dy > 0.1 and size > 1.3, (a, dy, size)
            elif mod == "away":
                assert dy < -0.1 and size < 0.75, (a, dy, size)
            elif mod == "pretend":
                for ob in sc.objects:
                    for arr in (ob.x, ob.y, ob.hw, ob.hh, ob.ang):
                        assert np.ptp(arr) < 1e-9, a
            elif mod in ("two", "three"):
                assert len(sc.objects) == (2 if mod == "two" else 3), a
            elif mod == "spin":
                assert np.ptp(o.ang) > 2 * math.pi, a


def test_relations_and_outcomes():
    for a, (_, mods) in W.ACTIONS.items():
        for mod in ("onto", "into", "next", "behind"):
            if mod not in mods:
                continue
            sc = _scene(a, mod, 1)
            assert sc.box is not None
            top = sc.box.y[0] - sc.box.hh[0]
            o = sc.objects[0]
            if mod == "onto":
                assert abs(o.y[-1] + o.hh[-1] - top) < 0.02 and abs(o.x[-1] - sc.box.x[0]) < sc.box.hw[0], a
            if mod == "into":  # hidden inside: drawn before the box, fully within it
                assert o.layer < sc.box.layer and o.y[-1] - abs(o.hh[-1]) > top, a
            if mod == "behind":
                assert o.layer < sc.box.layer and o.y[-1] - abs(o.hh[-1]) < top < o.y[-1] + abs(o.hh[-1]), a
        if "fall" in mods:
            sc = _scene(a, "fall", 2)
            assert sc.objects[0].y[-1] - sc.objects[0].y[0] > 0.1, a  # dropped below the table top


# ---- data set ------------------------------------------------------------------------------------

def test_generate_shapes_and_determinism(tiny):
    tax = tiny.taxonomy
    n_lab = len(tax.labels)
    for split, n in TINY.counts().items():
        s = tiny[split]
        assert s.clips.shape == (n * n_lab, 16, 32, 32, 3) and s.clips.dtype == np.uint8
        assert s.labels.dtype == np.int64 and s.labels.shape == (n * n_lab,)
        assert np.bincount(s.labels, minlength=n_lab).tolist() == [n] * n_lab
    assert tiny.label_names("val") == tax.labels
    sub = W.WorldConfig(seed=3, n_train=2, n_val=1, n_test=1, actions=SMALL_ACTIONS)
    again = W.generate(sub, progress=False, splits=("train",))
    # a clip depends only on (seed, split, label, index): identical within a subset world
    tax_s = again.taxonomy
    for j, label in enumerate(tax_s.labels):
        i = tax.labels.index(label)
        assert np.array_equal(again["train"].clips[2 * j:2 * j + 2], tiny["train"].clips[2 * i:2 * i + 2])
    other = W.generate(W.WorldConfig(seed=4, n_train=1, n_val=0, n_test=0, actions=SMALL_ACTIONS),
                       progress=False, splits=("train",))
    assert not np.array_equal(other["train"].clips, again["train"].clips[::2])


def test_config_presets_and_key():
    full, quick = W.WorldConfig(), W.WorldConfig.quick()
    assert (full.n_train, full.n_val, full.n_test) == (150, 30, 40)
    assert quick.n_train < full.n_train and quick.n_test >= 10
    assert full.key() == W.WorldConfig().key() != W.WorldConfig(seed=1).key()
    assert W.WorldConfig.quick(seed=2).seed == 2


def test_progress_is_silent_without_tty():
    buf = io.StringIO()
    with Progress(10, "x", stream=buf) as bar:
        bar.update(10)
    assert buf.getvalue() == ""
    assert list(progress(range(3), enabled=False)) == [0, 1, 2]


# ---- models --------------------------------------------------------------------------------------

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


def test_cached_features_write_once_atomically_and_read_back(tmp_path):
    from catsplit.bench.run import cached_features, read_features

    arrays = {"x": np.arange(6, dtype=np.float32).reshape(2, 3), "labels": np.array(["a", "b"])}
    calls = []
    path = tmp_path / "A-linear-features.npz"
    got = cached_features(path, lambda: calls.append(1) or arrays)
    again = cached_features(path, lambda: calls.append(1) or arrays)  # cached: make() is not called again
    assert calls == [1] and [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left
    with np.load(path) as f:  # a plain .npz, as before
        plain = {k: f[k] for k in f.files}
    for out in (got, again, read_features(path), plain):
        assert out.keys() == arrays.keys() and all(np.array_equal(out[k], arrays[k]) for k in arrays)
