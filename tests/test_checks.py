"""catsplit.checks: the input checks every entry point shares — label texts and collisions, label indices,
groups, templates, metadata, history and undo, seeds — and the read-only values FrozenDict, Record, Groups.

Each bad input is refused with a CatsplitError naming the value, and valid inputs keep working.
"""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import catsplit
from catsplit import CatsplitError, FinetuneConfig, Head, SplitConfig, load_head
from catsplit.cli import main

COARSE = "Pushing something"
FAST = SplitConfig(max_steps=20)


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


@pytest.mark.parametrize("labels", [3, 2.5, object(), "ab"])
def test_labels_that_are_no_list_are_refused(tmp_path, labels):
    p = tmp_path / "f.safetensors"
    save_file({"weight": torch.randn(2, 4)}, str(p))
    with pytest.raises(CatsplitError, match="labels"):
        catsplit.load_head(p, labels=labels)
    with pytest.raises(CatsplitError, match="labels"):
        catsplit.load_head(torch.nn.Linear(4, 2), labels=labels)
    with pytest.raises(CatsplitError, match="labels"):
        Head(weight=np.ones((2, 4), np.float32), labels=labels)


def test_a_label_index_mapping_is_read_in_index_order(tmp_path):
    w = torch.randn(3, 4)
    assert Head(weight=w, labels={"c": 2, "a": 0, "b": 1}).labels == ("a", "b", "c")
    p = tmp_path / "f.safetensors"
    save_file({"weight": w}, str(p))
    assert catsplit.load_head(p, labels={"c": 2, "a": 0, "b": 1}).labels == ("a", "b", "c")
    assert catsplit.load_head(p, labels={"c": np.int64(2), "a": 0, "b": 1}).labels == ("a", "b", "c")
    (tmp_path / "l.json").write_text(json.dumps({"c": 2, "a": 0, "b": 1}))
    assert catsplit.load_head(p, labels=tmp_path / "l.json").labels == ("a", "b", "c")
    (tmp_path / "ssv2.json").write_text(json.dumps({"c": "2", "a": "0", "b": "1"}))  # SSv2 writes strings
    assert catsplit.load_head(p, labels=tmp_path / "ssv2.json").labels == ("a", "b", "c")


@pytest.mark.parametrize("mapping, match", [
    ({"a": 0, "b": 0.5, "c": 2}, "'b': 0.5"),
    ({"a": 0, "b": 1.0, "c": 2}, "'b': 1.0"),
    ({"a": True, "b": 1, "c": 2}, "'a': True"),
    ({"a": 0, "b": None, "c": 2}, "'b': None"),
    ({"a": 0, "b": 1, "c": 1}, "'b' and 'c'"),
    ({"a": 0, "b": 1, "c": 3}, r"missing: \[2\]"),
    ({"a": -1, "b": 0, "c": 1}, r"out of range: \[-1\]"),
])
def test_bad_label_indices_are_refused(tmp_path, mapping, match):
    w = torch.randn(3, 4)
    p = tmp_path / "f.safetensors"
    save_file({"weight": w}, str(p))
    with pytest.raises(CatsplitError, match=match):
        Head(weight=w, labels=mapping)
    with pytest.raises(CatsplitError, match=match):
        catsplit.load_head(p, labels=mapping)
    (tmp_path / "l.json").write_text(json.dumps(mapping))
    with pytest.raises(CatsplitError, match=match):
        catsplit.load_head(p, labels=str(tmp_path / "l.json"))


@pytest.mark.parametrize("groups", [{"g": [["x"]]}, {"g": ["Pulling something up", 3]}, {"g": [{"a": 1}]}])
def test_group_members_must_be_strings(head16_and_subs, encoder, groups, tmp_path, monkeypatch, capsys):
    head, subs = head16_and_subs
    with pytest.raises(CatsplitError, match="must list its members as label strings"):
        catsplit.split(head, encoder, COARSE, subs, groups=groups)
    with pytest.raises(CatsplitError, match="must list its members as label strings"):
        head.evolve(groups=groups)
    with pytest.raises(CatsplitError, match="must list its members as label strings"):
        catsplit.infer_structure(head.labels, groups)
    head.save(tmp_path / "h.safetensors")
    (tmp_path / "g.json").write_text(json.dumps(groups))
    monkeypatch.setattr("catsplit.encoders.load_text_encoder", lambda spec=None: encoder)
    code = main(["split", str(tmp_path / "h.safetensors"), "--coarse", COARSE, "--sub", subs[0], "--sub", subs[1],
                 "--groups", str(tmp_path / "g.json"), "-o", str(tmp_path / "o.safetensors")])
    assert code == 2 and "label strings" in capsys.readouterr().err


@pytest.mark.parametrize("templates, match", [
    (["a {} and {}"], "exactly one"),
    (["a {} {x}"], "exactly one"),
    (["a {x}"], "exactly one"),
    (["no slot"], "exactly one"),
    (["a { b {}"], "not a valid format string"),
    ([1], "got 1"),
    ("a video of {}.", "wrap a single template in a list"),
])
def test_templates_need_exactly_one_slot(encoder, templates, match):
    with pytest.raises(CatsplitError, match=match):
        catsplit.text_head(["a b", "c d"], encoder, templates=templates)
    with pytest.raises(CatsplitError, match=match):
        Head(weight=np.ones((2, 3), np.float32), labels=["a", "b"], kind="text", templates=templates)


@pytest.mark.parametrize("kwargs, match", [
    (dict(metadata={"k": 1}), "'k': 1"),
    (dict(metadata={1: "v"}), "1: 'v'"),
    (dict(metadata=None), "metadata must be a mapping"),
    (dict(history=[1, 2]), "list of edit records"),
    (dict(history={"op": "split"}), "list of edit records"),
    (dict(history="abc"), "list of edit records"),
    (dict(history=[{"op": "split", "coarse": "a"}]), "lacks its coarse label or subs"),
    (dict(history=[{"op": "note", "value": np.float32(1)}]), "record #0 cannot be written as JSON"),
    (dict(history=[{"op": "note"}, {"op": "note", "value": object()}]), "record #1"),
    (dict(undo={"weight": torch.ones(1, 3)}), "start with 'undo.'"),
    (dict(undo={"undo.0.weight": torch.ones(2, 3)}), "expected float32 \\[1, 3\\]"),
    (dict(undo={"undo.0.weight": np.ones((1, 3), np.float32)}), "torch tensor"),
])
def test_head_refuses_what_it_could_not_save_and_load(kwargs, match):
    with pytest.raises(CatsplitError, match=match):
        Head(weight=np.ones((2, 3), np.float32), labels=["a", "b"], **kwargs)


def test_valid_metadata_and_history_round_trip(tmp_path):
    history = [{"op": "note", "text": "made by hand", "n": [1, 2.5, None, True]}]
    h = Head(weight=np.ones((2, 3), np.float32), labels=["a", "b"], metadata={"k": "v"}, history=history)
    history[0]["text"] = "changed"  # the head keeps its own copy
    h.save(tmp_path / "h.safetensors")
    back = catsplit.load_head(tmp_path / "h.safetensors")
    assert back.equals(h) and back.history[0]["text"] == "made by hand"


def test_deeply_nested_history_is_a_catsplit_error(tmp_path):
    p = tmp_path / "deep.safetensors"
    for depth in (150, 990):  # both parse as JSON; copying them must not raise RecursionError
        history = '[{"op": "note", "a": ' + "[" * depth + "]" * depth + "}]"
        save_file({"weight": torch.ones(2, 3)}, str(p),
                  metadata={"catsplit.format": "1", "catsplit.labels": '["a", "b"]', "catsplit.history": history})
        with pytest.raises(CatsplitError, match="nested"):
            catsplit.load_head(p)


def test_groups_history_metadata_and_undo_are_read_only(head16_and_subs, encoder):
    head, subs = head16_and_subs
    groups = {"Pulling something": [lab for lab in head.labels if lab.startswith("Pulling")]}
    meta = {"origin": "test"}
    h = head.evolve(groups=groups, metadata=meta)
    groups["Pulling something"].append(COARSE)  # the caller's own dict, after the call
    meta["origin"] = "changed"
    with pytest.raises(AttributeError):
        h.groups["Pulling something"].clear()
    with pytest.raises(TypeError, match="read-only"):
        h.groups["new"] = [COARSE]
    with pytest.raises(TypeError, match="read-only"):
        h.metadata["origin"] = "changed"
    assert h.groups == {"Pulling something": tuple(lab for lab in head.labels if lab.startswith("Pulling"))}
    assert h.metadata == {"origin": "test"}

    new = catsplit.split(h, encoder, COARSE, subs[:2], method="retrieval")
    saved = json.dumps(new.history)
    with pytest.raises(TypeError, match="read-only"):
        new.history[-1]["details"]["matches"].clear()
    with pytest.raises(AttributeError):
        new.history[-1]["subs"].append("x")
    with pytest.raises(TypeError, match="read-only"):
        new.undo.clear()
    assert json.dumps(new.history) == saved and new.undo
    assert catsplit.unsplit(new, COARSE).equals(h)


@pytest.mark.parametrize("seed", [-1, 2**63, 2**64, 1.5, True, "0", np.uint64(2**63)])
def test_bad_seeds_are_refused(head16_and_subs, encoder, seed):
    head, subs = head16_and_subs
    with pytest.raises(CatsplitError, match="seed must be an integer with 0 <= seed < 2\\*\\*63"):
        catsplit.split(head, encoder, COARSE, subs, seed=seed)
    edited = catsplit.split(head, None, COARSE, subs, method="coarse")
    with pytest.raises(CatsplitError, match="seed must be an integer"):
        catsplit.finetune(edited, np.ones((10, 16), np.float32), [subs[i % 5] for i in range(10)], seed=seed, shots=2)


def test_large_and_numpy_seeds_work(head16_and_subs, encoder):
    head, subs = head16_and_subs
    a = catsplit.split(head, encoder, COARSE, subs, seed=np.int64(2**63 - 1), config=FAST)
    assert a.history[-1]["seed"] == 2**63 - 1 and type(a.history[-1]["seed"]) is int
    x = np.random.default_rng(0).standard_normal((10, 16)).astype(np.float32)
    y = [subs[i % 5] for i in range(10)]
    t = catsplit.finetune(a, x, y, seed=np.int64(2**63 - 1), shots=np.int64(2), config=FinetuneConfig(max_epochs=2))
    assert t.history[-1]["finetune"]["seed"] == 2**63 - 1 and t.history[-1]["finetune"]["shots"] == 2


@pytest.mark.parametrize("template", ["{:^20000000}", "{:%Y}", "{:^{}}", "{!r}", "a {label:>5}.", "{0!s}"])
def test_templates_with_a_format_spec_or_conversion_are_refused_when_loaded(template, tmp_path):
    """A text head's templates come from its file: a padding width of 20,000,000 took 32 s and 2.5 GB, and
    '{:%Y}' / '{:^{}}' passed the check and crashed at split time."""
    from catsplit.checks import check_templates

    with pytest.raises(CatsplitError, match="plain '{}'|exactly one"):
        check_templates([template])
    path = tmp_path / "text.safetensors"
    Head(weight=np.eye(2, 3, dtype=np.float32), labels=["a", "b"], kind="text", scale=10.0).save(path)
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), "pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta["catsplit.templates"] = json.dumps([template])
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(CatsplitError, match="templates.*(plain '{}'|exactly one)"):
        catsplit.load_head(path)


def test_plain_templates_still_pass():
    from catsplit.checks import check_templates

    assert check_templates(["a video of {}.", "{label}", "{{literal}} {0}"]) == ("a video of {}.", "{label}", "{{literal}} {0}")


@pytest.mark.parametrize("bad", ["Pushing\nsomething", "Pushing\u2028something", "Pushing\tsomething", "Push\x85ing", "a\rb"])
def test_labels_with_line_breaks_or_control_characters_are_refused_wherever_labels_enter(bad, tmp_path, encoder):
    """A label with a line break shifted every later column's name in Triton's labels.txt."""
    w = np.ones((2, 3), np.float32)
    with pytest.raises(CatsplitError, match="line breaks, tabs or other control characters; entries #1"):
        Head(weight=w, labels=["Lifting", bad])
    head = Head(weight=np.eye(3, 4, dtype=np.float32), labels=["Pushing", "Lifting up", "Lifting down"])
    with pytest.raises(CatsplitError, match="subs must not hold line breaks"):
        catsplit.split(head, None, "Pushing", ["Pushing left", bad], method="coarse")
    (tmp_path / "labels.json").write_text(json.dumps(["Lifting", bad]))
    save_file({"weight": torch.ones(2, 3)}, str(tmp_path / "w.safetensors"))
    with pytest.raises(CatsplitError, match="control characters"):
        load_head(tmp_path / "w.safetensors", labels=tmp_path / "labels.json")


def test_onnx_labels_with_a_line_break_are_refused_before_a_triton_labels_file_is_written():
    from catsplit.export.graph import output_labels

    with pytest.raises(CatsplitError, match="model.onnx: metadata 'catsplit.labels' must not hold line breaks"):
        output_labels({"catsplit.labels": json.dumps(["a", "b\nc"])}, "model.onnx")
    assert output_labels({"catsplit.labels": json.dumps(["a", "b c"])}, "model.onnx") == ["a", "b c"]
