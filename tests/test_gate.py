"""catsplit.gate: the similarity gate — lambda = exp(-(1 - s) / sigma) scales each edit, and is recorded."""

import numpy as np
import pytest

import catsplit
from catsplit import CatsplitError
from conftest import HashEncoder, compositional_head

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
