"""Write-back benchmark: split a class of a Hugging Face model folder of real size and write the model back,
against a plain copy of the folder.

    python -m catsplit.bench.tools.model_writeback [--labels 400] [--method coarse|alignment] [--repeats 3]
                                                   [--warm 2048] [--dir DIR] [--size base|tiny]

One run saves a randomly initialised VideoMAE-base-sized video classifier (`VideoMAEConfig()`'s
defaults: 12 layers, hidden size 768, 16 frames of 224 x 224; `--labels` classes named
"action<a> variant <v>" with one coarse class "action0", as `catsplit.bench.tools.scale` names them)
with `save_pretrained` (model.safetensors, about 330 MiB, and config.json), then alternates,
`repeats` times, each measurement in a fresh Python process:

* copy: `shutil.copytree` of the folder (what the write-back is compared with);
* copy + fsync: the same, then `fsync` of every file (for reference: catsplit fsyncs what it writes);
* catsplit: `open_model` of the folder + `split` of "action0" into 4 subs + `save_model` to a new
  folder (streamed: every other tensor's bytes copied file to file, fsync, one rename). Phases:
  open = read config.json and the classifier, split = the method (with `alignment`, loading the
  default text encoder too), write = everything `save_model` does.

Time is the wall time of those steps inside the process (interpreter start and imports excluded).
Memory is the peak resident set during them minus the resident set just before (the interpreter
with torch and catsplit imported): the kernel's high-water mark is reset through
/proc/self/clear_refs and VmHWM read afterwards. `os.sync()` runs before every measurement, and the
parent touches and frees `--warm` MiB first (see `catsplit.bench.tools.scale`). Needs transformers.
Prints medians and the goals: time <= 2x the copy's, peak memory <= 0.5x the model's size.
`--size tiny` (one layer of width 16: a few hundred KiB) only checks that the script runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path


from catsplit.bench.tools.memory import PeakMemory, run_worker
from catsplit.bench.tools.scale import COARSE, SUBS, make_labels

TASKS = ("copy", "copy_fsync", "catsplit")


SIZES = {"base": {}, "tiny": dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                                  image_size=32, num_frames=4, patch_size=16, tubelet_size=2)}


def make_model(folder: Path, labels: list[str], seed: int = 0, size: str = "base") -> int:
    """Save a randomly initialised VideoMAE-base-sized classifier (`size="tiny"`: a tiny one) to `folder`;
    returns the folder's size in bytes."""
    import torch

    from catsplit.optional import require_transformers

    transformers = require_transformers("the write-back benchmark")
    torch.manual_seed(seed)
    config = transformers.VideoMAEConfig(
        id2label=dict(enumerate(labels)), label2id={lab: i for i, lab in enumerate(labels)}, **SIZES[size],
    )
    transformers.VideoMAEForVideoClassification(config).save_pretrained(folder)
    return sum(p.stat().st_size for p in folder.iterdir())


def worker(task: str, src: Path, dst: Path, method: str) -> dict:
    """Run one measurement in this (fresh) process; returns seconds, phases, peak MiB above the start."""
    import torch  # noqa: F401 - imported before the baseline is taken

    from catsplit.edit import split
    from catsplit.formats.model import open_model
    from catsplit.formats.writer import save_model

    memory = PeakMemory()
    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    if task in ("copy", "copy_fsync"):
        shutil.copytree(src, dst)
        if task == "copy_fsync":
            for p in dst.iterdir():
                fd = os.open(p, os.O_RDONLY)
                os.fsync(fd)
                os.close(fd)
    else:
        model = open_model(src)
        phases["open"] = time.perf_counter() - t0
        encoder = None
        if method != "coarse":
            from catsplit.encoders import default_text_encoder

            encoder = default_text_encoder()
        new = split(model.head, encoder, COARSE, SUBS, method=method)
        phases["split"] = time.perf_counter() - t0 - phases["open"]
        save_model(new, model, dst)
        phases["write"] = time.perf_counter() - t0 - phases["open"] - phases["split"]
    seconds = time.perf_counter() - t0
    return {"task": task, "seconds": seconds, "phases": phases, "rss_before_mib": memory.rss_before,
            "peak_above_start_mib": memory.above_start(), "exact_peak": memory.exact}


def measure(task: str, src: Path, dst: Path, method: str, warm_mib: int = 0) -> dict:
    if dst.exists():
        shutil.rmtree(dst)
    return run_worker("catsplit.bench.tools.model_writeback", task, src, dst, method, warm_mib)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", type=int, default=400, help="classes of the model (default 400, as Kinetics-400)")
    parser.add_argument("--method", choices=("coarse", "alignment"), default="coarse")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warm", type=int, default=2048, metavar="MIB",
                        help="memory to touch and free before each measurement (default 2048; 0: none)")
    parser.add_argument("--dir", type=Path, help="folder for the models (default: a temp folder, removed afterwards)")
    parser.add_argument("--size", choices=tuple(SIZES), default="base", help="base (default) or tiny (a test run)")
    parser.add_argument("--worker", choices=TASKS, help=argparse.SUPPRESS)
    parser.add_argument("--src", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--dst", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.src, args.dst, args.method)))
        return
    if args.labels < 22 or args.repeats < 1:
        parser.error("--labels must be >= 22 and --repeats >= 1")

    with tempfile.TemporaryDirectory(prefix="catsplit-writeback-", dir=args.dir) as tmp:
        folder = Path(tmp)
        src = folder / "videomae"
        t0 = time.perf_counter()
        size_mib = make_model(src, make_labels(args.labels), size=args.size) / 2**20
        print(f"VideoMAE-{args.size}-sized model, {args.labels} classes, folder {size_mib:.1f} MiB (saved in "
              f"{time.perf_counter() - t0:.1f} s); method {args.method!r}, k = {len(SUBS)} subs; {args.repeats} repeats, "
              f"each measurement a fresh process; {os.cpu_count()} CPUs; {args.warm} MiB warmed before each")
        runs: dict[str, list[dict]] = {t: [] for t in TASKS}
        for i in range(args.repeats):
            for task in TASKS:
                r = measure(task, src, folder / f"out-{task}", args.method, args.warm)
                runs[task].append(r)
                phases = ", ".join(f"{k} {v:.2f}" for k, v in r["phases"].items())
                print(f"  run {i + 1} {task:10s} {r['seconds']:6.2f} s{f' ({phases})' if phases else ''}, peak "
                      f"+{r['peak_above_start_mib']:.0f} MiB over {r['rss_before_mib']:.0f} MiB at start")
        med = {t: statistics.median(r["seconds"] for r in rs) for t, rs in runs.items()}
        mem = {t: statistics.median(r["peak_above_start_mib"] for r in rs) for t, rs in runs.items()}
        exact = all(r["exact_peak"] for rs in runs.values() for r in rs)
        print()
        print("| measurement | median s | median peak MiB | peak / model size |")
        print("|---|---:|---:|---:|")
        names = {"copy": "shutil.copytree", "copy_fsync": "copytree + fsync (reference)",
                 "catsplit": f"open_model + split ({args.method}) + save_model"}
        for t in TASKS:
            print(f"| {names[t]} | {med[t]:.2f} | {mem[t]:.0f} | {mem[t] / size_mib:.2f} |")
        print()
        ratio, mratio = med["catsplit"] / med["copy"], mem["catsplit"] / size_mib
        print(f"time: catsplit / copy = {ratio:.2f} (goal <= 2: {'met' if ratio <= 2 else 'MISSED'}); "
              f"catsplit / (copy + fsync) = {med['catsplit'] / med['copy_fsync']:.2f}")
        print(f"memory: catsplit peak / model size = {mratio:.2f} (goal <= 0.5: {'met' if mratio <= 0.5 else 'MISSED'})"
              + ("" if exact else " [peak measured without clear_refs: approximate]"))


if __name__ == "__main__":
    main()
