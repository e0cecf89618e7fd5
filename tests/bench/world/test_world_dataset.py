"""catsplit.bench.world.dataset: generating the splits of a world configuration."""
import numpy as np
import pytest

from catsplit.bench import world as W

TINY = W.WorldConfig(seed=3, n_train=2, n_val=1, n_test=1)
SMALL_ACTIONS = ("push", "pull", "pick", "squeeze")


@pytest.fixture(scope="module")
def tiny():
    return W.generate(TINY, progress=False)


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
