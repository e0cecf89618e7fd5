"""Inputs of the core API that used to crash, corrupt a head or be silently misread.

Each bad input is refused with a CatsplitError naming the value (or warned about), and valid
inputs keep working as before.
"""

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import catsplit
from catsplit import CatsplitError, FinetuneConfig, Head, SplitConfig
from catsplit.cli import main
from catsplit.lowshot import SubRowScores
from catsplit.text import NearDuplicateWarning
from conftest import MODIFIERS, compositional_head

COARSE = "Pushing something"
FAST = SplitConfig(max_steps=20)


@pytest.fixture
def head_and_subs():
    head, subs, _, _ = compositional_head(dim=16)
    return head, subs


# --- 1. what a head hands out cannot change it ------------------------------------------------
def test_the_labels_one_got_cannot_change_the_head(head_and_subs):
    head, _ = head_and_subs
    x = np.random.default_rng(0).standard_normal((20, 16)).astype(np.float32)
    before = head.predict(x)
    with pytest.raises(AttributeError):
        head.labels.remove(COARSE)  # a tuple: copy it (list(head.labels)) to change it
    others = list(head.labels)  # "the labels without the class I split"
    others.remove(COARSE)
    others.append("junk")
    assert COARSE in head.labels and "junk" not in head.labels
    assert head.num_classes == head.weight.shape[0] == len(head.labels)
    assert list(head.predict(x)) == list(before)
    # a tuple for users: equality, slicing, index, concatenation
    assert isinstance(head.labels, tuple) and head.labels == head.tables[0].labels
    assert head.labels[:2] + ("z",) == (*head.tables[0].labels[:2], "z")
    assert head.labels.index(COARSE) == head.tables[0].labels.index(COARSE)


def test_groups_history_metadata_and_undo_are_read_only(head_and_subs, encoder):
    head, subs = head_and_subs
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


def test_evolve_and_replace_still_work(head_and_subs):
    import dataclasses

    head, _ = head_and_subs
    h = dataclasses.replace(head, metadata={"a": "b"})
    assert h.metadata == {"a": "b"} and h.labels == head.labels
    assert head.evolve(metadata={"a": "b"}).equals(h)


# --- 2. labels as {label: index} -------------------------------------------------------------
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


# --- 3. fine-tuning a text head --------------------------------------------------------------
@pytest.mark.parametrize("mode", ["flat", "hierarchical"])
def test_text_head_finetune_trains_on_the_heads_own_scores(encoder, mode):
    labels = [lab for lab in compositional_head()[0].labels]
    th = catsplit.text_head(labels, encoder, templates=None, scale=1 / 0.07)
    subs = [f"{COARSE} {m}" for m in MODIFIERS[2:4]]  # "up", "onto something": texts the hash encoder tells apart
    new = catsplit.split(th, encoder, COARSE, subs, method="text", mode=mode)
    x = (5 * np.random.default_rng(0).standard_normal((30, th.dim))).astype(np.float32)  # norms far from 1
    xt = torch.from_numpy(x)
    table = new.tables[-1] if mode == "hierarchical" else new.tables[0]
    w = table.weight[-2:].float()
    z = SubRowScores(new, xt)(torch.arange(30), w, None)
    np.testing.assert_allclose(z.numpy(), new.logits(x), rtol=1e-4, atol=1e-4)


def test_text_head_finetune_improves_accuracy_on_its_training_clips(encoder):
    labels = [lab for lab in compositional_head()[0].labels]
    th = catsplit.text_head(labels, encoder, templates=None)
    subs = [f"{COARSE} {m}" for m in MODIFIERS[2:4]]  # "up", "onto something": texts the hash encoder tells apart
    new = catsplit.split(th, encoder, COARSE, subs, method="text")
    rng = np.random.default_rng(0)
    d = rng.standard_normal((2, th.dim))
    d /= np.linalg.norm(d, axis=1, keepdims=True)  # each sub's true direction, unrelated to its text
    y = np.arange(20) % 2
    x = (3 * d[y] + 0.3 * rng.standard_normal((20, th.dim))).astype(np.float32)
    names = np.array(subs)[y]
    tuned = catsplit.finetune(new, x, list(names), seed=0)
    before, after = np.mean(new.predict(x) == names), np.mean(tuned.predict(x) == names)
    assert after >= 0.9 and after > before


# --- 4. what Head accepts, save writes and load_head reads back --------------------------------
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


# --- 5. SplitConfig -------------------------------------------------------------------------------
@pytest.mark.parametrize("field, value", [
    ("batch_size", 0), ("batch_size", 2.0), ("batch_size", True), ("hidden", 0), ("max_epochs", -1),
    ("max_steps", 0), ("patience", 0), ("ema", 1.0), ("ema", -0.1), ("ema", math.nan), ("lr", -1), ("lr", 0),
    ("lr", math.inf), ("weight_decay", -1e-3), ("min_delta", math.nan), ("alpha", math.nan), ("beta", -1),
    ("alpha", "0.5"), ("ridge_lambdas", ()), ("ridge_lambdas", (1.0, 0.0)), ("ridge_lambdas", (math.nan,)),
    ("ridge_lambdas", "1"), ("ridge_lambdas", 1.0),
])
def test_split_config_refuses_bad_values(field, value):
    with pytest.raises(CatsplitError, match=f"SplitConfig.{field}"):
        SplitConfig(**{field: value})



@pytest.mark.parametrize("field, value", [
    ("lr", True), ("weight_decay", True), ("min_delta", False), ("ema", False), ("batch_size", True),
    ("lr", "0.1"), ("ema", math.nan), ("max_steps", 2.0),
])
def test_finetune_config_refuses_bools_like_split_config(field, value):
    # FinetuneConfig shares SplitConfig's validator: a bool is not a number (lr=True used to pass as 1)
    with pytest.raises(CatsplitError, match=f"FinetuneConfig.{field}"):
        FinetuneConfig(**{field: value})
    assert FinetuneConfig(batch_size=np.int64(8), lr=np.float32(0.01)).batch_size == 8

def test_split_config_valid_values_and_type(head_and_subs, encoder):
    assert SplitConfig(ridge_lambdas=[1, 10]).ridge_lambdas == (1, 10)
    assert SplitConfig(alpha=0, beta=1).alpha == 0 and SplitConfig(lr=np.float32(0.01)).lr > 0
    with pytest.raises(CatsplitError, match="both be 0"):
        SplitConfig(alpha=0, beta=0)
    head, subs = head_and_subs
    with pytest.raises(CatsplitError, match="config must be a catsplit.AlignmentConfig or catsplit.SplitConfig, got dict"):
        catsplit.split(head, encoder, COARSE, subs, config={"alpha": 1})
    edited = catsplit.split(head, None, COARSE, subs, method="coarse")
    with pytest.raises(CatsplitError, match="config must be a catsplit.FinetuneConfig, got dict"):
        catsplit.finetune(edited, np.ones((2, 16), np.float32), subs[:2], config={"lr": 1})


# --- 6. seeds and shots ------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [-1, 2**63, 2**64, 1.5, True, "0", np.uint64(2**63)])
def test_bad_seeds_are_refused(head_and_subs, encoder, seed):
    head, subs = head_and_subs
    with pytest.raises(CatsplitError, match="seed must be an integer with 0 <= seed < 2\\*\\*63"):
        catsplit.split(head, encoder, COARSE, subs, seed=seed)
    edited = catsplit.split(head, None, COARSE, subs, method="coarse")
    with pytest.raises(CatsplitError, match="seed must be an integer"):
        catsplit.finetune(edited, np.ones((10, 16), np.float32), [subs[i % 5] for i in range(10)], seed=seed, shots=2)


def test_large_and_numpy_seeds_work(head_and_subs, encoder):
    head, subs = head_and_subs
    a = catsplit.split(head, encoder, COARSE, subs, seed=np.int64(2**63 - 1), config=FAST)
    assert a.history[-1]["seed"] == 2**63 - 1 and type(a.history[-1]["seed"]) is int
    x = np.random.default_rng(0).standard_normal((10, 16)).astype(np.float32)
    y = [subs[i % 5] for i in range(10)]
    t = catsplit.finetune(a, x, y, seed=np.int64(2**63 - 1), shots=np.int64(2), config=FinetuneConfig(max_epochs=2))
    assert t.history[-1]["finetune"]["seed"] == 2**63 - 1 and t.history[-1]["finetune"]["shots"] == 2


@pytest.mark.parametrize("shots", [True, 0, -2, 1.5, "2"])
def test_bad_shots_are_refused(head_and_subs, shots):
    head, subs = head_and_subs
    edited = catsplit.split(head, None, COARSE, subs, method="coarse")
    with pytest.raises(CatsplitError, match="shots must be a positive integer"):
        catsplit.finetune(edited, np.ones((10, 16), np.float32), [subs[i % 5] for i in range(10)], shots=shots)


def test_text_method_on_a_big_head_refuses_a_negative_seed(encoder):
    labels = [f"label {i} thing" for i in range(4200)]
    big = Head(weight=np.random.default_rng(0).standard_normal((4200, 4)).astype(np.float32), labels=labels)
    with pytest.raises(CatsplitError, match="seed"):
        catsplit.split(big, encoder, "label 0 thing", ["label 0 thing a", "label 0 thing b"], method="text", seed=-1)


def test_cli_finetune_with_a_negative_seed_is_a_one_line_error(tmp_path, capsys):
    head, subs, _, _ = compositional_head(dim=16)
    catsplit.split(head, None, COARSE, subs, method="coarse").save(tmp_path / "e.safetensors")
    np.savez(tmp_path / "c.npz", features=np.ones((10, 16), np.float32), labels=np.array([subs[i % 5] for i in range(10)]))
    code = main(["finetune", str(tmp_path / "e.safetensors"), str(tmp_path / "c.npz"), "--seed", "-1", "--shots", "2",
                 "-o", str(tmp_path / "o.safetensors")])
    err = capsys.readouterr().err
    assert code == 2 and "seed must be an integer" in err and "Traceback" not in err
    assert not (tmp_path / "o.safetensors").exists()


# --- 7. group members that are not strings ---------------------------------------------------------
@pytest.mark.parametrize("groups", [{"g": [["x"]]}, {"g": ["Pulling something up", 3]}, {"g": [{"a": 1}]}])
def test_group_members_must_be_strings(head_and_subs, encoder, groups, tmp_path, monkeypatch, capsys):
    head, subs = head_and_subs
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


# --- 8. prompt templates ----------------------------------------------------------------------------
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


def test_valid_templates_still_work(encoder):
    for templates in (["a video of {}."], ["{label}!"], ["{{literal}} {}"], ["{0}"], (), None):
        h = catsplit.text_head(["a b", "c d"], encoder, templates=templates)
        assert h.templates == (tuple(templates) or None if templates is not None else None)
    with pytest.raises(CatsplitError, match="scale"):
        catsplit.text_head(["a b", "c d"], encoder, scale=True)


# --- 9. encoders that return garbage ---------------------------------------------------------------
@pytest.mark.parametrize("encoder_out", [
    lambda ts: [["a"] * 3 for _ in ts],
    lambda ts: [[1.0] * (i + 1) for i, _ in enumerate(ts)],
    lambda ts: np.array([object()] * len(ts)),
    lambda ts: [[1 + 1j, 2] for _ in ts],
])
def test_encoder_output_that_is_not_numbers_is_named(head_and_subs, encoder_out):
    head, subs = head_and_subs
    with pytest.raises(CatsplitError, match="non-numeric or ragged"):
        catsplit.split(head, encoder_out, COARSE, subs)


def test_encoder_output_as_lists_or_tensors_still_works(head_and_subs, encoder):
    head, subs = head_and_subs
    as_list = catsplit.split(head, lambda ts: encoder(ts).tolist(), COARSE, subs, method="retrieval")
    as_tensor = catsplit.split(head, lambda ts: torch.from_numpy(encoder(ts)), COARSE, subs, method="retrieval")
    assert as_list.equals(catsplit.split(head, encoder, COARSE, subs, method="retrieval")) and as_list.equals(as_tensor)


# --- 10. merge ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    (dict(logits=["a", "b"]), "logits must be 2 finite numbers"),
    (dict(logits=[True, False]), "logits must be 2 finite numbers"),
    (dict(logits=[0, 1], tau="x"), "tau must be a positive number, got 'x'"),
    (dict(logits=[0, 1], tau=True), "tau must be a positive number"),
])
def test_merge_refuses_non_numeric_weights(head_and_subs, kwargs, match):
    head, _ = head_and_subs
    with pytest.raises(CatsplitError, match=match):
        catsplit.merge([head, head], **kwargs)


def test_merge_refuses_text_heads_with_different_scale_or_templates(encoder):
    a = catsplit.text_head(["a b", "c d"], encoder, scale=2.0)
    with pytest.raises(CatsplitError, match="scale 50.0, head #0 has 2.0"):
        catsplit.merge([a, catsplit.text_head(["a b", "c d"], encoder, scale=50.0)])
    with pytest.raises(CatsplitError, match="templates"):
        catsplit.merge([a, catsplit.text_head(["a b", "c d"], encoder, scale=2.0, templates=["{}"])])
    assert catsplit.merge([a, a]).equals(a)


# --- 11. identical modifier texts ---------------------------------------------------------------------
def test_subs_with_identical_modifiers_are_warned_about(head_and_subs, encoder):
    head, subs = head_and_subs
    with pytest.warns(NearDuplicateWarning, match="identical texts.*'Pushing x' / 'Pushing something x' \\(both 'x'\\)"):
        new = catsplit.split(head, encoder, COARSE, ["Pushing x", "Pushing something x"], config=FAST)
    assert torch.equal(new.weight[-1], new.weight[-2])
    assert [tuple(p) for p in new.history[-1]["details"]["near_duplicates"]] == [("Pushing x", "Pushing something x", 1.0)]
    with pytest.warns(NearDuplicateWarning, match="identical texts"):
        catsplit.split(head, encoder, COARSE, subs[:2], modifiers={subs[0]: "left", subs[1]: "left"}, config=FAST)


# --- 12. infer_structure ------------------------------------------------------------------------------------
@pytest.mark.parametrize("labels, match", [
    (["", "a"], "#0: ''"), (["a", "  "], "#1"), (["a", 3], "#1: 3"), ("abc", "list of strings"), (None, "list"),
])
def test_infer_structure_needs_a_list_of_label_strings(labels, match):
    with pytest.raises(CatsplitError, match=match):
        catsplit.infer_structure(labels)


# --- 13. `catsplit split -o EXISTING` fails before the work ----------------------------------------------
def test_cli_split_checks_the_destination_before_running_the_method(tmp_path, monkeypatch, capsys):
    head, subs, _, _ = compositional_head(dim=16)
    head.save(tmp_path / "h.safetensors")
    out = tmp_path / "o.safetensors"
    out.write_bytes(b"keep me")

    def no_encoder(spec=None):
        raise AssertionError("the encoder was loaded although the output exists")

    monkeypatch.setattr("catsplit.encoders.load_text_encoder", no_encoder)
    args = ["split", str(tmp_path / "h.safetensors"), "--coarse", COARSE, "--sub", subs[0], "--sub", subs[1], "-o"]
    assert main(args + [str(out)]) == 2
    assert "exists" in capsys.readouterr().err and out.read_bytes() == b"keep me"
    assert main(args + [str(tmp_path / "missing" / "o.safetensors")]) == 2
    assert "does not exist" in capsys.readouterr().err


# --- 14. a checkpoint holding a bare tensor --------------------------------------------------------------
def test_a_checkpoint_of_a_bare_tensor_says_so(tmp_path):
    torch.save(torch.randn(3, 4), tmp_path / "bare.pt")
    with pytest.raises(CatsplitError, match="holds a single tensor of shape \\[3, 4\\], not a state dict"):
        catsplit.load_head(tmp_path / "bare.pt", labels=["a", "b", "c"])
    torch.save({"w": torch.randn(3, 4)}, tmp_path / "named.pt")
    with pytest.raises(CatsplitError, match="no tensor named 'weight'.*\\['w'\\]"):
        catsplit.load_head(tmp_path / "named.pt", labels=["a", "b", "c"])
