"""catsplit.gate: the similarity gate — lambda = exp(-(1 - s) / sigma) scales each edit, and is recorded."""

import numpy as np

from catsplit.modifiers import encoder_texts
import pytest

import catsplit
from catsplit import CatsplitError, SplitConfig
from catsplit.text import encode
from conftest import MODIFIERS, HashEncoder, compositional_head

COARSE = "Pushing something"


def test_similarity_gate_scales_unfamiliar_modifiers_down():
    head, subs, _, _ = compositional_head(dim=16)
    enc = HashEncoder()
    subs = subs[:2] + ["Pushing something in a zigzag"]  # the last modifier is unknown to the dictionary
    plain = catsplit.split(head, enc, COARSE, subs, method="retrieval")
    gated = catsplit.split(head, enc, COARSE, subs, method="retrieval", gate=0.2)
    c = head.row(COARSE).numpy()
    lam = gated.history[-1]["details"]["gate"]["lambda"]
    assert lam[0] == pytest.approx(1.0, abs=1e-5) and lam[2] < 0.5
    for j, s in enumerate(subs):
        np.testing.assert_allclose(gated.row(s).numpy() - c, lam[j] * (plain.row(s).numpy() - c), atol=1e-5)
    with pytest.raises(CatsplitError, match="'alignment' or 'retrieval'"):
        catsplit.split(head, enc, COARSE, subs, method="coarse", gate=0.2)
    with pytest.raises(CatsplitError, match="positive"):
        catsplit.split(head, enc, COARSE, subs, method="retrieval", gate=-1)


@pytest.mark.parametrize("sigma", [0.1, 0.5, 2.0])
def test_lambda_is_exp_of_the_best_similarity_over_sigma(head_and_subs, encoder, sigma):
    head, subs = head_and_subs
    subs = subs[:2] + ["Pushing something in a zigzag"]
    gate = catsplit.split(head, encoder, COARSE, subs, method="retrieval", gate=sigma).history[-1]["details"]["gate"]
    assert gate["sigma"] == sigma
    # the texts compared are the normalised modifiers (normalise_modifiers is on by default)
    emb = encode(encoder, encoder_texts(["from left to right", "from right to left", "in a zigzag"] + MODIFIERS, True))
    s = (emb[:3] @ emb[3:].T).max(axis=1)  # each sub's best cosine to a modifier of the dictionary
    np.testing.assert_allclose(gate["similarity"], s, atol=1e-5)
    np.testing.assert_allclose(gate["lambda"], np.exp(-(1 - s) / sigma), atol=1e-5)


@pytest.mark.parametrize("mode", ["flat", "hierarchical"])
def test_the_gate_scales_alignment_edits_too(head_and_subs, encoder, mode):
    head, subs = head_and_subs
    subs = [subs[2], "Pushing something in a zigzag"]
    config = SplitConfig(max_steps=20)
    plain = catsplit.split(head, encoder, COARSE, subs, method="alignment", mode=mode, seed=3, config=config)
    gated = catsplit.split(head, encoder, COARSE, subs, method="alignment", mode=mode, seed=3, config=config, gate=0.3)
    assert "gate" not in plain.history[-1]["details"] and "training" in gated.history[-1]["details"]
    lam = gated.history[-1]["details"]["gate"]["lambda"]
    assert lam[0] == pytest.approx(1.0, abs=1e-5) and lam[1] < 0.5
    c = head.row(COARSE).numpy()
    for j, s in enumerate(subs):
        np.testing.assert_allclose(gated.row(s).numpy() - c, lam[j] * (plain.row(s).numpy() - c), atol=1e-5)
    assert catsplit.unsplit(gated, COARSE).equals(head)


def test_a_wide_gate_leaves_the_edit_almost_as_it_was(head_and_subs, encoder):
    head, subs = head_and_subs
    plain = catsplit.split(head, encoder, COARSE, subs, method="retrieval")
    wide = catsplit.split(head, encoder, COARSE, subs, method="retrieval", gate=1e6)
    assert min(wide.history[-1]["details"]["gate"]["lambda"]) > 0.999
    np.testing.assert_allclose(wide.weight.numpy(), plain.weight.numpy(), atol=1e-4)
    for bad in (0, True, "1", float("nan")):
        with pytest.raises(CatsplitError, match="gate must be a positive number"):
            catsplit.split(head, encoder, COARSE, subs, method="retrieval", gate=bad)
