"""The data set: rendering every split of a world configuration (generate) into a Dataset."""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from catsplit.bench.world.actions import render_clip
from catsplit.bench.world.clip_spec import ClipSpec
from catsplit.bench.world.config import WorldConfig
from catsplit.bench.world.taxonomy import PRETRAIN_ACTIONS, SPLITS, Taxonomy, taxonomy
from catsplit.errors import CatsplitError
from catsplit.progress import Progress


@dataclass
class Split:
    """One split: clips and their fine labels."""

    clips: np.ndarray                  # uint8 [N, T, H, W, 3]
    labels: np.ndarray                 # int64 [N] indices into Dataset.labels

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class Dataset:
    """The generated world: taxonomy, config and the train / val / test splits."""

    config: WorldConfig
    taxonomy: Taxonomy
    splits: Dict[str, Split]

    @property
    def labels(self) -> List[str]:
        """Fine label texts; ``Split.labels`` index into this list."""
        return self.taxonomy.labels

    def __getitem__(self, split: str) -> Split:
        if split not in self.splits:
            raise CatsplitError(f"no split {split!r}; have {list(self.splits)}")
        return self.splits[split]

    def label_names(self, split: str) -> List[str]:
        """Fine label strings of every clip of a split."""
        labels = self.labels
        return [labels[i] for i in self[split].labels.tolist()]


def clip_rng(seed: int, split: str, label: str, index: int) -> np.random.Generator:
    """The generator of one clip: depends on the seed, split, label text and clip index only."""
    code = zlib.crc32(label.encode("utf-8"))
    return np.random.default_rng([int(seed), SPLITS.index(split) + 1, code, int(index)])


def _render_label(args: Tuple[WorldConfig, str, str, int, int, bool]) -> np.ndarray:
    """Render clips [start, start + n) of one fine label of one split: uint8 [n, T, H, W, 3]
    (of the pretraining world's verbs when the last field is True)."""
    config, split, label, start, n, pretraining = args
    tax = taxonomy(config, PRETRAIN_ACTIONS if pretraining else None)
    spec = ClipSpec.of(tax, label, config)
    out = np.empty((n, config.frames, config.size, config.size, 3), dtype=np.uint8)
    for i in range(n):
        out[i] = render_clip(spec, clip_rng(config.seed, split, label, start + i))
    return out


def generate(config: WorldConfig = WorldConfig(), progress: bool = True,
             splits: Sequence[str] = SPLITS, workers: int = 1, pretraining: bool = False) -> Dataset:
    """Render the whole data set.

    Args:
        config: the world configuration.
        progress: draw a progress bar on stderr (only when it is a TTY).
        splits: which splits to render.
        workers: processes to render with (>1 uses multiprocessing; the clips are identical
            whatever the number of workers, since every clip has its own seed).
        pretraining: render the pretraining world's verbs (``PRETRAIN_ACTIONS``, catsplit.bench.pretrain)
            instead of the benchmark's actions; ``config.actions`` then names pretraining verbs.

    Returns:
        A Dataset; within a split, clips are ordered by fine label, then clip index.
    """
    tax = taxonomy(config, PRETRAIN_ACTIONS if pretraining else None)
    labels = tax.labels
    counts = config.counts()
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise CatsplitError(f"unknown splits {unknown}; choose from {list(SPLITS)}")
    total = sum(counts[s] * len(labels) for s in splits)
    T, S = config.frames, config.size
    out: Dict[str, Split] = {}
    jobs = [(config, split, label, 0, counts[split], pretraining) for split in splits for label in labels]
    pool = None
    if workers > 1:
        import multiprocessing as mp
        methods = mp.get_all_start_methods()
        ctx = mp.get_context("fork" if "fork" in methods else methods[0])
        pool = ctx.Pool(int(workers))
        results = pool.imap(_render_label, jobs)
    else:
        results = map(_render_label, jobs)
    try:
        with Progress(total, "rendering", enabled=progress) as bar:
            for split in splits:
                n = counts[split]
                clips = np.empty((n * len(labels), T, S, S, 3), dtype=np.uint8)  # [N, T, H, W, 3]
                y = np.repeat(np.arange(len(labels), dtype=np.int64), n)
                for li in range(len(labels)):
                    clips[li * n:(li + 1) * n] = next(results)
                    bar.update(n, postfix=split)
                out[split] = Split(clips, y)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    return Dataset(config, tax, out)
