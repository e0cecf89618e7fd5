"""Speed and memory of `catsplit.refine`: a small case, and a million clips read from a memory-mapped `.npy`.

    python -m catsplit.bench.tools.refine_speed [--repeats 5] [--clips 1000000] [--dim 256] [--keep-file]

1. refine on 1,200 clips, D = 256, k = 8, of a 1000 x 256 head (median of --repeats, one process).
2. refine on --clips x --dim float32 clips in a `.npy` written to a temporary folder (1 GB at the defaults;
   deleted afterwards unless --keep-file), memory-mapped: its time against one plain read pass of the same
   file (np.load(mmap_mode="r"), summed chunk by chunk), each in a fresh process, the file read once before
   so both find it in the page cache; and the peak memory above the start of the task, after the head is
   built. Two peaks: anonymous memory (RssAnon, sampled every 5 ms: what the process allocates) and the
   resident set (VmHWM, which also counts the mapped file's pages the kernel keeps in the page cache).

The clips come from k overlapping Gaussian clusters near (not on) the subs' edits, so EM has something to
find; the number of EM steps run is printed (at most RefineConfig.iterations, 10).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from catsplit.bench.tools.memory import PeakMemory, status_mib

K = 8


def make_edit(dim: int, seed: int = 0):
    """A 1000 x `dim` head with one class split into K subs whose rows are the coarse row plus random edits."""
    import torch

    from catsplit import split
    from catsplit.bench.tools.split_speed import make_head
    from catsplit.splitrows import latest_split, with_rows

    head, coarse, subs = make_head(rows=1000, dim=dim, seed=seed)
    edited = split(head, None, coarse, subs, method="coarse")
    s = latest_split(edited, "refine_speed")
    g = torch.Generator().manual_seed(seed)
    delta = 0.5 * torch.randn(s.weight.shape, generator=g)
    return with_rows(edited, s, s.weight + delta, s.bias, "start", {}), delta.numpy()


def centres_of(delta: np.ndarray) -> np.ndarray:
    """The clusters' centres [K, D]: near the subs' edits but not on them, and overlapping, so that EM has work
    to do (the starting rows misassign clips, and the assignments settle over several steps)."""
    rng = np.random.default_rng(12345)
    return 0.25 * (delta + 0.6 * rng.standard_normal(delta.shape) * np.linalg.norm(delta, axis=1, keepdims=True) / np.sqrt(delta.shape[1]))


def clips_of(delta: np.ndarray, n: int, seed: int) -> np.ndarray:
    """`n` clips [n, D] from K Gaussian clusters (`centres_of`), unit noise."""
    rng = np.random.default_rng(seed)
    centres = centres_of(delta)
    which = rng.integers(0, len(delta), n)
    return (centres[which] + rng.standard_normal((n, delta.shape[1]))).astype(np.float32)


def write_npy(path: Path, n: int, dim: int, delta: np.ndarray, chunk: int = 65_536) -> None:
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))
    for i, start in enumerate(range(0, n, chunk)):
        out[start : start + chunk] = clips_of(delta, min(chunk, n - start), seed=100 + i)
    out.flush()
    del out


class AnonPeak:
    """The peak of RssAnon above its value at the start, sampled by a thread."""

    def __init__(self, every: float = 0.005) -> None:
        self.start = self.peak = status_mib("RssAnon")
        self.every, self.done = every, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, status_mib("RssAnon"))
            time.sleep(self.every)

    def stop(self) -> float:
        self.done.set()
        self.thread.join()
        self.peak = max(self.peak, status_mib("RssAnon"))
        return self.peak - self.start


def worker(task: str, path: str, dim: int) -> dict:
    """One measured task in this (fresh) process -> figures."""
    import torch

    from catsplit import refine

    edited, _ = make_edit(dim)
    x = np.load(path, mmap_mode="r")
    torch.zeros(1) @ torch.zeros(1)  # torch's first-call costs outside the timing
    anon, peak = AnonPeak(), PeakMemory()
    t0 = time.perf_counter()
    if task == "agree":  # the sampled EM against every step on every clip: the subs they give the clips
        from catsplit import RefineConfig, relabel

        a, b = refine(edited, x), refine(edited, x, config=RefineConfig(em_sample=0))
        probe = np.array(x[::10])
        return {"task": task, "agreement": float(np.mean(np.asarray(relabel(a, probe)[0]) == np.asarray(relabel(b, probe)[0]))),
                "steps": a.latest_record()["refine"]["iterations"], "full_steps": b.latest_record()["refine"]["iterations"]}
    if task == "read":
        total = np.zeros(dim, np.float64)
        for start in range(0, x.shape[0], 65_536):
            total += np.asarray(x[start : start + 65_536]).sum(axis=0, dtype=np.float64)
        steps = 0
    else:
        out = refine(edited, x)
        steps = out.latest_record()["refine"]["iterations"]
    seconds = time.perf_counter() - t0
    return {"task": task, "seconds": seconds, "anon_mib": anon.stop(), "rss_peak_mib": peak.above_start(),
            "exact_peak": peak.exact, "steps": steps}


def run_worker(task: str, path: Path, dim: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "catsplit.bench.tools.refine_speed", "--worker", task, "--path", str(path), "--dim", str(dim)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--clips", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--small-clips", type=int, default=1200)
    parser.add_argument("--keep-file", action="store_true")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.path, args.dim)))
        return

    from catsplit import RefineConfig, refine

    edited, delta = make_edit(args.dim)
    x = clips_of(delta, args.small_clips, seed=1)
    times, steps = [], 0
    for _ in range(args.repeats + 1):  # the first run warms torch up and is not counted
        t0 = time.perf_counter()
        out = refine(edited, x)
        times.append(time.perf_counter() - t0)
        steps = out.latest_record()["refine"]["iterations"]
    print(f"refine, {args.small_clips} clips x {args.dim}, k = {K}, 1000-row head: median {statistics.median(times[1:]):.3f} s "
          f"over {args.repeats} runs ({steps} EM steps)")
    if args.skip_large:
        return
    folder = Path(tempfile.mkdtemp(prefix="refine-speed-"))
    path = folder / "clips.npy"
    try:
        write_npy(path, args.clips, args.dim, delta)
        size = path.stat().st_size
        run_worker("read", path, args.dim)  # the file into the page cache for both measurements
        read = run_worker("read", path, args.dim)
        ref = run_worker("refine", path, args.dim)
        print(f"{args.clips:,} clips x {args.dim} float32 memory-mapped ({size / 2**30:.2f} GiB):")
        print(f"  one read pass: {read['seconds']:.2f} s; refine: {ref['seconds']:.2f} s ({ref['steps']} EM steps) = "
              f"{ref['seconds'] / read['seconds']:.1f}x the read pass")
        print(f"  refine's peak memory above its start (head built): anonymous {ref['anon_mib']:.0f} MiB, resident set "
              f"{ref['rss_peak_mib']:.0f} MiB (the mapped file's cached pages included{'' if ref['exact_peak'] else '; inexact peak'})")
        print(f"  the read pass alone: anonymous {read['anon_mib']:.0f} MiB, resident set {read['rss_peak_mib']:.0f} MiB")
        agree = run_worker("agree", path, args.dim)
        print(f"  the EM steps on a sample of {RefineConfig().em_sample:,} clips, then one pass over all, against every "
              f"step over every clip (RefineConfig(em_sample=0), {agree['full_steps']} steps): the same sub for "
              f"{100 * agree['agreement']:.2f} % of every 10th clip")
    finally:
        if not args.keep_file:
            path.unlink(missing_ok=True)
            os.rmdir(folder)


if __name__ == "__main__":
    main()
