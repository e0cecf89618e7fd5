"""Input checks, one function per kind of value, shared by every entry point (Head, load_head, split,
finetune, the CLI, the export).

Each raises `CatsplitError` naming the bad value and the fix. Values that outlive a check are
returned frozen (tuples, `FrozenDict`, `Record`), so what was checked cannot change afterwards.
"""

from __future__ import annotations

import json
import math
import re
import string
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from catsplit.errors import CatsplitError

if TYPE_CHECKING:
    import torch  # imported where a tensor is checked: the command line builds its parser without torch


# --- text and labels ---------------------------------------------------------------------------


# Characters that show nothing: white space, control characters, and format or filler characters
# such as ZERO WIDTH SPACE, the bidi marks, WORD JOINER, BOM, SOFT HYPHEN, variation selectors and
# the Hangul and Braille blanks. A label made only of these looks empty.
_VISIBLE = re.compile(
    "[^\\s\x00-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
    "\u202a-\u202e\u2060-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e007f]"
)


def is_blank(text: str) -> bool:
    """True when `text` shows nothing: empty, or only white space, control and invisible format characters."""
    return _VISIBLE.search(text) is None


def check_text(text: object, what: str) -> str:
    if not isinstance(text, str) or is_blank(text):
        raise CatsplitError(f"{what} must be a non-empty string (not only white space or invisible characters), got {text!r}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise CatsplitError(f"{what} must be valid Unicode text; {text!r} holds an unpaired surrogate") from None
    return text


def check_label_texts(labels: object, what: str = "labels") -> None:
    """A list of non-empty label strings (a string is not a list of labels); `check_labels` adds uniqueness."""
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence):
        raise CatsplitError(f"{what} must be a list of strings, got {type(labels).__name__} {labels!r:.80}")
    # C-level passes first: label sets of 100,000 are common; the slow search only on failure.
    if set(map(type, labels)) <= {str} and all(map(_VISIBLE.search, labels)):
        return
    bad = [(i, lab) for i, lab in enumerate(labels) if not isinstance(lab, str) or is_blank(lab)]
    if bad:
        shown = ", ".join(f"#{i}: {lab!r}" for i, lab in bad[:5])
        raise CatsplitError(
            f"{what} must be non-empty strings (not only white space or invisible characters); bad entries {shown}. "
            "Give every class a name."
        )


def label_key(label: str) -> str:
    """Labels that differ only by case or white space collide under this key."""
    return " ".join(label.split()).casefold()


def label_keys(labels: Sequence[str]) -> list[str]:
    """`label_key` of every label (one C-level pass)."""
    return list(map(str.casefold, map(" ".join, map(str.split, labels))))


# Control characters (C0, DEL, C1 with NEL) and the line and paragraph separators: a label holding one
# breaks every one-label-per-line file (Triton's labels.txt, --subs-file) and shifts the names of later columns.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def check_label_characters(labels: Sequence[str], what: str = "labels") -> None:
    """No label holds a line break, tab or other control character (one C-level search on success)."""
    if not _CONTROL.search("".join(labels)):
        return
    bad = [(i, lab) for i, lab in enumerate(labels) if _CONTROL.search(lab)]
    shown = ", ".join(f"#{i}: {lab!r}" for i, lab in bad[:5])
    raise CatsplitError(
        f"{what} must not hold line breaks, tabs or other control characters; entries {shown}. "
        "Write each label on one line, with spaces"
    )


def check_labels(labels: Sequence[str], what: str = "labels") -> tuple[str, ...]:
    """Validate a label list: strings, non-empty after stripping, no control characters, unique (also up to
    case/space)."""
    check_label_texts(labels, what)
    try:
        "".join(labels).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800"): cannot be written to a file
        bad = [(i, lab) for i, lab in enumerate(labels) if not _is_text(lab)]
        shown = ", ".join(f"#{i}: {lab!r}" for i, lab in bad[:5])
        raise CatsplitError(f"{what} must be valid Unicode text; entries {shown} hold an unpaired surrogate") from None
    keys = label_keys(labels)
    if len(set(keys)) == len(keys):
        check_label_characters(labels, what)  # after the collisions: "a\tb" and "a b" are reported as a pair
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
    check_label_characters(labels, what)
    return tuple(labels)


def _is_text(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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



# --- groups and templates ------------------------------------------------------------------


def check_group_shapes(groups: object) -> None:
    """Groups are a mapping: non-empty string name -> non-empty list of member label strings.

    Only the types: whether the members are labels of a head is the caller's check (`check_groups`).
    """
    if not isinstance(groups, Mapping):
        raise CatsplitError(f"groups must be a mapping group name -> list of member labels, got {type(groups).__name__}")
    for name, members in groups.items():
        if not isinstance(name, str) or is_blank(name):
            raise CatsplitError(f"group names must be non-empty strings, got {name!r}")
        if isinstance(members, str) or not isinstance(members, Sequence) or not members:
            raise CatsplitError(f"group {name!r} must list its member labels, got {members!r}")
        if not set(map(type, members)) <= {str}:
            bad = [m for m in members if not isinstance(m, str)][:5]
            if bad:
                raise CatsplitError(
                    f"group {name!r} must list its members as label strings; got {bad}. "
                    'Write each group as "group text": ["label", "label", ...]'
                )


def check_groups(groups: Mapping[str, Sequence[str]], known: set[str] | frozenset[str]) -> Groups:
    """Validate groups: name -> member labels that exist in the head (`known`). Returns them frozen."""
    check_group_shapes(groups)  # types first: a member that is a list cannot be looked up in `known`
    unknown = [m for members in groups.values() for m in members if m not in known]
    if unknown:
        raise CatsplitError(
            f"groups name labels that are not in the head: {unknown[:5]}; fix the spelling or drop them"
        )
    return Groups({name: tuple(members) for name, members in groups.items()})


MODES = ("flat", "hierarchical")  # how a split puts its sub rows in the head (spec/edit-semantics.md)


def check_mode(mode: object) -> str:
    """A split mode: 'flat' or 'hierarchical'."""
    if mode not in MODES:
        raise CatsplitError(f"unknown mode {mode!r}; choose 'flat' or 'hierarchical'")
    return mode  # type: ignore[return-value]


ORDERS = ("append", "keep")  # where a split puts the subs in the output label space (spec/edit-semantics.md §6)


def check_order(order: object) -> str:
    """A split order: 'append' (the coarse label's column removed, the subs appended) or 'keep' (the first
    sub takes the coarse label's column, the others are appended: no other label changes index)."""
    if order not in ORDERS:
        raise CatsplitError(f"unknown order {order!r}; choose 'append' (the default) or 'keep' (no other class changes index)")
    return order  # type: ignore[return-value]


def without_label(groups: Groups, label: str) -> Groups:
    """`groups` with `label` dropped from every group (and groups left empty dropped): still Groups, since
    every remaining member is still a label of the head the groups were checked against."""
    kept = {g: tuple(m for m in ms if m != label) for g, ms in groups.items()}
    return Groups({g: ms for g, ms in kept.items() if ms})


def check_templates(templates: Any) -> tuple[str, ...]:
    """Prompt templates: a list of strings, each with exactly one slot `{}` (or `{label}`) for the label.

    Literal braces are written `{{` and `}}`, as in `str.format`.
    """
    if isinstance(templates, (str, bytes)) or not isinstance(templates, Sequence):
        hint = " (wrap a single template in a list)" if isinstance(templates, str) else ""
        raise CatsplitError(
            f"templates must be a list of strings such as ['a video of a person {{}}.'], got "
            f"{type(templates).__name__} {templates!r:.80}{hint}"
        )
    for t in templates:
        if not isinstance(t, str):
            raise CatsplitError(f"templates must be strings with a '{{}}' slot for the label, got {t!r}")
        try:
            parsed = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(t.replace("{label}", "{}")) if f is not None]
        except ValueError as exc:  # a lone '{' or '}'
            raise CatsplitError(
                f"template {t!r} is not a valid format string ({exc}); write literal braces as '{{{{' and '}}}}'"
            ) from None
        slots = [f for f, _, _ in parsed]
        if len(slots) != 1 or slots[0] not in ("", "0"):
            raise CatsplitError(
                f"template {t!r} must have exactly one '{{}}' (or '{{label}}') slot for the label, found "
                f"{len(slots)}: {['{' + f + '}' for f in slots]}; write literal braces as '{{{{' and '}}}}'"
            )
        _, spec, conv = parsed[0]
        if spec or conv:  # "{:^20000000}" would allocate gigabytes, "{:%Y}" and "{:^{}}" fail only at split time
            raise CatsplitError(
                f"template {t!r}: the label's slot must be a plain '{{}}', without a format spec or conversion "
                f"(found {'!' + conv if conv else ''}{':' + spec if spec else ''}); put any text around it instead"
            )
    return tuple(templates)



# --- numbers: seeds and training settings -----------------------------------------------------


def check_number_fields(
    config: Any, *, counts: Sequence[str] = (), non_negative: Sequence[str] = (), positive: Sequence[str] = (),
    unit_interval: Sequence[str] = (),
) -> None:
    """The rules every settings dataclass shares (the methods' configs, FinetuneConfig), so they cannot drift
    apart: `counts` are positive integers, `non_negative` finite numbers >= 0, `positive` finite numbers > 0,
    `unit_interval` numbers in [0, 1). Bools are refused everywhere (True would pass as 1); NumPy scalars are accepted.

    Raises:
        CatsplitError naming `<class>.<field>`.
    """
    for name in counts:
        v = getattr(config, name)
        if isinstance(v, bool) or not isinstance(v, Integral) or v < 1:
            raise bad_field(config, name, "a positive integer")
    for name in non_negative:
        if not (is_finite_number(getattr(config, name)) and getattr(config, name) >= 0):
            raise bad_field(config, name, "a finite number >= 0")
    for name in positive:
        if not (is_finite_number(getattr(config, name)) and getattr(config, name) > 0):
            raise bad_field(config, name, "a positive finite number")
    for name in unit_interval:
        if not (is_finite_number(getattr(config, name)) and 0 <= getattr(config, name) < 1):
            raise bad_field(config, name, "a number in [0, 1)")


def check_flag(config: Any, name: str) -> None:
    """`config.<name>` is a bool (numpy's too): CatsplitError naming `<class>.<field>` otherwise (1 or "yes" are refused)."""
    v = getattr(config, name)
    if not isinstance(v, (bool, np.bool_)):
        raise bad_field(config, name, "True or False")


def bad_field(config: object, name: str, need: str) -> CatsplitError:
    return CatsplitError(f"{type(config).__name__}.{name} must be {need}, got {getattr(config, name)!r}")


def is_finite_number(v: object) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v)


SEED_LIMIT = 2**63  # torch.Generator.manual_seed takes a signed 64-bit integer


def check_seed(seed: object, what: str = "seed") -> int:
    """A seed: an integer (Python or NumPy, not bool) with 0 <= seed < 2**63, which numpy and torch both take."""
    if isinstance(seed, bool) or not isinstance(seed, Integral) or not 0 <= int(seed) < SEED_LIMIT:
        raise CatsplitError(f"{what} must be an integer with 0 <= {what} < 2**63, got {seed!r}")
    return int(seed)



# --- tensors -----------------------------------------------------------------------------------


def as_tensor(x: Any, name: str) -> torch.Tensor:
    """numpy array / torch tensor / nested list -> CPU tensor, keeping float dtypes as they are."""
    import torch

    if isinstance(x, torch.Tensor):
        if x.layout != torch.strided or x.is_quantized or x.device.type == "meta":
            kind = "a meta tensor (no data)" if x.device.type == "meta" else f"{str(x.layout).removeprefix('torch.')} / quantized"
            raise CatsplitError(f"{name} is {kind}; pass a dense tensor (tensor.to_dense(), .dequantize())")
        t = x.detach().cpu()
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # ragged lists and the like
            raise CatsplitError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}: {exc}") from None
        if arr.dtype.kind not in "fiu":
            raise CatsplitError(f"{name} must hold numbers, got dtype {arr.dtype}; pass a float array")
        if arr.dtype.itemsize > 8:  # float128: torch has no such type, and narrowing it is the caller's choice
            raise CatsplitError(f"{name} has dtype {arr.dtype}; use float64 or float32")
        if arr.dtype.byteorder in "<>":  # big-endian (numpy writes the machine's order as "="): same values, converted
            arr = arr.astype(arr.dtype.newbyteorder("="))
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if not t.is_floating_point():
        t = t.to(torch.float32)
    if t.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        raise CatsplitError(f"{name} has dtype {t.dtype}; use float32, float16, bfloat16 or float64")
    return t.contiguous()


FINITE_CHUNK = 1 << 20  # elements per block of check_finite: its temporaries stay a few MB, whatever the head's size


def check_finite(t: torch.Tensor, name: str, labels: Sequence[str] | None = None) -> None:
    """Raise naming the first rows that hold NaN or inf.

    Scans blocks of rows, so a 100,000 x 1,024 head needs no full-size temporary (torch.isfinite
    on the whole tensor would allocate several).
    """
    import torch

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



# --- frozen values: what a Head keeps ----------------------------------------------------------
class FrozenDict(dict):
    """A dict that cannot be changed: what a Head hands out is what it holds, and nothing can alter it.

    A dict subclass so that `json.dumps`, `dict(x)` and comparisons with plain dicts work as for a dict.
    Copy it (`dict(x)`) to get a mutable one.
    """

    __slots__ = ()

    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{type(self).__name__} is read-only; copy it with dict(...) to change it")

    __setitem__ = __delitem__ = __ior__ = _read_only  # type: ignore[assignment]
    clear = pop = popitem = setdefault = update = _read_only  # type: ignore[assignment]

    def __copy__(self) -> FrozenDict:
        return self

    def __deepcopy__(self, memo: dict) -> FrozenDict:
        return self

    def __reduce__(self) -> Any:
        return (type(self), (dict(self),))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict.__repr__(self)})"


class Record(FrozenDict):
    """One edit record of a head's history: JSON-like data, frozen (dicts -> Record, lists -> tuples).

    Only `check_history` makes them, so a tuple of Records is a history that has been checked.
    """

    __slots__ = ()


class Groups(FrozenDict):
    """Pseudo-coarse groups: name -> tuple of member labels. Only `check_groups` makes them, after checking
    that every member is a label of the head; a Head keeps a Groups value it is given as it is."""

    __slots__ = ()


def check_metadata(metadata: Any, what: str = "metadata") -> FrozenDict:
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
    return metadata if type(metadata) is FrozenDict else FrozenDict(metadata)


def check_undo(undo: Any, dim: int, dtype: torch.dtype) -> FrozenDict:
    """Undo tensors hold a removed row: named `undo.*`, the head's dtype, finite, `[1, D]` (`*.weight`) or `[1]` (`*.bias`)."""
    import torch

    if not isinstance(undo, Mapping):
        raise CatsplitError(f"undo must be a mapping name -> tensor, got {type(undo).__name__}")
    for name, t in undo.items():
        if not isinstance(name, str) or not name.startswith("undo."):
            raise CatsplitError(f"undo tensor names must start with 'undo.', got {name!r}")
        if not isinstance(t, torch.Tensor):
            raise CatsplitError(f"undo tensor {name!r} must be a torch tensor, got {type(t).__name__}")
        want = (1, dim) if name.endswith(".weight") else (1,) if name.endswith(".bias") else None
        if t.dtype != dtype or (want is not None and tuple(t.shape) != want):
            raise CatsplitError(
                f"undo tensor {name!r} is {str(t.dtype).removeprefix('torch.')} {list(t.shape)}; expected "
                f"{str(dtype).removeprefix('torch.')} {list(want) if want else '(any shape)'}"
            )
        check_finite(t.reshape(1, -1), f"undo tensor {name!r}")
    return FrozenDict(undo)


def check_history(history: Any, what: str = "history") -> tuple[Record, ...]:
    """Edit records (spec/head-format.md §4.2): a list of objects; a split names its coarse label (a string)
    and its subs (a list); all of it writable as JSON. Returns the records frozen.

    A tuple of `Record`s has been through this check already and is returned as it is, so passing a
    history from head to head costs nothing, however long it is.
    """
    if type(history) is tuple and all(type(r) is Record for r in history):
        return history
    if isinstance(history, (str, bytes, Mapping)) or not isinstance(history, Sequence) or not all(
        isinstance(r, dict) for r in history
    ):
        raise CatsplitError(f"{what} must be a JSON list of edit records (objects), got {_short_repr(history)}")
    for i, rec in enumerate(history):
        if rec.get("op") == "split":
            check_split_record(rec, i)
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
    return tuple(r if type(r) is Record else _freeze(r, Record) for r in history)


def _index(v: Any, low: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


# The fields of a split record that unsplit, finetune and inspect read, with the test each must pass
# (spec/head-format.md §4.2); the other fields are kept as they are.
SPLIT_FIELDS: dict[str, tuple[str, Any]] = {
    "method": ("a string", lambda v: isinstance(v, str)),
    "mode": (f"one of {MODES}", lambda v: isinstance(v, str) and v in MODES),
    "table": ("an integer >= 0", lambda v: _index(v, 0)),
    "row": ("an integer >= 0", lambda v: _index(v, 0)),
}
MODE_FIELDS: dict[str, tuple[str, tuple[str, Any]]] = {
    "flat": ("undo", ("the name of its undo tensors (a string)", lambda v: isinstance(v, str))),
    "hierarchical": ("sub_table", ("an integer >= 1", lambda v: _index(v, 1))),
}


def check_split_record(rec: Mapping[str, Any], i: int) -> None:
    """A split record has every field the code that undoes, fine-tunes or shows it reads, each of the right type."""
    subs = rec.get("subs")
    if not isinstance(rec.get("coarse"), str) or not isinstance(subs, (list, tuple)):
        raise CatsplitError(f"edit record #{i} lacks its coarse label or subs")
    if not subs or not all(isinstance(x, str) for x in subs):
        raise CatsplitError(f"edit record #{i} (split of {rec['coarse']!r}): subs must be a non-empty list of labels")
    fields = dict(SPLIT_FIELDS)
    if isinstance(rec.get("mode"), str) and rec["mode"] in MODE_FIELDS:
        key, test = MODE_FIELDS[rec["mode"]]
        fields[key] = test
    for key, (need, ok) in fields.items():
        if key not in rec or not ok(rec[key]):
            got = f"{_short_repr(rec[key])}" if key in rec else "nothing"
            raise CatsplitError(
                f"edit record #{i} (split of {rec['coarse']!r}): {key!r} must be {need}, got {got}; the history is "
                "damaged (records are written by catsplit.split)"
            )


def _short_repr(x: Any) -> str:
    r = repr(x)
    return r if len(r) <= 80 else r[:77] + "..."


def _freeze(x: Any, mapping: type = FrozenDict, depth: int = 0) -> Any:
    """A frozen deep copy of JSON-like data: dicts -> `mapping` (nested ones FrozenDict), lists -> tuples."""
    t = type(x)
    if t in _PLAIN or isinstance(x, (str, int, float)):  # subclasses too (an IntEnum): json writes them as values
        return x
    # A file may hold records nested ~1,000 deep (json parses them); recursing that deep would raise
    # RecursionError instead of a CatsplitError.
    if depth >= MAX_RECORD_DEPTH:
        raise CatsplitError(f"an edit record is nested more than {MAX_RECORD_DEPTH} levels deep; records are flat objects")
    if isinstance(x, Mapping):
        return mapping({k: _freeze(v, FrozenDict, depth + 1) for k, v in x.items()})
    if t is list or t is tuple:
        if set(map(type, x)) <= _PLAIN:  # one C-level pass: member lists of big groups are copied as a whole
            return tuple(x)
        return tuple(_freeze(v, FrozenDict, depth + 1) for v in x)
    raise CatsplitError(f"an edit record holds a {t.__name__}; records hold only plain values, lists and dicts")


_PLAIN = {str, int, float, bool, type(None)}
MAX_RECORD_DEPTH = 100
