"""catsplit.refine: label-free refinement of the latest split's rows from the coarse class's unlabelled clips."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import catsplit
from catsplit import CatsplitError, RefineConfig
from catsplit.splitrows import latest_split, with_rows
from conftest import COARSE, class_clips, compositional_head

DIM = 16


HEAD, SUBS, V, M = compositional_head(dim=DIM, seed=2)
# a weak, noisy guess of each sub's direction: what a zero-shot edit gives, and what refine has to improve
GUESS = torch.from_numpy(np.stack([M[s.removeprefix(COARSE + " ")] for s in SUBS]).astype(np.float32))
GUESS = 0.5 * (GUESS - GUESS.mean(dim=0)) + 0.8 * torch.randn(GUESS.shape, generator=torch.Generator().manual_seed(0))


def noisy_split(head, subs, mode="flat", order="append"):
    """A split whose sub rows are the coarse row plus a weak, noisy edit: a poor zero-shot start."""
    edited = catsplit.split(head, None, COARSE, subs, method="coarse", mode=mode, order=order)
    split = latest_split(edited, "test")
    return with_rows(edited, split, split.weight + GUESS[: len(subs)], split.bias, "start", {})


def coarse_clips(v, m, subs, n, seed=1):
    rng = np.random.default_rng(seed)
    x = np.concatenate([class_clips(v, m, s, n, rng, DIM) for s in subs])
    return x, [s for s in subs for _ in range(n)]


@pytest.fixture(scope="module")
def world():
    train, _ = coarse_clips(V, M, SUBS, 40, seed=1)
    test, truth = coarse_clips(V, M, SUBS, 30, seed=2)
    return HEAD, SUBS, train, test, truth


def accuracy(head, x, truth):
    return float(np.mean(head.predict(x) == np.asarray(truth)))


@pytest.mark.parametrize("mode", ["flat", "hierarchical"])
def test_refine_lifts_generality_of_a_poor_start(world, mode):
    head, subs, train, test, truth = world
    start = noisy_split(head, subs, mode=mode)
    refined = catsplit.refine(start, train)
    assert accuracy(refined, test, truth) > accuracy(start, test, truth) + (0.2 if mode == "flat" else 0.1)
    if mode == "flat":  # hierarchical: the gate decides first, and loses some clips of the class to others
        assert accuracy(refined, test, truth) > 0.75


def test_only_the_split_rows_change_and_the_record_says_what_was_done(world):
    head, subs, train, _, _ = world
    start = noisy_split(head, subs)
    refined = catsplit.refine(start, train, seed=7)
    split = latest_split(start, "test")
    t0, t1 = start.tables[0], refined.tables[0]
    others = torch.ones(t0.weight.shape[0], dtype=torch.bool)
    others[split.rows] = False
    assert torch.equal(t0.weight[others], t1.weight[others]) and torch.equal(t0.bias[others], t1.bias[others])
    assert not torch.equal(t0.weight[split.rows], t1.weight[split.rows])
    assert dict(refined.undo).keys() == dict(start.undo).keys()
    assert all(torch.equal(refined.undo[k], start.undo[k]) for k in start.undo)
    info = refined.latest_record()["refine"]
    assert info["clips"] == len(train) and info["seed"] == 7 and 1 <= info["iterations"] <= 10
    assert info["max_iterations"] == 10 and info["shrinkage"] == RefineConfig.shrinkage and info["bias"] == RefineConfig.bias
    assert sum(info["counts"]) == len(train) and "budget" not in info
    assert refined.labels == start.labels


@pytest.mark.parametrize("mode,order", [("flat", "append"), ("flat", "keep"), ("hierarchical", "append")])
def test_unsplit_restores_the_head_bit_for_bit(world, mode, order):
    head, subs, train, _, _ = world
    refined = catsplit.refine(noisy_split(head, subs, mode=mode, order=order), train)
    assert catsplit.unsplit(refined, COARSE).equals(head)


def test_deterministic_and_the_input_forms_agree(world, tmp_path):
    head, subs, train, _, _ = world
    start = noisy_split(head, subs)
    a = catsplit.refine(start, train)
    assert catsplit.refine(start, train).equals(a)  # same input, same bits
    np.save(tmp_path / "clips.npy", train)
    mapped = catsplit.refine(start, np.load(tmp_path / "clips.npy", mmap_mode="r"))
    assert mapped.equals(a)
    chunks = [train[:50], train[50:120], train[120:]]
    for form in (chunks, lambda: iter(chunks), torch.from_numpy(train)):
        other = catsplit.refine(start, form)
        np.testing.assert_allclose(other.tables[0].weight.numpy(), a.tables[0].weight.numpy(), rtol=1e-4, atol=1e-5)
    small = catsplit.refine(start, train, config=RefineConfig(chunk=7))  # many chunks, the same statistics
    np.testing.assert_allclose(small.tables[0].weight.numpy(), a.tables[0].weight.numpy(), rtol=1e-4, atol=1e-5)
    # a read-only map read through one reused buffer, chunk after chunk (the last one partial): the same bits
    mapped_small = catsplit.refine(start, np.load(tmp_path / "clips.npy", mmap_mode="r"), config=RefineConfig(chunk=7))
    assert mapped_small.equals(small)


def test_stops_at_a_fixed_point(world):
    head, subs, train, _, _ = world
    refined = catsplit.refine(noisy_split(head, subs), train, config=RefineConfig(iterations=50))
    info = refined.latest_record()["refine"]
    assert info["converged"] and info["iterations"] < 50
    one = catsplit.refine(noisy_split(head, subs), train, config=RefineConfig(iterations=1))
    assert one.latest_record()["refine"]["iterations"] == 1 and not one.latest_record()["refine"]["converged"]


@pytest.mark.parametrize("bias", ["coarse", "centre", "lda"])
def test_bias_rules(world, bias):
    head, subs, train, test, truth = world
    start = noisy_split(head, subs)
    refined = catsplit.refine(start, train, config=RefineConfig(bias=bias))
    b = refined.tables[0].bias[latest_split(refined, "t").rows]
    b_c = float(head.bias[head.labels.index(COARSE)])
    if bias == "coarse":
        assert torch.all(b == b_c)
    else:
        assert not torch.all(b == b_c)
    assert accuracy(refined, test, truth) > accuracy(start, test, truth)


def test_a_sub_no_clip_chooses_keeps_its_row(world):
    head, subs, train, _, _ = world
    start = noisy_split(head, subs)
    split = latest_split(start, "t")
    w = split.weight.clone()
    w[0] = -100 * split.coarse_weight  # sub 0 never scores highest on clips of the coarse class
    start = with_rows(start, split, w, split.bias, "start", {})
    refined = catsplit.refine(start, train, config=RefineConfig(iterations=1))
    assert refined.latest_record()["refine"]["empty"] == (subs[0],)
    assert torch.equal(refined.tables[0].weight[split.rows[0]], start.tables[0].weight[split.rows[0]])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_heads_keep_their_dtype(world, dtype):
    head, subs, train, test, truth = world
    half = catsplit.Head(weight=head.weight.to(dtype), bias=head.bias.to(dtype), labels=head.labels)
    start = noisy_split(half, subs)
    refined = catsplit.refine(start, train)
    assert refined.dtype == dtype and accuracy(refined, test, truth) > 0.75
    assert catsplit.unsplit(refined, COARSE).equals(half)


def test_errors_name_the_problem(world):
    head, subs, train, _, _ = world
    start = noisy_split(head, subs)
    with pytest.raises(CatsplitError, match="at least as many clips as subs"):
        catsplit.refine(start, train[:3])
    with pytest.raises(CatsplitError, match=r"shape \[N, 16\]"):
        catsplit.refine(start, train[:, :5])
    bad = train.copy()
    bad[4, 2] = np.nan
    with pytest.raises(CatsplitError, match="NaN or inf"):
        catsplit.refine(start, bad)
    with pytest.raises(CatsplitError, match="empty"):
        catsplit.refine(start, np.zeros((0, DIM), np.float32))
    with pytest.raises(CatsplitError, match="empty"):
        catsplit.refine(start, [])
    with pytest.raises(CatsplitError, match="one-shot iterator"):
        catsplit.refine(start, (c for c in [train]))
    with pytest.raises(CatsplitError, match="latest edit is no edit"):
        catsplit.refine(head, train)
    with pytest.raises(CatsplitError, match="latest split"):
        catsplit.refine(catsplit.unsplit(start, COARSE), train)
    with pytest.raises(CatsplitError, match="coarse row"):
        catsplit.refine(catsplit.split(head, None, COARSE, subs, method="coarse"), train)
    with pytest.raises(CatsplitError, match="RefineConfig"):
        catsplit.refine(start, train, config={"iterations": 3})
    with pytest.raises(CatsplitError, match="hierarchical"):
        catsplit.refine(noisy_split(head, subs, mode="hierarchical"), train, others=train)
    with pytest.raises(CatsplitError, match="RefineConfig.bias"):
        RefineConfig(bias="prior")
    with pytest.raises(CatsplitError, match="RefineConfig.shrinkage"):
        RefineConfig(shrinkage=1.5)
    with pytest.raises(CatsplitError, match="seed"):
        catsplit.refine(start, train, seed=-1)
    calls = iter([[train], [train[:10]]])  # a function that gives different clips on its second call
    with pytest.raises(CatsplitError, match="same clips every time"):
        catsplit.refine(start, lambda: next(calls))


def test_input_is_not_modified(world):
    head, subs, train, _, _ = world
    start = noisy_split(head, subs)
    before = [t.weight.clone() for t in start.tables]
    x = train.copy()
    catsplit.refine(start, x)
    assert all(torch.equal(a, t.weight) for a, t in zip(before, start.tables)) and np.array_equal(x, train)


# --- properties ----------------------------------------------------------------------------


@st.composite
def refine_cases(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    dim = draw(st.integers(2, 8))
    n_other = draw(st.integers(1, 5))
    k = draw(st.integers(2, 4))
    n = draw(st.integers(k, 40))
    mode = draw(st.sampled_from(["flat", "hierarchical"]))
    order = draw(st.sampled_from(["append", "keep"]))
    rng = np.random.default_rng(seed)
    labels = [f"l{i}" for i in range(n_other + 1)]
    head = catsplit.Head(weight=rng.standard_normal((n_other + 1, dim)).astype(np.float32),
                         bias=rng.standard_normal(n_other + 1).astype(np.float32), labels=labels)
    subs = [f"s{j}" for j in range(k)]
    edited = catsplit.split(head, None, "l0", subs, method="coarse", mode=mode, order=order)
    split = latest_split(edited, "t")
    start = with_rows(edited, split, split.weight + torch.from_numpy(rng.standard_normal((k, dim)).astype(np.float32)),
                      split.bias, "start", {})
    clips = (3 * rng.standard_normal((n, dim))).astype(np.float32)
    probe = (3 * rng.standard_normal((30, dim))).astype(np.float32)
    em_sample = draw(st.sampled_from([0, k, n // 2 + 1]))  # 0 / k / about half: every step on all, or on a sample
    return head, start, clips, probe, em_sample


@settings(max_examples=60, deadline=None)
@given(refine_cases())
def test_property_only_the_split_rows_change_and_unsplit_restores(case):
    head, start, clips, _, em_sample = case
    refined = catsplit.refine(start, clips, config=RefineConfig(iterations=3, em_sample=em_sample))
    split = latest_split(start, "t")
    for ti, (a, b) in enumerate(zip(start.tables, refined.tables)):
        keep = torch.ones(a.weight.shape[0], dtype=torch.bool)
        if ti == split.table:
            keep[split.rows] = False
        assert torch.equal(a.weight[keep], b.weight[keep]) and torch.equal(a.bias[keep], b.bias[keep])
    assert catsplit.unsplit(refined, "l0").equals(head)


@settings(max_examples=60, deadline=None)
@given(refine_cases())
def test_property_hierarchical_locality_stays_exact(case):
    head, start, clips, probe, em_sample = case
    if start.latest_record()["mode"] != "hierarchical":
        start = catsplit.unsplit(start, "l0")
        start = catsplit.split(start, None, "l0", ["s0", "s1"], method="coarse", mode="hierarchical")
        split = latest_split(start, "t")
        start = with_rows(start, split, split.weight + torch.eye(2, split.weight.shape[1]), split.bias, "start", {})
    refined = catsplit.refine(start, clips, config=RefineConfig(iterations=3, em_sample=em_sample))
    before, after = head.predict(probe), refined.predict(probe)
    kept = before != "l0"
    assert (after[kept] == before[kept]).all()


def test_the_covariance_can_come_from_a_sample_of_many_clips(world):
    head, subs, train, test, truth = world
    start = noisy_split(head, subs)
    full = catsplit.refine(start, train)
    assert full.latest_record()["refine"]["covariance_sample"] == len(train)
    same = catsplit.refine(start, train, config=RefineConfig(covariance_clips=len(train)))  # all clips: the full estimate
    assert torch.equal(same.tables[0].weight, full.tables[0].weight) and torch.equal(same.tables[0].bias, full.tables[0].bias)
    sampled = catsplit.refine(start, train, config=RefineConfig(covariance_clips=50))
    assert sampled.latest_record()["refine"]["covariance_sample"] == 50  # every 4th of 200 clips
    assert not sampled.equals(full)
    assert catsplit.unsplit(sampled, COARSE).equals(head)
    with pytest.raises(CatsplitError, match="covariance_clips"):
        RefineConfig(covariance_clips=-1)


def test_natural_scale_uses_the_discriminants_own_log_odds(world):
    head, subs, train, test, truth = world
    start = noisy_split(head, subs)
    edit = catsplit.refine(start, train, config=RefineConfig(iterations=1))
    natural = catsplit.refine(start, train, config=RefineConfig(iterations=1, scale="natural"))
    assert natural.latest_record()["refine"]["scale"] == "natural"
    s_e, s_n = latest_split(edit, "t"), latest_split(natural, "t")
    d_e, d_n = s_e.weight - s_e.coarse_weight, s_n.weight - s_n.coarse_weight
    # one M-step from the same assignment: the same directions, scaled by one factor (subs no clip chose keep their rows)
    live = torch.tensor([s not in edit.latest_record()["refine"]["empty"] for s in subs])
    assert live.sum() >= 2
    ratio = (d_n.norm(dim=1) / d_e.norm(dim=1))[live]
    torch.testing.assert_close(ratio, torch.full_like(ratio, float(ratio[0])), rtol=1e-3, atol=1e-4)
    # "edit": the re-estimated rows' mean edit norm is the starting edit's
    start_norm = (latest_split(start, "t").weight - s_e.coarse_weight).norm(dim=1).mean()
    torch.testing.assert_close(d_e[live].norm(dim=1).mean(), start_norm, rtol=1e-4, atol=1e-4)
    with pytest.raises(CatsplitError, match="RefineConfig.scale"):
        RefineConfig(scale="big")


def test_many_clips_run_the_em_steps_on_a_spread_sample_then_one_pass_over_all(world):
    """An array holding more than em_sample clips: the EM steps see evenly spread blocks (the clips here are
    sorted by sub, so one block would see only the first subs), the final M-step every clip. The result is as
    good as the full EM's, differs from it, keeps every other row, and unsplit restores the head."""
    head, subs, train, test, truth = world
    start = noisy_split(head, subs)
    full = catsplit.refine(start, train)
    sampled = catsplit.refine(start, train, config=RefineConfig(em_sample=64))
    rec = sampled.latest_record()["refine"]
    assert rec["em_clips"] == 64 and rec["em_sample"] == 64 and rec["clips"] == len(train) and rec["covariance_sample"] == 64
    assert full.latest_record()["refine"]["em_clips"] == len(train)  # few clips: every step on all of them
    assert sum(rec["counts"]) == len(train)  # the final statistics are every clip's
    assert not sampled.equals(full)
    assert accuracy(sampled, test, truth) >= accuracy(full, test, truth) - 0.05
    assert accuracy(sampled, test, truth) > accuracy(start, test, truth) + 0.2
    assert catsplit.unsplit(sampled, COARSE).equals(head)
    # the same bits from a torch tensor and from a read-only memory map of the same clips
    assert catsplit.refine(start, torch.from_numpy(train), config=RefineConfig(em_sample=64)).equals(sampled)
    ro = train.copy()
    ro.flags.writeable = False
    assert catsplit.refine(start, ro, config=RefineConfig(em_sample=64)).equals(sampled)
    bad = train.copy()
    bad[len(train) // 2, 3] = np.nan
    with pytest.raises(CatsplitError, match="NaN"):
        catsplit.refine(start, bad, config=RefineConfig(em_sample=64))
    with pytest.raises(CatsplitError, match="em_sample"):
        RefineConfig(em_sample=-1)


def test_an_em_sample_smaller_than_the_subs_is_not_taken():
    """Found by the property test: em_sample=2 for 3 subs and 3 clips refused clips that were enough."""
    start = noisy_split(HEAD, SUBS[:3])
    clips = np.random.default_rng(0).standard_normal((3, DIM)).astype(np.float32)
    out = catsplit.refine(start, clips, config=RefineConfig(em_sample=2))
    assert out.latest_record()["refine"]["em_clips"] == 3
    full = catsplit.refine(start, clips, config=RefineConfig(em_sample=0))  # the same rows (the records differ)
    assert all(torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias) for a, b in zip(out.tables, full.tables))
