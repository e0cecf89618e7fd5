"""catsplit.io.atomic: writes through a temp file — no half-written file, no silent overwrite, no temp file left."""

import os

import numpy as np

from catsplit import Head


def test_saved_files_get_the_usual_permissions(tmp_path):
    head = Head(weight=np.ones((2, 2)), labels=["a", "b"])
    old = os.umask(0o022)
    try:
        head.save(tmp_path / "h.safetensors")
    finally:
        os.umask(old)
    assert (tmp_path / "h.safetensors").stat().st_mode & 0o777 == 0o644
    os.chmod(tmp_path / "h.safetensors", 0o640)
    head.save(tmp_path / "h.safetensors", overwrite=True)
    assert (tmp_path / "h.safetensors").stat().st_mode & 0o777 == 0o640
