"""Fuzzing load_head: mutated head files either load as a valid Head or raise CatsplitError.

CI runs 1,000 cases. A longer run (spec/head-format.md §5.1):

    CATSPLIT_FUZZ_EXAMPLES=100000 .venv/bin/python -m pytest -q tests/robustness/test_fuzz_headfile.py
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import catsplit
from catsplit import CatsplitError, Head, load_head
from conftest import HashEncoder, compositional_head

EXAMPLES = int(os.environ.get("CATSPLIT_FUZZ_EXAMPLES", "1000"))


def _seed_files() -> list[bytes]:
    """Small valid head files covering every part of the format."""
    enc = HashEncoder(dim=8)
    out = []
    head, subs, _, _ = compositional_head(dim=6)
    edited = catsplit.split(head, enc, "Pushing something", subs[:2], method="retrieval", mode="hierarchical")
    edited = catsplit.split(edited, enc, "Lifting something up", ["Lifting something up fast", "Lifting something up slowly"],
                            method="coarse")
    heads = [
        edited,
        Head(weight=np.arange(6, dtype=np.float32).reshape(3, 2), labels=["a", "b", "c"], metadata={"origin": "x"}),
        Head(weight=torch.ones(2, 3, dtype=torch.float16), bias=torch.zeros(2, dtype=torch.float16), labels=["Ünïcode", "日本語 🙂"]),
        Head(weight=torch.ones(2, 3, dtype=torch.bfloat16), labels=["x", "y"],
             groups={"g": ["x", "y"]}, kind="text", scale=14.0, templates=("a {}.",)),
    ]
    with tempfile.TemporaryDirectory() as d:
        for i, h in enumerate(heads):
            p = Path(d) / f"{i}.safetensors"
            h.save(p)
            out.append(p.read_bytes())
    return out


SEEDS = _seed_files()


def _header_span(blob: bytes) -> int:
    return 8 + int.from_bytes(blob[:8], "little")


@st.composite
def mutated(draw) -> bytes:
    blob = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "flip_header", "flip_data", "flip_data", "truncate", "insert", "delete",
                                     "length", "header_edit", "header_edit", "set_byte"]))
        n = len(blob)
        if n == 0:
            blob += draw(st.binary(min_size=1, max_size=16))
            continue
        hspan = max(9, min(_header_span(bytes(blob)), n))
        if kind == "flip":
            i = draw(st.integers(0, n - 1))
            blob[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "flip_data":  # tensor bytes: the head often still loads (or holds NaN / inf now)
            i = draw(st.integers(min(hspan, n - 1), n - 1))
            blob[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "flip_header":  # most of the format's logic is in the header
            i = draw(st.integers(0, min(hspan, n) - 1))
            blob[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set_byte":
            i = draw(st.integers(0, min(hspan, n) - 1))
            blob[i] = draw(st.sampled_from(b'{}[]",:0123456789-e. \\u\x00\xff'))
        elif kind == "truncate":
            del blob[draw(st.integers(0, n - 1)):]
        elif kind == "insert":
            i = draw(st.integers(0, n))
            blob[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            i = draw(st.integers(0, n - 1))
            del blob[i : i + draw(st.integers(1, 16))]
        elif kind == "length":
            value = draw(st.one_of(st.integers(0, 2 * n), st.integers(0, 2**64 - 1)))
            blob[:8] = value.to_bytes(8, "little")
        else:
            blob = bytearray(_edit_header(draw, bytes(blob)))
    return bytes(blob)


def _edit_header(draw, blob: bytes) -> bytes:
    """Parse the header and change one field to a plausible but possibly wrong value."""
    try:
        n = int.from_bytes(blob[:8], "little")
        header = json.loads(blob[8 : 8 + n])
        assert isinstance(header, dict)
    except Exception:
        return blob
    data = blob[8 + n :]
    names = sorted(k for k in header if k != "__metadata__")
    meta = header.get("__metadata__") if isinstance(header.get("__metadata__"), dict) else None
    choice = draw(st.sampled_from(["dtype", "shape", "offsets", "drop_tensor", "meta_value", "meta_drop", "meta_json"]))
    weird = st.one_of(st.integers(-3, 10**13), st.text(max_size=4), st.none(), st.booleans(), st.lists(st.integers(-2, 50), max_size=3))
    if names and choice in ("dtype", "shape", "offsets", "drop_tensor"):
        name = draw(st.sampled_from(names))
        entry = header[name]
        if not isinstance(entry, dict):
            return blob
        if choice == "dtype":
            entry["dtype"] = draw(st.one_of(st.sampled_from(["F32", "F16", "BF16", "F64", "I32", "I64", "U8", "BOOL", "F8_E4M3", "F4", "C64", "X"]), weird))
        elif choice == "shape":
            entry["shape"] = draw(st.one_of(st.lists(st.integers(0, 10**7), max_size=3), weird))
        elif choice == "offsets":
            entry["data_offsets"] = draw(st.one_of(st.lists(st.integers(0, len(data) + 64), min_size=2, max_size=2), weird))
        else:
            del header[name]
    elif meta is not None and meta:
        key = draw(st.sampled_from(sorted(meta)))
        if choice == "meta_drop":
            del meta[key]
        elif choice == "meta_json":  # valid JSON of the wrong shape
            meta[key] = json.dumps(draw(st.recursive(
                st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=6)),
                lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=6), kids, max_size=4)),
                max_leaves=10,
            )))
        else:
            meta[key] = draw(st.one_of(st.text(max_size=12), st.just(meta[key][: len(meta[key]) // 2])))
    raw = json.dumps(header).encode("utf-8")
    return len(raw).to_bytes(8, "little") + raw + data


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(blob=mutated())
def test_load_head_returns_a_head_or_raises_catsplit_error(fuzz_dir, blob):
    p = fuzz_dir / "case.safetensors"
    p.write_bytes(blob)
    try:
        head = load_head(p)
    except CatsplitError as exc:
        assert str(p) in str(exc)
        event("refused")  # --hypothesis-show-statistics shows the share of each outcome
        return
    event("loaded")
    # It loaded: then it is a valid head that survives a save and a reload unchanged.
    assert isinstance(head, Head)
    out = fuzz_dir / "resaved.safetensors"
    head.save(out, overwrite=True)
    assert load_head(out).equals(head)


def test_the_seeds_load():
    with tempfile.TemporaryDirectory() as d:
        for i, blob in enumerate(SEEDS):
            p = Path(d) / f"{i}.safetensors"
            p.write_bytes(blob)
            assert isinstance(load_head(p), Head)
