"""Everything that determines the generated data set (WorldConfig), and the rendering version
(WORLD_VERSION) that its cache key includes."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Dict, Optional, Tuple


@dataclass(frozen=True)
class WorldConfig:
    """Everything that determines the generated data set.

    Defaults are the full benchmark (95 fine labels, 220 clips each: 20,900 clips, ~1.03 GB);
    ``WorldConfig.quick()`` is the CI-sized version (52 clips per label: 4,940 clips).
    """

    seed: int = 0                      # master seed: same seed -> bit-identical clips
    n_train: int = 150                 # training clips per fine label
    n_val: int = 30                    # validation clips per fine label (model selection)
    n_test: int = 40                   # test clips per fine label (never used for tuning)
    size: int = 32                     # frame height = width in pixels
    frames: int = 16                   # frames per clip
    noise: float = 6.0                 # std of per-pixel, per-frame sensor noise (uint8 levels)
    shake: float = 0.35                # std of camera shake in pixels (smoothed random walk)
    max_distractors: int = 2           # static distractor objects per clip: 0..max_distractors
    distractor_box: float = 0.35       # chance of a distractor box in clips without a relation
    actions: Optional[Tuple[str, ...]] = None  # action keys to include (None: all 16)

    @classmethod
    def quick(cls, seed: int = 0, **kw) -> "WorldConfig":
        """The CI preset: same world, 30 train / 10 val / 12 test clips per fine label."""
        base = dict(seed=seed, n_train=30, n_val=10, n_test=12)
        base.update(kw)
        return cls(**base)

    def counts(self) -> Dict[str, int]:
        """Clips per fine label for each split."""
        return {"train": self.n_train, "val": self.n_val, "test": self.n_test}

    def to_dict(self) -> dict:
        """JSON-friendly dict (for results files and cache keys)."""
        d = dataclasses.asdict(self)
        d["actions"] = None if self.actions is None else list(self.actions)
        return d

    def key(self) -> str:
        """A short stable hash of the configuration (for cache directories)."""
        blob = json.dumps({"world": self.to_dict(), "version": WORLD_VERSION}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


WORLD_VERSION = 3  # bump when rendering or the taxonomy changes, so caches keyed by WorldConfig.key() refresh
# v3: every shared modifier in >= 4 actions (95 labels, was 87); larger objects when squeezing
