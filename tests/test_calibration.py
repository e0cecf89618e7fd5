"""catsplit.calibrate: locality calibration of a split's new rows (scale matching; bias shift to a flip budget)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import catsplit
from catsplit import CatsplitError
from catsplit.calibration import DEFAULT_BUDGET
from catsplit.splitrows import latest_split, with_rows
from conftest import COARSE, MODIFIERS, VERBS, class_clips, compositional_head

DIM = 16


@pytest.fixture(scope="module")
def setup():
    head, subs, v, m = compositional_head(dim=DIM, seed=4)
    edited = catsplit.split(head, None, COARSE, subs, method="coarse")
    split = latest_split(edited, "t")
    g = torch.Generator().manual_seed(0)
    # strong edits and raised biases: the sub rows take many clips of other classes
    edited = with_rows(edited, split, split.weight + 1.5 * torch.randn(split.weight.shape, generator=g), split.bias + 8, "start", {})
    rng = np.random.default_rng(3)
    other_labels = [f"{verb} something {mod}" for verb in VERBS[1:] for mod in MODIFIERS]
    others = np.concatenate([class_clips(v, m, lab, 20, rng, DIM) for lab in other_labels])
    probe = np.concatenate([class_clips(v, m, lab, 20, rng, DIM) for lab in other_labels])  # held out
    return head, edited, others, probe


def stolen(head, edited, x):
    """Fraction of clips whose top-1 under `head` was not the coarse class and is a sub now."""
    subs = set(edited.latest_record()["subs"])
    before, after = head.predict(x), edited.predict(x)
    return float(np.mean([(b != COARSE) and (a in subs) for b, a in zip(before, after)]))


def test_scale_matching_gives_every_sub_row_the_coarse_rows_norm(setup):
    head, edited, _, _ = setup
    out = catsplit.calibrate(edited)
    split = latest_split(out, "t")
    norms = split.weight.norm(dim=1)
    torch.testing.assert_close(norms, torch.full_like(norms, float(head.row(COARSE).norm())), rtol=1e-5, atol=1e-5)
    assert out.latest_record()["calibration"] == {"scale": True}
    assert catsplit.unsplit(out, COARSE).equals(head)


@pytest.mark.parametrize("budget", [0.0, 0.01, 0.05])
def test_bias_shift_keeps_stolen_clips_within_the_budget(setup, budget):
    head, edited, others, probe = setup
    assert stolen(head, edited, others) > 0.05  # the start steals many
    out = catsplit.calibrate(edited, others, scale=False, budget=budget)
    cal = out.latest_record()["calibration"]
    assert stolen(head, out, others) <= budget + 1e-12
    assert cal["stolen_after"] == pytest.approx(stolen(head, out, others), abs=1e-6)
    assert cal["stolen_before"] == pytest.approx(stolen(head, edited, others), abs=1e-6)
    assert cal["shift"] < 0 and cal["others"] == len(others) and cal["budget"] == budget
    assert stolen(head, out, probe) < stolen(head, edited, probe)  # held-out clips of other classes too
    # one common shift: the sub biases moved together, the rows did not
    s0, s1 = latest_split(edited, "t"), latest_split(out, "t")
    assert torch.equal(s0.weight, s1.weight)
    torch.testing.assert_close(s1.bias - s0.bias, torch.full_like(s0.bias, cal["shift"]), rtol=0, atol=1e-5)
    assert catsplit.unsplit(out, COARSE).equals(head)


def test_a_start_within_the_budget_is_not_shifted(setup):
    head, edited, others, _ = setup
    out = catsplit.calibrate(edited, others, scale=False, budget=0.99)
    assert out.latest_record()["calibration"]["shift"] == 0.0
    assert torch.equal(out.tables[0].bias, edited.tables[0].bias)


def test_refine_with_others_calibrates(setup):
    head, edited, others, _ = setup
    rng = np.random.default_rng(0)
    _, subs, v, m = compositional_head(dim=DIM, seed=4)
    clips = np.concatenate([class_clips(v, m, s, 20, rng, DIM) for s in subs])
    out = catsplit.refine(edited, clips, others=others, config=catsplit.RefineConfig(budget=0.02))
    rec = out.latest_record()
    assert "refine" in rec and rec["calibration"]["budget"] == 0.02 and rec["refine"]["budget"] == 0.02
    assert stolen(head, out, others) <= 0.02
    assert catsplit.unsplit(out, COARSE).equals(head)


def test_errors(setup):
    head, edited, others, _ = setup
    with pytest.raises(CatsplitError, match="budget"):
        catsplit.calibrate(edited, others, budget=1.0)
    with pytest.raises(CatsplitError, match="budget"):
        catsplit.calibrate(edited, others, budget=True)
    with pytest.raises(CatsplitError, match="nothing to calibrate"):
        catsplit.calibrate(edited, scale=False)
    with pytest.raises(CatsplitError, match="hierarchical"):
        catsplit.calibrate(catsplit.split(head, None, COARSE, edited.latest_record()["subs"], method="coarse", mode="hierarchical"))
    with pytest.raises(CatsplitError, match="latest edit"):
        catsplit.calibrate(head)
    with pytest.raises(CatsplitError, match=r"shape \[N, 16\]"):
        catsplit.calibrate(edited, others[:, :3])
    nobias = catsplit.Head(weight=head.weight, labels=head.labels)
    e = catsplit.split(nobias, None, COARSE, edited.latest_record()["subs"], method="coarse")
    with pytest.raises(CatsplitError, match="biases"):
        catsplit.calibrate(e, others, scale=False)
    assert 0 < DEFAULT_BUDGET < 1


def test_split_can_match_the_scale_itself(setup):
    head, _, _, _ = setup
    subs = ["Pushing something " + m for m in MODIFIERS]
    from conftest import HashEncoder

    enc = HashEncoder()
    plain = catsplit.split(head, enc, COARSE, subs, method="retrieval")
    scaled = catsplit.split(head, enc, COARSE, subs, method="retrieval", calibrate="scale")
    assert scaled.equals(catsplit.calibrate(plain))
    assert scaled.latest_record()["calibration"] == {"scale": True}
    assert catsplit.unsplit(scaled, COARSE).equals(head)
    with pytest.raises(CatsplitError, match="calibrate must be"):
        catsplit.split(head, enc, COARSE, subs, method="retrieval", calibrate="bias")
    with pytest.raises(CatsplitError, match="flat splits"):
        catsplit.split(head, enc, COARSE, subs, method="retrieval", mode="hierarchical", calibrate="scale")
