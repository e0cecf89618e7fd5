"""What a benchmark run leaves behind: a markdown table, a JSON file, a generality/locality plot."""

from __future__ import annotations

import json
import math
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
    """Write JSON atomically (catsplit.io.atomic: temp file in the same folder, fsync, rename)."""
    from catsplit.io.atomic import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, overwrite=overwrite, example="results.json") as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, allow_nan=True)


MERGE_PREFIX = "merge-zs-1shot-"


def _pyplot():
    from catsplit.optional import require_matplotlib

    require_matplotlib("the plot").use("Agg")
    import matplotlib.pyplot as plt

    return plt


def merge_curves(results: Sequence[dict]) -> dict[str, list[tuple[float, dict]]]:
    """The merge-zs-1shot-<w> rows as curves: 'A' (or 'A, hierarchical', '' without partitions) ->
    [(w, row), ...] sorted by w."""
    curves: dict[str, list[tuple[float, dict]]] = {}
    for r in results:
        if not r["method"].startswith(MERGE_PREFIX):
            continue
        try:
            w = float(r["method"][len(MERGE_PREFIX):])
        except ValueError:
            continue
        name = ", ".join(x for x in (r.get("partition", ""), "hierarchical" if r["mode"] == "hierarchical" else "") if x)
        curves.setdefault(name, []).append((w, r))
    return {k: sorted(v, key=lambda wr: wr[0]) for k, v in curves.items()}


def _save(fig, plt, path: str | Path) -> None:
    """Write the figure atomically (a failed savefig leaves no half-written PNG). Whether an existing
    file may be replaced is decided before the run (`check_outputs`, --overwrite), so here it is."""
    from catsplit.io.atomic import atomic_path

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path, overwrite=True, example="plot.png") as tmp:
            fig.savefig(tmp, dpi=120, format=path.suffix.lstrip(".").lower() or "png")
    finally:
        plt.close(fig)


def curve_plot(results: Sequence[dict], path: str | Path, title: str = "merge of a zero-shot and a one-shot head") -> None:
    """The generality–locality curve of the merge-zs-1shot-<w> rows: one line per partition (and mode)
    from w = 0 (the zero-shot alignment edit) to w = 1 (its one-shot fine-tune), each point labelled
    with w and the mean of generality and locality; the dotted line through a curve's best point has
    that mean everywhere (points above it have a higher mean)."""
    curves = merge_curves(results)
    if not curves:
        raise CatsplitError(f"no {MERGE_PREFIX}<w> rows to draw; add e.g. --methods {MERGE_PREFIX}0 {MERGE_PREFIX}0.5 {MERGE_PREFIX}1")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    for name, pts in curves.items():
        loc = [r["locality"]["mean"] for _, r in pts]
        gen = [r["generality"]["mean"] for _, r in pts]
        line = ax.errorbar(loc, gen, xerr=[r["locality"]["std"] for _, r in pts],
                           yerr=[r["generality"]["std"] for _, r in pts], fmt="-o", capsize=3,
                           label=f"partition {name}" if name else "merge")
        for (w, r), x, y in zip(pts, loc, gen):
            ax.annotate(f"w={w:g} ({(x + y) / 2:.1f})", (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
        best = max(range(len(pts)), key=lambda i: (loc[i] + gen[i]) / 2)
        xs = [min(loc) - 0.5, max(loc) + 0.5]
        ax.plot(xs, [loc[best] + gen[best] - x for x in xs], ":", color=line[0].get_color(), alpha=0.6)
    ax.set_xlabel("locality (%)")
    ax.set_ylabel("generality (%)")
    ax.set_title(title + "\nw = weight of the one-shot head; (mean of generality and locality)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, plt, path)


def plot(results: Sequence[dict], path: str | Path, title: str = "catsplit bench") -> None:
    """Generality against locality, one point per method (and mode), error bars over seeds;
    merge-zs-1shot-<w> rows are joined by a line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    for pts in merge_curves(results).values():
        ax.plot([r["locality"]["mean"] for _, r in pts], [r["generality"]["mean"] for _, r in pts], "-", color="0.6", lw=1)
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
    _save(fig, plt, path)
