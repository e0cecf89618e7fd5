"""Hypothesis strategies at the edges of float32, for the locality property tests (tests/robustness and tests/export).

Small heads (2-5 labels, dim 1-4) whose weights, biases and features reach float32's largest finite value, with
rows that tie exactly or differ by a few ulps (np.nextafter), and batches of inputs that make logits tie.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import catsplit
from catsplit.head import make_table

# examples per property: 1,000 in CI; a longer run sets CATSPLIT_EDGE_EXAMPLES (spec/edit-semantics.md §7)
EXAMPLES = int(os.environ.get("CATSPLIT_EDGE_EXAMPLES", "1000"))
EDGE = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

F32 = np.finfo(np.float32)
MAX = float(F32.max)
BELOW_MAX = float(np.nextafter(F32.max, np.float32(0)))
SQRT_MAX = float(np.sqrt(F32.max, dtype=np.float32))  # x * w overflows above it
SPECIAL = [
    0.0, 1.0, -1.0, 0.5, 2.0, MAX, -MAX, BELOW_MAX, -BELOW_MAX, SQRT_MAX, -SQRT_MAX, 1e30, -1e30, 1e38, -1e38,
    float(F32.tiny), -float(F32.tiny), float(F32.smallest_subnormal), 3.0e38, -3.0e38,
]
values = st.one_of(
    st.sampled_from(SPECIAL),
    st.floats(-4, 4, width=32),
    st.floats(width=32, allow_nan=False, allow_infinity=False),
)


def ulps(v: np.float32, steps: int) -> np.float32:
    """`v` moved `steps` ulps (up for > 0), never past float32's largest finite value."""
    for _ in range(abs(steps)):
        target = np.float32(MAX if steps > 0 else -MAX)
        if v == target:
            break
        v = np.nextafter(v, target)
    return np.float32(v)


@st.composite
def tied_rows(draw, n: int, dim: int) -> np.ndarray:
    """[n, dim] float32: each row fresh, a copy of an earlier row, or an earlier row a few ulps away in one entry."""
    rows: list[np.ndarray] = []
    for _ in range(n):
        kind = draw(st.sampled_from(["fresh", "copy", "ulps"])) if rows else "fresh"
        if kind == "fresh":
            row = np.array([draw(values) for _ in range(dim)], np.float32)
        else:
            row = rows[draw(st.integers(0, len(rows) - 1))].copy()
            if kind == "ulps":
                j = draw(st.integers(0, dim - 1))
                row[j] = ulps(row[j], draw(st.sampled_from([-2, -1, 1, 2])))
        rows.append(row)
    return np.stack(rows)


@st.composite
def features(draw, w: np.ndarray, n_max: int = 16) -> np.ndarray:
    """A batch [N, D] of finite float32 inputs: edge values, zeros and one-hot rows (logits = a column of W plus b,
    which ties where the rows tie), scaled copies of rows of W (the largest logits at the edge)."""
    dim = w.shape[1]
    batch = list(draw(tied_rows(draw(st.integers(1, n_max)), dim)))
    batch.append(np.zeros(dim, np.float32))
    for j in range(dim):
        one_hot = np.zeros(dim, np.float32)
        one_hot[j] = draw(st.sampled_from([1.0, MAX, -MAX, SQRT_MAX]))
        batch.append(one_hot)
    for r in draw(st.lists(st.integers(0, len(w) - 1), max_size=3)):
        scale = np.float32(draw(st.sampled_from([1.0, 1e30, SQRT_MAX, MAX])))
        with np.errstate(over="ignore"):
            row = np.clip(w[r] * scale, -MAX, MAX)  # stays finite
        batch.append(row.astype(np.float32))
    return np.stack(batch).astype(np.float32)


@dataclass
class Edit:
    """An original head, its hierarchical split of `coarse`, and inputs for both."""

    original: catsplit.Head
    edited: catsplit.Head
    coarse: str
    x: np.ndarray  # [N, D] float32


def _head(draw, n: int, dim: int, kind: str) -> catsplit.Head:
    w = draw(tied_rows(n, dim))
    bias = draw(st.one_of(st.none(), tied_rows(n, 1).map(lambda b: b[:, 0])))
    labels = [f"a{i}" for i in range(n)]
    if kind == "text":
        return catsplit.Head(weight=w, bias=bias, labels=labels, kind="text", scale=draw(st.sampled_from([1.0, 20.0, 100.0])))
    return catsplit.Head(weight=w, bias=bias, labels=labels)


def _hierarchical(draw, head: catsplit.Head, coarse: str, subs: list[str]) -> catsplit.Head:
    """`coarse` split hierarchically; the sub rows (and biases) are drawn at the edges, ties included."""
    edited = catsplit.split(head, None, coarse, subs, method="coarse", mode="hierarchical")
    if draw(st.booleans()):  # the sub rows of a coarse copy all tie; draw others
        rows = draw(tied_rows(len(subs), head.dim))
        last = edited.tables[-1]
        bias = None if last.bias is None else draw(tied_rows(len(subs), 1))[:, 0]
        table = make_table(rows, bias, last.labels, last.parent)
        edited = edited.evolve(tables=edited.tables[:-1] + (table,))
    return edited


@st.composite
def hierarchical_edits(draw, kinds: tuple[str, ...] = ("linear", "text"), chain: bool = True) -> Edit:
    """A head at the edges and its hierarchical split. With `chain`, the original may itself be a hierarchical edit
    (its base top-1 is then sometimes a gate, and the prediction is the argmax of its log-probabilities), and the
    class split may be one of its subs."""
    n = draw(st.integers(2, 5))
    dim = draw(st.integers(1, 4))
    head = _head(draw, n, dim, draw(st.sampled_from(kinds)))
    if chain and draw(st.booleans()):
        head = _hierarchical(draw, head, draw(st.sampled_from(head.labels)), ["s0", "s1"])
    coarse = draw(st.sampled_from(head.labels))
    edited = _hierarchical(draw, head, coarse, [f"t{i}" for i in range(draw(st.integers(2, 3)))])
    return Edit(head, edited, coarse, draw(features(np.asarray(head.weight, np.float32))))


def scratch_folder() -> tempfile.TemporaryDirectory:
    """A temporary folder for the models of one example: in memory where the system has /dev/shm (the atomic
    writes' fsync costs nothing there, and 1,000 examples write several models each), else the default."""
    shm = "/dev/shm"
    return tempfile.TemporaryDirectory(dir=shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None)
