"""Split latency per method on a 1000 x 768 head, k = 8 subs, text encoding excluded.

    python -m catsplit.bench.tools.split_speed [--repeats 10] [--encoder DIR] [--threads N] [--compare-training-threads]

The head's labels are SSv2-like ("<action> something <modifier>": 111 actions x 9 modifiers,
one action collapsed into a coarse class, plus single labels up to 1000 rows), its rows
action + modifier vectors + noise. Texts are encoded once up front by the real encoder and
served from a cache while timing, so the figures are the edit itself. Prints medians.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

MODIFIERS = [
    "from left to right", "from right to left", "up", "down", "towards the camera",
    "away from the camera", "onto something", "into something", "next to something",
]
NEW_MODIFIERS = ["behind something", "so that it spins", "slightly", "so that it falls off the table"]


def make_head(rows: int = 1000, dim: int = 768, seed: int = 0):
    """A compositional head of `rows` x `dim` with 'Action0 something' collapsed; and the 8 subs to split it into."""
    from catsplit import Head

    rng = np.random.default_rng(seed)
    n_actions = (rows - 1) // len(MODIFIERS)
    mod_vec = {m: rng.standard_normal(dim) * 0.5 for m in MODIFIERS + NEW_MODIFIERS}
    labels, weight = ["Action0 something"], [rng.standard_normal(dim)]
    for a in range(1, n_actions + 1):
        base = rng.standard_normal(dim)
        for m in MODIFIERS:
            labels.append(f"Action{a} something {m}")
            weight.append(base + mod_vec[m] + 0.1 * rng.standard_normal(dim))
    while len(labels) < rows:
        labels.append(f"Single class {len(labels)}")
        weight.append(rng.standard_normal(dim))
    head = Head(weight=np.asarray(weight, np.float32), bias=np.zeros(rows, np.float32), labels=labels)
    subs = [f"Action0 something {m}" for m in MODIFIERS[:4] + NEW_MODIFIERS]  # k = 8, half of them novel
    return head, "Action0 something", subs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--encoder", help="text encoder folder (default: MiniLM)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--compare-training-threads", action="store_true",
                        help="also time alignment with its training loop on torch's threads instead of one "
                        "(catsplit.training.one_thread), alternating the two, and say whether the rows agree")
    args = parser.parse_args(argv)

    import torch

    import catsplit
    from catsplit.encoders import load_text_encoder
    from catsplit.text import CachedEncoder

    if args.threads:
        torch.set_num_threads(args.threads)
    head, coarse, subs = make_head()
    encoder = CachedEncoder(load_text_encoder(args.encoder))
    print(f"head {head.num_classes} x {head.dim}, k = {len(subs)}, torch threads {torch.get_num_threads()}, "
          f"{args.repeats} repeats, text encoding excluded (cached)")
    print("| method | median ms | min ms | notes |")
    print("|---|---:|---:|---|")
    for method in ("coarse", "text", "retrieval", "alignment"):
        catsplit.split(head, encoder, coarse, subs, method=method)  # warm-up: fills the text cache, imports
        times, notes = [], ""
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            new = catsplit.split(head, encoder, coarse, subs, method=method)
            times.append(time.perf_counter() - t0)
        if method == "alignment":
            info = new.latest_record()["details"]["training"]
            notes = f"{info['pairs']} training pairs, stopped after {info['epochs']} epochs"
        print(f"| {method} | {1e3 * statistics.median(times):.1f} | {1e3 * min(times):.1f} | {notes} |")
    if args.compare_training_threads:
        compare_training_threads(head, encoder, coarse, subs, args.repeats)


def compare_training_threads(head, encoder, coarse, subs, repeats: int) -> None:
    """Alignment with its training loop on one thread (as shipped) and on torch's threads, alternating."""
    import contextlib

    import torch

    import catsplit
    import catsplit.methods.mlp as mlp

    shipped = mlp.one_thread
    times: dict[str, list[float]] = {"one thread": [], f"torch's {torch.get_num_threads()}": []}
    rows = {}
    try:
        for _ in range(repeats):
            for name, context in zip(times, (shipped, contextlib.nullcontext)):
                mlp.one_thread = context
                t0 = time.perf_counter()
                new = catsplit.split(head, encoder, coarse, subs, method="alignment")
                times[name].append(time.perf_counter() - t0)
                rows[name] = new.weight[-len(subs):]
    finally:
        mlp.one_thread = shipped
    a, b = rows.values()
    print("alignment, training threads: " + ", ".join(f"{k} {1e3 * statistics.median(v):.1f} ms" for k, v in times.items())
          + f" (median of {repeats}, alternating); sub rows bit-identical: {bool(torch.equal(a, b))}")


if __name__ == "__main__":
    main()
