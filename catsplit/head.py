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

import copy
import json
import re
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np
import torch

from catsplit.errors import CatsplitError
from catsplit.structure import check_group_shapes, check_label_texts


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
    check_label_texts(labels, what)
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


_DIGITS = re.compile(r"\s*[0-9]+\s*")


def _index_value(v: Any) -> int | None:
    """An index of a {label: index} map: an int (not bool), or a string of digits (SSv2's labels.json writes "0")."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, str) and _DIGITS.fullmatch(v):
        return int(v)
    return None  # floats (0.5, and 1.0 too), bools, None, lists...


def labels_by_index(mapping: Mapping[Any, Any], what: str = "labels") -> list[str]:
    """A {label: index} map (the paper's labels.json) -> labels in index order; indices must be 0..n-1, each once."""
    items = list(mapping.items())
    bad = [(k, v) for k, v in items if _index_value(v) is None]
    if bad:
        shown = ", ".join(f"{k!r}: {v!r}" for k, v in bad[:5])
        raise CatsplitError(
            f"{what}: a mapping label -> index needs integer indices (not bools or floats); bad entries {shown}. "
            f"Map each label to its row, 0..{len(items) - 1}"
        )
    order = sorted(((_index_value(v), k) for k, v in items), key=lambda ik: ik[0])
    got = [i for i, _ in order]
    if got != list(range(len(items))):
        first: dict[int, Any] = {}
        dup = []
        for i, k in order:
            if i in first:
                dup.append((first[i], k))
            else:
                first[i] = k
        missing = sorted(set(range(len(items))) - set(got))[:5]
        outside = sorted(i for i in set(got) if not 0 <= i < len(items))[:5]
        raise CatsplitError(
            f"{what}: the indices must be exactly 0..{len(items) - 1}, each once; "
            + "; ".join(part for part in (
                f"labels sharing an index: {', '.join(f'{a!r} and {b!r}' for a, b in dup[:5])}" if dup else "",
                f"missing: {missing}" if missing else "",
                f"out of range: {outside}" if outside else "",
            ) if part)
        )
    return [k for _, k in order]


def label_list(labels: Any, what: str = "labels") -> list:
    """`labels=` as Head and load_head take it in memory: a sequence of strings, or a {label: index} map."""
    if isinstance(labels, Mapping):
        return labels_by_index(labels, what)
    if isinstance(labels, (str, bytes)):
        raise CatsplitError(f"{what} must be a list of label strings, got the {type(labels).__name__} {labels!r:.80}")
    try:
        return list(labels)
    except TypeError:
        raise CatsplitError(
            f"{what} must be a list of label strings or a mapping label -> index, got {type(labels).__name__}"
        ) from None


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
    new heads. `labels`, `groups`, `history`, `metadata` and `undo` hand out fresh copies, so
    changing what they return never changes the head.
    """

    weight: Any  # [C, D] of the base table (for flat heads, the whole head)
    bias: Any = None  # [C] or None
    labels: Any = None  # output label space (see module docstring); a list, or a mapping label -> index
    groups: Mapping[str, Sequence[str]] | None = None  # pseudo-coarse group -> member labels
    history: tuple[dict, ...] = ()  # one JSON-able record per edit, oldest first
    tables: tuple[Table, ...] = field(default=(), repr=False)
    undo: Mapping[str, torch.Tensor] = field(default_factory=dict, repr=False)  # tensors edits need to be undone
    metadata: Mapping[str, str] = field(default_factory=dict, repr=False)  # foreign file metadata, kept on save
    kind: str = "linear"  # "linear" | "text" (rows are text embeddings, cosine logits)
    scale: float | None = None  # logit scale of text heads
    templates: tuple[str, ...] | None = None  # prompt templates of text heads ("a video of {}.")

    def __post_init__(self) -> None:
        # The guarded fields (see _GUARDED below) hold what the caller passed until they are set here.
        raw = self.__dict__
        if not self.tables:
            if raw["_labels"] is None:
                raise CatsplitError("Head needs labels=[...], one per weight row")
            base = make_table(self.weight, self.bias, label_list(raw["_labels"]))
            tables: tuple[Table, ...] = (base,)
        else:
            tables = tuple(self.tables)
            check_tables(tables)
        object.__setattr__(self, "tables", tables)
        base = tables[0]
        gates = {t.parent for t in tables[1:]}
        object.__setattr__(self, "weight", base.weight)
        object.__setattr__(self, "bias", base.bias)
        object.__setattr__(self, "labels", tuple(lab for t in tables for lab in t.labels if lab not in gates))
        # The same rules load_head applies, so that every head saves and loads back (spec/head-format.md §4);
        # values wrapped in _Checked (another head's own, or checked by the caller) are taken as they are.
        object.__setattr__(self, "metadata", _checked(raw["_metadata"], check_metadata))
        object.__setattr__(self, "undo", _checked(raw["_undo"], lambda u: check_undo(u, base)))
        object.__setattr__(self, "history", _checked(raw["_history"], check_history))
        object.__setattr__(self, "groups", _checked(raw["_groups"], lambda g: None if g is None else {
            name: tuple(ms) for name, ms in check_groups(g, all_labels(tables)).items()
        }))
        if self.kind not in ("linear", "text"):
            raise CatsplitError(f"head kind must be 'linear' or 'text', got {self.kind!r}")
        if self.templates is not None:
            from catsplit.text import check_templates

            object.__setattr__(self, "templates", check_templates(self.templates))
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
        return len(self._labels)

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
        bias = table.bias.to(torch.float32) if table.bias is not None else None
        return table_scores(x, table.weight.to(torch.float32), bias, kind=self.kind, scale=self.scale)

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
        return torch.stack([logp[lab] for lab in self._labels], dim=1).to(torch.float32)  # [N, C_out]

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
                out_index = {lab: i for i, lab in enumerate(self._labels)}
                # base row -> output index, or -1 for gates
                remap = torch.tensor([out_index.get(lab, -1) for lab in base.labels], dtype=torch.long)
                kept = remap[base_top]
                pred = torch.where(kept >= 0, kept, pred)
        return pred.numpy()

    def predict(self, x: Any) -> np.ndarray:
        """Top-1 label for each row of `x` -> array of str [N]."""
        return np.asarray(self._labels, dtype=object)[self.predict_index(x)].astype(str)

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
            _json(self._groups) == _json(other._groups)
            and _json(list(self._history)) == _json(list(other._history))
            and self._metadata == other._metadata
            and (self.kind, self.scale, self.templates) == (other.kind, other.scale, other.templates)
        )

    def latest_record(self) -> dict | None:
        """A copy of the newest edit record (`history[-1]` without copying the whole history), or None."""
        return _copy_json(self._history[-1]) if self._history else None

    def evolve(self, **changes: Any) -> Head:
        """A copy with some parts replaced (tables, groups, history, undo, ...)."""
        # What is kept is passed on as stored (not the copies the attributes hand out) and is not checked
        # again, except undo and groups when the tables change: they must fit the new tables.
        trusted = {"metadata", "history"} | (set() if "tables" in changes else {"undo", "groups"})
        for f in fields(self):
            if f.name not in changes:
                stored = self.__dict__["_" + f.name if f.name in _GUARDED else f.name]
                changes[f.name] = _Checked(stored) if f.name in trusted else stored
        return Head(**changes)

    def __repr__(self) -> str:
        mode = f", {len(self.tables) - 1} hierarchical split(s)" if self.is_hierarchical else ""
        return (
            f"Head({self.num_classes} labels, dim {self.dim}, {str(self.dtype).removeprefix('torch.')}"
            f"{', bias' if self.bias is not None else ''}{mode}, {len(self._history)} edit(s))"
        )


def table_scores(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, *, kind: str, scale: float | None
) -> torch.Tensor:
    """One table's scores, [N, D] x [C, D] -> [N, C]: `x Wᵀ + b`, or for a text head (Text4Vis) the cosine
    between each feature and each row times `scale`, plus `b`. Differentiable (fine-tuning trains on it)."""
    if kind == "text":
        x = torch.nn.functional.normalize(x, dim=-1)
        weight = torch.nn.functional.normalize(weight, dim=-1)
    z = x @ weight.T  # [N, C]
    if kind == "text" and scale is not None:
        z = z * scale
    return z + bias if bias is not None else z


class _Checked(NamedTuple):
    """A value for one of Head's guarded fields that has passed its check and that nothing else holds:
    Head keeps it as it is, without checking and copying it again (used inside catsplit only)."""

    value: Any


def _checked(value: Any, check: Callable[[Any], Any]) -> Any:
    return value.value if isinstance(value, _Checked) else check(value)


def _copy_json(x: Any, depth: int = 0) -> Any:
    """A deep copy of JSON-like data (dicts, lists, tuples of plain values); other objects via copy.deepcopy."""
    t = type(x)
    if t is dict or t is list or t is tuple:
        # A file may hold records nested ~1,000 deep (json parses them); recursing that deep here would
        # raise RecursionError instead of a CatsplitError, now or when `head.history` is read.
        if depth >= MAX_RECORD_DEPTH:
            raise CatsplitError(f"an edit record is nested more than {MAX_RECORD_DEPTH} levels deep; records are flat objects")
        if t is dict:
            return {k: _copy_json(v, depth + 1) for k, v in x.items()}
        if set(map(type, x)) <= _PLAIN:  # one C-level pass: member lists of big groups are copied as a whole
            return t(x)
        return t(_copy_json(v, depth + 1) for v in x)
    if t in _PLAIN:
        return x
    return copy.deepcopy(x)


_PLAIN = {str, int, float, bool, type(None)}
MAX_RECORD_DEPTH = 100

# Attributes whose stored value is private (`_<name>`): reading one hands out a fresh copy, so a
# caller who changes what it got (`head.labels.remove(...)`) never changes the head, whose
# predictions, file and undo records rely on them.
_GUARDED: dict[str, Callable[[Any], Any]] = {
    "labels": list,  # stored as a tuple
    "groups": lambda g: None if g is None else {name: list(ms) for name, ms in g.items()},  # stored: name -> tuple
    "history": lambda h: tuple(map(_copy_json, h)),
    "metadata": dict,
    "undo": dict,  # the tensors themselves are shared, as every tensor of a head is
}


def _guard(name: str, copy_out: Callable[[Any], Any]) -> property:
    private = "_" + name

    def get(self: Head) -> Any:
        return copy_out(self.__dict__[private])

    def set_(self: Head, value: Any) -> None:  # reached only through object.__setattr__ (the dataclass is frozen)
        self.__dict__[private] = value

    return property(get, set_, doc=f"A copy of the head's {name}; changing it does not change the head.")


for _name, _copy_out in _GUARDED.items():
    setattr(Head, _name, _guard(_name, _copy_out))


def check_metadata(metadata: Any, what: str = "metadata") -> dict[str, str]:
    """Foreign metadata: string keys -> string values, as a safetensors header holds them."""
    if not isinstance(metadata, Mapping):
        raise CatsplitError(f"{what} must be a mapping of strings to strings, got {type(metadata).__name__}")
    bad = [(k, v) for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        shown = ", ".join(f"{k!r}: {v!r:.60}" for k, v in bad[:5])
        raise CatsplitError(
            f"{what} keys and values must be strings (a file's metadata holds only strings); bad entries {shown}. "
            "Convert them, e.g. with str() or json.dumps()"
        )
    return dict(metadata)


def check_undo(undo: Any, base: Table) -> dict[str, torch.Tensor]:
    """Undo tensors hold a removed row: named `undo.*`, the head's dtype, finite, `[1, D]` (`*.weight`) or `[1]` (`*.bias`)."""
    if not isinstance(undo, Mapping):
        raise CatsplitError(f"undo must be a mapping name -> tensor, got {type(undo).__name__}")
    dim = base.weight.shape[1]
    for name, t in undo.items():
        if not isinstance(name, str) or not name.startswith("undo."):
            raise CatsplitError(f"undo tensor names must start with 'undo.', got {name!r}")
        if not isinstance(t, torch.Tensor):
            raise CatsplitError(f"undo tensor {name!r} must be a torch tensor, got {type(t).__name__}")
        want = (1, dim) if name.endswith(".weight") else (1,) if name.endswith(".bias") else None
        if t.dtype != base.weight.dtype or (want is not None and tuple(t.shape) != want):
            raise CatsplitError(
                f"undo tensor {name!r} is {str(t.dtype).removeprefix('torch.')} {list(t.shape)}; expected "
                f"{str(base.weight.dtype).removeprefix('torch.')} {list(want) if want else '(any shape)'}"
            )
        check_finite(t.reshape(1, -1), f"undo tensor {name!r}")
    return dict(undo)


def check_history(history: Any, what: str = "history") -> tuple[dict, ...]:
    """Edit records (spec/head-format.md §4.2): a list of objects; a split names its coarse label (a string)
    and its subs (a list); all of it writable as JSON. Returns a private deep copy."""
    if isinstance(history, (str, bytes, Mapping)) or not isinstance(history, Sequence) or not all(
        isinstance(r, dict) for r in history
    ):
        raise CatsplitError(f"{what} must be a JSON list of edit records (objects), got {_short_repr(history)}")
    for i, rec in enumerate(history):
        if rec.get("op") == "split" and (not isinstance(rec.get("coarse"), str) or not isinstance(rec.get("subs"), list)):
            raise CatsplitError(f"edit record #{i} lacks its coarse label or subs")
    try:
        json.dumps(list(history), ensure_ascii=False)  # exactly what save writes
    except (TypeError, ValueError, RecursionError):
        for i, rec in enumerate(history):  # name the record
            try:
                json.dumps(rec, ensure_ascii=False)
            except (TypeError, ValueError, RecursionError) as exc:
                raise CatsplitError(
                    f"{what}: edit record #{i} cannot be written as JSON ({type(exc).__name__}: {exc}); "
                    "records hold only str, int, float, bool, None, lists and dicts with string keys"
                ) from None
        raise CatsplitError(f"{what} cannot be written as JSON; records hold only plain values, lists and dicts") from None
    return tuple(map(_copy_json, history))


def _short_repr(x: Any) -> str:
    r = repr(x)
    return r if len(r) <= 80 else r[:77] + "..."


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
    if isinstance(labels, (str, bytes)):
        raise CatsplitError(f"labels must be a list with one label (or index) per clip, got the string {labels!r:.80}")
    outputs = head._labels  # not head.labels: that is a fresh copy per access
    known = set(outputs) if known_only else None
    out = []
    for lab in labels:
        if isinstance(lab, (int, np.integer)) and not isinstance(lab, bool):
            if not 0 <= int(lab) < head.num_classes:
                raise CatsplitError(f"label index {lab} is outside the head's {head.num_classes} labels")
            out.append(outputs[int(lab)])
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
    check_group_shapes(groups)  # types first: a member that is a list cannot be looked up in `known`
    out: dict[str, list[str]] = {}
    unknown = []
    for name, members in groups.items():
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
