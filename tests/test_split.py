import numpy as np
import pytest
import torch

import catsplit
from catsplit import CatsplitError, Head, SplitConfig
from catsplit.methods.retrieval import greedy_match
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


def test_flat_rows_are_coarse_plus_something(encoder, head_and_subs):
    head, subs = head_and_subs
    c = head.row(COARSE)
    b_c = head.bias[head.labels.index(COARSE)]
    new = catsplit.split(head, encoder, COARSE, subs, method="coarse")
    for s in subs:
        assert torch.equal(new.row(s), c)
    assert torch.equal(new.bias[-len(subs):], b_c.repeat(len(subs)))


def test_hierarchical_probabilities_are_gated(encoder, head_and_subs):
    head, subs = head_and_subs
    new = catsplit.split(head, encoder, COARSE, subs, method="alignment", mode="hierarchical")
    x = np.random.default_rng(1).standard_normal((6, head.dim)).astype(np.float32)
    p_old = head.probs(x)
    p_new = new.probs(x)
    ci = head.labels.index(COARSE)
    sub_table = new.tables[1]
    z = x @ sub_table.weight.numpy().T + sub_table.bias.numpy()
    q = np.exp(z - z.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    np.testing.assert_allclose(p_new[:, -len(subs):], p_old[:, [ci]] * q, rtol=1e-4, atol=1e-7)
    keep = [i for i in range(len(head.labels)) if i != ci]
    np.testing.assert_allclose(p_new[:, : len(keep)], p_old[:, keep], rtol=1e-4, atol=1e-7)


def test_retrieval_finds_the_shared_modifiers(encoder, head_and_subs):
    head, subs = head_and_subs
    new = catsplit.split(head, encoder, COARSE, subs, method="retrieval")
    matches = new.history[-1]["details"]["matches"]
    for s, mod in zip(subs, MODIFIERS):
        assert matches[s]["modifier"] == mod
    assert len({m["label"] for m in matches.values()}) == len(subs)


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


def test_alignment_is_deterministic_per_seed(encoder, head_and_subs):
    head, subs = head_and_subs
    rng_state = torch.random.get_rng_state()
    a = catsplit.split(head, encoder, COARSE, subs, method="alignment", seed=7)
    b = catsplit.split(head, encoder, COARSE, subs, method="alignment", seed=7)
    c = catsplit.split(head, encoder, COARSE, subs, method="alignment", seed=8)
    assert a.equals(b)
    assert not torch.equal(a.weight, c.weight)
    assert torch.equal(torch.random.get_rng_state(), rng_state)  # the global RNG is left alone
    info = a.history[-1]["details"]["training"]
    assert info["best_epoch"] <= info["epochs"] <= SplitConfig().max_epochs


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


def test_greedy_match_takes_global_maximum_first():
    scores = np.array([[0.9, 0.8, 0.1], [0.95, 0.2, 0.3]])
    # 0.95 (row 1 -> entry 0) is taken first, so row 0 gets its second choice
    assert greedy_match(scores) == [1, 0]


# --- bad input --------------------------------------------------------------------------
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


@pytest.mark.parametrize(
    "bad_encoder, message",
    [
        (lambda texts: np.ones((len(texts) + 1, 8)), "returned shape"),
        (lambda texts: np.ones((len(texts),)), "returned shape"),
        (lambda texts: np.full((len(texts), 8), np.nan), "NaN or inf"),
        (lambda texts: np.zeros((len(texts), 8)), "all-zero"),
        ("not callable", "must be callable"),
    ],
)
def test_bad_encoders(head_and_subs, bad_encoder, message):
    head, subs = head_and_subs
    with pytest.raises(CatsplitError, match=message):
        catsplit.split(head, bad_encoder, COARSE, subs, method="retrieval")


def test_no_dictionary(encoder):
    head = Head(weight=np.eye(4, dtype=np.float32), labels=["Pushing something", "Tearing paper", "Spinning a top", "Closing a door"])
    for method in ("retrieval", "alignment"):
        with pytest.raises(CatsplitError, match="groups=") as err:
            catsplit.split(head, encoder, "Pushing something", ["Pushing something left", "Pushing something right"], method=method)
        assert "alignment" in str(err.value) or "text" in str(err.value)


def test_retrieval_with_fewer_entries_than_subs(encoder):
    head = Head(weight=np.eye(3, dtype=np.float32), labels=["Pushing something", "Pulling a", "Pulling b"])
    subs = ["Pushing something a", "Pushing something b", "Pushing something c"]
    with pytest.raises(CatsplitError, match="3 subs but only 2 entries"):
        catsplit.split(head, encoder, "Pushing something", subs, method="retrieval")


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


def test_alignment_respects_max_steps(encoder, head_and_subs):
    head, subs = head_and_subs
    new = catsplit.split(head, encoder, COARSE, subs, method="alignment", config=SplitConfig(max_steps=7))
    info = new.history[-1]["details"]["training"]
    assert info["steps"] == 7 or info["epochs"] * 5 <= 7  # stopped early or exactly at the cap


def test_given_group_named_like_an_ungrouped_label_keeps_that_label():
    from catsplit.structure import infer_structure

    s = infer_structure(["Tearing a", "Tearing b", "Spin"], groups={"Spin": ["Tearing a", "Tearing b"]})
    assert s.groups["Spin"] == ["Tearing a", "Tearing b"]
    assert ["Spin"] in s.groups.values()  # still there, under another group name


def test_evaluate_refuses_clips_labelled_with_the_split_class(encoder, head_and_subs):
    head, subs = head_and_subs
    new = catsplit.split(head, encoder, COARSE, subs, method="coarse")
    with pytest.raises(CatsplitError, match="label each with its true sub"):
        catsplit.evaluate(head, new, np.zeros((1, head.dim), np.float32), [COARSE], coarse=COARSE)


def test_dictionary_vectors_agree_whichever_way_they_are_computed():
    from catsplit.methods.dictionary import ModifierDictionary
    from catsplit.structure import infer_structure

    head, _, _, _ = compositional_head(dim=33)
    labels = [lab for lab in head.labels if lab != COARSE]
    d = ModifierDictionary(infer_structure(labels), head.weight.numpy(), {lab: i for i, lab in enumerate(head.labels)})
    assert np.array_equal(d.vectors_of(list(range(len(d)))), d.vectors)  # retrieval's path == alignment's path
