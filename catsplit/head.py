"""The classifier head: rows, labels, and the hierarchy that hierarchical splits add.

A head is a list of *tables*. Table 0 is the base linear layer `[C, D]`; every hierarchical
split adds one table whose rows are the subs of a gate label (the coarse class, kept as a
row of its own table). Flat heads have exactly one table and are a plain linear layer.

The output label space (`Head.labels`) is every label of every table that is not a gate,
table by table, in row order. Probabilities:
    p(y)   = softmax(base logits)_y                    for base labels
    p(s_j) = p(gate) * softmax(sub-table logits)_j     for the rows of a sub-table
`Head.logits` returns log-probabilities for hierarchical heads, so `softmax(logits)` is `p`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch

from catsplit.errors import CatsplitError
from catsplit.structure import _VISIBLE, is_blank

_visible = _VISIBLE.search

if TYPE_CHECKING:
    from os import PathLike

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


@dataclass(frozen=True)
class Table:
    """One linear layer of a head: the base, or the sub-head of one hierarchical split."""

    weight: torch.Tensor  # [C, D], stored in the head's dtype
    bias: torch.Tensor | None  # [C] or None
    labels: tuple[str, ...]  # C labels, row order
    parent: str | None = None  # gate label; None for the base table

    def row(self, label: str) -> int:
        return self.labels.index(label)


def as_tensor(x: Any, name: str) -> torch.Tensor:
    """numpy array / torch tensor / nested list -> CPU tensor, keeping float dtypes as they are."""
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu()
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # ragged lists and the like
            raise CatsplitError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}: {exc}") from None
        if arr.dtype.kind not in "fiu":
            raise CatsplitError(f"{name} must hold numbers, got dtype {arr.dtype}; pass a float array")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if not t.is_floating_point():
        t = t.to(torch.float32)
    if t.dtype not in FLOAT_DTYPES:
        raise CatsplitError(f"{name} has dtype {t.dtype}; use float32, float16, bfloat16 or float64")
    return t.contiguous()


def label_key(label: str) -> str:
    """Labels that differ only by case or white space collide under this key."""
    return " ".join(label.split()).casefold()


def label_keys(labels: Sequence[str]) -> list[str]:
    """`label_key` of every label (one C-level pass)."""
    return list(map(str.casefold, map(" ".join, map(str.split, labels))))


def check_labels(labels: Sequence[str], what: str = "labels") -> tuple[str, ...]:
    """Validate a label list: strings, non-empty after stripping, unique (also up to case/space)."""
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise CatsplitError(f"{what} must be a list of strings, got {type(labels).__name__}")
    # C-level passes first (map, set): 100,000 labels are common; the slow search only on failure.
    ok = set(map(type, labels)) <= {str} and all(map(_visible, labels))
    bad = [] if ok else [(i, lab) for i, lab in enumerate(labels) if not isinstance(lab, str) or is_blank(lab)]
    if bad:
        shown = ", ".join(f"#{i}: {lab!r}" for i, lab in bad[:5])
        raise CatsplitError(
            f"{what} must be non-empty strings (not only white space or invisible characters); bad entries {shown}. "
            "Give every class a name."
        )
    try:
        "".join(labels).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800"): cannot be written to a file
        bad = [(i, lab) for i, lab in enumerate(labels) if not _is_text(lab)]
        shown = ", ".join(f"#{i}: {lab!r}" for i, lab in bad[:5])
        raise CatsplitError(f"{what} must be valid Unicode text; entries {shown} hold an unpaired surrogate") from None
    keys = label_keys(labels)
    if len(set(keys)) == len(keys):
        return tuple(labels)
    seen: dict[str, str] = {}
    clashes = []
    for lab, key in zip(labels, keys):
        if key in seen:
            clashes.append((seen[key], lab))
        else:
            seen[key] = lab
    if clashes:
        shown = ", ".join(f"{a!r} and {b!r}" for a, b in clashes[:5])
        raise CatsplitError(
            f"{what} must be unique, ignoring case and white space; these collide: {shown}. Rename one of each pair."
        )
    return tuple(labels)


def _is_text(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


FINITE_CHUNK = 1 << 20  # elements per block of check_finite: its temporaries stay a few MB, whatever the head's size


def check_finite(t: torch.Tensor, name: str, labels: Sequence[str] | None = None) -> None:
    """Raise naming the first rows that hold NaN or inf.

    Scans blocks of rows, so a 100,000 x 1,024 head needs no full-size temporary (torch.isfinite
    on the whole tensor would allocate several).
    """
    t = t.detach()
    if t.numel() == 0:
        return
    flat = t.reshape(t.shape[0], -1)
    if flat.dtype == torch.bfloat16:  # numpy has no bfloat16: all exponent bits set <=> NaN or inf
        arr, nonfinite = flat.view(torch.int16).numpy(), lambda a: (a & 0x7F80) == 0x7F80
    elif flat.dtype == torch.float16:  # the same test on the bits: 5x faster than numpy's float16 isfinite
        arr, nonfinite = flat.view(torch.int16).numpy(), lambda a: (a & 0x7C00) == 0x7C00
    else:
        arr, nonfinite = flat.numpy(), lambda a: ~np.isfinite(a)
    step = max(1, FINITE_CHUNK // arr.shape[1])
    rows: list[int] = []
    for start in range(0, arr.shape[0], step):
        bad = nonfinite(arr[start : start + step])
        if bad.any():
            rows += (np.nonzero(bad.any(axis=1))[0] + start).tolist()
            if len(rows) >= 5:
                break
    if rows:
        names = [f"{r} ({labels[r]!r})" if labels is not None else str(r) for r in rows[:5]]
        raise CatsplitError(f"{name} holds NaN or inf in row(s) {', '.join(names)}; fix or retrain those rows")


def make_table(
    weight: Any, bias: Any, labels: Sequence[str], parent: str | None = None, *, what: str = "head"
) -> Table:
    """Validate and build one table."""
    w = as_tensor(weight, f"{what} weight")
    if w.ndim != 2 or w.shape[0] == 0 or w.shape[1] == 0:
        raise CatsplitError(f"{what} weight must be 2-D [classes, dim] with both > 0, got shape {tuple(w.shape)}")
    labels = check_labels(labels, f"{what} labels")
    if len(labels) != w.shape[0]:
        raise CatsplitError(
            f"{what} has {w.shape[0]} weight rows but {len(labels)} labels; give exactly one label per row"
        )
    check_finite(w, f"{what} weight", labels)
    b = None
    if bias is not None:
        b = as_tensor(bias, f"{what} bias")
        if b.ndim == 2 and 1 in b.shape:
            b = b.reshape(-1)
        if b.ndim != 1 or b.shape[0] != w.shape[0]:
            raise CatsplitError(f"{what} bias must have shape [{w.shape[0]}], got {tuple(b.shape)}")
        check_finite(b.reshape(-1, 1), f"{what} bias", labels)
        if b.dtype != w.dtype:
            b = b.to(w.dtype)
    return Table(weight=w, bias=b, labels=labels, parent=parent)


def _as_input(x: Any, dim: int) -> tuple[torch.Tensor, bool]:
    """Features -> float32 tensor [N, D]; remembers whether the caller gave numpy."""
    was_numpy = not isinstance(x, torch.Tensor)
    t = as_tensor(x, "features").to(torch.float32)
    if t.ndim == 1:
        t = t.unsqueeze(0)
    if t.ndim != 2 or t.shape[1] != dim:
        raise CatsplitError(f"features must have shape [N, {dim}] to match the head, got {tuple(t.shape)}")
    return t, was_numpy


@dataclass(frozen=True, eq=False)
class Head:
    """A classifier head with labels, optional groups, and its edit history.

    Build one from arrays: `Head(weight=W, bias=b, labels=labels)` with W `[C, D]` and b `[C]`
    (numpy or torch; float16/bfloat16 stay in their dtype). Heads are immutable: edits return
    new heads.
    """

    weight: Any  # [C, D] of the base table (for flat heads, the whole head)
    bias: Any = None  # [C] or None
    labels: Any = None  # output label space (see module docstring)
    groups: Mapping[str, Sequence[str]] | None = None  # pseudo-coarse group -> member labels
    history: tuple[dict, ...] = ()  # one JSON-able record per edit, oldest first
    tables: tuple[Table, ...] = field(default=(), repr=False)
    undo: Mapping[str, torch.Tensor] = field(default_factory=dict, repr=False)  # tensors edits need to be undone
    metadata: Mapping[str, str] = field(default_factory=dict, repr=False)  # foreign file metadata, kept on save
    kind: str = "linear"  # "linear" | "text" (rows are text embeddings, cosine logits)
    scale: float | None = None  # logit scale of text heads
    templates: tuple[str, ...] | None = None  # prompt templates of text heads ("a video of {}.")

    def __post_init__(self) -> None:
        if not self.tables:
            if self.labels is None:
                raise CatsplitError("Head needs labels=[...], one per weight row")
            base = make_table(self.weight, self.bias, list(self.labels))
            tables: tuple[Table, ...] = (base,)
        else:
            tables = tuple(self.tables)
            check_tables(tables)
        object.__setattr__(self, "tables", tables)
        base = tables[0]
        gates = {t.parent for t in tables[1:]}
        out = tuple(lab for t in tables for lab in t.labels if lab not in gates)
        object.__setattr__(self, "weight", base.weight)
        object.__setattr__(self, "bias", base.bias)
        object.__setattr__(self, "labels", list(out))
        object.__setattr__(self, "history", tuple(self.history))
        object.__setattr__(self, "metadata", dict(self.metadata))
        object.__setattr__(self, "undo", dict(self.undo))
        if self.groups is not None:
            object.__setattr__(self, "groups", check_groups(self.groups, all_labels(tables)))
        if self.kind not in ("linear", "text"):
            raise CatsplitError(f"head kind must be 'linear' or 'text', got {self.kind!r}")
        if self.templates is not None:
            object.__setattr__(self, "templates", tuple(self.templates))
        if self.scale is not None:
            if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float, np.number)) or not np.isfinite(self.scale):
                raise CatsplitError(f"head scale must be a finite number, got {self.scale!r}")
            object.__setattr__(self, "scale", float(self.scale))

    # --- shape -------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return int(self.tables[0].weight.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def dtype(self) -> torch.dtype:
        return self.tables[0].weight.dtype

    @property
    def is_hierarchical(self) -> bool:
        return len(self.tables) > 1

    @property
    def gates(self) -> list[str]:
        """Labels kept as gates of hierarchical splits (not in the output label space)."""
        return [t.parent for t in self.tables[1:]]  # type: ignore[misc]

    def locate(self, label: str) -> tuple[int, int]:
        """(table index, row index) of a label's row."""
        for ti, t in enumerate(self.tables):
            if label in t.labels:
                return ti, t.row(label)
        raise CatsplitError(f"label {label!r} is not in this head")

    def row(self, label: str) -> torch.Tensor:
        """The weight row of a label (gates included), float32 [D]."""
        ti, r = self.locate(label)
        return self.tables[ti].weight[r].to(torch.float32)

    # --- inference ---------------------------------------------------------------------
    def _table_logits(self, table: Table, x: torch.Tensor) -> torch.Tensor:
        w = table.weight.to(torch.float32)
        if self.kind == "text":
            # Text4Vis: cosine between the feature and each (normalised) text row, times a scale.
            x = torch.nn.functional.normalize(x, dim=-1)
            w = torch.nn.functional.normalize(w, dim=-1)
        z = x @ w.T  # [N, C]
        if self.kind == "text" and self.scale is not None:
            z = z * self.scale
        if table.bias is not None:
            z = z + table.bias.to(torch.float32)
        return z

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        if not self.is_hierarchical:
            return self._table_logits(self.tables[0], x)
        # Log-probabilities in float64: p(sub) = p(gate) * softmax(sub logits).
        logp: dict[str, torch.Tensor] = {}
        for t in self.tables:
            lp = torch.log_softmax(self._table_logits(t, x).to(torch.float64), dim=-1)  # [N, C_t]
            if t.parent is not None:
                lp = lp + logp[t.parent].unsqueeze(1)
            for j, lab in enumerate(t.labels):
                logp[lab] = lp[:, j]
        return torch.stack([logp[lab] for lab in self.labels], dim=1).to(torch.float32)  # [N, C_out]

    def logits(self, x: Any) -> Any:
        """Scores over `labels`: `x @ W.T + b` for flat heads, log-probabilities for hierarchical ones.

        Args:
            x: features [N, D] (or [D]), numpy or torch.
        Returns:
            [N, len(labels)] float32, numpy if `x` was numpy, else torch.
        """
        t, was_numpy = _as_input(x, self.dim)
        with torch.no_grad():
            z = self._logits(t)
        return z.numpy() if was_numpy else z

    def probs(self, x: Any) -> Any:
        """Probabilities over `labels` (softmax of `logits`), same container as `x`."""
        t, was_numpy = _as_input(x, self.dim)
        with torch.no_grad():
            p = torch.softmax(self._logits(t), dim=-1)
        return p.numpy() if was_numpy else p

    def predict_index(self, x: Any) -> np.ndarray:
        """Top-1 index into `labels` for each row of `x` -> int64 [N].

        Hierarchical heads decide exactly: when the base table's top-1 is not a gate it is the
        answer (p(sub) <= p(gate) <= p(top-1)), so such inputs keep their prediction bit-exactly,
        whatever the rounding of the log-probabilities.
        """
        t, _ = _as_input(x, self.dim)
        with torch.no_grad():
            pred = torch.argmax(self._logits(t), dim=1)
            if self.is_hierarchical:
                base = self.tables[0]
                base_top = torch.argmax(self._table_logits(base, t), dim=1)
                out_index = {lab: i for i, lab in enumerate(self.labels)}
                # base row -> output index, or -1 for gates
                remap = torch.tensor([out_index.get(lab, -1) for lab in base.labels], dtype=torch.long)
                kept = remap[base_top]
                pred = torch.where(kept >= 0, kept, pred)
        return pred.numpy()

    def predict(self, x: Any) -> np.ndarray:
        """Top-1 label for each row of `x` -> array of str [N]."""
        return np.asarray(self.labels, dtype=object)[self.predict_index(x)].astype(str)

    # --- persistence -------------------------------------------------------------------
    def save(self, path: str | PathLike, *, overwrite: bool = False) -> None:
        """Write the head as safetensors, atomically. Refuses to replace a file unless `overwrite=True`."""
        from catsplit.headfile import save_head

        save_head(self, path, overwrite=overwrite)

    def equals(self, other: Head) -> bool:
        """Bit-for-bit equality: tensors, labels, groups, history, metadata."""
        if not isinstance(other, Head) or len(self.tables) != len(other.tables):
            return False
        for a, b in zip(self.tables, other.tables):
            if a.labels != b.labels or a.parent != b.parent or not _same_bits(a.weight, b.weight):
                return False
            if (a.bias is None) != (b.bias is None) or (a.bias is not None and not _same_bits(a.bias, b.bias)):
                return False
        if set(self.undo) != set(other.undo) or not all(_same_bits(self.undo[k], other.undo[k]) for k in self.undo):
            return False
        return (
            _json(self.groups) == _json(other.groups)
            and _json(list(self.history)) == _json(list(other.history))
            and dict(self.metadata) == dict(other.metadata)
            and (self.kind, self.scale, self.templates) == (other.kind, other.scale, other.templates)
        )

    def evolve(self, **changes: Any) -> Head:
        """A copy with some parts replaced (tables, groups, history, undo, ...)."""
        return replace(self, **changes)

    def __repr__(self) -> str:
        mode = f", {len(self.tables) - 1} hierarchical split(s)" if self.is_hierarchical else ""
        return (
            f"Head({self.num_classes} labels, dim {self.dim}, {str(self.dtype).removeprefix('torch.')}"
            f"{', bias' if self.bias is not None else ''}{mode}, {len(self.history)} edit(s))"
        )


def check_tables(tables: Sequence[Table]) -> None:
    """Tables agree on dim and dtype, labels are unique across them, every gate is an earlier label."""
    base = tables[0]
    if base.parent is not None:
        raise CatsplitError(f"the base table cannot have a gate (got {base.parent!r})")
    seen: dict[str, str] = {}
    for i, t in enumerate(tables):
        what = "base table" if i == 0 else f"sub-head of {t.parent!r}"
        if t.weight.shape[1] != base.weight.shape[1] or t.weight.dtype != base.weight.dtype:
            raise CatsplitError(
                f"{what} has dim {t.weight.shape[1]} / {t.weight.dtype}, the base {base.weight.shape[1]} / "
                f"{base.weight.dtype}; all tables must match"
            )
        if (t.bias is None) != (base.bias is None):
            raise CatsplitError(f"{what} {'lacks' if t.bias is None else 'has'} a bias and the base does not agree")
        if i > 0 and t.parent not in seen.values():
            raise CatsplitError(f"{what}: its gate {t.parent!r} is not a label of an earlier table")
        if len(tables) == 1:
            break  # labels within one table were checked when it was built (make_table, check_subs)
        for lab in t.labels:
            if label_key(lab) in seen:
                raise CatsplitError(f"label {lab!r} appears twice ({what} and earlier, as {seen[label_key(lab)]!r})")
            seen[label_key(lab)] = lab
    parents = [t.parent for t in tables[1:]]
    if len(set(parents)) != len(parents):
        raise CatsplitError(f"a label gates more than one sub-head: {parents}")


def label_names(head: Head, labels: Sequence[Any], *, known_only: bool = True) -> list[str]:
    """Clip labels given as strings or indices into `head.labels` -> strings.

    Args:
        known_only: strings must be labels of `head` (else any string passes, for the caller to check).
    """
    known = set(head.labels) if known_only else None
    out = []
    for lab in labels:
        if isinstance(lab, (int, np.integer)) and not isinstance(lab, bool):
            if not 0 <= int(lab) < head.num_classes:
                raise CatsplitError(f"label index {lab} is outside the head's {head.num_classes} labels")
            out.append(head.labels[int(lab)])
        elif isinstance(lab, str) and (known is None or lab in known):
            out.append(lab)
        elif isinstance(lab, str):
            raise CatsplitError(f"label {lab!r} is not in the head's label space; use labels from head.labels")
        else:
            raise CatsplitError(f"labels must be label strings or indices, got {lab!r}")
    return out


def all_labels(tables: Sequence[Table]) -> set[str]:
    return {lab for t in tables for lab in t.labels}


def check_groups(groups: Mapping[str, Sequence[str]], known: set[str]) -> dict[str, list[str]]:
    """Validate user groups: name -> member labels that exist in the head."""
    if not isinstance(groups, Mapping):
        raise CatsplitError(f"groups must be a mapping group name -> list of member labels, got {type(groups).__name__}")
    out: dict[str, list[str]] = {}
    unknown = []
    for name, members in groups.items():
        if not isinstance(name, str) or is_blank(name):
            raise CatsplitError(f"group names must be non-empty strings, got {name!r}")
        if isinstance(members, str) or not isinstance(members, Sequence) or not members:
            raise CatsplitError(f"group {name!r} must list its member labels, got {members!r}")
        unknown += [m for m in members if m not in known]
        out[name] = list(members)
    if unknown:
        raise CatsplitError(
            f"groups name labels that are not in the head: {unknown[:5]}; fix the spelling or drop them"
        )
    return out


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return bool(torch.equal(a.reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8)))  # reshape: 0-d too


def _json(x: Any) -> str:
    return json.dumps(x, sort_keys=True)
