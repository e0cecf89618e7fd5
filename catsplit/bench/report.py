"""What a benchmark run leaves behind: a markdown table, a JSON file, a generality/locality plot."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Sequence

from catsplit.errors import CatsplitError


def _fmt(stat: dict) -> str:
    if stat is None or math.isnan(stat["mean"]):
        return "n/a"
    return f"{stat['mean']:.1f} ± {stat['std']:.1f}"


def markdown_table(results: Sequence[dict], title: str | None = None) -> str:
    """One row per method: generality, locality, agreement, mean score (percent, mean ± std over seeds)."""
    lines = [f"**{title}**", ""] if title else []
    lines += ["| method | mode | generality | locality | agreement | mean | seeds |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(
            f"| {r['method']} | {r['mode']} | {_fmt(r['generality'])} | {_fmt(r['locality'])} | "
            f"{_fmt(r['agreement'])} | {_fmt(r['mean_score'])} | {len(r['seeds'])} |"
        )
    return "\n".join(lines)


def write_json(path: str | Path, data: dict, overwrite: bool = True) -> None:
    """Write JSON atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise CatsplitError(f"{path} exists; pass --overwrite or choose another name")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, allow_nan=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def plot(results: Sequence[dict], path: str | Path, title: str = "catsplit bench") -> None:
    """Generality against locality, one point per method (and mode), error bars over seeds."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CatsplitError("the plot needs matplotlib: pip install matplotlib (or pip install -e '.[bench]')") from None
    fig, ax = plt.subplots(figsize=(7, 5))
    for r in results:
        g, loc = r["generality"], r["locality"]
        if math.isnan(g["mean"]) or math.isnan(loc["mean"]):
            continue
        marker = "s" if r["mode"] == "hierarchical" else "o"
        ax.errorbar(loc["mean"], g["mean"], xerr=loc["std"], yerr=g["std"], fmt=marker, capsize=3)
        label = r["method"] + (" (hier.)" if r["mode"] == "hierarchical" else "") + (f" [{r['partition']}]" if "partition" in r else "")
        ax.annotate(label, (loc["mean"], g["mean"]), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xlabel("locality (%)")
    ax.set_ylabel("generality (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
