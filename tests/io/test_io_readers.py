"""catsplit.io.readers: label lists, JSON files and clip-feature arrays users hand catsplit."""


import numpy as np
import pytest

from catsplit import CatsplitError
from catsplit.io.readers import read_clips


def test_read_clips_conventions(tmp_path):
    x = np.zeros((3, 4), dtype=np.float16)
    np.savez(tmp_path / "one.npz", x)  # a single unnamed array is the features
    feats, labels = read_clips(tmp_path / "one.npz")
    assert feats.dtype == np.float16 and feats.shape == (3, 4) and labels is None
    np.savez(tmp_path / "two.npz", a=x, b=x)
    with pytest.raises(CatsplitError, match="name the \\[N, D\\] array 'features'"):
        read_clips(tmp_path / "two.npz")
    np.save(tmp_path / "flat.npy", np.zeros(4))
    with pytest.raises(CatsplitError, match="shape \\[N, D\\]"):
        read_clips(tmp_path / "flat.npy")
    np.savez(tmp_path / "fl.npz", features=x, labels=np.array([0.5, 1.0, 2.0]))
    with pytest.raises(CatsplitError, match="strings or integer indices"):
        read_clips(tmp_path / "fl.npz")
    (tmp_path / "labels.txt").write_text("a b\n\nc d\n")
    assert read_clips(tmp_path / "one.npz", tmp_path / "labels.txt")[1] == ["a b", "c d"]
