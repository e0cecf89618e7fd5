"""split and unsplit: the two edits, and the record that makes every split undoable.

Flat: the coarse row is removed from its table and the k sub rows appended to that table.
Hierarchical: the coarse row stays (as the gate) and the sub rows form a new table.
Every split appends one record to `head.history`; flat splits also keep the removed row as
tensors `undo.<n>.weight` / `undo.<n>.bias`. unsplit reverses the latest split exactly.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np
import torch

from catsplit._version import __version__
from catsplit.config import SplitConfig, check_seed
from catsplit.errors import CatsplitError
from catsplit.head import _Checked, Head, Table, check_finite, check_groups, check_history, label_key, label_keys
from catsplit.methods import METHODS, NEEDS_ENCODER, SplitContext
from catsplit.structure import check_text, sub_modifiers
from catsplit.text import TextEncoder, warn_near_duplicates

MODES = ("flat", "hierarchical")


def split(
    head: Head,
    text_encoder: TextEncoder | None,
    coarse: str,
    subs: Sequence[str],
    *,
    method: str = "alignment",
    mode: str = "flat",
    modifiers: Mapping[str, str] | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
    seed: int = 0,
    config: SplitConfig | None = None,
    gate: float | None = None,
) -> Head:
    """Split label `coarse` of `head` into the labels `subs`, zero-shot. The input is not modified.

    Args:
        head: the head to edit.
        text_encoder: callable list[str] -> [N, E] (e.g. `default_text_encoder()`); may be None for
            method="coarse". None otherwise loads the default encoder.
        coarse: the label to split.
        subs: its k >= 2 new fine labels, in output order.
        method: "alignment" (default), "retrieval", "text" or "coarse".
        mode: "flat" (plain linear head, coarse row replaced) or "hierarchical" (coarse row kept as a gate).
        modifiers: label -> modifier text, for subs and/or existing labels (overrides inference).
        groups: pseudo-coarse groups of existing labels, group text -> members (overrides
            `head.groups` and inference).
        seed: seed of the alignment MLP.
        config: method settings (`SplitConfig`); the paper's defaults when None.
        gate: sigma of the similarity gate (after MoTE), retrieval and alignment only: each edit
            w_c + delta becomes w_c + lambda * delta with lambda = exp(-(1 - s) / sigma), s = the best
            cosine similarity of the sub's modifier text to the dictionary's modifiers.
    Returns:
        a new `Head` whose labels are the old ones without `coarse`, plus `subs`.
    """
    plan = plan_split(
        head, text_encoder, coarse, subs, method=method, mode=mode, modifiers=modifiers, groups=groups, seed=seed,
        config=config, gate=gate,
    )
    return apply_split(head, plan.ctx, plan.rows, method=plan.method, mode=plan.mode)


class PlannedSplit(NamedTuple):
    """What `split` computes before it assembles the edited head (`apply_split` does that)."""

    ctx: SplitContext
    rows: torch.Tensor  # [k, D] float32, the method's new rows (gate applied)
    method: str
    mode: str


def plan_split(
    head: Head,
    text_encoder: TextEncoder | None,
    coarse: str,
    subs: Sequence[str],
    *,
    method: str = "alignment",
    mode: str = "flat",
    modifiers: Mapping[str, str] | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
    seed: int = 0,
    config: SplitConfig | None = None,
    gate: float | None = None,
) -> PlannedSplit:
    """`split`'s checks and its method: the new rows, with nothing assembled. Arguments as for `split`."""
    if not isinstance(head, Head):
        raise CatsplitError(f"split needs a catsplit.Head, got {type(head).__name__}; use catsplit.load_head(...)")
    if method not in METHODS:
        raise CatsplitError(f"unknown method {method!r}; choose one of {sorted(METHODS)}")
    if mode not in MODES:
        raise CatsplitError(f"unknown mode {mode!r}; choose 'flat' or 'hierarchical'")
    seed = check_seed(seed)
    subs = check_subs(head, coarse, subs)
    if config is None:
        config = SplitConfig()
    elif not isinstance(config, SplitConfig):
        raise CatsplitError(
            f"config must be a catsplit.SplitConfig, got {type(config).__name__}; e.g. config=SplitConfig(alpha=0.7)"
        )
    if modifiers is not None and not isinstance(modifiers, Mapping):
        raise CatsplitError(f"modifiers must map label -> modifier text, got {type(modifiers).__name__}")
    if groups is not None:
        check_groups(groups, set(head._labels))
        if any(coarse in members for members in groups.values()):
            raise CatsplitError(f"groups list the class being split, {coarse!r}, as a member; leave it out")
    if method in NEEDS_ENCODER and text_encoder is None:
        from catsplit.encoders import default_text_encoder

        text_encoder = default_text_encoder()

    ctx = SplitContext(
        head=head,
        encoder=text_encoder,
        coarse=coarse,
        subs=subs,
        sub_modifiers=sub_modifiers(coarse, subs, modifiers),
        groups=groups if groups is not None else head.groups,
        modifiers=modifiers,
        config=config,
        seed=seed,
    )
    if gate is not None and method not in ("retrieval", "alignment"):
        raise CatsplitError(f"gate= scales modifier edits; it needs method 'retrieval' or 'alignment', not {method!r}")
    if gate is not None and (isinstance(gate, bool) or not isinstance(gate, (int, float)) or not gate > 0):
        raise CatsplitError(f"gate must be a positive number (sigma), got {gate!r}")
    new_rows = np.asarray(METHODS[method](ctx), dtype=np.float32)  # [k, D]
    warn_near_duplicates(method, *ctx.ties)  # once, after the method succeeded
    if gate is not None:
        new_rows = gated(ctx, new_rows, float(gate))
    return PlannedSplit(ctx, torch.from_numpy(np.ascontiguousarray(new_rows)), method, mode)


def gated(ctx: SplitContext, rows: np.ndarray, sigma: float) -> np.ndarray:
    """w_c + lambda_j (w_sj - w_c), lambda_j = exp(-(1 - s_j) / sigma): unfamiliar modifiers move the row less."""
    from catsplit.text import encode

    d = ctx.dictionary
    emb = encode(ctx.encoder, ctx.sub_modifiers + d.modifiers)
    k = len(ctx.sub_modifiers)
    s = (emb[:k] @ emb[k:].T).max(axis=1)  # [k] best similarity to a known modifier
    lam = np.exp(-(1.0 - s) / sigma)
    ctx.details["gate"] = {"sigma": sigma, "similarity": [round(float(x), 6) for x in s], "lambda": [round(float(x), 6) for x in lam]}
    return ctx.coarse_row[None, :] + lam[:, None] * (rows - ctx.coarse_row[None, :])


def check_subs(head: Head, coarse: str, subs: Sequence[str]) -> list[str]:
    """Validate the target: coarse is an output label; subs are >= 2 new, distinct, non-empty labels."""
    if not isinstance(coarse, str) or coarse not in head._labels:
        if isinstance(coarse, str) and coarse in head.gates:
            raise CatsplitError(
                f"{coarse!r} was already split hierarchically and is now a gate; unsplit it first or split one of its subs"
            )
        close = difflib.get_close_matches(str(coarse), head.labels, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else "; see `catsplit inspect` for the labels"
        raise CatsplitError(f"coarse label {coarse!r} is not in the head{hint}")
    if isinstance(subs, str) or not isinstance(subs, Sequence):
        raise CatsplitError(f"subs must be a list of label strings, got {type(subs).__name__}")
    subs = [check_text(s, f"sub #{i}") for i, s in enumerate(subs)]
    if len(subs) < 2:
        raise CatsplitError(f"a split needs at least 2 subs, got {len(subs)} ({subs}); to rename a class, edit its label")
    seen: dict[str, str] = {}
    for s in subs:
        if label_key(s) in seen:
            raise CatsplitError(f"duplicate subs {seen[label_key(s)]!r} and {s!r} (ignoring case and white space); give each once")
        seen[label_key(s)] = s
    wanted = {label_key(s): s for s in subs}
    clash = []
    for t in head.tables:
        if not wanted.keys().isdisjoint(keys := label_keys(t.labels)):  # one C-level pass; the loop only on a hit
            clash += [(wanted[k], lab) for k, lab in zip(keys, t.labels) if k in wanted]
    if clash:
        shown = ", ".join(f"{s!r} (existing {e!r})" for s, e in clash)
        raise CatsplitError(f"subs must be new labels; already in the head: {shown}. Rename them")
    return subs


def apply_split(
    head: Head, ctx: SplitContext, rows: torch.Tensor, *, method: str, mode: str,
    concat: Callable[[Sequence[torch.Tensor]], torch.Tensor] | None = None,
) -> Head:
    """Assemble the edited head from the new rows [k, D] and record the edit.

    Args:
        concat: joins the row blocks of a flat edit's table (default `concat_rows`, a copy);
            `catsplit.streaming` passes one that only records the blocks, to write them from the file.
    """
    concat = concat or concat_rows
    ti, r = head.locate(ctx.coarse)
    table = head.tables[ti]
    k = len(ctx.subs)
    rows = rows.to(head.dtype)
    if method == "coarse":  # an exact copy, whatever the dtype
        rows = table.weight[r : r + 1].repeat(k, 1)
    # Checked in the head's own dtype: a float16 head can overflow where float32 did not.
    check_finite(rows, f"method {method!r} produced new rows that (in {str(head.dtype).removeprefix('torch.')})", ctx.subs)
    sub_bias = table.bias[r : r + 1].repeat(k) if table.bias is not None else None  # b_sj = b_c
    record: dict[str, Any] = {
        "op": "split",
        "coarse": ctx.coarse,
        "subs": list(ctx.subs),
        "method": method,
        "mode": mode,
        "seed": ctx.seed,
        "modifiers": dict(zip(ctx.subs, ctx.sub_modifiers)),
        "table": ti,
        "row": r,
        "catsplit": __version__,
    }
    if ctx.details:
        record["details"] = ctx.details
    history = head._history  # the head's own records: head.history would deep-copy them
    tables = list(head.tables)
    undo = head.undo  # a fresh dict
    groups = head._groups  # name -> tuple of members, checked when the head was made
    if mode == "flat":
        w, b = table.weight, table.bias
        new_w = concat([w[:r], w[r + 1 :], rows])  # [C - 1 + k, D]
        new_b = concat([b[:r], b[r + 1 :], sub_bias]) if b is not None else None
        labels = table.labels[:r] + table.labels[r + 1 :] + tuple(ctx.subs)
        tables[ti] = Table(weight=new_w, bias=new_b, labels=labels, parent=table.parent)
        key = f"undo.{len(history)}"
        undo[f"{key}.weight"] = w[r : r + 1].clone()
        if b is not None:
            undo[f"{key}.bias"] = b[r : r + 1].clone()
        record["undo"] = key
        if groups is not None and any(ctx.coarse in m for m in groups.values()):
            record["groups_before"] = {g: list(ms) for g, ms in groups.items()}
            groups = {g: tuple(m for m in ms if m != ctx.coarse) for g, ms in groups.items()}
            groups = {g: ms for g, ms in groups.items() if ms}
    else:
        tables.append(Table(weight=rows.contiguous(), bias=sub_bias, labels=tuple(ctx.subs), parent=ctx.coarse))
        record["sub_table"] = len(tables) - 1
    # The groups are the head's minus the split label (still labels of the new tables) and the earlier records
    # are the head's own: neither is checked again. The new record is (copied, and JSON-checked: a method's
    # details could hold anything), which costs one record, not the whole history.
    new_record = check_history((record,), "the new edit record")
    return head.evolve(tables=tuple(tables), undo=undo, groups=_Checked(groups), history=_Checked(history + new_record))


_SAME_WIDTH_INT = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def concat_rows(parts: Sequence[torch.Tensor]) -> torch.Tensor:
    """torch.cat along rows, as one plain copy of the bits (numpy, one thread).

    For a 100,000 x 1,024 head this is the only full-size copy a flat edit makes; torch.cat's
    threaded copy was several times slower on a busy 2-core machine. Bit-exact for every dtype
    (the bits are copied as integers of the same width).
    """
    dtype = parts[0].dtype
    if any(p.dtype != dtype for p in parts):
        raise ValueError(f"concat_rows needs one dtype, got {[p.dtype for p in parts]}")
    as_int = _SAME_WIDTH_INT[parts[0].element_size()]
    out = np.concatenate([p.contiguous().view(as_int).numpy() for p in parts])
    return torch.from_numpy(out).view(dtype)


def unsplit(head: Head, coarse: str) -> Head:
    """Undo the latest split, which must be the split of `coarse`; bit-for-bit the head before it.

    Args:
        head: an edited head.
        coarse: the label that was split.
    Returns:
        the head as it was before that split.
    """
    if not isinstance(head, Head):
        raise CatsplitError(f"unsplit needs a catsplit.Head, got {type(head).__name__}")
    history = head._history  # read, not changed: head.history would deep-copy it
    splits = [rec for rec in history if rec.get("op") == "split"]
    if not history or not splits or all(rec["coarse"] != coarse for rec in splits):
        done = [rec["coarse"] for rec in splits]
        raise CatsplitError(f"{coarse!r} was not split in this head; splits recorded: {done or 'none'}")
    last = history[-1]
    if last.get("op") != "split" or last["coarse"] != coarse:
        latest = max(i for i, rec in enumerate(history) if rec.get("op") == "split" and rec["coarse"] == coarse)
        later = [rec.get("coarse") for rec in history[latest + 1 :]]
        raise CatsplitError(
            f"edits made after the split of {coarse!r} must be undone first, newest first: "
            + ", ".join(f"unsplit(head, {c!r})" for c in reversed(later))
        )
    try:
        return _undo(head, last, coarse)
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:
        raise CatsplitError(f"the edit record of {coarse!r} is damaged ({type(exc).__name__}: {exc}); it cannot be undone") from None


def _undo(head: Head, last: dict, coarse: str) -> Head:
    ti, r, k = last["table"], last["row"], len(last["subs"])
    tables = list(head.tables)
    undo = head.undo  # a fresh dict
    groups = head.groups  # checked again below: a group may name a sub that this undo removes
    if last["mode"] == "flat":
        t = tables[ti]
        n = t.weight.shape[0] - k  # rows before the subs
        w_row = undo.pop(f"{last['undo']}.weight")
        b_row = undo.pop(f"{last['undo']}.bias", None)
        if w_row.shape != (1, t.weight.shape[1]) or w_row.dtype != t.weight.dtype or (t.bias is not None) != (b_row is not None):
            raise ValueError(f"undo tensors of shape {tuple(w_row.shape)} do not fit the table")
        w = concat_rows([t.weight[:r], w_row, t.weight[r:n]])
        b = concat_rows([t.bias[:r], b_row, t.bias[r:n]]) if t.bias is not None and b_row is not None else None
        labels = t.labels[:r] + (coarse,) + t.labels[r:n]
        tables[ti] = Table(weight=w, bias=b, labels=labels, parent=t.parent)
        if "groups_before" in last:
            groups = last["groups_before"]
    else:
        if not (0 < last["sub_table"] == len(tables) - 1 and tables[-1].parent == coarse):
            raise ValueError(f"sub_table {last['sub_table']} is not the latest sub-head of {coarse!r}")
        tables.pop()
    return head.evolve(tables=tuple(tables), undo=undo, groups=groups, history=_Checked(head._history[:-1]))
