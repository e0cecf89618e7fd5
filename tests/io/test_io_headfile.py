"""catsplit.io.headfile: the head file layout, the write side — what save writes reads back as the same head."""

import json
import os

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import catsplit
from catsplit import CatsplitError, Head, load_head
from conftest import HashEncoder, compositional_head

COARSE = "Pushing something"

MULTILINGUAL = [
    "Schieben etwas nach links", "Schieben etwas nach rechts",  # German
    "Pousser quelque chose à gauche", "Pousser quelque chose à droite",  # French, accents
    "Толкать что-то влево", "Толкать что-то вправо",  # Cyrillic
    "把东西 从左推到右", "把东西 从右推到左",  # CJK
    "دفع شيء إلى اليسار", "دفع شيء إلى اليمين",  # Arabic (right to left)
    "कुछ धकेलना बाएं", "कुछ धकेलना दाएं",  # Devanagari
    "🙂 pushing something 👉", "🙂 pushing something 👈",  # emoji
    "👩‍👩‍👧 family pushing", "🏳️‍🌈 flag pushing",  # ZWJ sequences, variation selector
    "Caf\u00e9 pushing", "Cafe\u0301 pulling",  # precomposed and combining accents (different labels)
    "Straße sweeping", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝔭𝔲𝔰𝔥",  # sharp s, astral plane letters
]


@pytest.mark.parametrize("mode", ["flat", "hierarchical"])
def test_roundtrip_after_split(tmp_path, encoder, head_and_subs, mode):
    head, subs = head_and_subs
    edited = catsplit.split(head, encoder, "Pushing something", subs, method="retrieval", mode=mode)
    path = tmp_path / "edited.safetensors"
    edited.save(path)
    loaded = load_head(path)
    assert loaded.equals(edited)
    assert loaded.labels == edited.labels
    x = np.random.default_rng(0).standard_normal((7, head.dim)).astype(np.float32)
    np.testing.assert_array_equal(loaded.logits(x), edited.logits(x))
    # and the loaded file can be undone to the original, bit for bit
    assert catsplit.unsplit(loaded, "Pushing something").equals(head)


@pytest.mark.parametrize("dtype, code", [(torch.float16, "F16"), (torch.bfloat16, "BF16")])
def test_half_precision_files_are_not_upcast(tmp_path, encoder, dtype, code):
    head, subs, _, _ = compositional_head()
    head = Head(weight=head.weight.to(dtype), bias=head.bias.to(dtype), labels=head.labels)
    edited = catsplit.split(head, encoder, "Pushing something", subs, method="alignment")
    assert edited.dtype == dtype
    path = tmp_path / "h.safetensors"
    edited.save(path)
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    assert header["weight"]["dtype"] == code and header["bias"]["dtype"] == code
    assert load_head(path).equals(edited)


def test_foreign_metadata_is_kept(tmp_path):
    src = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.ones(2, 3), "bias": torch.zeros(2)}, str(src), metadata={"author": "someone", "format": "pt"})
    head = load_head(src, labels=["a", "b"])
    assert head.metadata == {"author": "someone", "format": "pt"}
    out = tmp_path / "out.safetensors"
    head.save(out)
    with safe_open(str(out), "pt") as f:
        meta = f.metadata()
    assert meta["author"] == "someone" and json.loads(meta["catsplit.labels"]) == ["a", "b"]


def test_save_refuses_to_overwrite(tmp_path):
    head = Head(weight=np.ones((2, 2)), labels=["a", "b"])
    path = tmp_path / "h.safetensors"
    path.write_bytes(b"precious")
    with pytest.raises(CatsplitError, match="overwrite=True"):
        head.save(path)
    assert path.read_bytes() == b"precious"
    head.save(path, overwrite=True)
    assert load_head(path).equals(head)
    assert sorted(os.listdir(tmp_path)) == ["h.safetensors"]  # no temp file left behind


def test_save_into_missing_folder_is_an_error(tmp_path):
    head = Head(weight=np.ones((2, 2)), labels=["a", "b"])
    with pytest.raises(CatsplitError, match="does not exist"):
        head.save(tmp_path / "nope" / "h.safetensors")


@pytest.fixture
def multilingual_head():
    rng = np.random.default_rng(0)
    labels = [COARSE] + MULTILINGUAL
    return Head(weight=rng.standard_normal((len(labels), 12)).astype(np.float32), bias=np.zeros(len(labels), np.float32),
                labels=labels)


def test_multilingual_labels_round_trip_through_save_load_and_split(tmp_path, multilingual_head):
    head = multilingual_head
    p = tmp_path / "intl.safetensors"
    head.save(p)
    assert "把东西 从左推到右".encode("utf-8") in p.read_bytes()  # stored as UTF-8, not \u escapes
    loaded = load_head(p)
    assert loaded.labels == head.labels and loaded.equals(head)
    with safe_open(str(p), framework="pt") as f:  # other safetensors readers see the same labels
        assert json.loads(f.metadata()["catsplit.labels"]) == list(head.labels)
    subs = [f"{COARSE} 🙂 nach links", f"{COARSE} 把东西 向右", f"{COARSE} à gauche"]
    for method, mode in [("retrieval", "flat"), ("alignment", "hierarchical"), ("coarse", "flat")]:
        edited = catsplit.split(loaded, HashEncoder(), COARSE, subs, method=method, mode=mode, seed=1,
                                config=catsplit.SplitConfig(max_steps=20))
        q = tmp_path / f"edited-{method}.safetensors"
        edited.save(q)
        again = load_head(q)
        assert again.equals(edited) and list(again.labels[-3:]) == subs
        assert again.history[-1]["modifiers"][subs[0]] == "🙂 nach links"
        assert catsplit.unsplit(again, COARSE).equals(head)


def test_an_output_order_is_written_only_where_the_labels_leave_table_order(tmp_path, encoder, head_and_subs):
    head, subs = head_and_subs
    flat = catsplit.split(head, encoder, COARSE, subs, method="coarse", order="keep")
    hier = catsplit.split(head, encoder, COARSE, subs, method="coarse", mode="hierarchical", order="keep")
    for name, h in (("flat", flat), ("hier", hier)):
        h.save(tmp_path / f"{name}.safetensors")
    with safe_open(str(tmp_path / "flat.safetensors"), "pt") as f:
        assert "catsplit.order" not in f.metadata()  # one table: its rows are the output order
    with safe_open(str(tmp_path / "hier.safetensors"), "pt") as f:
        assert json.loads(f.metadata()["catsplit.order"]) == list(hier.labels)
    assert load_head(tmp_path / "hier.safetensors").labels == hier.labels


@pytest.mark.parametrize("order, message", [
    ('{"a": 1}', "output_order must be a list"),
    ('["nope"]', "every output label once"),
    ("[", "not valid JSON"),
])
def test_a_damaged_output_order_is_refused_naming_the_file(tmp_path, encoder, head_and_subs, order, message):
    head, subs = head_and_subs
    hier = catsplit.split(head, encoder, COARSE, subs, method="coarse", mode="hierarchical", order="keep")
    path = tmp_path / "hier.safetensors"
    hier.save(path)
    with safe_open(str(path), "pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    meta["catsplit.order"] = order
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(CatsplitError, match=f"{path}.*{message}"):
        load_head(path)


def test_format_version_2_exactly_when_the_output_order_is_written(tmp_path, encoder, head_and_subs):
    # A hierarchical keep split lists its labels out of table order (catsplit.order): such a file is
    # format "2", so a catsplit that predates the key refuses it instead of misreading the labels.
    head, subs = head_and_subs
    hier = catsplit.split(head, encoder, COARSE, subs, method="coarse", mode="hierarchical", order="keep")
    flat = catsplit.split(head, encoder, COARSE, subs, method="coarse", order="keep")
    plain = catsplit.split(head, encoder, COARSE, subs, method="coarse", mode="hierarchical")
    for name, h, version in (("hier", hier, "2"), ("flat", flat, "1"), ("plain", plain, "1"), ("head", head, "1")):
        h.save(tmp_path / f"{name}.safetensors")
        with safe_open(str(tmp_path / f"{name}.safetensors"), "pt") as f:
            assert f.metadata()["catsplit.format"] == version, name
        assert load_head(tmp_path / f"{name}.safetensors").equals(h)


@pytest.mark.parametrize("drop_order", [True, False])
def test_the_format_version_and_the_output_order_must_agree(tmp_path, encoder, head_and_subs, drop_order):
    head, subs = head_and_subs
    hier = catsplit.split(head, encoder, COARSE, subs, method="coarse", mode="hierarchical", order="keep")
    path = tmp_path / "hier.safetensors"
    hier.save(path)
    with safe_open(str(path), "pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    if drop_order:
        del meta["catsplit.order"]  # format "2" without the order
    else:
        meta["catsplit.format"] = "1"  # the order under format "1"
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(CatsplitError, match=f"{path}.*catsplit.order.*damaged"):
        load_head(path)
