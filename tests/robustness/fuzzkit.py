"""The fuzz tests' harness: settings, running the CLI in-process under a hang guard, the outcome check, and
mutations of bytes and JSON that every kind's cases use.

The fuzz tests, one module each:
    fuzzseeds.py     valid seed files of every input kind, built once per session
    fuzzcases.py     the cases of each kind: mutations of its seeds (bytes, structure)
    fuzzcommands.py  the commands that read each kind (`KINDS`)
    test_fuzz_inputs.py  1,000 cases per kind through those commands; test_fuzz_cli.py  every subcommand on
    every kind, and the entry point in a subprocess; test_input_kinds.py  one case per crash category found.

CI runs `EXAMPLES` (1,000) cases per kind, derandomized (the same cases on every run). A longer run:

    CATSPLIT_FUZZ_EXAMPLES=30000 .venv/bin/python -m pytest -q tests/robustness/test_fuzz_inputs.py -p no:cacheprovider
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("CATSPLIT_FUZZ_EXAMPLES", "1000"))


# A hang guard, not a timing assertion: every case takes milliseconds; only a hang comes near this.
CASE_SECONDS = int(os.environ.get("CATSPLIT_FUZZ_CASE_SECONDS", "120"))


def fuzz_settings(examples: int = EXAMPLES) -> settings:
    """Hypothesis settings of the fuzz tests: `examples` cases, the same ones on every run, no example database."""
    return settings(
        max_examples=examples, deadline=None, derandomize=True, database=None, print_blob=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                               HealthCheck.function_scoped_fixture, HealthCheck.large_base_example],
    )


class CaseTimeout(BaseException):
    """A case ran past CASE_SECONDS: a hang (BaseException, so that no `except Exception` in the code swallows it)."""


@contextlib.contextmanager
def time_limit(seconds: int = CASE_SECONDS):
    """Raise CaseTimeout in the main thread after `seconds` (SIGALRM); a no-op where there is no SIGALRM."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def fire(signum, frame):
        raise CaseTimeout(f"the case ran for more than {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@dataclass
class Outcome:
    code: int | None  # exit status; None when an exception escaped `main`
    out: str
    err: str
    escaped: str | None = None  # the traceback of an exception that escaped `main`


_PARSER: list = []


def _cached_parser():
    """The CLI's parser, built once: building it costs ~10 ms, as much as many a case (argparse parsers are reusable)."""
    if not _PARSER:
        from catsplit.cli import build_parser  # the CLI's own (run_cli replaces it by this function only while it runs)

        _PARSER.append(build_parser())
    return _PARSER[0]


def run_cli(argv: Sequence[str]) -> Outcome:
    """`catsplit.cli.main(argv)` in this process, stdout and stderr captured, under the hang guard.

    `main` is the entry point's own code; only its parser is built once for all cases (`_cached_parser`).
    """
    import warnings
    from unittest import mock

    import catsplit.cli
    from catsplit.cli import main

    import torch

    _cached_parser()  # built before catsplit.cli.build_parser is replaced
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: with several threads on shared cores each op waits for the others
    out, err = io.StringIO(), io.StringIO()
    escaped = None
    code: int | None = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings(), \
            mock.patch.object(catsplit.cli, "build_parser", _cached_parser):
        warnings.simplefilter("ignore")  # warnings are not the subject; the CLI prints each as one line anyway
        try:
            with time_limit():
                code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 2
        except CaseTimeout:
            raise
        except BaseException:  # noqa: BLE001 - what the fuzz tests look for
            escaped = traceback.format_exc()
        finally:
            torch.set_num_threads(threads)
    return Outcome(code, out.getvalue(), err.getvalue(), escaped)


def check_outcome(o: Outcome, argv: Sequence[str], *, must_fail: bool = False) -> str:
    """Exit 0, or exit 2 with exactly one `catsplit: error:` line and no traceback. Returns "ok" or "refused"."""
    shown = " ".join(map(str, argv))
    assert o.escaped is None, f"catsplit {shown}\nraised instead of printing one error line:\n{o.escaped}"
    assert "Traceback" not in o.err, f"catsplit {shown}\nprinted a traceback:\n{o.err}"
    if o.code == 0 and not must_fail:
        return "ok"
    assert o.code == 2, f"catsplit {shown}\nexit status {o.code}, expected 2; stderr:\n{o.err}"
    errors = [line for line in o.err.splitlines() if line.startswith("catsplit: error:")]
    others = [line for line in o.err.splitlines() if line.strip() and not line.startswith("catsplit: ")]
    assert len(errors) == 1 and not others, f"catsplit {shown}\nexpected one 'catsplit: error:' line, got:\n{o.err}"
    return "refused"


def cli_case(argv: Sequence[str], *, must_fail: bool = False) -> str:
    """Run one command line and check it (see `check_outcome`)."""
    return check_outcome(run_cli(argv), argv, must_fail=must_fail)


class CaseDir:
    """A folder for the files of one case at a time, emptied before each case."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def fresh(self) -> Path:
        for p in self.root.iterdir():
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
        return self.root

    def write(self, name: str, data: bytes) -> Path:
        p = self.root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        return p


def read_tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, by path relative to it."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def write_case(case: CaseDir, files: dict[str, bytes | None]) -> Path:
    """Write one case's files (None: leave that file out) into a fresh case folder; returns the folder."""
    root = case.fresh()
    for name, data in files.items():
        if data is not None:
            case.write(name, data)
    return root


def torch_bytes(obj: Any) -> bytes:
    """torch.save(obj) as bytes; deeply nested objects too (pickling them recurses)."""
    import sys

    import torch

    buf = io.BytesIO()
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20000))
    try:
        torch.save(obj, buf)
    finally:
        sys.setrecursionlimit(limit)
    return buf.getvalue()


PUNCTUATION = b'{}[]",:0123456789-+eE.\\/u \n\r\t\x00\xff\xfe\xef\xbb\xbf'


@st.composite
def mutated_bytes(draw, blob: bytes, *, hot: tuple[int, int] | None = None, rounds: int = 3) -> bytes:
    """1 to `rounds` byte-level mutations of `blob`: bit flips, set bytes, truncation, insertion, deletion,
    duplication. `hot` = (start, end): a span (a header, say) that gets half of the point mutations."""
    data = bytearray(blob)
    for _ in range(draw(st.integers(1, rounds))):
        n = len(data)
        if n == 0:
            data += draw(st.binary(min_size=1, max_size=16))
            continue
        kind = draw(st.sampled_from(["flip", "flip", "set", "truncate", "insert", "delete", "duplicate", "splat"]))
        lo, hi = (0, n)
        if hot is not None and kind in ("flip", "set") and draw(st.booleans()):
            lo, hi = max(0, min(hot[0], n - 1)), max(1, min(hot[1], n))
        if kind == "flip":
            i = draw(st.integers(lo, hi - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            i = draw(st.integers(lo, hi - 1))
            data[i] = draw(st.sampled_from(PUNCTUATION))
        elif kind == "truncate":
            del data[draw(st.integers(0, n - 1)):]
        elif kind == "insert":
            i = draw(st.integers(0, n))
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            i = draw(st.integers(0, n - 1))
            del data[i : i + draw(st.integers(1, 32))]
        elif kind == "duplicate":
            i = draw(st.integers(0, n - 1))
            data[i:i] = data[i : i + draw(st.integers(1, 64))]
        else:  # a run of one byte over the data
            i = draw(st.integers(0, n - 1))
            data[i : i + draw(st.integers(1, 64))] = bytes([draw(st.sampled_from(PUNCTUATION))]) * 8
    return bytes(data)


WEIRD_STRINGS = [
    "", " ", "\t", "\x00", "a\x00b", "a\nb", "a\u2028b", "\ufeffa", "\u200b", "\ud800", "{}", "{:^{}}", "{0}{1}",
    "%s", "../../etc/passwd", "/dev/zero", "C:\\x", "é" * 3, "🙂", "a" * 300, "nan", "1e999", "-0", "0x10",
]


def weird_scalars() -> st.SearchStrategy:
    """Values of the wrong kind for any JSON field."""
    return st.one_of(
        st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([-1, 0, 2**31, 2**63, 10**30, -(10**30)]),
        st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(WEIRD_STRINGS), st.text(max_size=8),
    )


def json_values(max_leaves: int = 8) -> st.SearchStrategy:
    """Arbitrary (mostly small) JSON-like values: the wrong shape for whatever field they replace."""
    return st.recursive(
        weird_scalars(),
        lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.sampled_from(WEIRD_STRINGS + ["a", "b"]), kids, max_size=4)),
        max_leaves=max_leaves,
    )


def _paths(value: Any, prefix: tuple = (), limit: int = 30) -> list[tuple]:
    """Every path into a JSON value (keys and indices), the root first; at most `limit` levels deep."""
    out = [prefix]
    if len(prefix) >= limit:
        return out
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,), limit)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, prefix + (i,), limit)
    return out


def _replace(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        out = dict(value)
        out[head] = _replace(value[head], rest, new)
        return out
    out = list(value)
    out[head] = _replace(value[head], rest, new)
    return out


def _delete(value: Any, path: tuple) -> Any:
    if len(path) == 1:
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if k != path[0]}
        return [v for i, v in enumerate(value) if i != path[0]]
    head = path[0]
    return _replace(value, (head,), _delete(value[head], path[1:]))


@st.composite
def mutated_json(draw, value: Any, *, rounds: int = 2) -> Any:
    """1 to `rounds` structural edits of a JSON value: a node replaced by a value of the wrong kind, deleted,
    duplicated, wrapped in a list, or nested deeply; big numbers; strings with control characters."""
    for _ in range(draw(st.integers(1, rounds))):
        paths = _paths(value)
        path = draw(st.sampled_from(paths))
        kind = draw(st.sampled_from(["replace", "replace", "delete", "wrap", "deep", "bignum", "string", "dup_key"]))
        node = value
        for p in path:
            node = node[p]
        if kind == "replace":
            value = _replace(value, path, draw(json_values()))
        elif kind == "delete" and path:
            value = _delete(value, path)
        elif kind == "wrap":
            value = _replace(value, path, draw(st.sampled_from([[node], {"x": node}, [node, node]])))
        elif kind == "deep":
            depth = draw(st.sampled_from([50, 101, 500, 2000]))
            nested: Any = node
            for _ in range(depth):
                nested = [nested]
            value = _replace(value, path, nested)
        elif kind == "bignum":
            value = _replace(value, path, draw(st.sampled_from([10**400, -(10**400), 2**64, 1e308, -1, 0, 10**9])))
        elif kind == "string":
            value = _replace(value, path, draw(st.sampled_from(WEIRD_STRINGS)))
        elif kind == "dup_key" and isinstance(node, dict) and node:
            k = draw(st.sampled_from(sorted(node, key=str)))
            value = _replace(value, path, {**node, k.upper() if isinstance(k, str) else k: node[k], " " + str(k): node[k]})
    return value


def dump_json(value: Any) -> bytes:
    """JSON text of a (mutated) value; deep nesting written iteratively, NaN and huge ints as Python writes them."""
    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20000))
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")
    finally:
        sys.setrecursionlimit(limit)


@st.composite
def json_file(draw, value: Any) -> bytes:
    """A JSON file derived from `value`: structurally edited, byte-mutated, or both."""
    kind = draw(st.sampled_from(["structure", "structure", "bytes", "both"]))
    text = dump_json(draw(mutated_json(value))) if kind != "bytes" else dump_json(value)
    if kind != "structure":
        text = draw(mutated_bytes(text))
    return text
