"""split and unsplit: the two edits, and the record that makes every split undoable.

Flat: the coarse row is removed from its table and the k sub rows appended to that table.
Hierarchical: the coarse row stays (as the gate) and the sub rows form a new table.
order="keep": the first sub takes the coarse label's row (flat) and its output column (both modes),
the other subs are appended, so no other label changes index.
Every split appends one record to `head.history`; flat splits also keep the removed row as
tensors `undo.<n>.weight` / `undo.<n>.bias`. unsplit reverses the latest split exactly.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np
import torch

from catsplit._version import __version__
from catsplit.checks import (
    check_finite,
    check_groups,
    check_label_characters,
    check_history,
    check_mode,
    check_order,
    check_seed,
    check_text,
    label_key,
    label_keys,
    without_label,
)
from catsplit.config import SplitConfig
from catsplit.encoders import default_text_encoder
from catsplit.errors import CatsplitError
from catsplit.gate import gated
from catsplit.head import Head, Table
from catsplit.methods.context import SplitContext
from catsplit.methods.registry import gate_methods, get_method
from catsplit.structure import sub_modifiers
from catsplit.text import TextEncoder, warn_near_duplicates



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
    order: str = "append",
    calibrate: str | None = None,
) -> Head:
    """Split label `coarse` of `head` into the labels `subs`, zero-shot. The input is not modified.

    Args:
        head: the head to edit.
        text_encoder: callable list[str] -> [N, E] (e.g. `default_text_encoder()`); may be None for
            method="coarse". None otherwise loads the default encoder.
        coarse: the label to split.
        subs: its k >= 2 new fine labels, in output order.
        method: a name from `catsplit.methods.registry.METHODS`: "alignment" (default), "retrieval",
            "text" or "coarse".
        mode: "flat" (plain linear head, coarse row replaced) or "hierarchical" (coarse row kept as a gate).
        modifiers: label -> modifier text, for subs and/or existing labels (overrides inference).
        groups: pseudo-coarse groups of existing labels, group text -> members (overrides
            `head.groups` and inference).
        seed: seed of the alignment MLP.
        config: the method's settings: its own config (`AlignmentConfig`, `RetrievalConfig`, `TextConfig`)
            or a `SplitConfig`; the paper's defaults when None.
        gate: sigma of the similarity gate (after MoTE), retrieval and alignment only: each edit
            w_c + delta becomes w_c + lambda * delta with lambda = exp(-(1 - s) / sigma), s = the best
            cosine similarity of the sub's modifier text to the dictionary's modifiers.
        order: "append" (default): the old labels without `coarse` keep their order and the subs come
            after them; "keep": the first sub takes `coarse`'s index (its row and output column) and
            the others are appended, so no other label changes index.
        calibrate: None (default) or "scale": flat splits only, every sub row rescaled to the coarse row's
            norm (`catsplit.calibrate(..., scale=True)`; locality calibration without data, recorded).
    Returns:
        a new `Head` whose labels are the old ones without `coarse`, plus `subs`.
    """
    if calibrate is not None and calibrate != "scale":
        raise CatsplitError(f"calibrate must be None or 'scale', got {calibrate!r}; calibration on clips is catsplit.calibrate(edited, others)")
    if calibrate is not None and mode == "hierarchical":
        raise CatsplitError("calibrate='scale' is for flat splits; a hierarchical split keeps other clips' top-1 exactly")
    plan = plan_split(
        head, text_encoder, coarse, subs, method=method, mode=mode, modifiers=modifiers, groups=groups, seed=seed,
        config=config, gate=gate, order=order,
    )
    edited = apply_split(head, plan)
    if calibrate is None:
        return edited
    from catsplit.calibration import calibrate as calibrated  # function level: calibration is above edit's imports

    return calibrated(edited, scale=True)


class PlannedSplit(NamedTuple):
    """What `split` computes before it assembles the edited head (`apply_split` does that)."""

    ctx: SplitContext
    rows: torch.Tensor  # [k, D] float32, the method's new rows (gate applied)
    method: str
    mode: str
    details: dict[str, Any]  # the method's report (and the gate's), for the edit record
    order: str = "append"  # "append" or "keep": where the subs go in the output label space


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
    order: str = "append",
) -> PlannedSplit:
    """`split`'s checks and its method: the new rows, with nothing assembled. Arguments as for `split`."""
    if not isinstance(head, Head):
        raise CatsplitError(f"split needs a catsplit.Head, got {type(head).__name__}; use catsplit.load_head(...)")
    spec = get_method(method)
    mode = check_mode(mode)
    order = check_order(order)
    seed = check_seed(seed)
    subs = check_subs(head, coarse, subs)
    method_config = method_settings(spec.name, spec.config, config)
    if modifiers is not None and not isinstance(modifiers, Mapping):
        raise CatsplitError(f"modifiers must map label -> modifier text, got {type(modifiers).__name__}")
    if groups is not None:
        check_groups(groups, set(head.labels))
        if any(coarse in members for members in groups.values()):
            raise CatsplitError(f"groups list the class being split, {coarse!r}, as a member; leave it out")
    if spec.needs_encoder and text_encoder is None:
        text_encoder = default_text_encoder()

    ctx = SplitContext(
        head=head,
        encoder=text_encoder,
        coarse=coarse,
        subs=subs,
        sub_modifiers=sub_modifiers(coarse, subs, modifiers),
        groups=groups if groups is not None else head.groups,
        modifiers=modifiers,
        config=method_config,
        seed=seed,
    )
    if gate is not None and not spec.accepts_gate:
        raise CatsplitError(
            f"gate= scales modifier edits; it needs method {' or '.join(map(repr, gate_methods()))}, not {method!r}"
        )
    if gate is not None and (isinstance(gate, bool) or not isinstance(gate, (int, float)) or not gate > 0):
        raise CatsplitError(f"gate must be a positive number (sigma), got {gate!r}")
    result = spec.rows(ctx)
    new_rows = np.asarray(result.rows, dtype=np.float32)  # [k, D]
    warn_near_duplicates(spec.name, *result.ties, text_encoder)  # once, after the method succeeded
    details = dict(result.details)
    if gate is not None:
        new_rows, details["gate"] = gated(ctx, new_rows, float(gate))
    rows = torch.from_numpy(np.ascontiguousarray(new_rows))
    return PlannedSplit(ctx, rows, spec.name, mode, details, order)


def method_settings(name: str, config_type: type | None, config: Any) -> Any:
    """The method's own config from `split(config=...)`: None -> its defaults, a SplitConfig -> its fields."""
    if config is None:
        return None if config_type is None else config_type()
    if isinstance(config, SplitConfig):
        return config.for_method(name)
    if config_type is not None and isinstance(config, config_type):
        return config
    own = f"catsplit.{config_type.__name__} or " if config_type is not None else ""
    raise CatsplitError(
        f"config must be a {own}catsplit.SplitConfig, got {type(config).__name__}; e.g. config=SplitConfig(alpha=0.7)"
    )


def check_subs(head: Head, coarse: str, subs: Sequence[str]) -> list[str]:
    """Validate the target: coarse is an output label; subs are >= 2 new, distinct, non-empty labels."""
    if not isinstance(coarse, str) or coarse not in head.labels:
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
    check_label_characters(subs, "subs")
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
    head: Head, plan: PlannedSplit, *, concat: Callable[[Sequence[torch.Tensor]], torch.Tensor] | None = None,
) -> Head:
    """Assemble the edited head from a planned split (its new rows [k, D]) and record the edit.

    Args:
        head: the head `plan_split` planned the split of.
        plan: what `plan_split` returned.
        concat: joins the row blocks of a flat edit's table (default `concat_rows`, a copy);
            `catsplit.io.streaming` passes one that only records the blocks, to write them from the file.
    """
    concat = concat or concat_rows
    ctx, rows, method, mode = plan.ctx, plan.rows, plan.method, plan.mode
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
    }
    keep = plan.order == "keep"
    if keep:
        record["order"] = "keep"
    if keep or head.output_order is not None:  # where unsplit puts `coarse` back in an explicit output order
        record["column"] = head.labels.index(ctx.coarse)
    record["catsplit"] = __version__
    if plan.details:
        record["details"] = plan.details
    history = head.history
    tables = list(head.tables)
    undo = dict(head.undo)
    groups = head.groups
    if mode == "flat":
        w, b = table.weight, table.bias
        if keep:  # the first sub in the coarse row's place, the others after the table's rows
            new_w = concat([w[:r], rows[:1], w[r + 1 :], rows[1:]])  # [C - 1 + k, D]
            new_b = concat([b[:r], sub_bias[:1], b[r + 1 :], sub_bias[1:]]) if b is not None else None
            labels = table.labels[:r] + (ctx.subs[0],) + table.labels[r + 1 :] + tuple(ctx.subs[1:])
        else:
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
            groups = without_label(groups, ctx.coarse)
    else:
        tables.append(Table(weight=rows.contiguous(), bias=sub_bias, labels=tuple(ctx.subs), parent=ctx.coarse))
        record["sub_table"] = len(tables) - 1
    # The groups are the head's minus the split label (still labels of the new tables, so still Groups) and the
    # earlier records are the head's own Records: neither is checked again. The new record is (frozen, and
    # JSON-checked: a method's details could hold anything), which costs one record, not the whole history.
    new_record = check_history((record,), "the new edit record")
    return head.evolve(
        tables=tuple(tables), undo=undo, groups=groups, history=history + new_record,
        output_order=split_output_order(head, ctx.coarse, ctx.subs, plan.order),
    )


def split_output_order(head: Head, coarse: str, subs: Sequence[str], order: str) -> tuple[str, ...] | None:
    """The output labels after a split, or None where they follow the tables (every "append" split of a head
    whose labels follow its tables: the default's order, as before "keep" existed).

    keep: `coarse`'s column goes to the first sub, the others are appended. append, in a head with an
    explicit order: `coarse`'s column is removed and the subs are appended. `Head` turns an order equal
    to the tables' own back into None.
    """
    if order == "append" and head.output_order is None:
        return None
    out = list(head.labels)
    j = out.index(coarse)
    if order == "keep":
        out[j : j + 1] = subs[:1]
        return tuple(out) + tuple(subs[1:])
    del out[j]
    return tuple(out) + tuple(subs)


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
    history = head.history
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
    subs = list(last["subs"])
    keep = last.get("order", "append") == "keep"
    tables = list(head.tables)
    undo = dict(head.undo)
    groups = None if head.groups is None else dict(head.groups)  # checked again: a group may name a sub this undo removes
    if last["mode"] == "flat":
        t = tables[ti]
        w_row = undo.pop(f"{last['undo']}.weight")
        b_row = undo.pop(f"{last['undo']}.bias", None)
        if w_row.shape != (1, t.weight.shape[1]) or w_row.dtype != t.weight.dtype or (t.bias is not None) != (b_row is not None):
            raise ValueError(f"undo tensors of shape {tuple(w_row.shape)} do not fit the table")
        if keep:  # the first sub holds row r, the others are the table's last k - 1 rows
            n = t.weight.shape[0] - (k - 1)
            if t.labels[r] != subs[0] or list(t.labels[n:]) != subs[1:]:
                raise ValueError(f"row {r} and the last {k - 1} rows of table {ti} are not the subs {subs}")
            after = slice(r + 1, n)
        else:
            n = t.weight.shape[0] - k  # rows before the subs
            after = slice(r, n)
        w = concat_rows([t.weight[:r], w_row, t.weight[after]])
        b = concat_rows([t.bias[:r], b_row, t.bias[after]]) if t.bias is not None and b_row is not None else None
        labels = t.labels[:r] + (coarse,) + t.labels[after]
        tables[ti] = Table(weight=w, bias=b, labels=labels, parent=t.parent)
        if "groups_before" in last:
            groups = last["groups_before"]
    else:
        if not (0 < last["sub_table"] == len(tables) - 1 and tables[-1].parent == coarse):
            raise ValueError(f"sub_table {last['sub_table']} is not the latest sub-head of {coarse!r}")
        tables.pop()
    return head.evolve(
        tables=tuple(tables), undo=undo, groups=groups, history=head.history[:-1],
        output_order=unsplit_output_order(head, last, coarse),
    )


def unsplit_output_order(head: Head, last: Mapping[str, Any], coarse: str) -> tuple[str, ...] | None:
    """The output labels before the split `last` recorded (None: they followed the tables).

    A split that changed an explicit order, or made one (keep), recorded `coarse`'s column before it.
    """
    if "column" not in last:
        return None
    subs = set(last["subs"])
    out = [lab for lab in head.labels if lab not in subs]
    column = last["column"]
    if isinstance(column, bool) or not isinstance(column, int) or not 0 <= column <= len(out):
        raise ValueError(f"column {column!r} is outside the {len(out) + 1} labels before the split")
    out.insert(column, coarse)
    return tuple(out)
