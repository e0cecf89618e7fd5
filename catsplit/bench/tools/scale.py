"""Scale benchmark: split-and-save of a large head against a plain safetensors load-and-save.

    python -m catsplit.bench.tools.scale [--rows 100000] [--dim 1024] [--dtype float32]
                                         [--method coarse|retrieval] [--repeats 3] [--dir DIR]

One run writes a `rows x dim` head file (labels "action<a> variant <v>": groups of 10 labels
sharing a base, plus the coarse label "action0" in the middle row), then alternates, `repeats`
times, two measurements, each in a fresh Python process:

* plain: `safetensors.torch.load_file` + `save_file` of the same file (metadata kept);
* plain + fsync: the same, then `fsync` of the written file (for reference: catsplit's save
  fsyncs, so that a crash cannot leave a half-written file under the name);
* catsplit: `load_head` + `split` of "action0" into 4 subs + `Head.save` (atomic: temp file,
  fsync, rename) to a new file;
* split_file: `catsplit.split_file` of the same split (the same bytes; the source memory-mapped and
  checked, unchanged bytes copied file to file, fsync, rename). Its phases: load = open and check
  the file, split = the method and the new header, save = writing, fsync and rename.

Time is the wall time of those steps inside the process (interpreter start and imports
excluded). Memory is the peak resident set of the process during those steps minus its resident
set just before them (the interpreter with torch, numpy and catsplit imported), measured by
resetting the kernel's high-water mark (/proc/self/clear_refs) and reading VmHWM afterwards.
`os.sync()` runs before every measurement so that one run's dirty pages do not slow the next.
Before each measurement the parent also touches and frees `--warm` MiB (default 2048): on a
virtual machine, memory the guest has not used lately is not backed by the host, and the first
touch of each page is slow (here ~10 us per 4 KiB page, 1 s for 400 MB); without warming, the
measurement that allocates more pages (catsplit's) pays that on top of its own work. `--warm 0`
measures without it.
Method "coarse" needs no text encoder; "retrieval" uses a cheap hashed bag-of-words encoder
(`HashedWordsEncoder`), so its time includes encoding the 100,000 labels with it. Prints medians
and the ratios to the goals (time <= 2x plain, peak memory <= 2x the file size).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

from catsplit.bench.tools.memory import PeakMemory, run_worker

COARSE = "action0"
SUBS = [f"{COARSE} variant {v}" for v in (0, 1, 2, 3)]
DTYPES = ("float32", "float16", "bfloat16")
TASKS = ("plain", "plain_fsync", "catsplit", "split_file")
NAMES = {"plain": "safetensors load_file + save_file", "plain_fsync": "the same + fsync (reference)"}


def make_labels(rows: int) -> list[str]:
    """`rows` labels: "action0" in the middle, the rest "action<a> variant <v>" (a >= 1, v = 0..9)."""
    fine = [f"action{1 + i // 10} variant {i % 10}" for i in range(rows - 1)]
    mid = (rows - 1) // 2
    return fine[:mid] + [COARSE] + fine[mid:]


def make_file(path: Path, rows: int, dim: int, dtype: str, seed: int = 0) -> int:
    """Write the benchmark head to `path`; returns its size in bytes."""
    import torch

    from catsplit import Head

    gen = torch.Generator().manual_seed(seed)
    weight = torch.empty(rows, dim, dtype=getattr(torch, dtype))
    for start in range(0, rows, 8192):  # in blocks: no float32 copy of a half-precision head
        block = weight[start : start + 8192]
        block.copy_(torch.randn(block.shape, generator=gen))
    head = Head(weight=weight, bias=torch.zeros(rows, dtype=weight.dtype), labels=make_labels(rows))
    head.save(path, overwrite=True)
    return path.stat().st_size


class HashedWordsEncoder:
    """A cheap deterministic text encoder: the sum of one fixed random vector per word (by CRC32)."""

    def __init__(self, dim: int = 64, vocab: int = 1 << 14, seed: int = 0):
        self.table = np.random.default_rng(seed).standard_normal((vocab, dim)).astype(np.float32)  # [V, E]
        self.vocab = vocab

    def __call__(self, texts: list[str]) -> np.ndarray:
        ids: list[int] = []
        owner: list[int] = []
        for i, t in enumerate(texts):
            for w in t.casefold().split():
                ids.append(zlib.crc32(w.encode("utf-8")) % self.vocab)
                owner.append(i)
        out = np.zeros((len(texts), self.table.shape[1]), np.float32)  # [N, E]
        np.add.at(out, np.asarray(owner, np.int64), self.table[np.asarray(ids, np.int64)])
        return out


# --- measuring, in a fresh process -----------------------------------------------------------
def worker(task: str, src: Path, dst: Path, method: str) -> dict:
    """Run one measurement in this (fresh) process; returns seconds, peak MiB above the start, phases."""
    import torch  # noqa: F401 - imported before the baseline is taken

    import catsplit
    from catsplit.edit import split  # noqa: F401 - import cost outside the timing
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    encoder = HashedWordsEncoder() if method == "retrieval" else None
    memory = PeakMemory()
    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    if task in ("plain", "plain_fsync"):
        tensors = load_file(str(src))
        with safe_open(str(src), framework="pt") as f:
            meta = f.metadata()
        phases["load"] = time.perf_counter() - t0
        save_file(tensors, str(dst), metadata=meta)
        if task == "plain_fsync":
            fd = os.open(dst, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
    elif task == "split_file":
        import catsplit.io.streaming
        from catsplit.io.streaming import open_head_file

        real_write = catsplit.io.streaming.write_head_file

        def timed_write(*args, **kwargs):  # the write begins: the split phase ends
            phases["split"] = time.perf_counter() - t0 - phases["load"]
            return real_write(*args, **kwargs)

        catsplit.io.streaming.write_head_file = timed_write  # the name split_to calls
        with open_head_file(src) as source:
            phases["load"] = time.perf_counter() - t0
            source.split_to(dst, encoder, COARSE, SUBS, overwrite=True, method=method)
    else:
        head = catsplit.load_head(src)
        phases["load"] = time.perf_counter() - t0
        new = catsplit.split(head, encoder, COARSE, SUBS, method=method)
        phases["split"] = time.perf_counter() - t0 - phases["load"]
        del head
        new.save(dst, overwrite=True)
    seconds = time.perf_counter() - t0
    phases["save"] = seconds - sum(phases.values())
    return {
        "task": task, "seconds": seconds, "phases": phases, "rss_before_mib": memory.rss_before,
        "peak_above_start_mib": memory.above_start(), "exact_peak": memory.exact,
    }


def measure(task: str, src: Path, dst: Path, method: str, warm_mib: int = 0) -> dict:
    if dst.exists():
        dst.unlink()
    return run_worker("catsplit.bench.tools.scale", task, src, dst, method, warm_mib)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--dtype", choices=DTYPES, default="float32")
    parser.add_argument("--method", choices=("coarse", "retrieval"), default="coarse")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warm", type=int, default=2048, metavar="MIB",
                        help="memory to touch and free before each measurement (default 2048; 0: none)")
    parser.add_argument("--dir", type=Path, help="folder for the files (default: a temp folder, removed afterwards)")
    parser.add_argument("--worker", choices=TASKS, help=argparse.SUPPRESS)
    parser.add_argument("--src", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--dst", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.src, args.dst, args.method)))
        return
    if args.rows < 22 or args.dim < 1 or args.repeats < 1:
        parser.error("--rows must be >= 22, --dim and --repeats >= 1")

    with tempfile.TemporaryDirectory(prefix="catsplit-scale-", dir=args.dir) as tmp:
        folder = Path(tmp)
        src = folder / "head.safetensors"
        t0 = time.perf_counter()
        size = make_file(src, args.rows, args.dim, args.dtype)
        size_mib = size / 2**20
        print(f"head {args.rows:,} x {args.dim:,} {args.dtype}, file {size_mib:.1f} MiB (written in "
              f"{time.perf_counter() - t0:.1f} s); method {args.method!r}, k = {len(SUBS)} subs; "
              f"{args.repeats} repeats, each measurement a fresh process; {os.cpu_count()} CPUs; "
              f"{args.warm} MiB warmed before each")
        runs: dict[str, list[dict]] = {t: [] for t in TASKS}
        for i in range(args.repeats):
            for task in TASKS:
                r = measure(task, src, folder / f"out-{task}.safetensors", args.method, args.warm)
                runs[task].append(r)
                phases = ", ".join(f"{k} {v:.2f}" for k, v in r["phases"].items())
                print(f"  run {i + 1} {task:11s} {r['seconds']:6.2f} s ({phases}), peak +{r['peak_above_start_mib']:.0f} MiB "
                      f"over {r['rss_before_mib']:.0f} MiB at start")
        med = {t: statistics.median(r["seconds"] for r in rs) for t, rs in runs.items()}
        fastest = {t: min(r["seconds"] for r in rs) for t, rs in runs.items()}
        phase = {t: {k: statistics.median(r["phases"][k] for r in rs) for k in rs[0]["phases"]} for t, rs in runs.items()}
        mem = {t: statistics.median(r["peak_above_start_mib"] for r in rs) for t, rs in runs.items()}
        exact = all(r["exact_peak"] for rs in runs.values() for r in rs)
        print()
        print("| measurement | median s | min s | median phases s | median peak MiB | peak / file size |")
        print("|---|---:|---:|---|---:|---:|")
        names = {**NAMES, "catsplit": f"load_head + split ({args.method}) + save", "split_file": f"split_file ({args.method})"}
        for t in TASKS:
            phases = ", ".join(f"{k} {v:.2f}" for k, v in phase[t].items())
            print(f"| {names[t]} | {med[t]:.2f} | {fastest[t]:.2f} | {phases} | {mem[t]:.0f} | {mem[t] / size_mib:.2f} |")
        print()
        ratio = med["catsplit"] / med["plain"]
        mratio = mem["catsplit"] / size_mib
        print(f"time: catsplit / plain = {ratio:.2f} (goal <= 2: {'met' if ratio <= 2 else 'MISSED'})")
        print(f"memory: catsplit peak / file size = {mratio:.2f} (goal <= 2: {'met' if mratio <= 2 else 'MISSED'})"
              + ("" if exact else " [peak measured without clear_refs: approximate]"))
        ratio = med["split_file"] / med["plain"]
        mratio = mem["split_file"] / size_mib
        print(f"time: split_file / plain = {ratio:.2f} (goal <= 2: {'met' if ratio <= 2 else 'MISSED'})")
        print(f"memory: split_file peak / file size = {mratio:.2f} (goal <= 2: {'met' if mratio <= 2 else 'MISSED'})")


if __name__ == "__main__":
    main()
