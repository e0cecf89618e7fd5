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


# --- order="keep": no other class changes index -----------------------------------------------------------


def _moved(before: Head, after: Head, coarse: str) -> list[str]:
    """Labels of `before` (other than `coarse`) whose index differs in `after`."""
    return [lab for i, lab in enumerate(before.labels) if lab != coarse and after.labels.index(lab) != i]


@pytest.mark.parametrize("mode", ["flat", "hierarchical"])
def test_keep_gives_the_coarse_index_to_the_first_sub_and_moves_no_other_label(encoder, head_and_subs, mode):
    head, subs = head_and_subs
    j = head.labels.index(COARSE)
    new = catsplit.split(head, encoder, COARSE, subs, method="retrieval", mode=mode, order="keep")
    assert new.labels[j] == subs[0] and list(new.labels[head.num_classes :]) == subs[1:]
    assert _moved(head, new, COARSE) == []
    assert _moved(head, catsplit.split(head, encoder, COARSE, subs, method="retrieval", mode=mode), COARSE)  # append moves them
    rec = new.latest_record()
    assert rec["order"] == "keep" and rec["column"] == j and rec["row"] == j
    x = np.random.default_rng(0).standard_normal((20, head.dim)).astype(np.float32)
    others = [i for i in range(head.num_classes) if i != j]
    if mode == "flat":  # a plain linear layer: the first sub's row in the coarse row's place, every other row as it was
        assert not new.is_hierarchical and new.output_order is None
        assert torch.equal(new.weight[others], head.weight[others]) and torch.equal(new.bias[others], head.bias[others])
        assert torch.equal(new.weight[j], new.row(subs[0]).to(new.dtype))
        np.testing.assert_array_equal(new.logits(x)[:, others], head.logits(x)[:, others])
    else:
        assert new.output_order == new.labels and new.gates == [COARSE]
        kept = head.predict(x) != COARSE
        assert (new.predict(x)[kept] == head.predict(x)[kept]).all()
    np.testing.assert_allclose(new.probs(x).sum(1), 1.0, rtol=1e-5)
    assert catsplit.unsplit(new, COARSE).equals(head)


@pytest.mark.parametrize("second_mode", ["flat", "hierarchical"])
@pytest.mark.parametrize("first_mode", ["flat", "hierarchical"])
def test_keep_chains_with_either_order_and_unsplits_in_lifo_order(encoder, first_mode, second_mode):
    """Later splits of a keep-split head keep their order's promise (keep: nothing moves; append: the coarse label
    leaves, the subs come last), also where the labels no longer follow the tables, and undo exactly."""
    head, subs, _, _ = compositional_head()
    h1 = catsplit.split(head, encoder, COARSE, subs, method="retrieval", mode=first_mode, order="keep")
    target = "Lifting something up"
    fine = [target + " slowly", target + " fast"]
    h2 = catsplit.split(h1, encoder, target, fine, method="coarse", mode=second_mode, order="keep")
    assert _moved(h1, h2, target) == [] and h2.labels[h1.labels.index(target)] == fine[0]
    h3 = catsplit.split(h2, encoder, subs[1], [subs[1] + " a", subs[1] + " b"], method="coarse", mode=second_mode)
    assert list(h3.labels) == [lab for lab in h2.labels if lab != subs[1]] + [subs[1] + " a", subs[1] + " b"]
    assert catsplit.unsplit(h3, subs[1]).equals(h2)
    assert catsplit.unsplit(h2, target).equals(h1)
    assert catsplit.unsplit(h1, COARSE).equals(head)


def test_keep_survives_save_and_load(tmp_path, encoder, head_and_subs):
    head, subs = head_and_subs
    h = catsplit.split(head, encoder, COARSE, subs, method="retrieval", mode="hierarchical", order="keep")
    h = catsplit.split(h, encoder, "Lifting something up", ["Lifting something up a", "Lifting something up b"],
                       method="coarse", order="keep")
    h.save(tmp_path / "h.safetensors")
    back = catsplit.load_head(tmp_path / "h.safetensors")
    assert back.equals(h) and back.labels == h.labels
    assert catsplit.unsplit(catsplit.unsplit(back, "Lifting something up"), COARSE).equals(head)


def test_bad_order_is_refused(encoder, head_and_subs):
    head, subs = head_and_subs
    with pytest.raises(CatsplitError, match="unknown order 'first'.*'append'.*'keep'"):
        catsplit.split(head, encoder, COARSE, subs, method="coarse", order="first")


def test_a_damaged_keep_record_is_refused_by_unsplit(encoder, head_and_subs):
    head, subs = head_and_subs
    new = catsplit.split(head, encoder, COARSE, subs, method="coarse", mode="hierarchical", order="keep")
    rec = dict(new.latest_record())
    rec["column"] = 10_000
    damaged = new.evolve(history=new.history[:-1] + (rec,))
    with pytest.raises(CatsplitError, match="damaged.*column 10000"):
        catsplit.unsplit(damaged, COARSE)


def test_flat_append_in_an_explicit_order_puts_the_subs_last(encoder, head_and_subs):
    """In a head with a hierarchical keep split, a flat append split of a base label puts its subs after every
    output label (not after the base table's rows, which would come before the hierarchical subs and move them)."""
    head, subs = head_and_subs
    h1 = catsplit.split(head, encoder, COARSE, subs, method="coarse", mode="hierarchical", order="keep")
    target = "Lifting something up"
    h2 = catsplit.split(h1, encoder, target, [target + " a", target + " b"], method="coarse")
    assert list(h2.labels) == [lab for lab in h1.labels if lab != target] + [target + " a", target + " b"]
    assert h2.latest_record()["column"] == h1.labels.index(target) and "order" not in h2.latest_record()
    assert catsplit.unsplit(h2, target).equals(h1)


def test_output_order_is_checked_and_kept_only_where_it_differs_from_the_tables():
    from catsplit.head import Table

    w = torch.eye(3, 2)
    base = Table(weight=w, bias=None, labels=("a", "b", "c"))
    sub = Table(weight=w[:2], bias=None, labels=("b 1", "b 2"), parent="b")
    assert Head(weight=None, tables=(base, sub), output_order=["a", "c", "b 1", "b 2"]).output_order is None
    h = Head(weight=None, tables=(base, sub), output_order=["a", "b 1", "c", "b 2"])
    assert h.labels == ("a", "b 1", "c", "b 2") and h.output_order == h.labels
    with pytest.raises(CatsplitError, match=r"every output label once \(missing \['b 2'\], not output labels \['b'\]"):
        Head(weight=None, tables=(base, sub), output_order=["a", "b", "c", "b 1"])
    with pytest.raises(CatsplitError, match="one table.*reorder the rows"):
        Head(weight=w, labels=["a", "b", "c"], output_order=["c", "b", "a"])
    with pytest.raises(CatsplitError, match="output_order must be a list"):
        Head(weight=None, tables=(base, sub), output_order="a")
