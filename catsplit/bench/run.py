"""`catsplit bench`: run the protocol and write the table, the JSON and the plot.

Two sources: the paper's published layout with the user's features (`--annotations`), or the
rendered world that anyone can rebuild on a CPU (the default; see catsplit/bench/world/).
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from catsplit.bench import rows as table_methods
from catsplit.bench.protocol import run_protocol
from catsplit.bench.report import curve_plot, markdown_table, plot, write_json
from catsplit.errors import CatsplitError
from catsplit.io.atomic import atomic_path, check_destination, checked_path, make_folder, resolved


def versions() -> dict:
    import numpy
    import torch

    from catsplit._version import __version__

    return {"catsplit": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "machine": platform.machine()}


def finish(results: list[dict], config: dict, out: str | None, plot_path: str | None, title: str, overwrite: bool,
           merge_plot: str | None = None) -> dict:
    """Print the table; write the JSON and the plots."""
    data = {"config": config, "results": results}
    print(markdown_table(results, title))
    if out:
        write_json(out, data, overwrite=overwrite)
        print(f"\nwrote {out}", file=sys.stderr)
    if plot_path:
        plot(results, plot_path, title)
        print(f"wrote {plot_path}", file=sys.stderr)
    if merge_plot:
        curve_plot(results, merge_plot, f"{title}: zero-shot / one-shot merge")
        print(f"wrote {merge_plot}", file=sys.stderr)
    return data


def run_layout(annotations: str, features: str, head_path: str, *, partition: str = "A", methods: Sequence[str] = (),
               seeds: int = 3, encoder=None, out: str | None = None, plot_path: str | None = None,
               progress: bool = True, overwrite: bool = True, key: str | None = None, merge_plot: str | None = None) -> dict:
    """The protocol on the paper's layout (see catsplit/bench/layout.py) with the user's features and head."""
    from catsplit.bench.layout import read_layout
    from catsplit.io.loading import load_head

    t0 = time.time()
    labels = Path(annotations) / partition / "labels.json"
    try:  # a catsplit file carries its labels; anything else takes them from labels.json
        head = load_head(head_path, key=key)
    except CatsplitError:
        head = load_head(head_path, key=key, labels=str(labels))
    targets = read_layout(annotations, features, head, partition)
    specs = table_methods.specs(methods)
    check_merge_plot(merge_plot, specs)
    if not any(t.train_features is not None for t in targets):
        specs = [s for s in specs if not (s[0] == "oracle" or s[0].startswith(("finetune", "merge-zs-")))]
    built = [table_methods.build(name, mode, encoder) for name, mode in specs]
    results = run_protocol(head, targets, built, list(range(seeds)), progress=progress)
    config = {
        "source": "layout", "annotations": str(annotations), "features": str(features), "head": str(head_path),
        "partition": partition, "targets": [t.coarse for t in targets], "methods": [f"{n}:{m}" for n, m in specs],
        "seeds": list(range(seeds)), "encoder": getattr(encoder, "name", type(encoder).__name__),
        "versions": versions(), "seconds": round(time.time() - t0, 1),
    }
    return finish(results, config, out, plot_path, f"catsplit bench: {Path(annotations).name} partition {partition}", overwrite,
                  merge_plot)


def check_merge_plot(merge_plot: str | None, specs) -> None:
    """--merge-plot needs merge-zs-1shot-<w> rows; say so before the run, not after it."""
    from catsplit.bench.report import MERGE_PREFIX

    if merge_plot and not any(name.startswith(MERGE_PREFIX) for name, _ in specs):
        raise CatsplitError(f"--merge-plot draws the {MERGE_PREFIX}<w> rows; add some to --methods "
                            f"(e.g. {MERGE_PREFIX}0 {MERGE_PREFIX}0.5 {MERGE_PREFIX}1, or lowshot)")


# what matplotlib's savefig writes without extra packages (catsplit.bench.report passes the suffix as format)
PLOT_FORMATS = ("png", "pdf", "svg", "svgz", "eps", "ps", "jpg", "jpeg", "tif", "tiff", "webp", "pgf")


def check_outputs(out: str | None, plot_path: str | None, overwrite: bool, merge_plot: str | None = None) -> None:
    """Before the run, not after it: each output is a file name in an existing folder, new unless `overwrite`,
    no two outputs the same file, and the plots in a format matplotlib writes."""
    named = [("--out", out, "bench-results.json"), ("--plot", plot_path, "bench.png"), ("--merge-plot", merge_plot, "merge.png")]
    seen: dict[Path, str] = {}
    for option, p, example in named:
        if not p:
            continue
        path = resolved(check_destination(p, overwrite=overwrite, example=example))
        if path in seen:
            raise CatsplitError(f"{seen[path]} and {option} name the same file {p}; each output needs its own file")
        seen[path] = option
        suffix = path.suffix.lstrip(".").lower()
        if option != "--out" and suffix and suffix not in PLOT_FORMATS:
            raise CatsplitError(f"{option} {p}: unknown image format {suffix!r}; use one of {', '.join(PLOT_FORMATS)}")


def default_cache() -> Path:
    """$CATSPLIT_CACHE, else $XDG_CACHE_HOME/catsplit, else ~/.cache/catsplit."""
    import os

    if os.environ.get("CATSPLIT_CACHE"):
        return Path(os.environ["CATSPLIT_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "catsplit"


def world_targets(tax, collapsed: Sequence[str], feats: dict, split: str = "test") -> list:
    """Targets of a partition: every collapsed action, evaluated on all clips of `split` (test, or val
    for choices made before looking at the test clips); `feats` holds "<split>" and "<split>_labels"."""
    import numpy as np

    from catsplit.bench.protocol import Target

    coarse_of = tax.coarse_of
    fine_test = [tax.labels[i] for i in feats[f"{split}_labels"]]
    fine_train = [tax.labels[i] for i in feats["train_labels"]]
    targets = []
    for c in collapsed:
        truth = [f if coarse_of[f] == c else (coarse_of[f] if coarse_of[f] in collapsed else f) for f in fine_test]
        mine = np.array([coarse_of[f] == c for f in fine_train])
        targets.append(Target(
            coarse=c, subs=list(tax.fine[c]), features=feats[split], labels=truth,
            train_features=feats["train"][mine], train_labels=[f for f, k in zip(fine_train, mine) if k],
            other_features=feats["train"][~mine],
        ))
    return targets


def text_head_of(exported: dict):
    """A catsplit text head from a Text4Vis model's head (rows = scale * unit text embeddings)."""
    import numpy as np

    from catsplit.head import Head

    rows = np.asarray(exported["weight"], dtype=np.float32) / exported["scale"]
    return Head(weight=rows, labels=exported["labels"], kind="text", scale=float(exported["scale"]),
                templates=tuple(exported["templates"]))


def base_head(model, kind: str):
    """The catsplit Head of a trained base model: plain linear, or a text head for the Text4Vis model."""
    from catsplit.bench import models
    from catsplit.head import Head

    exported = models.export_head(model)
    if kind == "linear":
        return Head(weight=exported["weight"], bias=exported["bias"], labels=exported["labels"])
    return text_head_of(exported)


def cached_features(path: Path, make: Callable[[], dict]) -> dict:
    """The arrays of an .npz cache file; if it is missing, `make()` them and write it atomically."""
    import numpy as np

    if not path.exists():
        arrays = make()
        # overwrite: a concurrent run that wrote the same configuration's file first wrote the same arrays
        with atomic_path(path, overwrite=True, example="features.npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return read_features(path)


def read_features(path: str | os.PathLike) -> dict:
    """Every array of a features .npz file of the cache, read into memory and checked (`catsplit.io.arrays`)."""
    from catsplit.io.arrays import read_arrays

    try:
        return read_arrays(path, "cached features file")
    except CatsplitError as exc:
        raise CatsplitError(f"{exc}. Delete it to have it computed again") from None


def cache_key(world_config, train_config, partition_seed: int, encoder_name: str) -> str:
    """The folder name of a configuration's base models and features under ``<cache>/bench``.

    ``TrainConfig.key_dict``: with ``pretrain="none"`` it hashes exactly what the from-scratch models always
    hashed, so their caches (and the published folder names) stay valid."""
    import hashlib
    import json

    blob = {"world": world_config.key(), "train": train_config.key_dict(), "partition_seed": int(partition_seed),
            "encoder": encoder_name}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


def run_world(*, quick: bool = False, seeds: int | None = None, cache: str | None = None, world_seed: int = 0,
              partition_seed: int = 0, methods: Sequence[str] = (), encoder=None, out: str | None = None,
              plot_path: str | None = None, progress: bool = True, overwrite: bool = False,
              world_config=None, train_config=None, merge_plot: str | None = None, eval_split: str = "test",
              world_options: Sequence[str] = (), train_options: Sequence[str] = ()) -> dict:
    """Generate the world, train the base models of both partitions (cached), run the protocol.

    Args:
        quick: the CI-sized world and training (1 seed unless `seeds` says otherwise).
        seeds: seeds per method (default 3, or 1 with `quick`).
        cache: cache root (default `default_cache()`); data-derived files live under a configuration hash.
        world_seed, partition_seed: the world's and the A/B partition's seeds.
        methods: table rows ("alignment", "alignment:hierarchical", ...); default `methods.DEFAULT`.
        encoder: text encoder (the label texts of the Text4Vis model and the zero-shot methods).
        out, plot_path: results JSON and PNG plot to write.
        merge_plot: PNG of the merge-zs-1shot-<w> rows' generality–locality curve.
        world_config, train_config: replace the presets (tests use tiny ones).
        world_options, train_options: "key=value" changes to single fields of the world / training
            configuration (CLI --world-option / --train-option); the world's seed is `world_seed`.
        eval_split: "test" (the results) or "val": the same protocol on the validation clips, for
            choosing a world, a model or a method setting without looking at the test clips.
    Returns:
        {"config": ..., "results": [...]} as written to `out`.
    """
    import hashlib
    import json

    from catsplit.bench import models, world
    from catsplit.bench.options import override

    if eval_split not in ("test", "val"):
        raise CatsplitError(f"eval_split must be 'test' or 'val', got {eval_split!r}")
    t0 = time.time()
    wc = world_config or (world.WorldConfig.quick(seed=world_seed) if quick else world.WorldConfig(seed=world_seed))
    tc = train_config or (models.TrainConfig.quick() if quick else models.TrainConfig())
    wc = override(wc, world_options, "--world-option",
                  reserved={"seed": "the world's seed has its own flag; use --world-seed"})
    tc = override(tc, train_options, "--train-option")
    n_seeds = seeds or (1 if quick else 3)
    enc_name = getattr(encoder, "name", type(encoder).__name__)
    from catsplit.bench.pretrain import cached_backbone, check_recipe

    check_recipe(tc.pretrain)
    key = cache_key(wc, tc, partition_seed, enc_name)
    cache_dir = default_cache() / "bench" / key if cache is None else checked_path(cache, "--cache") / "bench" / key
    make_folder(cache_dir, "cache folder", "pass --cache FOLDER (or set CATSPLIT_CACHE) to one you can write")
    tax = world.taxonomy(wc)
    parts = dict(zip("AB", world.partition(tax, partition_seed)))
    dataset = None

    def data():
        nonlocal dataset
        if dataset is None:
            import os

            dataset = world.generate(wc, progress=progress, workers=min(2, os.cpu_count() or 1))
        return dataset

    pretrained = {}  # the one pretrained backbone of this configuration, shared by every base model

    def backbone():
        if tc.pretrain == "none":
            return None
        if "state" not in pretrained:
            import os

            state, meta, hit = cached_backbone(str(cache_dir.parent), wc, tc, progress, workers=min(2, os.cpu_count() or 1))
            pretrained.update(state=state, meta=dict(meta, from_cache=hit))
        return pretrained["state"]

    specs = table_methods.specs(methods)
    check_merge_plot(merge_plot, specs)
    results, base_models = [], {}
    for pname, collapsed in parts.items():
        for kind in ("linear", "text4vis"):
            model, report, cached = models.cached_train(
                str(cache_dir), f"{pname}-{kind}",
                lambda kind=kind, collapsed=collapsed: models.train_base(data(), collapsed, kind, tc, encoder, progress,
                                                                         backbone()), tc)
            base_models[f"{pname}-{kind}"] = {"val_acc": 100 * report.val_acc, "test_acc": 100 * report.test_acc,
                                              "labels": len(report.labels), "from_cache": cached}
            def features_of(*splits, model=model):
                d = data()
                out = {}
                for sp in splits:
                    out[sp], out[f"{sp}_labels"] = models.extract_features(model, d[sp].clips), d[sp].labels
                return out

            feats = cached_features(cache_dir / f"{pname}-{kind}-features.npz", lambda: features_of("train", "test"))
            if eval_split == "val":  # val features live in their own file: test-only runs never pay for them
                feats.update(cached_features(cache_dir / f"{pname}-{kind}-val-features.npz", lambda: features_of("val")))
            head = base_head(model, kind)
            targets = world_targets(tax, collapsed, feats, eval_split)
            if kind == "linear":
                built = [table_methods.build(n, m, encoder) for n, m in specs]
            else:
                built = [table_methods.zero_shot("text", mode, encoder) for mode in ("flat", "hierarchical")]
                for b in built:
                    b.name = "text4vis"
            for r in run_protocol(head, targets, built, list(range(n_seeds)), progress=progress,
                                  desc=f"evaluating {pname}-{kind}"):
                r["partition"] = pname
                results.append(r)
    config = {
        "source": "world", "quick": quick, "eval_split": eval_split, "world": wc.to_dict(), "train": tc.to_dict(), "partition_seed": partition_seed,
        "partitions": parts, "methods": [f"{n}:{m}" for n, m in specs] + ["text4vis:flat", "text4vis:hierarchical"],
        "seeds": list(range(n_seeds)), "encoder": enc_name, "cache": str(cache_dir), "base_models": base_models,
        "pretrain": pretrained.get("meta", {"recipe": tc.pretrain, "from_cache": "models"}),
        "versions": versions(), "seconds": round(time.time() - t0, 1),
    }
    data_out = {"config": config, "results": results}
    for pname in parts:
        rows = [r for r in results if r["partition"] == pname]
        on = "" if eval_split == "test" else ", measured on the VAL clips"
        print(markdown_table(rows, f"partition {pname}: {len(parts[pname])} targets{on}"))
        print()
    print("base models (top-1 %, mixed-granularity labels): " + ", ".join(
        f"{k} val {v['val_acc']:.1f} / test {v['test_acc']:.1f}" for k, v in base_models.items()))
    if out:
        write_json(out, data_out, overwrite=overwrite)
        print(f"wrote {out}", file=sys.stderr)
    if plot_path:
        plot(results, plot_path, "catsplit bench (rendered world)")
        print(f"wrote {plot_path}", file=sys.stderr)
    if merge_plot:
        curve_plot(results, merge_plot, "rendered world: zero-shot / one-shot merge")
        print(f"wrote {merge_plot}", file=sys.stderr)
    return data_out
