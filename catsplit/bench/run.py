"""`catsplit bench`: run the protocol and write the table, the JSON and the plot.

Two sources: the paper's published layout with the user's features (`--annotations`), or the
rendered world that anyone can rebuild on a CPU (the default; see catsplit/bench/world.py).
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path
from typing import Sequence

from catsplit.bench import methods as table_methods
from catsplit.bench.protocol import run_protocol
from catsplit.bench.report import markdown_table, plot, write_json
from catsplit.errors import CatsplitError


def versions() -> dict:
    import numpy
    import torch

    from catsplit._version import __version__

    return {"catsplit": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "machine": platform.machine()}


def finish(results: list[dict], config: dict, out: str | None, plot_path: str | None, title: str, overwrite: bool) -> dict:
    """Print the table; write the JSON and the plot."""
    data = {"config": config, "results": results}
    print(markdown_table(results, title))
    if out:
        write_json(out, data, overwrite=overwrite)
        print(f"\nwrote {out}", file=sys.stderr)
    if plot_path:
        plot(results, plot_path, title)
        print(f"wrote {plot_path}", file=sys.stderr)
    return data


def run_layout(annotations: str, features: str, head_path: str, *, partition: str = "A", methods: Sequence[str] = (),
               seeds: int = 3, encoder=None, out: str | None = None, plot_path: str | None = None,
               progress: bool = True, overwrite: bool = True, key: str | None = None) -> dict:
    """The protocol on the paper's layout (see catsplit/bench/layout.py) with the user's features and head."""
    from catsplit.bench.layout import read_layout
    from catsplit.headfile import load_head

    t0 = time.time()
    labels = Path(annotations) / partition / "labels.json"
    try:  # a catsplit file carries its labels; anything else takes them from labels.json
        head = load_head(head_path, key=key)
    except CatsplitError:
        head = load_head(head_path, key=key, labels=str(labels))
    targets = read_layout(annotations, features, head, partition)
    specs = [table_methods.parse(m) for m in methods] or table_methods.DEFAULT
    if not any(t.train_features is not None for t in targets):
        specs = [s for s in specs if not (s[0] == "oracle" or s[0].startswith("finetune"))]
    built = [table_methods.build(name, mode, encoder) for name, mode in specs]
    results = run_protocol(head, targets, built, list(range(seeds)), progress=progress)
    config = {
        "source": "layout", "annotations": str(annotations), "features": str(features), "head": str(head_path),
        "partition": partition, "targets": [t.coarse for t in targets], "methods": [f"{n}:{m}" for n, m in specs],
        "seeds": list(range(seeds)), "encoder": getattr(encoder, "name", type(encoder).__name__),
        "versions": versions(), "seconds": round(time.time() - t0, 1),
    }
    return finish(results, config, out, plot_path, f"catsplit bench: {Path(annotations).name} partition {partition}", overwrite)


def check_outputs(out: str | None, plot_path: str | None, overwrite: bool) -> None:
    for p in (out, plot_path):
        if p and Path(p).exists() and not overwrite:
            raise CatsplitError(f"{p} exists; pass --overwrite or choose another name")


def run_world(**kwargs) -> dict:
    raise CatsplitError("the rendered world is not wired in yet")
