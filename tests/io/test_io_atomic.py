"""catsplit.io.atomic: writes through a temp file — no half-written file, no silent overwrite, no temp file left."""

import errno
import os

import numpy as np
import pytest

from catsplit import CatsplitError, Head
from catsplit.io.atomic import atomic_path, check_destination, temp_stem


def test_the_file_gets_its_name_only_when_the_block_ends(tmp_path):
    dst = tmp_path / "out.bin"
    with atomic_path(dst) as tmp:
        tmp.write_bytes(b"new")
        assert not dst.exists() and tmp.parent == tmp_path
        assert tmp.name.startswith(".out.bin.") and tmp.name.endswith(".tmp")
        assert tmp.read_bytes() == b"new"  # the block may read its file back before it gets its name
    assert dst.read_bytes() == b"new" and os.listdir(tmp_path) == ["out.bin"]


def test_a_failing_block_leaves_the_old_file_and_removes_the_temp_file(tmp_path):
    dst = tmp_path / "out.bin"
    dst.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="half way"):
        with atomic_path(dst, overwrite=True) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("half way")
    assert dst.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.bin"]
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "new.bin") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("half way")
    assert os.listdir(tmp_path) == ["out.bin"]  # neither new.bin nor its temp file


def test_os_errors_say_the_destination_is_untouched(tmp_path):
    dst = tmp_path / "out.bin"
    dst.write_bytes(b"old")
    with pytest.raises(CatsplitError, match=r"cannot write .*out\.bin: No space left on device; .*out\.bin is untouched"):
        with atomic_path(dst, overwrite=True) as tmp:
            tmp.write_bytes(b"ha")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert dst.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.bin"]


def test_an_existing_file_is_replaced_only_with_overwrite(tmp_path):
    dst = tmp_path / "out.bin"
    dst.write_bytes(b"keep")
    with pytest.raises(CatsplitError, match="exists; choose another name or pass overwrite=True"):
        with atomic_path(dst) as tmp:
            raise AssertionError("the block must not run")
    assert dst.read_bytes() == b"keep"
    with atomic_path(dst, overwrite=True) as tmp:
        tmp.write_bytes(b"new")
    assert dst.read_bytes() == b"new" and os.listdir(tmp_path) == ["out.bin"]


def test_a_file_that_appears_while_writing_is_not_clobbered(tmp_path):
    dst = tmp_path / "out.bin"
    with pytest.raises(CatsplitError, match="appeared while saving"):
        with atomic_path(dst) as tmp:
            tmp.write_bytes(b"mine")
            dst.write_bytes(b"theirs")  # another program takes the name meanwhile
    assert dst.read_bytes() == b"theirs" and os.listdir(tmp_path) == ["out.bin"]


def test_bad_destinations_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(CatsplitError, match="is a folder; give a file name such as .*head.safetensors"):
        check_destination(tmp_path, overwrite=True, example="head.safetensors")
    with pytest.raises(CatsplitError, match="does not exist; create it first"):
        check_destination(tmp_path / "missing" / "out.bin", overwrite=False)
    assert check_destination(tmp_path / "out.bin", overwrite=False) == tmp_path / "out.bin"
    assert os.listdir(tmp_path) == []


def test_temp_names_fit_the_file_name_limit():
    budget = 255 - len(".") - len(".") - 8 - len(".tmp")
    assert temp_stem("short.safetensors") == "short.safetensors"
    assert len(temp_stem("x" * 300)) == budget
    stem = temp_stem("é" * 200)  # 2 bytes each in UTF-8
    assert len(stem.encode("utf-8")) <= budget and stem == "é" * len(stem)


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


@pytest.mark.parametrize("renameat2", [True, False], ids=["renameat2", "fallback"])
def test_rename_new_never_replaces_a_folder_that_exists_even_an_empty_one(tmp_path, monkeypatch, renameat2):
    from catsplit.io.atomic import rename_new

    if not renameat2:
        monkeypatch.setattr("catsplit.io.atomic._RENAMEAT2", [False])  # as on a system without renameat2
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "f").write_text("new")
    (tmp_path / "taken").mkdir()  # os.rename would put "new" over this empty folder without a word
    with pytest.raises(FileExistsError):
        rename_new(tmp_path / "new", tmp_path / "taken")
    assert list((tmp_path / "taken").iterdir()) == [] and (tmp_path / "new" / "f").read_text() == "new"
    rename_new(tmp_path / "new", tmp_path / "free")
    assert (tmp_path / "free" / "f").read_text() == "new" and not (tmp_path / "new").exists()


@pytest.mark.parametrize("renameat2", [True, False], ids=["renameat2", "fallback"])
def test_swap_in_replaces_a_folder_and_hands_back_the_old_one(tmp_path, monkeypatch, renameat2):
    from catsplit.io.atomic import swap_in

    if not renameat2:
        monkeypatch.setattr("catsplit.io.atomic._RENAMEAT2", [False])
    for name, text in (("new", "new"), ("model", "old")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text(text)
    old = swap_in(tmp_path / "new", tmp_path / "model")
    assert (tmp_path / "model" / "f").read_text() == "new"
    assert old is not None and any(p.read_text() == "old" for p in old.rglob("f"))
    (tmp_path / "next").mkdir()
    assert swap_in(tmp_path / "next", tmp_path / "fresh") is None and (tmp_path / "fresh").is_dir()
