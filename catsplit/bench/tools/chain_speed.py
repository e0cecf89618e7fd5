"""The cost of a chain of edits: k splits, then k unsplits, of a large head with groups and history.

    python -m catsplit.bench.tools.chain_speed [--labels 20000] [--edits 30] [--repeats 5]

Each edit makes a new immutable Head. Its history and groups must be passed on, not copied and
validated again, or a chain of k edits costs k times the whole history and all the groups (what
still is checked per edit: the undo tensors when the tables change, and on unsplit the restored
groups against the labels). Method `coarse` (no encoder), so the figures are the edit machinery
itself. Prints medians over the repeats.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def make_head(labels: int, dim: int = 64, seed: int = 0):
    """A head of `labels` rows in groups of 4 ("Action<g> something v<j>"), the groups given explicitly."""
    from catsplit import Head

    names = [f"Action{i // 4} something v{i % 4}" for i in range(labels)]
    groups = {f"Action{g} something": names[4 * g : 4 * g + 4] for g in range(labels // 4)}
    weight = np.random.default_rng(seed).standard_normal((labels, dim)).astype(np.float32)  # [C, D]
    return Head(weight=weight, bias=np.zeros(labels, np.float32), labels=names, groups=groups)


def main(argv: list[str] | None = None) -> None:
    import catsplit

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", type=int, default=20000, help="rows of the head (groups of 4)")
    ap.add_argument("--edits", type=int, default=30, help="splits in the chain (then as many unsplits)")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    head = make_head(args.labels)
    targets = head.labels[: 4 * args.edits : 4]
    split_s, unsplit_s = [], []
    for _ in range(args.repeats):
        h = head
        t0 = time.perf_counter()
        for c in targets:
            h = catsplit.split(h, None, c, [f"{c} left", f"{c} right"], method="coarse")
        t1 = time.perf_counter()
        for c in reversed(targets):
            h = catsplit.unsplit(h, c)
        t2 = time.perf_counter()
        if not h.equals(head):
            raise SystemExit("the unsplit chain did not restore the head bit for bit")
        split_s.append(t1 - t0)
        unsplit_s.append(t2 - t1)
    print(
        f"{args.labels} labels, {len(targets)} edits, {args.repeats} repeats: "
        f"splits {statistics.median(split_s):.2f} s (median), unsplits {statistics.median(unsplit_s):.2f} s"
    )


if __name__ == "__main__":
    main()
