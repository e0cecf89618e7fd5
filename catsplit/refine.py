"""Label-free refinement of a split: re-estimate the sub rows from the coarse class's own unlabelled clips.

Hard EM with a shared-covariance Gaussian discriminant, started from the split's (zero-shot) rows:

1. assign each clip to its highest-scoring sub under the current rows;
2. re-estimate the per-sub means mu_j and the pooled within-sub covariance S, shrunk towards its mean
   eigenvalue: S_l = (1 - l) S + l tr(S)/D I;
3. set w_j = w_c + s a_j with a_j = S_l^-1 (mu_j - mu), mu the mean of the sub means, and s the scale that
   gives the mean norm of (w_j - w_c) of the rows the refinement started from (so the edit keeps the
   zero-shot edit's strength against the other classes); the biases as `RefineConfig.bias` says;

until no clip changes sub or `iterations` steps. Each pass keeps only sufficient statistics (per-sub counts
and sums; the D x D scatter once, in the first pass), reading the clips `chunk` rows at a time, so memory does
not grow with the number of clips. No sub label is used. With `others`, the sub biases are then calibrated
(`catsplit.calibration`). Only the latest split's rows and biases change: unsplit restores the head before
the split bit for bit.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, NamedTuple

import torch

from catsplit.calibration import shift_biases
from catsplit.checks import check_seed
from catsplit.clipstream import ClipChunks
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
        stats, scatter, n = first_pass(chunks, w, b, edited)
        if n < k:
            raise CatsplitError(f"refine needs at least as many clips as subs: got {n} clips for {k} subs; add clips")
        steps, converged = 0, False
        empty: list[str] = []
        while True:
            w, b, empty = m_step(split, stats, scatter, n, target, config, w, b)
            steps += 1
            if steps >= config.iterations:
                break
            new = assign_pass(chunks, w, b, edited)
            if torch.equal(new.counts, stats.counts) and torch.equal(new.sums, stats.sums):
                converged = True  # no clip changed sub: the rows above are the fixed point
                break
            stats = new
    settings = asdict(config)
    del settings["chunk"]  # how the clips were read, not what was computed
    if others is None:
        del settings["budget"]
    settings["max_iterations"] = settings.pop("iterations")
    info = {
        "clips": n, "iterations": steps, "converged": converged, "seed": seed,
        "counts": [int(c) for c in stats.counts], "empty": empty, **settings,
    }
    out = with_rows(edited, split, w, b, "refine", info)
    if others is not None:
        out = shift_biases(out, others, config.budget, {"scale": False, "by": "refine"})
    return out


def sub_scores(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, head: Head) -> torch.Tensor:
    """The sub rows' scores of clips `x` [n, D] -> [n, k] (the head's kind of score: linear or cosine)."""
    return table_scores(x, w, b, kind=head.kind, scale=head.scale)


def accumulate(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, head: Head, counts: torch.Tensor, sums: torch.Tensor) -> None:
    """Add one chunk's hard assignments to `counts` [k] and `sums` [k, D] (float64), in place (our own accumulators)."""
    k = w.shape[0]
    best = sub_scores(x, w, b, head).argmax(dim=1)  # [n]; ties go to the first sub
    onehot = torch.nn.functional.one_hot(best, k).to(torch.float32)  # [n, k]
    counts += onehot.sum(dim=0).to(torch.int64)
    sums += (onehot.T @ x).double()  # [k, D]: one small matmul, faster than index_add on a busy machine


def first_pass(chunks: ClipChunks, w: torch.Tensor, b: torch.Tensor | None, head: Head) -> tuple[PassStats, torch.Tensor, int]:
    """The assignment under the starting rows, plus what does not depend on any assignment: the clips' scatter
    about their first chunk's mean (`sum (x - r)(x - r)^T`, shifted for precision) -> (stats, [D, D] scatter
    about the overall mean, clips)."""
    k, d = w.shape
    counts = torch.zeros(k, dtype=torch.int64)
    sums = torch.zeros(k, d, dtype=torch.float64)
    scatter = torch.zeros(d, d, dtype=torch.float64)
    total = torch.zeros(d, dtype=torch.float64)
    ref: torch.Tensor | None = None
    n = 0
    for x in chunks:
        if ref is None:
            ref = x.double().mean(dim=0).float()  # [D]
        xc = x - ref
        scatter += (xc.T @ xc).double()
        total += xc.double().sum(dim=0)
        accumulate(x, w, b, head, counts, sums)
        n += x.shape[0]
    mean_c = total / n  # overall mean minus ref
    scatter -= n * torch.outer(mean_c, mean_c)  # about the overall mean
    return PassStats(counts, sums), scatter, n


def assign_pass(chunks: ClipChunks, w: torch.Tensor, b: torch.Tensor | None, head: Head) -> PassStats:
    """One E-step over all clips -> per-sub counts and sums."""
    k, d = w.shape
    counts = torch.zeros(k, dtype=torch.int64)
    sums = torch.zeros(k, d, dtype=torch.float64)
    for x in chunks:
        accumulate(x, w, b, head, counts, sums)
    return PassStats(counts, sums)


def m_step(
    split: SplitRows, stats: PassStats, scatter: torch.Tensor, n: int, target: float, config: RefineConfig,
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
    dev = mu - overall
    within = scatter - (dev.T * cnt) @ dev  # [D, D]
    cov = within / max(n - int(live.sum()), 1)
    d = cov.shape[0]
    lam = config.shrinkage
    cov = (1 - lam) * cov + lam * (torch.trace(cov) / d) * torch.eye(d, dtype=torch.float64)
    centre = mu.mean(dim=0)  # [D] the mean of the sub means: equal priors in the direction
    a = torch.linalg.solve(cov, (mu - centre).T).T  # [k', D]
    norms = a.norm(dim=1)
    if not float(norms.mean()) > 0:
        return w_prev, b_prev, empty
    s = target / float(norms.mean())
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
