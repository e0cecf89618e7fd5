"""What one clip shows and how it is rendered (ClipSpec), from a fine label and a world configuration."""
from __future__ import annotations

from dataclasses import dataclass

from catsplit.bench.world.config import WorldConfig
from catsplit.bench.world.taxonomy import Taxonomy
from catsplit.errors import CatsplitError


@dataclass(frozen=True)
class ClipSpec:
    """What to render: an action, a modifier and the rendering parameters."""

    action: str                        # key of ACTIONS
    modifier: str                      # key of MODIFIERS (must belong to the action)
    size: int = 32                     # frame height = width
    frames: int = 16                   # number of frames
    noise: float = 6.0                 # sensor noise std (uint8 levels)
    shake: float = 0.35                # camera shake std (pixels)
    max_distractors: int = 2           # static distractor objects: 0..max_distractors
    distractor_box: float = 0.35       # chance of a distractor box (no-relation clips)

    @classmethod
    def of(cls, tax: Taxonomy, label: str, config: WorldConfig) -> "ClipSpec":
        """The spec of a fine label under a world configuration."""
        if label not in tax.action_key:
            raise CatsplitError(f"{label!r} is not a fine label of the taxonomy")
        return cls(tax.action_key[label], tax.modifier_key[label], config.size, config.frames,
                   config.noise, config.shake, config.max_distractors, config.distractor_box)
