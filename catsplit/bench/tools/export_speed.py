"""Inference latency: onnxruntime against torch eager, edited against unedited model.

    python -m catsplit.bench.tools.export_speed [--repeats 30] [--batches 1 32] [--device cpu|cuda] [--threads N]

The benchmark's backbone (catsplit.bench.models.Backbone with TrainConfig's width 16, D 256;
random weights: latency does not depend on them) on clips of 16 x 32 x 32 x 3 uint8, with a
head of 48 labels whose class "Action0 something" is split into 6 subs (method "coarse": the
rows' values do not change the cost). Four models are exported: unedited, flat edit,
hierarchical edit; each is timed in onnxruntime, and the edited ones also in torch eager
(backbone + catsplit.Head). Each variant is timed in a block of its own after a warm-up (an idle
thread pool spins on the cores for a while and would slow whatever runs next), in several passes
over all variants so that a load change on the machine hits them alike. Edited and unedited
models are compared in sessions without spinning, interleaved run by run in rotating order.
Prints medians (ms) and the ratios the README quotes.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

SUBS = 6
LABELS = 48


def build_heads():
    """Unedited head [48, 256] and its flat and hierarchical splits."""
    import catsplit

    rng = np.random.default_rng(0)
    labels = [f"Action{i} something" for i in range(LABELS)]
    head = catsplit.Head(weight=rng.standard_normal((LABELS, 256)).astype(np.float32) * 0.1,
                         bias=rng.standard_normal(LABELS).astype(np.float32) * 0.1, labels=labels)
    subs = [f"Action0 something variant {j}" for j in range(SUBS)]
    flat = catsplit.split(head, None, labels[0], subs, method="coarse")
    hier = catsplit.split(head, None, labels[0], subs, method="coarse", mode="hierarchical")
    return {"unedited": head, "flat": flat, "hierarchical": hier}


def main(argv: list[str] | None = None) -> int:
    import torch

    from catsplit.bench.models import Backbone, TrainConfig
    from catsplit.export import session, to_onnx

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed runs per variant and batch (median reported)")
    parser.add_argument("--passes", type=int, default=3, help="passes over all variants; each times repeats/passes runs")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="onnxruntime provider (torch stays on the CPU)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for torch and onnxruntime alike")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    cfg = TrainConfig()
    torch.manual_seed(0)
    backbone = Backbone(cfg.width, cfg.dim).eval()
    heads = build_heads()
    folder = Path(tempfile.mkdtemp(prefix="catsplit-speed-"))
    example = torch.randint(0, 256, (2, 16, 32, 32, 3), dtype=torch.uint8)
    sessions, calm = {}, {}
    for name, head in heads.items():
        path = to_onnx(backbone, head, folder / f"{name}.onnx", example)
        sessions[name] = session(path, args.device, strict=args.device == "cuda", threads=args.threads)
        calm[name] = session(path, args.device, strict=args.device == "cuda", threads=args.threads, spinning=False)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.threads} threads; "
          f"onnxruntime providers {sessions['flat'].get_providers()}; torch {torch.__version__}")

    def timed(fn) -> float:
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3

    def run_torch(head, x):
        with torch.inference_mode():
            return head.logits(backbone(x))

    results: dict[tuple[str, int], list[float]] = {}
    for batch in args.batches:
        x = torch.randint(0, 256, (batch, 16, 32, 32, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(batch))
        xn = x.numpy()
        # torch against onnxruntime: each in a block of its own after a warm-up, since an idle thread
        # pool (torch's OpenMP threads, onnxruntime's spinning workers) keeps the cores busy for a
        # while and would be billed to whatever runs next; several passes spread load changes.
        blocks = {f"ort-{n}": (lambda s=s: s.run(None, {"clips": xn})) for n, s in sessions.items() if n != "unedited"}
        blocks.update({f"torch-{n}": (lambda h=heads[n]: run_torch(h, x)) for n in ("flat", "hierarchical")})
        per_pass = max(1, args.repeats // args.passes)
        for _ in range(args.passes):
            for name, fn in blocks.items():
                for _ in range(3):
                    fn()
                for _ in range(per_pass):
                    results.setdefault((name, batch), []).append(timed(fn))
        # edited against unedited: sessions without spinning, interleaved run by run, so the three
        # graphs see the same machine state and only their own work differs.
        quiet = {f"quiet-{n}": (lambda s=s: s.run(None, {"clips": xn})) for n, s in calm.items()}
        for fn in quiet.values():
            for _ in range(3):
                fn()
        order = list(quiet.items())
        for r in range(args.repeats):
            for name, fn in order[r % len(order):] + order[: r % len(order)]:  # rotate: no variant always goes first
                results.setdefault((name, batch), []).append(timed(fn))

    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"\nmedian latency (ms); torch and onnxruntime in blocks ({args.passes} x {per_pass} runs), "
          f"edited vs unedited interleaved without spinning ({args.repeats} runs)")
    print("| variant | " + " | ".join(f"batch {b}" for b in args.batches) + " |")
    print("|---|" + "---:|" * len(args.batches))
    for name in ["torch-flat", "torch-hierarchical", "ort-flat", "ort-hierarchical",
                 "quiet-unedited", "quiet-flat", "quiet-hierarchical"]:
        print(f"| {name} | " + " | ".join(f"{med[(name, b)]:.2f}" for b in args.batches) + " |")
    print("\nratios")
    for b in args.batches:
        print(f"batch {b}: torch / onnxruntime: flat edit {med[('torch-flat', b)] / med[('ort-flat', b)]:.2f}x, "
              f"hierarchical {med[('torch-hierarchical', b)] / med[('ort-hierarchical', b)]:.2f}x; "
              f"edited / unedited in onnxruntime: flat {med[('quiet-flat', b)] / med[('quiet-unedited', b)]:.3f}, "
              f"hierarchical {med[('quiet-hierarchical', b)] / med[('quiet-unedited', b)]:.3f}")
    for p in folder.iterdir():
        p.unlink()
    folder.rmdir()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
