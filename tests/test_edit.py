"""catsplit.edit: split and unsplit — shapes and labels, the input left alone, several splits undone in LIFO
order, groups kept in step, the new edit record, bad targets and options."""

import numpy as np
import pytest
import torch

import catsplit
from catsplit import CatsplitError, Head
from conftest import MODIFIERS, HashEncoder, compositional_head

COARSE = "Pushing something"
METHODS = ["coarse", "text", "retrieval", "alignment"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", ["flat", "hierarchical"])
def test_split_shapes_labels_and_input_untouched(encoder, head_and_subs, method, mode):
    head, subs = head_and_subs
    before_w, before_b = head.weight.clone(), head.bias.clone()
    new = catsplit.split(head, encoder, COARSE, subs, method=method, mode=mode)
    assert torch.equal(head.weight, before_w) and torch.equal(head.bias, before_b) and COARSE in head.labels
    assert list(new.labels) == [lab for lab in head.labels if lab != COARSE] + subs
    x = np.random.default_rng(0).standard_normal((9, head.dim)).astype(np.float32)
    assert new.logits(x).shape == (9, len(head.labels) - 1 + len(subs))
    p = new.probs(x)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
    rec = new.history[-1]
    assert (rec["coarse"], rec["subs"], rec["method"], rec["mode"]) == (COARSE, tuple(subs), method, mode)
    if mode == "flat":
        assert not new.is_hierarchical and new.weight.shape[0] == len(new.labels)
    else:
        assert new.gates == [COARSE]


def test_zero_shot_methods_recover_compositional_rows():
    """On a head made of verb + modifier vectors, retrieval and alignment beat the coarse copy."""
    head, subs, v, m = compositional_head(dim=32, seed=3)
    enc = HashEncoder()
    truth = np.stack([v["Pushing"] + m[mod] for mod in MODIFIERS])  # what a model trained on the subs would learn
    err = {}
    for method in METHODS:
        new = catsplit.split(head, enc, COARSE, subs, method=method, seed=0)
        rows = np.stack([new.row(s).numpy() for s in subs])
        err[method] = float(np.linalg.norm(rows - truth) / np.linalg.norm(truth))
    assert err["retrieval"] < 1e-5  # the modifiers exist under other verbs: carried over exactly
    assert err["alignment"] < 0.6 * err["coarse"], err


def test_several_splits_and_lifo_unsplit(encoder):
    head, subs, _, _ = compositional_head()
    h1 = catsplit.split(head, encoder, COARSE, subs, method="retrieval")
    h2 = catsplit.split(h1, encoder, "Lifting something up", ["Lifting something up slowly", "Lifting something up fast"],
                        method="alignment", mode="hierarchical")
    h3 = catsplit.split(h2, encoder, subs[0], [subs[0] + " quickly", subs[0] + " slowly"], method="coarse")
    assert [r["coarse"] for r in h3.history] == [COARSE, "Lifting something up", subs[0]]
    with pytest.raises(CatsplitError, match=r"unsplit\(head, 'Pushing something from left to right'\)"):
        catsplit.unsplit(h3, COARSE)
    assert catsplit.unsplit(h3, subs[0]).equals(h2)
    assert catsplit.unsplit(catsplit.unsplit(h3, subs[0]), "Lifting something up").equals(h1)
    assert catsplit.unsplit(h1, COARSE).equals(head)
    with pytest.raises(CatsplitError, match="not split"):
        catsplit.unsplit(head, COARSE)
    with pytest.raises(CatsplitError, match="gate"):
        catsplit.split(h2, encoder, "Lifting something up", ["a b", "c d"])


def test_groups_are_updated_and_restored(encoder):
    head, subs, _, _ = compositional_head()
    groups = {"Pulling something": [lab for lab in head.labels if lab.startswith("Pulling")],
              "things": [COARSE, "Lifting something up"]}
    head = head.evolve(groups=groups)
    new = catsplit.split(head, encoder, COARSE, subs, method="retrieval")
    assert new.groups["things"] == ("Lifting something up",)
    assert catsplit.unsplit(new, COARSE).equals(head)


def test_modifier_override_is_used(encoder, head_and_subs):
    head, subs = head_and_subs
    new = catsplit.split(head, encoder, COARSE, subs, method="retrieval", modifiers={subs[0]: "left to right"})
    assert new.history[-1]["modifiers"][subs[0]] == "left to right"


def test_the_new_edit_record_is_the_heads_own_and_checked():
    """apply_split takes the method's details into the record: copied, and refused if they cannot be saved."""
    from catsplit.edit import apply_split, plan_split

    head = Head(weight=np.eye(4, 3, dtype=np.float32), labels=["a x", "a y", "b", "c"])
    plan = plan_split(head, None, "b", ["b 1", "b 2"], method="coarse")
    plan.details["note"] = ["kept"]
    edited = apply_split(head, plan)
    plan.details["note"].append("changed afterwards")
    assert edited.history[-1]["details"]["note"] == ("kept",)
    plan.details["junk"] = np.float32(1)
    with pytest.raises(CatsplitError, match="new edit record.*cannot be written as JSON"):
        apply_split(head, plan)


def test_half_precision_edit_computes_in_float32(encoder):
    head, subs, _, _ = compositional_head()
    half = Head(weight=head.weight.half(), bias=head.bias.half(), labels=head.labels)
    new = catsplit.split(half, encoder, COARSE, subs, method="retrieval")
    ref = catsplit.split(head, encoder, COARSE, subs, method="retrieval")
    assert new.dtype == torch.float16
    np.testing.assert_allclose(new.weight[-5:].float().numpy(), ref.weight[-5:].numpy(), atol=2e-2)


def test_float16_overflow_is_caught_in_the_heads_dtype(encoder):
    labels = ["Pushing something", "Pulling something left", "Pulling something right"]
    w = torch.tensor([[60000.0, 0], [60000.0, 1], [-60000.0, 1]], dtype=torch.float16)
    head = Head(weight=w, labels=labels)
    with pytest.raises(CatsplitError, match=r"NaN or inf in row\(s\) 0 \('Pushing something left'\)"):
        catsplit.split(head, encoder, "Pushing something", ["Pushing something left", "Pushing something right"], method="retrieval")


@pytest.mark.parametrize(
    "coarse, subs, message",
    [
        ("Pushing somthing", ["a b", "c d"], "did you mean 'Pushing something'"),
        ("Nope", ["a b", "c d"], "not in the head"),
        (COARSE, ["Pushing something left"], "at least 2 subs"),
        (COARSE, [], "at least 2 subs"),
        (COARSE, ["Pushing x", "pushing  X"], "duplicate subs"),
        (COARSE, ["Pushing x", "Pulling something up"], "already in the head"),
        (COARSE, ["Pushing x", " "], "non-empty"),
        (COARSE, "Pushing x", "list of label strings"),
    ],
)
def test_bad_targets(encoder, head_and_subs, coarse, subs, message):
    head, _ = head_and_subs
    with pytest.raises(CatsplitError, match=message):
        catsplit.split(head, encoder, coarse, subs, method="coarse")


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


def test_bad_options(encoder, head_and_subs):
    head, subs = head_and_subs
    with pytest.raises(CatsplitError, match="unknown method 'magic'"):
        catsplit.split(head, encoder, COARSE, subs, method="magic")
    with pytest.raises(CatsplitError, match="unknown mode"):
        catsplit.split(head, encoder, COARSE, subs, mode="deep")
    with pytest.raises(CatsplitError, match="seed must be an integer"):
        catsplit.split(head, encoder, COARSE, subs, seed="x")
    with pytest.raises(CatsplitError, match="catsplit.Head"):
        catsplit.split(head.weight, encoder, COARSE, subs)
    with pytest.raises(CatsplitError, match="not in the head"):
        catsplit.split(head, encoder, COARSE, subs, groups={"g": ["missing label"]})
