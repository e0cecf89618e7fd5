"""catsplit.io.readers: label lists, JSON files and clip-feature arrays users hand catsplit."""

import json

import numpy as np
import pytest

from catsplit import CatsplitError
from catsplit.io.readers import read_clips, read_json, read_labels, read_lines


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


def test_read_labels_from_lists_mappings_and_files(tmp_path):
    assert read_labels(["a", "b"]) == ["a", "b"]
    assert read_labels({"b": 1, "a": 0}) == ["a", "b"]
    (tmp_path / "l.txt").write_text("a\n\n  b  \n")  # blank lines dropped, white space stripped
    assert read_labels(tmp_path / "l.txt") == ["a", "b"]
    (tmp_path / "l.json").write_text(json.dumps({"b": "1", "a": "0"}))
    assert read_labels(str(tmp_path / "l.json")) == ["a", "b"]
    (tmp_path / "n.json").write_text("3")
    with pytest.raises(CatsplitError, match="must hold a JSON list or an object"):
        read_labels(tmp_path / "n.json")
    with pytest.raises(CatsplitError, match="not found"):
        read_labels(tmp_path / "missing.txt")
    with pytest.raises(CatsplitError, match="give a list of labels or the path"):
        read_labels("Pushing something")  # a label, not a file name


def test_read_json_names_the_file_and_what_it_holds(tmp_path):
    (tmp_path / "ok.json").write_text('{"a": [1, 2]}')
    assert read_json(tmp_path / "ok.json", "groups") == {"a": [1, 2]}
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CatsplitError, match=r"groups file .*bad\.json is not valid JSON"):
        read_json(tmp_path / "bad.json", "groups")
    with pytest.raises(CatsplitError, match=r"modifiers file .*none\.json not found"):
        read_json(tmp_path / "none.json", "modifiers")


def test_a_byte_order_mark_does_not_stay_in_the_first_label(tmp_path):
    """Editors on Windows start UTF-8 files with a BOM; it belongs to no label (it made the first sub unknown)."""
    (tmp_path / "subs.txt").write_bytes("\ufeffPushing a\r\nPushing b\r\n".encode("utf-8"))
    assert read_lines(tmp_path / "subs.txt", "subs") == ["Pushing a", "Pushing b"]
    (tmp_path / "labels.json").write_bytes('\ufeff["a", "b"]'.encode("utf-8"))
    assert read_json(tmp_path / "labels.json", "labels") == ["a", "b"]
    assert read_labels(tmp_path / "subs.txt") == ["Pushing a", "Pushing b"]


@pytest.mark.parametrize("reader", [lambda p: read_lines(p, "subs"), lambda p: read_json(p, "groups"), read_labels])
def test_a_file_that_is_not_utf8_is_a_catsplit_error_naming_it(tmp_path, reader):
    path = tmp_path / "labels.txt"
    path.write_bytes(b"\xff\xfe caf\xe9")
    with pytest.raises(CatsplitError, match=r"labels.txt is not UTF-8 text .*save it as UTF-8"):
        reader(path)


def test_json_nested_too_deeply_is_a_catsplit_error(tmp_path):
    path = tmp_path / "groups.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CatsplitError, match="groups file .* nested too deeply"):
        read_json(path, "groups")
