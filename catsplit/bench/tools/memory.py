"""What the benchmark scripts share to measure one task in a fresh process: its peak memory above the start
(Linux `/proc/self/status`), and the subprocess that runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np


def status_mib(key: str) -> float:
    """A `/proc/self/status` figure (VmRSS, VmHWM, ...) in MiB."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} in /proc/self/status")


class PeakMemory:
    """The peak resident memory above what the process held when this was made.

    The peak is reset to the current resident set (`/proc/self/clear_refs`) where the kernel lets us;
    elsewhere it is measured above the high-water mark so far, and `exact` is False.
    """

    def __init__(self) -> None:
        self.rss_before = status_mib("VmRSS")
        self.exact = _reset_peak()
        self.hwm_before = status_mib("VmHWM")

    def above_start(self) -> float:
        return status_mib("VmHWM") - (self.rss_before if self.exact else self.hwm_before)


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")  # resets VmHWM to the current resident set
        return True
    except OSError:
        return False


def run_worker(module: str, task: str, src: Path, dst: Path, method: str, warm_mib: int = 0) -> dict:
    """Run `python -m MODULE --worker TASK ...` in a fresh process -> the JSON its last line prints."""
    if warm_mib:
        np.ones(warm_mib * 2**20 // 8)  # touched, then freed at once
    os.sync()
    out = subprocess.run(
        [sys.executable, "-m", module, "--worker", task, "--src", str(src), "--dst", str(dst), "--method", method],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])
