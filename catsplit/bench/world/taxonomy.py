"""The label structure of the world: actions and modifiers with their texts, the Taxonomy built from
them, the seeded A/B partition of the actions and the mixed-granularity labels."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from catsplit.bench.world.config import WorldConfig
from catsplit.errors import CatsplitError


#: modifier key -> modifier text (appended to the coarse action text with one space)
MODIFIERS: Dict[str, str] = {
    "lr": "from left to right",
    "rl": "from right to left",
    "up": "up",
    "down": "down",
    "tow": "towards the camera",
    "away": "away from the camera",
    "onto": "onto something",
    "into": "into something",
    "next": "next to something",
    "behind": "behind something",
    "fall": "so that it falls off the table",
    "almost": "so that it almost falls off but doesn't",
    "one": "on its own",
    "two": "together with another thing",
    "three": "together with two other things",
    "pretend": "but only pretending",
    "spin": "so that it spins",
    "slight": "slightly",
    # novel modifiers: each belongs to one action only
    "circle": "in a circle",
    "edge": "on the edge of something so that it falls down",
    "bounce": "so that it bounces",
    "front": "in front of something",
    "upside": "upside down",
}

#: modifier key -> family name
MODIFIER_FAMILY: Dict[str, str] = {
    "lr": "direction", "rl": "direction", "up": "direction", "down": "direction",
    "tow": "direction", "away": "direction",
    "onto": "relation", "into": "relation", "next": "relation", "behind": "relation",
    "fall": "outcome", "almost": "outcome",
    "one": "count", "two": "count", "three": "count",
    "pretend": "pretending", "spin": "manner", "slight": "manner",
    "circle": "novel", "edge": "novel", "bounce": "novel", "front": "novel", "upside": "novel",
}

#: action key -> (coarse text, modifier keys in label order)
ACTIONS: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    "push": ("Pushing something", ("lr", "rl", "up", "away", "fall", "almost", "slight", "pretend")),
    "pull": ("Pulling something", ("lr", "rl", "down", "tow", "onto", "next", "slight", "pretend")),
    "move": ("Moving something", ("lr", "rl", "up", "down", "tow", "away", "behind", "circle")),
    "slide": ("Sliding something", ("lr", "rl", "tow", "away", "down", "into", "fall", "spin")),
    "throw": ("Throwing something", ("lr", "rl", "up", "down", "onto", "into")),
    "poke": ("Poking something", ("slight", "spin", "fall", "almost", "pretend")),
    "roll": ("Rolling something", ("lr", "rl", "tow", "away", "almost")),
    "pick": ("Picking something up", ("one", "two", "three", "slight", "pretend")),
    "put": ("Putting something", ("onto", "into", "next", "behind", "two", "edge")),
    "drop": ("Dropping something", ("onto", "into", "next", "behind", "bounce")),
    "hold": ("Holding something", ("next", "behind", "front", "one", "two")),
    "squeeze": ("Squeezing something", ("one", "two", "three", "slight", "pretend")),
    "turn": ("Turning something", ("upside", "slight", "spin", "pretend")),
    "cover": ("Covering something", ("one", "two", "three", "slight", "pretend")),
    "hit": ("Hitting something", ("lr", "rl", "up", "spin", "fall", "almost", "pretend")),
    "lift": ("Lifting something", ("up", "two", "three", "slight", "pretend")),
}

SPLITS: Tuple[str, ...] = ("train", "val", "test")

#: the pretraining world's verbs (catsplit.bench.pretrain): action key -> (coarse text, modifier keys). New
#: hand / timing combinations of the benchmark's choreographies (actions._build) with the SHARED modifier
#: vocabulary only; no text and no key is a benchmark action's, so pretraining holds no label of the benchmark
#: (tests/bench/test_bench_pretrain.py checks it). Kinetics shares motion with SSv2 in the same way.
PRETRAIN_ACTIONS: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    "nudge": ("Nudging something", ("lr", "rl", "up", "tow", "away", "onto", "next", "fall", "almost", "spin",
                                    "slight", "pretend")),
    "tap": ("Tapping something", ("lr", "rl", "down", "away", "into", "behind", "fall", "almost", "spin", "slight",
                                  "pretend")),
    "shove": ("Shoving something", ("lr", "rl", "up", "down", "tow", "into", "next", "behind", "fall", "spin",
                                    "slight", "pretend")),
    "flick": ("Flicking something", ("lr", "rl", "tow", "away", "onto", "behind", "fall", "almost", "spin",
                                     "pretend")),
    "carry": ("Carrying something", ("lr", "rl", "up", "down", "tow", "away", "onto", "into", "next", "behind",
                                     "one", "two", "three", "slight", "pretend")),
}



@dataclass(frozen=True)
class Taxonomy:
    """The label structure of the world.

    Attributes:
        coarse: coarse action texts, in a fixed order.
        fine: coarse text -> its fine label texts (each = coarse + " " + modifier).
        modifier: fine label -> its modifier text.
        action_key / modifier_key: fine label -> internal keys used by the renderer.
        novel: modifier texts that occur in exactly one action.
    """

    coarse: List[str]
    fine: Dict[str, List[str]]
    modifier: Dict[str, str]
    action_key: Dict[str, str]
    modifier_key: Dict[str, str]
    novel: List[str]

    @property
    def labels(self) -> List[str]:
        """All fine labels, grouped by coarse action (the index order of ``Dataset`` labels)."""
        return [f for c in self.coarse for f in self.fine[c]]

    @property
    def coarse_of(self) -> Dict[str, str]:
        """Fine label -> its coarse action text."""
        return {f: c for c in self.coarse for f in self.fine[c]}

    @property
    def shared(self) -> List[str]:
        """Modifier texts that occur in at least two actions."""
        count: Dict[str, int] = {}
        for c in self.coarse:
            for f in self.fine[c]:
                count[self.modifier[f]] = count.get(self.modifier[f], 0) + 1
        return sorted(m for m, k in count.items() if k >= 2)

    def group_scheme(self) -> Dict[str, List[str]]:
        """``{coarse: [fine, ...]}`` as in the paper's ``group_scheme.json``."""
        return {c: list(self.fine[c]) for c in self.coarse}


def taxonomy(config: Optional["WorldConfig"] = None,
             table: Optional[Dict[str, Tuple[str, Tuple[str, ...]]]] = None) -> Taxonomy:
    """Build the taxonomy (optionally restricted to ``config.actions``).

    Args:
        config: a WorldConfig; only its ``actions`` field matters (None: all 16 actions).
        table: the action table (None: the benchmark's ``ACTIONS``; the pretraining world passes
            ``PRETRAIN_ACTIONS``).

    Returns:
        The Taxonomy.
    """
    table = ACTIONS if table is None else table
    keys = list(table) if config is None or config.actions is None else list(config.actions)
    unknown = [k for k in keys if k not in table]
    if unknown:
        raise CatsplitError(f"unknown action keys {unknown}; choose from {sorted(table)}")
    if len(set(keys)) != len(keys) or len(keys) < 2:
        raise CatsplitError(f"actions must be >= 2 distinct keys, got {keys}")
    coarse, fine, modifier, akey, mkey = [], {}, {}, {}, {}
    for a in keys:
        text, mods = table[a]
        coarse.append(text)
        fine[text] = []
        for m in mods:
            label = f"{text} {MODIFIERS[m]}"
            fine[text].append(label)
            modifier[label] = MODIFIERS[m]
            akey[label] = a
            mkey[label] = m
    uses: Dict[str, int] = {}
    for label, m in mkey.items():
        uses[m] = uses.get(m, 0) + 1
    novel = sorted(MODIFIERS[m] for m, k in uses.items() if k == 1)
    return Taxonomy(coarse, fine, modifier, akey, mkey, novel)


def partition(tax: Taxonomy, seed: int) -> Tuple[List[str], List[str]]:
    """Split the coarse actions into two halves A and B (seeded, disjoint, covering).

    Args:
        tax: the taxonomy.
        seed: partition seed.

    Returns:
        (A, B): coarse texts, each in taxonomy order; ``len(A) = len(coarse) // 2``.
    """
    rng = np.random.default_rng([int(seed), 0x9A27])
    order = rng.permutation(len(tax.coarse))
    half = len(tax.coarse) // 2
    a_idx, b_idx = set(order[:half].tolist()), set(order[half:].tolist())
    A = [c for i, c in enumerate(tax.coarse) if i in a_idx]
    B = [c for i, c in enumerate(tax.coarse) if i in b_idx]
    return A, B


def mixed_labels(tax: Taxonomy, collapsed: Sequence[str]) -> Tuple[List[str], Dict[str, str]]:
    """The mixed-granularity label set: collapsed actions keep only their coarse label.

    Args:
        tax: the taxonomy.
        collapsed: coarse texts whose fine labels are merged into the coarse label
            (partition A's base model collapses A).

    Returns:
        (labels, mapping): labels in taxonomy order (a collapsed action contributes its coarse
        text, any other action its fine labels); mapping: every fine label -> its mixed label.
    """
    collapsed = list(collapsed)
    unknown = [c for c in collapsed if c not in tax.fine]
    if unknown:
        raise CatsplitError(f"collapsed actions {unknown} are not coarse labels of the taxonomy")
    labels: List[str] = []
    mapping: Dict[str, str] = {}
    for c in tax.coarse:
        if c in collapsed:
            labels.append(c)
            for f in tax.fine[c]:
                mapping[f] = c
        else:
            for f in tax.fine[c]:
                labels.append(f)
                mapping[f] = f
    return labels, mapping


def mixed_targets(tax: Taxonomy, fine_index: np.ndarray, collapsed: Sequence[str]) -> Tuple[np.ndarray, List[str]]:
    """Map fine label indices (into ``tax.labels``) to mixed-label indices.

    Args:
        tax: the taxonomy.
        fine_index: int [N] indices into ``tax.labels``.
        collapsed: coarse texts to collapse.

    Returns:
        (targets int64 [N], mixed label list).
    """
    labels, mapping = mixed_labels(tax, collapsed)
    pos = {l: i for i, l in enumerate(labels)}
    lut = np.array([pos[mapping[f]] for f in tax.labels], dtype=np.int64)
    return lut[np.asarray(fine_index, dtype=np.int64)], labels
