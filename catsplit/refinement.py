"""Label-free refinement of a split: re-estimate the sub rows from the coarse class's own unlabelled clips.

Hard EM with a shared-covariance Gaussian discriminant, started from the split's (zero-shot) rows:

1. assign each clip to its highest-scoring sub under the current rows;
2. re-estimate the per-sub means mu_j and the pooled within-sub covariance S (from every clip, or from
   every stride-th clip when an array holds more than `covariance_clips`), shrunk towards its mean
   eigenvalue: S_l = (1 - l) S + l tr(S)/D I;
3. set w_j = w_c + s a_j with a_j = S_l^-1 (mu_j - mu), mu the mean of the sub means, and s the scale that
   gives the mean norm of (w_j - w_c) of the rows the refinement started from (so the edit keeps the
   zero-shot edit's strength against the other classes); the biases as `RefineConfig.bias` says;

until no clip changes sub or `iterations` steps. An array of more than `em_sample` clips runs these steps on
evenly spread blocks of that many; then one pass over every clip gives the final sub means (the covariance
stays the sample's). Each pass keeps only sufficient statistics (per-sub counts
and sums; the D x D scatter once, in the first pass), reading the clips `chunk` rows at a time, so memory does
not grow with the number of clips. No sub label is used. With `others`, the sub biases are then calibrated
(`catsplit.calibration`). Only the latest split's rows and biases change: unsplit restores the head before
the split bit for bit.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, NamedTuple

import numpy as np
import torch

from catsplit.calibration import shift_biases
from catsplit.checks import as_tensor, check_finite, check_seed
from catsplit.chunks import ClipChunks
from catsplit.config import RefineConfig
from catsplit.errors import CatsplitError
from catsplit.head import Head
from catsplit.scoring import table_scores
from catsplit.splitrows import SplitRows, latest_split, with_rows
from catsplit.training import one_thread


class PassStats(NamedTuple):
    """What one pass over the clips leaves: enough for the M-step."""

    counts: torch.Tensor  # int64 [k]: clips assigned to each sub
    sums: torch.Tensor  # float64 [k, D]: their feature sums
    sample_counts: torch.Tensor  # int64 [k]: the same over the covariance sample (every stride-th clip)
    sample_sums: torch.Tensor  # float64 [k, D]


def refine(
    edited: Head, clips: Any, *, others: Any = None, seed: int = 0, config: RefineConfig | None = None,
) -> Head:
    """Refine the rows of the latest split from unlabelled features of the coarse class's clips.

    Args:
        edited: a head whose latest edit is a split (flat or hierarchical, any method but "coarse",
            whose subs all tie), e.g. `catsplit.split(..., method="alignment")`.
        clips: backbone features of clips of the coarse class, without sub labels: an array [N, D] (a
            memory map from `np.load(path, mmap_mode="r")` too), a list of [n, D] chunks, or a function
            returning a new iterator of chunks on each call (the clips are read up to `iterations` times).
        others: optional unlabelled features of clips of other classes (same forms): the sub biases are
            then lowered so that at most `config.budget` of them move to a sub (flat splits only).
        seed: recorded; the refinement itself draws nothing at random, so equal inputs give equal bits.
        config: `RefineConfig` (iterations, shrinkage, bias rule, chunk, budget).
    Returns:
        a new Head; the split's record gains a `refine` entry (and a `calibration` entry with `others`).
    """
    split = latest_split(edited, "refine")
    seed = check_seed(seed)
    if config is None:
        config = RefineConfig()
    elif not isinstance(config, RefineConfig):
        raise CatsplitError(f"config must be a catsplit.RefineConfig, got {type(config).__name__}; e.g. config=RefineConfig(iterations=10)")
    if others is not None and not split.flat:
        raise CatsplitError("others= calibrates a flat split; a hierarchical split keeps other clips' top-1 exactly, leave others out")
    k, d = len(split.subs), edited.dim
    delta0 = split.weight.double() - split.coarse_weight.double()  # [k, D] the starting edit
    target = float(delta0.norm(dim=1).mean())
    if not target > 0:
        raise CatsplitError(
            f"the split of {split.record['coarse']!r} gives every sub the coarse row (method {split.record['method']!r}): "
            "every clip ties, so there is nothing to start from; refine a retrieval or alignment split"
        )
    chunks = ClipChunks(clips, d, "clips", config.chunk)
    w = split.weight.clone()  # [k, D] float32, current rows
    b = split.bias.clone() if split.bias is not None else None
    with torch.no_grad(), one_thread():
        sample = em_sample(chunks, config, k)  # [m, D] of a large array, else None
        if sample is None:
            w, b, stats, _, n, m, steps, converged, empty = run_em(chunks, w, b, split, edited, target, config)
            sampled = n
        else:
            # the EM steps on evenly spread blocks; then one pass over every clip gives the final means, and the
            # sample, re-assigned under the same rows, the within-sub covariance: about two passes, not `iterations`
            part = ClipChunks(sample, d, "clips", config.chunk)
            w, b, _, scatter, sampled, m, steps, converged, _ = run_em(part, w, b, split, edited, target, config)
            every = assign_pass(chunks, w, b, edited, 1)
            mine = assign_pass(part, w, b, edited, 1)
            del part, sample
            stats = PassStats(every.counts, every.sums, mine.counts, mine.sums)
            n = int(every.counts.sum())
            w, b, empty = m_step(split, stats, scatter, target, config, w, b)
    settings = asdict(config)
    del settings["chunk"]  # how the clips were read, not what was computed
    if others is None:
        del settings["budget"]
    settings["max_iterations"] = settings.pop("iterations")
    info = {
        "clips": n, "em_clips": sampled, "covariance_sample": m, "iterations": steps, "converged": converged, "seed": seed,
        "counts": [int(c) for c in stats.counts], "empty": empty, **settings,
    }
    out = with_rows(edited, split, w, b, "refine", info)
    if others is not None:
        out = shift_biases(out, others, config.budget, {"scale": False, "by": "refine"})
    return out


def run_em(
    chunks: ClipChunks, w: torch.Tensor, b: torch.Tensor | None, split: SplitRows, head: Head, target: float,
    config: RefineConfig,
) -> tuple[torch.Tensor, torch.Tensor | None, PassStats, torch.Tensor, int, int, int, bool, list[str]]:
    """Hard EM over `chunks` from rows `w`, `b` -> (rows, biases, the last E-step's stats, the covariance
    sample's [D, D] scatter, clips, covariance sample clips, M-steps run, converged, empty subs)."""
    k = w.shape[0]
    stride = sample_stride(chunks, config)
    stats, scatter, n, m = first_pass(chunks, w, b, head, stride)
    if n < k:
        raise CatsplitError(f"refine needs at least as many clips as subs: got {n} clips for {k} subs; add clips")
    steps, converged = 0, False
    while True:
        w, b, empty = m_step(split, stats, scatter, target, config, w, b)
        steps += 1
        if steps >= config.iterations:
            break
        new = assign_pass(chunks, w, b, head, stride)
        if torch.equal(new.counts, stats.counts) and torch.equal(new.sums, stats.sums):
            converged = True  # no clip changed sub: the rows above are the fixed point
            break
        stats = new
    return w, b, stats, scatter, n, m, steps, converged, empty


SAMPLE_BLOCK = 4096  # rows per block of the EM sample at most: contiguous reads of a memory map
SAMPLE_BLOCKS = 32  # blocks of the EM sample at least


def em_sample(chunks: ClipChunks, config: RefineConfig, subs: int) -> torch.Tensor | None:
    """About `em_sample` clips of an array holding more, as float32 [m, D]: equal blocks (at least SAMPLE_BLOCKS,
    of at most SAMPLE_BLOCK rows) at evenly spaced starts (deterministic; NaN / inf refused with the row where the block starts). None otherwise."""
    x, total = chunks.array, chunks.count
    if x is None or not config.em_sample or total is None or total <= config.em_sample:
        return None
    # at least SAMPLE_BLOCKS blocks, so that a file sorted by anything (by sub, by time) is still sampled throughout
    blocks = min(max(-(-config.em_sample // SAMPLE_BLOCK), SAMPLE_BLOCKS), config.em_sample)
    size = config.em_sample // blocks  # rows per block, <= SAMPLE_BLOCK
    if blocks * size < subs:  # a sample with fewer clips than subs could not be refined: every step on all clips
        return None
    starts = [round(i * (total - size) / max(blocks - 1, 1)) for i in range(blocks)]
    out = torch.empty(blocks * size, x.shape[1], dtype=torch.float32)
    for i, start in enumerate(starts):
        part = x[start : start + size]
        part = as_tensor(part if isinstance(part, torch.Tensor) else np.array(part), chunks.what)  # a copy: maps are read-only
        check_finite(part, f"{chunks.what} (rows from {start})")
        out[i * size : (i + 1) * size] = part
    return out


def sub_scores(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, head: Head) -> torch.Tensor:
    """The sub rows' scores of clips `x` [n, D] -> [n, k] (the head's kind of score: linear or cosine)."""
    return table_scores(x, w, b, kind=head.kind, scale=head.scale)


def accumulate(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, head: Head, stats: PassStats, sel: slice) -> None:
    """Add one chunk's hard assignments to `stats` (our own accumulators, in place); `sel`: its sample rows."""
    k = w.shape[0]
    best = sub_scores(x, w, b, head).argmax(dim=1)  # [n]; ties go to the first sub
    onehot = torch.nn.functional.one_hot(best, k).to(torch.float32)  # [n, k]
    stats.counts.add_(torch.bincount(best, minlength=k))
    stats.sums.add_((onehot.T @ x).double())  # [k, D]: one small matmul, faster than index_add on a busy machine
    if stats.sample_sums is not stats.sums:
        stats.sample_counts.add_(torch.bincount(best[sel], minlength=k))
        stats.sample_sums.add_((onehot[sel].T @ x[sel]).double())


def new_stats(k: int, d: int, sampled: bool) -> PassStats:
    counts, sums = torch.zeros(k, dtype=torch.int64), torch.zeros(k, d, dtype=torch.float64)
    if not sampled:  # the sample is every clip: one set of accumulators
        return PassStats(counts, sums, counts, sums)
    return PassStats(counts, sums, torch.zeros(k, dtype=torch.int64), torch.zeros(k, d, dtype=torch.float64))


def sample_stride(chunks: ClipChunks, config: RefineConfig) -> int:
    """Every how many clips one enters the covariance: 1 unless an array holds more than `covariance_clips`."""
    if not config.covariance_clips or chunks.count is None or chunks.count <= config.covariance_clips:
        return 1
    return -(-chunks.count // config.covariance_clips)


def first_pass(chunks: ClipChunks, w: torch.Tensor, b: torch.Tensor | None, head: Head, stride: int
               ) -> tuple[PassStats, torch.Tensor, int, int]:
    """The assignment under the starting rows, plus what does not depend on any assignment: the sample's
    scatter (every `stride`-th clip), accumulated about the first chunk's mean for precision -> (stats,
    [D, D] scatter about the sample's mean, clips, sample clips)."""
    k, d = w.shape
    stats = new_stats(k, d, stride > 1)
    scatter = torch.zeros(d, d, dtype=torch.float64)
    total = torch.zeros(d, dtype=torch.float64)
    ref: torch.Tensor | None = None
    n = m = 0
    for x in chunks:
        sel = slice((-n) % stride, None, stride)
        if ref is None:
            ref = x.mean(dim=0)  # [D]
        xc = x[sel] - ref
        scatter += (xc.T @ xc).double()
        total += xc.sum(dim=0).double()  # float32 within a chunk, float64 across chunks
        accumulate(x, w, b, head, stats, sel)
        n += x.shape[0]
        m += xc.shape[0]
    mean_c = total / m  # the sample's mean minus ref
    scatter -= m * torch.outer(mean_c, mean_c)  # about the sample's mean
    return stats, scatter, n, m


def assign_pass(chunks: ClipChunks, w: torch.Tensor, b: torch.Tensor | None, head: Head, stride: int) -> PassStats:
    """One E-step over all clips -> per-sub counts and sums (and the sample's)."""
    k, d = w.shape
    stats = new_stats(k, d, stride > 1)
    n = 0
    for x in chunks:
        accumulate(x, w, b, head, stats, slice((-n) % stride, None, stride))
        n += x.shape[0]
    return stats


def m_step(
    split: SplitRows, stats: PassStats, scatter: torch.Tensor, target: float, config: RefineConfig,
    w_prev: torch.Tensor, b_prev: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor | None, list[str]]:
    """New sub rows (and biases) from one pass's statistics -> (float32 [k, D], float32 [k] or None, empty subs).

    The within-sub scatter is the total scatter minus the between-sub part: sum_j n_j (mu_j - m)(mu_j - m)^T,
    m the overall mean, so the D x D scatter is computed once. A sub that no clip chose keeps its rows.
    """
    counts, sums = stats.counts, stats.sums
    live = counts > 0  # [k]
    empty = [s for s, ok in zip(split.subs, live.tolist()) if not ok]
    if int(live.sum()) < 2:  # every clip chose one sub: the discriminant is undefined, keep the rows
        return w_prev, b_prev, empty
    cnt = counts[live].double()  # [k']
    mu = sums[live] / cnt[:, None]  # [k', D]
    overall = sums[live].sum(dim=0) / cnt.sum()  # [D]
    # the within-sub scatter of the covariance sample (every clip unless the clips are many)
    s_cnt = stats.sample_counts[live].double()
    s_mu = stats.sample_sums[live] / s_cnt.clamp_min(1)[:, None]
    s_dev = s_mu - stats.sample_sums[live].sum(dim=0) / s_cnt.sum()
    within = scatter - (s_dev.T * s_cnt) @ s_dev  # [D, D]
    cov = within / max(int(s_cnt.sum()) - int(live.sum()), 1)
    d = cov.shape[0]
    lam = config.shrinkage
    cov = (1 - lam) * cov + lam * (torch.trace(cov) / d) * torch.eye(d, dtype=torch.float64)
    centre = mu.mean(dim=0)  # [D] the mean of the sub means: equal priors in the direction
    a = torch.linalg.solve(cov, (mu - centre).T).T  # [k', D]
    norms = a.norm(dim=1)
    if not float(norms.mean()) > 0:
        return w_prev, b_prev, empty
    scale = config.scale if config.scale != "auto" else ("edit" if split.flat else "natural")
    s = target / float(norms.mean()) if scale == "edit" else 1.0  # "natural": the discriminant's own scale
    w = w_prev.double().clone()
    w[live] = split.coarse_weight.double() + s * a
    b = b_prev
    if b_prev is not None and split.coarse_bias is not None:
        b = b_prev.double().clone()
        extra = torch.zeros(a.shape[0], dtype=torch.float64)
        if config.bias == "centre":
            extra = -s * (a @ overall)  # each sub's extra score s a_j.x is zero at the mean clip
        elif config.bias == "lda":
            # the discriminant x.S^-1 mu_j - mu_j.S^-1 mu_j / 2 + log pi_j less what all subs share, times s:
            # s (a_j.x - a_j.c - a_j.(mu_j - c) / 2 + log pi_j), c the mean of the sub means (sum_j a_j = 0), centred
            quad = -0.5 * (a * (mu - centre)).sum(dim=1) + torch.log(cnt / cnt.sum())  # [k']
            extra = s * (-(a @ centre) + quad - quad.mean())
        b[live] = split.coarse_bias + extra
        b = b.float()
    return w.float(), b, empty
