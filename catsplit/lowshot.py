"""Isolated fine-tuning: train only the rows (and biases) that the latest split added.

Everything else — every old row and bias, the gate of a hierarchical split — stays bit-identical.
The frozen part of the logits is computed once, so each step costs one small matmul.
Cross-entropy over the full new label space; AdamW, early stopping on an EMA of the loss.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any, Sequence

import numpy as np
import torch

from catsplit.checks import as_tensor, check_finite, check_seed
from catsplit.config import FinetuneConfig
from catsplit.errors import CatsplitError
from catsplit.head import Head, Table, label_names
from catsplit.progress import Progress
from catsplit.scoring import table_scores
from catsplit.splitrows import latest_split
from catsplit.training import EmaEarlyStop, one_thread, step_budget


def sample_shots(labels: Sequence[str], subs: Sequence[str], shots: int, seed: int) -> np.ndarray:
    """Indices of `shots` clips per sub (seeded), plus every clip of other labels -> int64 [n]."""
    rng = np.random.default_rng(seed)
    labels_arr = np.asarray(labels, dtype=object)
    picked = []
    short = {}
    for s in subs:
        idx = np.nonzero(labels_arr == s)[0]
        if len(idx) < shots:
            short[s] = len(idx)
        else:
            picked.append(np.sort(rng.choice(idx, shots, replace=False)))
    if short:
        raise CatsplitError(
            f"shots={shots} needs {shots} clips of every sub; too few for {short}. Lower shots= or add clips"
        )
    others = np.nonzero(~np.isin(labels_arr, list(subs)))[0]
    return np.sort(np.concatenate(picked + [others]))


def finetune(
    head: Head,
    features: Any,
    labels: Sequence[Any],
    *,
    shots: int | None = None,
    seed: int = 0,
    config: FinetuneConfig | None = None,
    progress: bool = False,
) -> Head:
    """Fine-tune the sub rows of the latest split on precomputed features; everything else frozen.

    Args:
        head: a head whose latest edit is a split (flat or hierarchical).
        features: backbone features [N, D] of labelled clips (typically clips of the split class).
        labels: their labels in `head.labels` (strings or indices).
        shots: if given, use `shots` clips per sub (sampled with `seed`); an error if a sub has fewer.
        seed: seeds the sampling, the shuffling and nothing else (the start is the edit's rows).
        config: optimiser settings (`FinetuneConfig`).
        progress: draw a progress bar on stderr (epochs, smoothed loss); only when stderr is a terminal.
    Returns:
        a new Head; the edit record of the split gains a `finetune` entry.
    """
    split = latest_split(head, "finetune")  # the checked record and the split's rows (flat or hierarchical)
    seed = check_seed(seed)
    if shots is not None and (isinstance(shots, bool) or not isinstance(shots, Integral) or shots < 1):
        raise CatsplitError(f"shots must be a positive integer (clips per sub), got {shots!r}")
    if config is None:
        config = FinetuneConfig()
    elif not isinstance(config, FinetuneConfig):
        raise CatsplitError(f"config must be a catsplit.FinetuneConfig, got {type(config).__name__}; e.g. config=FinetuneConfig(lr=1e-3)")
    rec, subs, ti = split.record, split.subs, split.table
    x = as_tensor(features, "features").to(torch.float32)
    if x.ndim != 2 or x.shape[1] != head.dim:
        raise CatsplitError(f"features must have shape [N, {head.dim}], got {tuple(x.shape)}")
    check_finite(x, "features")
    names = label_names(head, labels)
    if len(names) != x.shape[0]:
        raise CatsplitError(f"{len(names)} labels for {x.shape[0]} feature rows; give one label per row")
    if shots is not None:
        shots = int(shots)
        keep = sample_shots(names, subs, shots, seed)
        x, names = x[torch.from_numpy(keep)], [names[i] for i in keep]
    if not any(n in subs for n in names):
        raise CatsplitError(f"no training clip is labelled with a sub of the split ({subs}); nothing to learn")
    # the split's rows, found by the record's subs: the table's last k rows (order "append") or not ("keep")
    table, rows = head.tables[ti], split.rows  # [k]
    w0, b0 = split.weight, split.bias  # float32 [k, D], [k] or None
    scores = SubRowScores(head, x)  # what does not depend on the trainable rows, computed once
    y = scores.targets(names)  # [N]
    w = w0.clone().requires_grad_()
    b = b0.clone().requires_grad_() if b0 is not None else None
    params = [w] + ([b] if b is not None else [])
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    n = x.shape[0]
    _, total, max_epochs = step_budget(n, config.batch_size, config.max_epochs, config.max_steps)
    stopper = EmaEarlyStop(config.ema, config.patience, config.min_delta, maximize=False)  # on the loss
    step = epoch = 0
    best_w, best_b = w0.clone(), (b0.clone() if b0 is not None else None)
    bar = Progress(max_epochs, "finetune", enabled=progress)
    with one_thread():  # tiny matrices: a second thread only spin-waits (catsplit.training.one_thread)
        for epoch in range(1, max_epochs + 1):
            order = torch.randperm(n, generator=gen)
            for start in range(0, n, config.batch_size):
                if step == total:
                    break
                idx = order[start : start + config.batch_size]
                logits = scores(idx, w, b)
                loss = torch.nn.functional.cross_entropy(logits, y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                stopper.update(float(loss.detach()))
            if stopper.end_epoch(epoch):
                best_w = w.detach().clone()
                best_b = b.detach().clone() if b is not None else None
            bar.update(1, postfix=f"loss {stopper.smoothed:.4f}, best {stopper.best:.4f} @ epoch {stopper.best_epoch}")
            if stopper.stop:
                break
    bar.close()
    check_finite(best_w.to(head.dtype), "fine-tuned rows that", subs)
    new_w = table.weight.clone()  # every other row's bits as they were
    new_w[rows] = best_w.to(head.dtype)
    new_b = None
    if table.bias is not None:
        new_b = table.bias.clone()
        new_b[rows] = best_b.to(head.dtype)
    tables = list(head.tables)
    tables[ti] = Table(weight=new_w, bias=new_b, labels=table.labels, parent=table.parent)
    rec = dict(rec)  # the new record: the old one with a finetune entry (Head freezes it)
    rec["finetune"] = {
        "clips": n, "shots": shots, "seed": seed, "epochs": epoch, "steps": step, "best_epoch": stopper.best_epoch,
        "loss_ema": round(stopper.best, 6),
    }
    return head.evolve(tables=tuple(tables), history=head.history[:-1] + (rec,))


class SubRowScores:
    """The scores `finetune` trains on: everything but the latest split's sub rows is frozen, so its part
    of the logits (flat) or log-probabilities (hierarchical) is computed once, for all clips `x` [N, D].

    The columns are the other output labels in their order, then the latest split's subs in theirs
    (`targets` numbers the clips' labels the same way), wherever the split put the subs (order
    "append": the last k output labels; "keep": the first in the coarse label's column).
    """

    def __init__(self, head: Head, x: torch.Tensor) -> None:
        rec = head.latest_record()
        self.head, self.x, self.hierarchical = head, x, rec["mode"] == "hierarchical"
        subs = set(rec["subs"])
        self.columns = [lab for lab in head.labels if lab not in subs] + list(rec["subs"])  # the scores' labels
        with torch.no_grad():
            if not self.hierarchical and head.is_hierarchical:
                raise CatsplitError("finetune of a flat split inside a hierarchical head is not supported; fine-tune before adding hierarchical splits")
            others = [i for i, lab in enumerate(head.labels) if lab not in subs]
            # float32 table logits, like the trained rows' (log_gate, sub_logits): what finetune has always trained
            # on; one plain matmul for a flat head (not Head.scores' blocked one), so the trained rows are as they were.
            scores = head.scores(x, table_dtype=torch.float32) if self.hierarchical else head.table_logits(x)
            # The last k columns (order "append") are cut off as before; otherwise the others are gathered.
            tail = others == list(range(len(others)))
            self.others = scores[:, : len(others)] if tail else scores[:, torch.tensor(others, dtype=torch.long)]  # [N, C - k]
            if self.hierarchical:
                ti, r = head.locate(rec["coarse"])
                if ti != 0:
                    raise CatsplitError("finetune of a nested hierarchical split is not supported")
                self.log_gate = torch.log_softmax(head.table_logits(x).double(), dim=-1)[:, r].float()  # [N]

    def targets(self, names: Sequence[str]) -> torch.Tensor:
        """The clips' labels as indices into the scores' columns -> int64 [N]."""
        index = {lab: i for i, lab in enumerate(self.columns)}
        return torch.tensor([index[n] for n in names], dtype=torch.long)

    def __call__(self, idx: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        """Scores over `columns` for the clips `idx` with sub rows `w` [k, D] and biases `b` [k] -> [B, C]: the
        frozen ones, then the subs'. Differentiable in `w` and `b`."""
        sub_logits = table_scores(self.x[idx], w, b, kind=self.head.kind, scale=self.head.scale)  # [B, k]
        if self.hierarchical:
            sub_logits = self.log_gate[idx, None] + torch.log_softmax(sub_logits, dim=1)  # log p(c) + log q_j
        return torch.cat([self.others[idx], sub_logits], dim=1)
