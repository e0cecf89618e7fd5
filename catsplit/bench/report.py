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


def _save(fig, plt, path: str | Path, layout: bool = True) -> None:
    """Write the figure atomically (a failed savefig leaves no half-written PNG). Whether an existing
    file may be replaced is decided before the run (`check_outputs`, --overwrite), so here it is."""
    from catsplit.io.atomic import atomic_path

    if layout:
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


#: the paper's SSv2-Split-A points (locality %, generality %), drawn for reference on every panel
PAPER_POINTS: tuple[tuple[str, float, float], ...] = (("paper: modifier alignment (SSv2-Split-A)", 98.9, 46.3),
                                                      ("paper: FG-CLIP (SSv2-Split-A)", 100.0, 30.9))
_STYLES = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "d", "8")
_REFERENCE_MARKERS = ("*", "p")  # the paper's points: never a method's marker


def _method_name(r: dict) -> str:
    return r["method"] + (" (hier.)" if r["mode"] == "hierarchical" else "")


def plot(results: Sequence[dict], path: str | Path, title: str = "catsplit bench",
         baseline: Sequence[dict] | None = None, labels: tuple[str, str] = ("pretrained", "scratch"),
         reference: Sequence[tuple[str, float, float]] = PAPER_POINTS) -> None:
    """Generality against locality: one panel per partition, one colour and marker per method (the same
    in every panel), a legend instead of text beside the points, error bars over seeds, the paper's
    reference points as grey stars / pentagons. With `baseline` (e.g. the from-scratch run) its points are hollow
    and `results`' filled, joined per method by a thin line; merge-zs-1shot-<w> rows are one line each.

    Args:
        results: result rows (each with "partition", or none for one panel).
        path: image file.
        title: figure title.
        baseline: rows of a second run to set against `results` (hollow markers).
        labels: names of `results` and `baseline` in the legend.
        reference: (name, locality, generality) points drawn on every panel.
    """
    plt = _pyplot()
    from matplotlib.lines import Line2D

    runs = [(list(results), True)] + ([(list(baseline), False)] if baseline else [])
    keep = lambda r: not (math.isnan(r["generality"]["mean"]) or math.isnan(r["locality"]["mean"]))  # noqa: E731
    parts = sorted({r.get("partition", "") for rows, _ in runs for r in rows})
    methods: list[str] = []
    for rows, _ in runs:
        for r in rows:
            if keep(r) and not r["method"].startswith(MERGE_PREFIX) and _method_name(r) not in methods:
                methods.append(_method_name(r))
    cmap = plt.get_cmap("tab20")
    colours = [cmap(2 * i) for i in range(10) if i != 7] + [cmap(2 * i + 1) for i in range(10) if i != 7]  # no grey: the paper's
    style = {m: (colours[i % len(colours)], _STYLES[i % len(_STYLES)]) for i, m in enumerate(methods)}
    fig, axes = plt.subplots(1, len(parts), figsize=(5.2 * len(parts) + 2.6, 4.8), sharey=True, squeeze=False)
    for ax, part in zip(axes[0], parts):
        where = {}
        for rows, filled in runs:
            mine = [r for r in rows if r.get("partition", "") == part and keep(r)]
            for pts in merge_curves(mine).values():
                ax.plot([r["locality"]["mean"] for _, r in pts], [r["generality"]["mean"] for _, r in pts],
                        "-" if filled else "--", color="0.55", lw=1)
            for r in mine:
                if r["method"].startswith(MERGE_PREFIX):
                    continue
                colour, marker = style[_method_name(r)]
                x, y = r["locality"]["mean"], r["generality"]["mean"]
                ax.errorbar(x, y, xerr=r["locality"]["std"], yerr=r["generality"]["std"], fmt=marker, ms=8,
                            color=colour, mfc=colour if filled else "white", mew=1.6, capsize=2, zorder=3)
                where.setdefault(_method_name(r), []).append((x, y))
        for pts in where.values():  # scratch -> pretrained of one method
            if len(pts) == 2:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "-", color="0.75", lw=0.8, zorder=1)
        for i, (name, x, y) in enumerate(reference):
            ax.plot(x, y, _REFERENCE_MARKERS[i % 2], ms=13, color="black", mfc="0.6", mew=1.0, zorder=2)
        ax.set_title(f"partition {part}" if part else title, fontsize=11)
        ax.set_xlabel("locality (%)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("generality (%)")
    handles = [Line2D([], [], ls="", marker=style[m][1], color=style[m][0], ms=8, label=m) for m in methods]
    if baseline:
        handles += [Line2D([], [], ls="", marker="o", color="0.2", ms=8, label=labels[0]),
                    Line2D([], [], ls="", marker="o", color="0.2", mfc="white", mew=1.6, ms=8, label=labels[1])]
    handles += [Line2D([], [], ls="", marker=_REFERENCE_MARKERS[i % 2], color="black", mfc="0.6", ms=12, label=n)
                for i, (n, _, _) in enumerate(reference)]
    fig.legend(handles=handles, loc="center right", fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=12)
    fig.tight_layout(rect=(0, 0, 1 - 2.6 / (5.2 * len(parts) + 2.6), 0.95))
    _save(fig, plt, path, layout=False)


def ablation_rows(pretrained: Sequence[dict], scratch: Sequence[dict]) -> list[dict]:
    """The ablation as data: per pretrained row (partition, method, mode) its generality and locality from scratch
    and pretrained (mean, std) and the generality difference; None where the scratch run lacks the row."""
    old = {(r.get("partition", ""), r["method"], r["mode"]): r for r in scratch}
    rows = []
    for r in pretrained:
        o = old.get((r.get("partition", ""), r["method"], r["mode"]))
        rows.append({
            "partition": r.get("partition", ""), "method": r["method"], "mode": r["mode"],
            "generality_scratch": o["generality"] if o else None, "generality_pretrained": r["generality"],
            "generality_delta": round(r["generality"]["mean"] - o["generality"]["mean"], 4) if o else None,
            "locality_scratch": o["locality"] if o else None, "locality_pretrained": r["locality"],
        })
    return rows


def ablation_table(pretrained: Sequence[dict], scratch: Sequence[dict], names: tuple[str, str] = ("scratch", "pretrained")) -> str:
    """The paper's pretraining ablation: generality / locality of every method, from scratch and pretrained,
    side by side, one table per partition (rows matched by method, mode and partition)."""
    def key(r):
        return (r.get("partition", ""), r["method"], r["mode"])

    old = {key(r): r for r in scratch}
    lines = []
    for part in sorted({r.get("partition", "") for r in pretrained}):
        lines += [f"**partition {part}**" if part else "", "",
                  f"| method | mode | generality {names[0]} | generality {names[1]} | Δ | locality {names[0]} | "
                  f"locality {names[1]} |", "|---|---|---:|---:|---:|---:|---:|"]
        for r in pretrained:
            if r.get("partition", "") != part:
                continue
            o = old.get(key(r))
            g0 = _fmt(o["generality"]) if o else "n/a"
            l0 = _fmt(o["locality"]) if o else "n/a"
            d = f"{r['generality']['mean'] - o['generality']['mean']:+.1f}" if o else "n/a"
            lines.append(f"| {r['method']} | {r['mode']} | {g0} | {_fmt(r['generality'])} | {d} | {l0} | "
                         f"{_fmt(r['locality'])} |")
        lines.append("")
    return "\n".join(lines).rstrip()
