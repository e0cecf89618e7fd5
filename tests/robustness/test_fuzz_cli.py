"""Every subcommand against every fuzzed kind of input, and the real entry point on a sample.

* the seed files work: every command line of fuzzcommands.KINDS succeeds on the unmutated files, so a
  refusal in the fuzz tests comes from the damage, not from the command line;
* the matrix: each (kind, command) pair gets MATRIX_EXAMPLES mutated cases; each must exit 0, or exit 2
  with one `catsplit: error:` line and no traceback, within fuzzkit.CASE_SECONDS;
* a sample through the installed `catsplit` entry point in a subprocess: there the check sees what
  libraries print on the process's own stderr (onnxruntime's logger, a Rust panic), which an in-process
  run cannot capture.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import fuzzkit
import fuzzseeds
from fuzzcommands import KINDS, seed_files
from fuzzkit import EXAMPLES, CaseDir, check_outcome, fuzz_settings, run_cli, write_case

MATRIX_EXAMPLES = max(10, EXAMPLES // 100)
SUBCOMMANDS = {"split", "unsplit", "finetune", "refine", "relabel", "inspect", "bench", "demo", "export", "predict", "edit-onnx", "triton"}


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> CaseDir:
    fuzzseeds.seeds()
    return CaseDir(tmp_path_factory.mktemp("fuzz-matrix"))


def _pairs() -> list[tuple[str, str]]:
    """(kind, command) for every command a kind's files reach, over every shape of that kind's files."""
    root = Path("/nonexistent")  # only the names of the commands are needed here
    pairs = set()
    for kind, _ in KINDS.items():
        for files in seed_files(kind):
            pairs |= {(kind, name) for name in KINDS[kind][1](root, files)}
    return sorted(pairs)


def test_the_matrix_covers_every_subcommand():
    root = Path("/nonexistent")
    reached = set()
    for kind in KINDS:
        for files in seed_files(kind):
            reached |= {argv[0] for argv in KINDS[kind][1](root, files).values()}
    assert reached == SUBCOMMANDS
    assert len(KINDS) >= 8


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_command_works_on_the_seed_files(kind, case):
    """Each command line succeeds on at least one seed of its kind (the backbone one stops, as meant, at its
    example batch, after the weights loaded)."""
    worked: dict[str, bool] = {}
    for files in seed_files(kind):
        for name, argv in KINDS[kind][1](case.root, files).items():
            write_case(case, files)
            outcome = run_cli(argv)
            assert outcome.escaped is None, outcome.escaped
            if kind == "backbone":
                worked[name] = worked.get(name, False) or "the backbone fails on example_input" in outcome.err
            else:
                worked[name] = worked.get(name, False) or outcome.code == 0
    assert all(worked.values()), {name: ok for name, ok in worked.items() if not ok}


@pytest.mark.parametrize("kind,command", _pairs())
def test_every_subcommand_on_every_fuzzed_kind(kind, command, case):
    strategy, commands = KINDS[kind]

    @fuzz_settings(MATRIX_EXAMPLES)
    @given(data=st.data())
    def run(data):
        files = data.draw(strategy(), label="files")
        argv_of = commands(case.root, files)
        if command not in argv_of:  # a command of another file of this kind (e.g. --groups for groups.json)
            return
        write_case(case, files)
        check_outcome(run_cli(argv_of[command]), argv_of[command])

    run()


def _damaged_samples(kind: str) -> list[dict[str, bytes | None]]:
    """A few deterministic damaged files of a kind: a seed's main file cut in half, or its first bytes overwritten."""
    out = []
    for files in seed_files(kind)[:2]:
        target = max(files, key=lambda k: (k.endswith((".json", ".safetensors", ".onnx", ".pt", ".npz", ".npy", ".csv")), len(files[k])))
        blob = files[target]
        out.append({**files, target: blob[: len(blob) // 2] + b"\xff"})  # truncated, and not UTF-8 text either
        out.append({**files, target: b"\xff" * 16 + blob[16:]})
    return out


def test_the_entry_point_prints_one_error_line(tmp_path):
    """The installed command in its own process: exit 2 and exactly one stderr line, for a damaged file of every
    kind (what a library prints on the process's stderr counts too). Two processes at a time: each starts torch."""
    from concurrent.futures import ThreadPoolExecutor

    fuzzseeds.seeds()
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    runs = []
    for kind in sorted(KINDS):
        case = CaseDir(tmp_path / kind)
        files = _damaged_samples(kind)[0]
        argv_of = KINDS[kind][1](case.root, files)
        name = sorted(argv_of)[0]
        write_case(case, files)
        runs.append((kind, name, [sys.executable, "-m", "catsplit", *map(str, argv_of[name])], case.root))

    def run(item):
        kind, name, argv, cwd = item
        return item, subprocess.run(argv, capture_output=True, text=True, timeout=fuzzkit.CASE_SECONDS, env=env, cwd=cwd)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for (kind, name, argv, _), done in pool.map(run, runs):
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("catsplit: error:"), (
                f"{kind}: catsplit {name}: exit {done.returncode}, stderr:\n{done.stderr}")
