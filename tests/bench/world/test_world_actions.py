"""catsplit.bench.world.actions (with scene and canvas): every action x modifier renders, deterministically,
and a modifier does the same thing to the object whatever the action."""
import math

import numpy as np
import pytest

from catsplit.bench import world as W

TINY = W.WorldConfig(seed=3, n_train=2, n_val=1, n_test=1)


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
