"""Fuzzing per kind of input: mutated files of each kind, through the commands that read them, in-process.

Every case must either work (exit 0) or be refused with exit status 2 and exactly one `catsplit: error:`
line: no traceback, no other exit status, no hang (fuzzkit.CASE_SECONDS per case). CI runs
fuzzkit.EXAMPLES (1,000) cases per kind, the same ones on every run; a longer run:

    CATSPLIT_FUZZ_EXAMPLES=30000 .venv/bin/python -m pytest -q tests/robustness/test_fuzz_inputs.py -p no:cacheprovider

The kinds are fuzzcommands.KINDS; what is done to each, fuzzcases.py.
"""

from __future__ import annotations

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import fuzzseeds
from fuzzcommands import KINDS, SLOW_COMMANDS
from fuzzkit import CaseDir, check_outcome, fuzz_settings, run_cli, write_case


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> CaseDir:
    fuzzseeds.seeds()  # built once, before the first case
    return CaseDir(tmp_path_factory.mktemp("fuzz-case"))


def _run_kind(kind: str, case: CaseDir, data) -> None:
    strategy, commands = KINDS[kind]
    files = data.draw(strategy(), label="files")
    argv_of = commands(case.root, files)
    name = data.draw(st.sampled_from(sorted(set(argv_of) - SLOW_COMMANDS)), label="command")
    write_case(case, files)
    outcome = check_outcome(run_cli(argv_of[name]), argv_of[name])
    event(f"{name}: {outcome}")  # --hypothesis-show-statistics shows the share of each


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_fuzzed_inputs_work_or_give_one_error_line(kind, case):
    @fuzz_settings()
    @given(data=st.data())
    def run(data):
        _run_kind(kind, case, data)

    run()
