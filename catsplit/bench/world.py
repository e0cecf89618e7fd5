"""A procedurally rendered Something-Something-style world for the category-splitting benchmark.

Clips of 16 frames show a "hand" (a skin-coloured palm on a sleeve) acting on objects on a table,
seen from the side: a wall at the top, the table below it, one side edge of the table with the
floor beyond it. Every clip is drawn with numpy from a seed, so anyone rebuilds the exact same
data set in about a minute on one core.

Labels read like SSv2 labels. Every fine label is ``coarse action text + " " + modifier text``
("Pushing something" + "from left to right"). The modifiers are shared across actions, and a
modifier looks the same whatever the action (it describes what happens to the *object*), while
the action describes what the *hand* does (where it touches the object, for how long, how the
object's motion unfolds in time):

=================  =============================================================================
modifier family    visual effect (identical for every action that has it)
=================  =============================================================================
direction          net motion of the object: "from left to right" / "from right to left"
                   (horizontal), "up" / "down" (vertical, no size change), "towards the camera" /
                   "away from the camera" (grows and moves down / shrinks and moves up)
relation           a box is present; the object ends "onto something" (resting on its top),
                   "into something" (fully hidden inside it, entered over its rim), "next to
                   something" (beside it), "behind something" (partly hidden, peeking over it)
outcome            "so that it falls off the table": crosses the table's side edge and drops;
                   "so that it almost falls off but doesn't": stops at the edge and wobbles
count              "on its own" / "together with another thing" / "together with two other
                   things": 1 / 2 / 3 identical objects undergo the action side by side
pretending         "but only pretending": the hand goes through the motion, the object never
                   changes (pretending is a modifier so the label stays coarse + modifier)
manner             "so that it spins": the object turns through more than a full turn;
                   "slightly": the action's effect is small (short shift, small lift/rotation...)
novel              five modifiers that belong to ONE action only: "in a circle" (Moving),
                   "on the edge of something so that it falls down" (Putting), "so that it
                   bounces" (Dropping), "in front of something" (Holding), "upside down" (Turning)
=================  =============================================================================

Actions differ in what the hand does, consistently whatever the modifier:

===========  ===================================================================================
Pushing      palm behind the object (on the side it moves away from), in contact, steady speed
Pulling      palm in front of the object (on the side it moves towards), in contact
Moving       diagonal grip from above one side, smooth (eased) carry
Sliding      brief push from behind, then the object glides and slows down on its own
Throwing     grip from above, wind-up, fast swing, release; the object flies (ballistic)
Poking       a finger approaches slowly, touches briefly, retracts; the effect follows the touch
Rolling      brief push from behind, then the object rolls (turns as it moves) at steady speed
Picking up   grip from above, the hand lifts the object(s)
Putting      grip from above, carries the object and lowers it into place, lets go
Dropping     grip from above, carries the object up over the target, lets go: free fall
Holding      side grip, the object is carried in the air into place and held (never let go)
Squeezing    two fingertips close in on both sides, the object gets narrower (partly recovers)
Turning      grip from above, the object rotates in place
Covering     the hand brings a sheet over the object(s) and lets go
Hitting      a fast palm strike from behind with follow-through; the object shoots off
Lifting      palm under the object, the hand raises it
===========  ===================================================================================

With pretending, the hand stops short of the object and mimes its motion (pushing: towards the
object, pulling: away from it, picking up / lifting: upwards, turning: a twist).

Nuisance everywhere: object shape (square, disc, triangle, bar), colours, sizes, positions,
timing and speed, wall/table/floor colours and textures, lighting, sensor noise, camera shake,
static distractor objects and distractor boxes, sleeve and skin colours.

Sizes: 16 actions, 95 fine labels, 23 modifiers (18 shared, 5 novel). Every shared modifier
belongs to at least 4 actions of different kinds (table motions, grasps, carries...), as in SSv2,
so that both halves of a random A/B partition usually hold examples of it: a modifier seen only
by the collapsed half can only be guessed from its text. The full preset renders
95 x (150 + 30 + 40) = 20,900 clips (~1.03 GB as uint8) in about a minute on two cores
(~3 ms a clip); ``WorldConfig.quick()`` renders 4,940.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import zlib
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from catsplit.bench.progress import Progress
from catsplit.errors import CatsplitError

# --------------------------------------------------------------------------------------------
# Taxonomy
# --------------------------------------------------------------------------------------------

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


def taxonomy(config: Optional["WorldConfig"] = None) -> Taxonomy:
    """Build the taxonomy (optionally restricted to ``config.actions``).

    Args:
        config: a WorldConfig; only its ``actions`` field matters (None: all 16 actions).

    Returns:
        The Taxonomy.
    """
    keys = list(ACTIONS) if config is None or config.actions is None else list(config.actions)
    unknown = [k for k in keys if k not in ACTIONS]
    if unknown:
        raise CatsplitError(f"unknown action keys {unknown}; choose from {sorted(ACTIONS)}")
    if len(set(keys)) != len(keys) or len(keys) < 2:
        raise CatsplitError(f"actions must be >= 2 distinct keys, got {keys}")
    coarse, fine, modifier, akey, mkey = [], {}, {}, {}, {}
    for a in keys:
        text, mods = ACTIONS[a]
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


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Rendering primitives
# --------------------------------------------------------------------------------------------

_SKIN = np.array([[236, 188, 160], [222, 170, 130], [198, 140, 105], [160, 105, 75],
                  [120, 80, 58], [245, 205, 180]], dtype=np.float32)


def _ss(t: np.ndarray, a: float, b: float) -> np.ndarray:
    """Smoothstep from 0 (t <= a) to 1 (t >= b)."""
    x = np.clip((t - a) / max(b - a, 1e-6), 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _lin(t: np.ndarray, a: float, b: float) -> np.ndarray:
    """Linear ramp from 0 (t <= a) to 1 (t >= b)."""
    return np.clip((t - a) / max(b - a, 1e-6), 0.0, 1.0)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    """HSV in [0, 1] -> RGB float in [0, 255]."""
    i = int(h * 6.0) % 6
    f = h * 6.0 - int(h * 6.0)
    p, q, u = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    rgb = [(v, u, p), (q, v, p), (p, v, u), (p, q, v), (u, p, v), (v, p, q)][i]
    return np.array(rgb, dtype=np.float32) * 255.0


def _object_colour(rng: np.random.Generator) -> np.ndarray:
    """A saturated colour away from skin hues."""
    h = rng.uniform(0.14, 1.0)  # skip reds/oranges 0..0.14 (skin-like)
    if rng.random() < 0.15:
        h = rng.uniform(0.95, 1.0)
    return _hsv(h, rng.uniform(0.55, 1.0), rng.uniform(0.45, 1.0))


@dataclass
class _Shape:
    """One drawable with per-frame state (normalised coordinates, x right, y down)."""

    x: np.ndarray                      # [T] centre x
    y: np.ndarray                      # [T] centre y
    hw: np.ndarray                     # [T] half width
    hh: np.ndarray                     # [T] half height (negative: vertically mirrored)
    ang: np.ndarray                    # [T] rotation (radians)
    kind: str                          # square | disc | triangle | bar | box
    col1: np.ndarray                   # [3] colour of the top part
    col2: np.ndarray                   # [3] colour of the bottom part
    split: float = 0.0                 # local v below which col1 is used (two-tone pattern)
    alpha: Optional[np.ndarray] = None  # [T] opacity
    layer: int = 2                     # draw order (0 distractors, 1 behind box, 2 box...)


class _Canvas:
    """Static pixel grids and the float image being drawn; camera shake is applied at the end."""

    def __init__(self, T: int, S: int) -> None:
        self.T, self.S = T, S
        grid = (np.arange(S, dtype=np.float32) + 0.5) / S  # pixel centres in [0, 1]
        self.gx = grid
        self.X = grid[None, None, :]  # [1, 1, S]
        self.Y = grid[None, :, None]  # [1, S, 1]
        self.img = np.zeros((T, S, S, 3), dtype=np.float32)  # [T, H, W, 3]

    def _window(self, x: np.ndarray, y: np.ndarray, R: np.ndarray) -> Optional[Tuple[slice, slice]]:
        """Pixel rows/cols covering discs of radius R around (x, y) over all frames."""
        S = self.S
        c0 = int(np.floor(np.min(x - R) * S)) - 1
        c1 = int(np.ceil(np.max(x + R) * S)) + 1
        r0 = int(np.floor(np.min(y - R) * S)) - 1
        r1 = int(np.ceil(np.max(y + R) * S)) + 1
        c0, c1, r0, r1 = max(c0, 0), min(c1, S), max(r0, 0), min(r1, S)
        if c0 >= c1 or r0 >= r1:
            return None
        return slice(r0, r1), slice(c0, c1)

    def shape(self, sh: _Shape) -> None:
        """Draw a two-tone shape with anti-aliased edges."""
        S = self.S
        f32 = np.float32
        hw_abs = np.maximum(np.abs(sh.hw), 1e-3)
        hh_abs = np.maximum(np.abs(sh.hh), 1e-3)
        win = self._window(sh.x, sh.y, np.sqrt(hw_abs ** 2 + hh_abs ** 2) * 1.05 + 1.0 / S)
        if win is None:
            return
        rs, cs = win
        X, Y = self.X[:, :, cs], self.Y[:, rs, :]
        cx = sh.x.astype(f32)[:, None, None]
        cy = sh.y.astype(f32)[:, None, None]
        dx, dy = X - cx, Y - cy  # [T, 1, w], [T, h, 1] -> broadcast to [T, h, w]
        c = np.cos(sh.ang).astype(f32)[:, None, None]
        s = np.sin(sh.ang).astype(f32)[:, None, None]
        hw = hw_abs.astype(f32)[:, None, None]
        hh_signed = np.where(np.abs(sh.hh) < 1e-3, 1e-3, sh.hh).astype(f32)[:, None, None]
        u = (c * dx + s * dy) / hw
        v = (-s * dx + c * dy) / hh_signed
        k = sh.kind
        if k == "disc":
            d = np.sqrt(u * u + v * v)
        elif k == "triangle":
            d = np.maximum(v, 2.0 * np.abs(u) - v)
        else:  # square, box, bar
            d = np.maximum(np.abs(u), np.abs(v))
        px = np.minimum(hw, hh_abs.astype(f32)[:, None, None]) * S  # pixels per unit of d
        a = np.clip((1.0 - d) * px + 0.5, 0.0, 1.0)
        if sh.alpha is not None:
            a = a * sh.alpha.astype(f32)[:, None, None]
        top = (v < sh.split).astype(f32)
        sub = self.img[:, rs, cs]
        sub += a[..., None] * (sh.col2 - sub) + (a * top)[..., None] * (sh.col1 - sh.col2)

    def disc(self, x: np.ndarray, y: np.ndarray, r: float, col: np.ndarray) -> None:
        """A plain disc of radius r (normalised) at per-frame centres x, y [T]."""
        win = self._window(x, y, np.full_like(x, r + 1.0 / self.S))
        if win is None:
            return
        rs, cs = win
        d = np.sqrt((self.X[:, :, cs] - x[:, None, None].astype(np.float32)) ** 2
                    + (self.Y[:, rs, :] - y[:, None, None].astype(np.float32)) ** 2)
        a = np.clip((r - d) * self.S + 0.5, 0.0, 1.0)
        sub = self.img[:, rs, cs]
        sub += a[..., None] * (col - sub)

    def capsule(self, p: np.ndarray, q: np.ndarray, r: float, col: np.ndarray,
                infinite: bool = False) -> None:
        """A capsule from p to q (each [T, 2]); infinite: a ray from p through q and beyond."""
        px, py = p[:, 0, None, None].astype(np.float32), p[:, 1, None, None].astype(np.float32)
        dxy = (q - p).astype(np.float32)
        L = np.maximum(np.linalg.norm(dxy, axis=1), 1e-6)
        ux, uy = (dxy[:, 0] / L)[:, None, None], (dxy[:, 1] / L)[:, None, None]
        wx, wy = self.X - px, self.Y - py
        proj = wx * ux + wy * uy
        if not infinite:
            proj = np.minimum(proj, L[:, None, None])
        proj = np.maximum(proj, 0.0)
        d = np.sqrt((wx - proj * ux) ** 2 + (wy - proj * uy) ** 2)
        a = np.clip((r - d) * self.S + 0.5, 0.0, 1.0)
        self.img += a[..., None] * (col - self.img)

    def shake(self, rng: np.random.Generator, std: float) -> None:
        """Shift every frame by a smoothed random walk (pixels), bilinear, edges clamped."""
        T, S = self.T, self.S
        if std <= 0:
            return
        off = np.cumsum(rng.normal(0.0, std, size=(T, 2)), axis=0) * 0.6
        off -= off.mean(axis=0, keepdims=True)
        pad = int(np.ceil(np.abs(off).max())) + 1
        src = np.pad(self.img, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
        for t in range(T):
            ox, oy = off[t]
            ix, iy = int(np.floor(ox)), int(np.floor(oy))
            fx, fy = float(ox - ix), float(oy - iy)
            r0, c0 = pad + iy, pad + ix
            a = src[t, r0:r0 + S, c0:c0 + S]
            b = src[t, r0:r0 + S, c0 + 1:c0 + 1 + S]
            c = src[t, r0 + 1:r0 + 1 + S, c0:c0 + S]
            d = src[t, r0 + 1:r0 + 1 + S, c0 + 1:c0 + 1 + S]
            self.img[t] = ((1 - fy) * ((1 - fx) * a + fx * b) + fy * ((1 - fx) * c + fx * d))


# --------------------------------------------------------------------------------------------
# The scene and its choreography
# --------------------------------------------------------------------------------------------

class _Scene:
    """Samples a scene and builds the per-frame states of all entities for one clip."""

    SHAPES = ("square", "disc", "triangle", "bar")
    GAP = 0.05  # space between side-by-side objects (count modifiers): ~1.6 px at 32 x 32

    def __init__(self, spec: ClipSpec, rng: np.random.Generator) -> None:
        self.spec, self.rng = spec, rng
        T = spec.frames
        self.T = T
        self.t = np.linspace(0.0, 1.0, T)
        r = rng
        # layout: wall above the horizon, table below, one side edge of the table with floor
        self.horizon = r.uniform(0.24, 0.36)
        self.edge_side = 1 if r.random() < 0.5 else -1  # +1: table ends on the right
        self.edge_x = r.uniform(0.78, 0.9) if self.edge_side > 0 else r.uniform(0.1, 0.22)
        # main object appearance
        self.r0 = r.uniform(0.07, 0.1) * (0.85 if spec.modifier == "three" else 1.0)
        self.kind = self.SHAPES[r.integers(len(self.SHAPES))]
        self.col = _object_colour(r)
        self.col_b = self.col * r.uniform(0.3, 0.5)  # two-tone: rotation and flips are visible
        self.skin = _SKIN[r.integers(len(_SKIN))] * r.uniform(0.9, 1.08)
        self.sleeve = _hsv(r.random(), r.uniform(0.1, 0.7), r.uniform(0.2, 0.85))
        self.palm = r.uniform(0.06, 0.08)
        self.objects: List[_Shape] = []
        self.box: Optional[_Shape] = None
        self.sheet: Optional[_Shape] = None
        self.extras: List[_Shape] = []
        self.hand: Optional[dict] = None
        self.pincer: Optional[Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = None

    # ---- small helpers ----------------------------------------------------------------------
    def u(self, a: float, b: float) -> float:
        return float(self.rng.uniform(a, b))

    def sign(self) -> int:
        return 1 if self.rng.random() < 0.5 else -1

    def ground(self, lo: float = 0.18, hi: float = 0.9) -> float:
        """A random resting line (object bottom y) on the table."""
        return self.u(self.horizon + lo * (1 - self.horizon), self.horizon + hi * (1 - self.horizon))

    def table_x(self, margin: float = 0.1) -> Tuple[float, float]:
        """x-range of the table top (minus a margin)."""
        if self.edge_side > 0:
            return margin, self.edge_x - margin
        return self.edge_x + margin, 1 - margin

    def const(self, v: float) -> np.ndarray:
        return np.full(self.T, float(v))

    def make_objects(self, n: int, x: np.ndarray, y: np.ndarray, scale: np.ndarray,
                     ang: Optional[np.ndarray] = None, sx: Optional[np.ndarray] = None,
                     sy: Optional[np.ndarray] = None, layer: int = 2,
                     alpha: Optional[np.ndarray] = None) -> None:
        """Create n identical objects side by side; (x, y) is the group centre per frame."""
        T = self.T
        ang = np.zeros(T) if ang is None else ang
        sx = np.ones(T) if sx is None else sx
        sy = np.ones(T) if sy is None else sy
        hw = self.r0 * scale * sx
        hh = self.r0 * scale * sy
        if self.kind == "bar":
            hw, hh = hw * 1.35, hh * 0.6
        spacing = 2.0 * self.r0 * scale * np.maximum(sx, 0.6) * (1.35 if self.kind == "bar" else 1.0) + self.GAP
        for i in range(n):
            off = (i - (n - 1) / 2.0) * spacing
            self.objects.append(_Shape(x + off, y.copy(), hw.copy(), hh.copy(), ang.copy(), self.kind,
                                       self.col, self.col_b, 0.0, alpha, layer))

    def group_halfwidth(self, n: int, scale: float = 1.0) -> float:
        w = self.r0 * scale * (1.35 if self.kind == "bar" else 1.0)
        return w + (n - 1) * (w + self.GAP / 2)

    def half_height(self, scale=1.0):
        return self.r0 * scale * (0.6 if self.kind == "bar" else 1.0)

    def make_box(self, x: float, bottom: float) -> Tuple[float, float, float]:
        """Place the landmark box; returns (x, top, half width)."""
        w = self.u(max(0.11, self.r0 * 1.5), 0.17)
        h = self.u(0.08, 0.12)
        col = _object_colour(self.rng) * self.u(0.6, 0.95)
        rim = col * 0.45
        self.box = _Shape(self.const(x), self.const(bottom - h), self.const(w), self.const(h),
                          np.zeros(self.T), "box", rim, col, -0.72, None, 3)
        return x, bottom - 2 * h, w

    # ---- hand ----------------------------------------------------------------------------------
    def set_hand(self, tip: np.ndarray, arm: np.ndarray, kind: str = "fist") -> None:
        """tip: [T, 2] contact point; arm: [T, 2] or [2] unit vector from the tip towards the body."""
        arm = np.broadcast_to(np.asarray(arm, dtype=np.float64), (self.T, 2)).copy()
        arm /= np.maximum(np.linalg.norm(arm, axis=1, keepdims=True), 1e-6)
        self.hand = {"tip": tip, "arm": arm, "kind": kind}

    def contact_track(self, contact: np.ndarray, arm: np.ndarray, t_in: float, t_c0: float,
                      t_c1: float, t_out: float, gap: float = 0.0, far: float = 0.75) -> np.ndarray:
        """Hand tip: approaches along the arm, follows ``contact`` [T, 2] in [t_c0, t_c1], retracts.

        Returns:
            tip [T, 2].
        """
        t = self.t
        tc = np.clip(t, t_c0, t_c1)
        c = np.stack([np.interp(tc, t, contact[:, 0]), np.interp(tc, t, contact[:, 1])], axis=1)
        a = _ss(t, t_in, t_c0)
        r = _ss(t, t_c1, t_out)
        dist = far * (1.0 - a) + far * r + gap
        arm = np.broadcast_to(np.asarray(arm, dtype=np.float64), (self.T, 2))
        return c + arm * dist[:, None]

    def pretend_track(self, contact: np.ndarray, arm: np.ndarray, t_in: float, t_c0: float,
                      t_c1: float, t_out: float, motion: Optional[np.ndarray] = None) -> np.ndarray:
        """Pretending: the hand stops short of the object and mimes the motion [2] it would make."""
        gap = self.u(0.07, 0.1)
        tip = self.contact_track(contact, arm, t_in, t_c0, t_c1, t_out, gap=gap)
        if motion is not None:  # [2] mimed displacement during contact
            w = np.sin(np.pi * _lin(self.t, t_c0, t_c1))
            tip = tip + np.asarray(motion)[None, :] * w[:, None]
        return tip

    # ---- modifier geometry -------------------------------------------------------------------
    def displacement(self, mod: str, nominal: Tuple[float, float]) -> Tuple[float, float, float]:
        """(dx, dy, scale at the end) of a direction-like modifier; nominal: default unit direction."""
        D = self.u(0.3, 0.42)
        if mod == "lr":
            return D, self.u(-0.02, 0.02), 1.0
        if mod == "rl":
            return -D, self.u(-0.02, 0.02), 1.0
        if mod == "up":
            return self.u(-0.04, 0.04), -self.u(0.28, 0.36), 1.0
        if mod == "down":
            return self.u(-0.04, 0.04), self.u(0.28, 0.36), 1.0
        if mod == "tow":
            return self.u(-0.06, 0.06), self.u(0.16, 0.22), self.u(1.5, 1.7)
        if mod == "away":
            return self.u(-0.06, 0.06), -self.u(0.16, 0.22), self.u(0.58, 0.68)
        if mod == "slight":
            d = self.u(0.1, 0.14)
            return nominal[0] * d, nominal[1] * d, 1.0
        if mod == "pretend":
            return 0.0, 0.0, 1.0
        # count modifiers and others: the action's nominal displacement
        return nominal[0] * D, nominal[1] * D * 0.9, 1.0

    def place_for(self, dx: float, dy: float, scale_end: float, n: int = 1,
                  on_table: bool = True) -> Tuple[float, float]:
        """A start centre (x, y) so the whole straight path stays in frame / on the table."""
        hw = self.group_halfwidth(n, max(1.0, scale_end))
        lo, hi = self.table_x(0.02)
        lo, hi = max(lo, 0.05) + hw, min(hi, 0.95) - hw
        x_lo, x_hi = max(lo, lo - dx), min(hi, hi - dx)
        if x_lo > x_hi:
            x_lo = x_hi = (lo + hi - dx) / 2
        x0 = self.u(x_lo, x_hi)
        hh = self.half_height()
        # the object's bottom must stay on the table over the path when it moves in depth/down
        top_ok = self.horizon + 0.06 + hh * 2
        if dy >= 0:
            b_lo, b_hi = max(top_ok, self.horizon + 0.18), 0.97 - dy - 0.02
        else:
            b_lo, b_hi = max(top_ok - dy * (1.0 if not on_table else 1.0), self.horizon + 0.18), 0.95
            if on_table and scale_end == 1.0:  # moving up off the table: start low enough
                b_lo = max(self.horizon + 0.2, 0.1 + (-dy) + 2 * hh)
        if b_lo > b_hi:
            b_lo = b_hi
        bottom = self.u(b_lo, b_hi)
        return x0, bottom - hh

    def edge_start(self, near: Tuple[float, float], n: int = 1) -> Tuple[float, float, int]:
        """Start (x, y) at distance ``near`` from the table's side edge; returns x, y, direction."""
        d = self.u(*near)
        direction = self.edge_side
        x0 = self.edge_x - direction * d
        x0 = float(np.clip(x0, 0.08, 0.92))
        y = self.ground(0.3, 0.85) - self.half_height()
        return x0, y, direction

    def fall_or_stop(self, x: np.ndarray, y: np.ndarray, ang: np.ndarray, t_stop: float,
                     direction: int, fall: bool) -> None:
        """After t_stop: drop off the table (fall) or wobble at the edge (almost), in place."""
        t = self.t
        tau = np.maximum(t - t_stop, 0.0)
        if fall:
            y += 0.5 * self.u(7.0, 10.0) * tau ** 2
            x += direction * self.u(0.15, 0.35) * tau
            ang += direction * self.u(3.0, 6.0) * tau
        else:
            ang += direction * self.u(0.25, 0.4) * np.exp(-tau * 5.0) * np.sin(tau * self.u(28, 36)) * (tau > 0)

    def edge_target(self, fall: bool) -> float:
        """Final centre x of an edge-path (FALL: just past the edge, ALMOST: slight overhang)."""
        w = self.group_halfwidth(1)
        if fall:
            return self.edge_x + self.edge_side * w * self.u(0.6, 0.9)
        return self.edge_x + self.edge_side * w * self.u(-0.1, 0.35)

    def relation(self, rel: str, side: int) -> dict:
        """Place a box and compute the relation's start and end states.

        Args:
            rel: onto | into | next | behind | front | edge.
            side: +1: the object starts right of the box, -1: left.

        Returns:
            dict with start/end centres, end scale, draw layer and an optional waypoint.
        """
        hh = self.half_height()
        bottom = self.ground(0.35, 0.8)
        lo, hi = self.table_x(0.05)
        bx = self.u(max(lo + 0.15, 0.3), min(hi - 0.15, 0.7))
        bx, top, bw = self.make_box(bx, bottom)
        d = self.u(0.28, 0.38)
        x0 = float(np.clip(bx + side * d, 0.08, 0.92))
        start = (x0, bottom - hh)
        layer, scale_end, way = 4, 1.0, None
        if rel == "onto":
            end = (bx + self.u(-0.3, 0.3) * max(bw - self.r0, 0.0), top - hh)
            way = (bx + side * (bw + 0.02), top - hh - 0.04)
        elif rel == "into":
            end = (bx + self.u(-0.2, 0.2) * max(bw - self.r0, 0.0), top + self.r0 * 1.3)
            way = (bx + side * 0.3 * bw, top - hh - 0.05)
            layer = 1
        elif rel == "next":
            end = (bx + side * (bw + self.group_halfwidth(1) + self.u(0.01, 0.03)), bottom - hh)
        elif rel == "behind":
            scale_end = self.u(0.78, 0.88)
            h2 = self.half_height(scale_end)
            end = (bx + self.u(-0.4, 0.4) * bw, top + h2 * self.u(-0.25, 0.1))
            layer = 1
        elif rel == "front":
            scale_end = self.u(1.15, 1.3)
            end = (bx + self.u(-0.4, 0.4) * bw, bottom - self.half_height(scale_end) + self.u(0.04, 0.07))
        elif rel == "edge":
            end = (bx + side * bw * self.u(0.85, 1.1), top - hh)
            way = (bx + side * (bw + 0.06), top - hh - 0.05)
        else:  # pragma: no cover - internal
            raise ValueError(rel)
        return {"start": start, "end": end, "way": way, "layer": layer, "scale_end": scale_end,
                "box_x": bx, "box_top": top, "box_w": bw, "bottom": bottom}

    def rel_path(self, R: dict, s: np.ndarray, start: Optional[Tuple[float, float]] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Object centre and scale along a relation path at progress s [T]."""
        p0 = np.array(R["start"] if start is None else start)
        p1 = np.array(R["end"])
        if R["way"] is None:
            P = p0[None] + (p1 - p0)[None] * s[:, None]
        else:
            w = np.array(R["way"])
            s1 = np.clip(s / 0.7, 0, 1)[:, None]
            s2 = np.clip((s - 0.7) / 0.3, 0, 1)[:, None]
            P = np.where(s[:, None] < 0.7, p0 + (w - p0) * s1, w + (p1 - w) * s2)
        scale = 1.0 + (R["scale_end"] - 1.0) * s
        return P[:, 0].copy(), P[:, 1].copy(), scale

    # ---- distractors, background -------------------------------------------------------------
    def add_distractors(self) -> None:
        spec, rng = self.spec, self.rng
        n = int(rng.integers(0, spec.max_distractors + 1))
        for _ in range(n):
            kind = self.SHAPES[rng.integers(len(self.SHAPES))]
            col = _object_colour(rng)
            r0 = self.u(0.05, 0.085)
            x = self.u(0.06, 0.94)
            y = self.ground(0.15, 0.95) - r0
            hw, hh = (r0 * 1.35, r0 * 0.6) if kind == "bar" else (r0, r0)
            self.extras.append(_Shape(self.const(x), self.const(y), self.const(hw), self.const(hh),
                                      self.const(self.u(-0.4, 0.4)), kind, col, col * self.u(0.45, 0.7),
                                      0.0, None, 0))
        if self.box is None and rng.random() < spec.distractor_box:
            bx = self.u(0.15, 0.85)
            w, h = self.u(0.1, 0.16), self.u(0.08, 0.12)
            col = _object_colour(rng) * self.u(0.6, 0.95)
            b = self.ground(0.3, 0.9)
            self.extras.append(_Shape(self.const(bx), self.const(b - h), self.const(w), self.const(h),
                                      np.zeros(self.T), "box", col * 0.45, col, -0.72, None, 0))

    def background(self, cv: _Canvas) -> None:
        """Wall, table (wood grain), floor beyond the side edge, lighting; static [H, W, 3]."""
        rng = self.rng
        X, Y = cv.X[0], cv.Y[0]  # [1, S], [S, 1]
        wall = _hsv(rng.random(), rng.uniform(0.0, 0.25), rng.uniform(0.55, 0.9))
        table = _hsv(rng.uniform(0.0, 1.0) if rng.random() < 0.4 else rng.uniform(0.05, 0.12),
                     rng.uniform(0.15, 0.55), rng.uniform(0.35, 0.75))
        floor = _hsv(rng.random(), rng.uniform(0.0, 0.3), rng.uniform(0.12, 0.3))

        def grating(n: int, fmax: float, amp: float) -> np.ndarray:  # sum of random gratings [S, S]
            out = np.zeros((cv.S, cv.S), dtype=np.float32)
            for _ in range(n):
                f = rng.uniform(1.0, fmax)
                th = rng.uniform(0, np.pi)
                ph = rng.uniform(0, 2 * np.pi)
                out += np.sin(2 * np.pi * f * (np.cos(th) * X + np.sin(th) * Y) + ph).astype(np.float32)
            return out * (amp / np.sqrt(n))

        wall_tex = grating(3, 4.0, rng.uniform(3, 12))
        f = rng.uniform(8, 20)
        wood = (np.sin(2 * np.pi * f * (Y + 0.03 * np.sin(2 * np.pi * rng.uniform(1, 4) * X)) + rng.uniform(0, 6))
                * rng.uniform(4, 16)).astype(np.float32)
        table_tex = wood + grating(2, 8.0, rng.uniform(2, 8))
        on_table = (Y >= self.horizon) & ((X <= self.edge_x) if self.edge_side > 0 else (X >= self.edge_x))
        below = Y >= self.horizon + 0.02
        img = np.where(on_table[..., None], table + table_tex[..., None],
                       np.where(below[..., None], floor + 0.5 * wall_tex[..., None], wall + wall_tex[..., None]))
        # a darker strip along the table's back edge and side edge
        lip = ((np.abs(Y - self.horizon) < 0.025) & on_table) | (
            (np.abs(X - self.edge_x) < 0.02) & (Y >= self.horizon))
        img = np.where(lip[..., None], img * 0.7, img)
        # lighting: global gain and a horizontal gradient
        gain = rng.uniform(0.8, 1.15) * (1.0 + rng.uniform(-0.15, 0.15) * (X - 0.5))
        cv.img[:] = (img * gain[..., None])[None]

    # ---- rendering ------------------------------------------------------------------------------
    def render(self) -> np.ndarray:
        spec, rng = self.spec, self.rng
        cv = _Canvas(spec.frames, spec.size)
        self.background(cv)
        shapes = sorted(self.extras + self.objects + ([self.box] if self.box is not None else [])
                        + ([self.sheet] if self.sheet is not None else []), key=lambda s: s.layer)
        for sh in shapes:
            cv.shape(sh)
        if self.hand is not None:
            self.draw_hand(cv)
        cv.shake(rng, spec.shake)
        img = cv.img
        if spec.noise > 0:
            img += rng.standard_normal(size=img.shape, dtype=np.float32) * np.float32(spec.noise)
        return np.clip(img + 0.5, 0, 255).astype(np.uint8)

    def draw_hand(self, cv: _Canvas) -> None:
        h = self.hand
        tip, arm, kind = h["tip"], h["arm"], h["kind"]
        pr = self.palm
        finger = 0.09 if kind == "finger" else 0.0
        palm_c = tip + arm * (finger + pr * 0.9)
        far = tip + arm * 3.0
        cv.capsule(palm_c + arm * pr * 0.9, far, pr * 0.75, self.sleeve, infinite=True)
        if kind == "finger":
            cv.capsule(tip + arm * 0.02, palm_c, 0.026, self.skin * 0.97)
        cv.disc(palm_c[:, 0], palm_c[:, 1], pr, self.skin)
        if self.pincer is not None:
            lx, ly, rx, ry = self.pincer
            cv.capsule(np.stack([lx, ly], 1), palm_c, 0.028, self.skin * 0.95)
            cv.capsule(np.stack([rx, ry], 1), palm_c, 0.028, self.skin * 0.95)


# --------------------------------------------------------------------------------------------
# Actions (what the hand does) x modifiers (what happens to the object)
# --------------------------------------------------------------------------------------------

_RELATIONS = ("onto", "into", "next", "behind", "front", "edge")
_COUNT = {"one": 1, "two": 2, "three": 3}


def _contact_point(sc: _Scene, x, y, scale, direction: np.ndarray, n: int = 1) -> np.ndarray:
    """Boundary point of the object group in unit direction ``direction`` [2] from its centre."""
    d = np.asarray(direction, dtype=np.float64)
    hw = sc.group_halfwidth(n) * scale
    hh = sc.half_height() * scale
    # ellipse-ish support point
    k = 1.0 / np.sqrt((d[0] / np.maximum(hw, 1e-6)) ** 2 + (d[1] / np.maximum(hh, 1e-6)) ** 2 + 1e-12)
    return np.stack([x + d[0] * k, y + d[1] * k], axis=1)


def _unit(dx: float, dy: float) -> np.ndarray:
    v = np.array([dx, dy], dtype=np.float64)
    n = np.linalg.norm(v)
    return v / n if n > 1e-9 else np.array([1.0, 0.0])


def _table_motion(sc: _Scene, mod: str, hand: str, profile: str) -> None:
    """Push / pull / slide / roll / hit / poke: the object moves on the table.

    Args:
        hand: "trail" (hand behind the motion), "lead" (in front), "finger" (poke), "palm" (hit).
        profile: "const" | "glide" | "roll" | "strike" | "poke" (the object's speed over time).
    """
    t, T = sc.t, sc.T
    nominal = (float(sc.sign()), 0.0)
    ang = np.zeros(T)
    layer = 2
    fall = None
    R = None
    if mod in ("fall", "almost"):
        x0, y0, direction = sc.edge_start((0.12, 0.22) if profile in ("poke",) else (0.22, 0.38))
        x1 = sc.edge_target(mod == "fall")
        dx, dy, se = x1 - x0, 0.0, 1.0
        fall = mod == "fall"
    elif mod in _RELATIONS:
        R = sc.relation(mod, sc.sign())
        (x0, y0), (x1, y1) = R["start"], R["end"]
        dx, dy, se = x1 - x0, y1 - y0, R["scale_end"]
        layer = R["layer"]
    elif mod == "spin":
        D = sc.u(0.0, 0.04) if profile == "poke" else sc.u(0.05, 0.12)
        dx, dy, se = nominal[0] * D, 0.0, 1.0
        x0, y0 = sc.place_for(dx, dy, se)
    else:
        dx, dy, se = sc.displacement(mod, nominal)
        x0, y0 = sc.place_for(dx, dy, se)
    mdir = _unit(dx, dy) if abs(dx) + abs(dy) > 1e-6 else _unit(*nominal)

    # timing: s(t) = progress along the path
    edge = mod in ("fall", "almost")  # the outcome must leave time to see the drop / wobble
    if profile == "const":
        t_c0 = sc.u(0.12, 0.28) if not edge else sc.u(0.1, 0.2)
        t_c1 = min(t_c0 + sc.u(0.45, 0.6), 0.9) if not edge else t_c0 + sc.u(0.4, 0.5)
        s = _lin(t, t_c0, t_c1)
        t_in, t_out, t_stop = max(t_c0 - 0.2, 0.0), min(t_c1 + 0.3, 1.0), t_c1
    elif profile == "glide":
        t_c0 = sc.u(0.1, 0.22) if not edge else sc.u(0.08, 0.16)
        t_c1 = t_c0 + sc.u(0.1, 0.16)
        k = sc.u(3.0, 4.5)
        t_end = 0.97 if not edge else sc.u(0.6, 0.72)
        tau = _lin(t, t_c0, t_end)
        s = (1 - np.exp(-k * tau)) / (1 - np.exp(-k))
        t_in, t_out, t_stop = max(t_c0 - 0.15, 0.0), min(t_c1 + 0.4, 1.0), t_end
    elif profile == "roll":
        t_c0 = sc.u(0.1, 0.2)
        t_c1 = t_c0 + sc.u(0.08, 0.14)
        t_end = sc.u(0.8, 0.95) if not edge else sc.u(0.6, 0.72)
        s = _lin(t, t_c0, t_end)
        t_in, t_out, t_stop = max(t_c0 - 0.15, 0.0), min(t_c1 + 0.4, 1.0), t_end
    elif profile == "strike":
        t_c0 = sc.u(0.3, 0.45) if not edge else sc.u(0.25, 0.35)
        t_c1 = t_c0 + 0.04
        tau_s = sc.u(0.06, 0.1)
        s = 1 - np.exp(-np.maximum(t - t_c0, 0.0) / tau_s)
        s = np.minimum(s / (1 - np.exp(-0.3 / tau_s)), 1.0)
        t_in, t_out, t_stop = t_c0 - sc.u(0.1, 0.15), min(t_c1 + 0.3, 1.0), t_c0 + 0.3
    elif profile == "poke":
        t_c0 = sc.u(0.4, 0.55) if not edge else sc.u(0.3, 0.4)
        t_c1 = t_c0 + sc.u(0.06, 0.12)
        s = _ss(t, t_c0, t_c0 + sc.u(0.25, 0.35)) if not edge else _lin(t, t_c0, t_c0 + 0.3) ** 0.7
        t_in, t_out, t_stop = sc.u(0.0, 0.15), min(t_c1 + sc.u(0.25, 0.35), 1.0), t_c0 + 0.3
    else:  # pragma: no cover
        raise ValueError(profile)
    if mod == "pretend":
        s = np.zeros(T)

    if R is not None:
        x, y, scale = sc.rel_path(R, s)
    else:
        x = x0 + dx * s
        y = y0 + dy * s
        scale = 1.0 + (se - 1.0) * s
    if profile == "roll":
        dist = np.sqrt((dx * s) ** 2 + (dy * s) ** 2)
        ang = ang + np.sign(dx if abs(dx) > 1e-6 else 1.0) * dist / max(sc.r0, 1e-3)
    if mod == "spin":
        turns = sc.u(1.05, 1.4) * sc.sign()
        spin_s = _ss(t, t_c0, min(t_c0 + sc.u(0.5, 0.6), 1.0))
        ang = ang + 2 * np.pi * turns * spin_s
    if fall is not None:
        sc.fall_or_stop(x, y, ang, t_stop, int(np.sign(dx) or 1), fall)

    sc.make_objects(1, x, y, scale, ang=ang, layer=layer)
    # the hand: behind (trail/finger/palm) or in front (lead) of the motion
    arm = mdir if hand == "lead" else -mdir
    arm = _unit(arm[0] + sc.u(-0.15, 0.15), arm[1] + sc.u(-0.15, 0.15))
    contact = _contact_point(sc, x, y, scale, arm)
    if mod == "pretend":
        # mime: the hand moves as it would with the object (push: towards it, pull: away from it)
        tip = sc.pretend_track(contact, arm, t_in, t_c0, t_c1, t_out, motion=mdir * 0.06)
    else:
        tip = sc.contact_track(contact, arm, t_in, t_c0, t_c1, t_out)
    if profile == "strike":  # follow-through past the contact point
        tip = tip - arm[None, :] * (0.04 * np.sin(np.pi * _lin(t, t_c0, t_c0 + 0.15)))[:, None]
    sc.set_hand(tip, arm, "finger" if hand == "finger" else "fist")


def _grasp_motion(sc: _Scene, mod: str, action: str) -> None:
    """Move / pick up / lift / throw: the hand holds the object during the motion."""
    t, T = sc.t, sc.T
    n = _COUNT.get(mod, 1)
    R = None
    layer = 2
    if action in ("pick", "lift"):
        nominal = (0.0, -1.0)
    else:
        nominal = (float(sc.sign()), 0.0)
    if mod in _RELATIONS:
        R = sc.relation(mod, sc.sign())
        layer = R["layer"]
    elif mod == "circle":
        pass
    else:
        dx, dy, se = sc.displacement(mod, nominal)
        if action in ("pick", "lift") and mod in _COUNT:
            dy = -sc.u(0.28, 0.36)
    if action == "throw":
        _throw(sc, mod, R)
        return
    t_c0 = sc.u(0.18, 0.32)
    t_c1 = min(t_c0 + sc.u(0.45, 0.6), 0.92)
    s = _ss(t, t_c0 + 0.04, t_c1)
    if mod == "pretend":
        s = np.zeros(T)
    ang = np.zeros(T)
    if R is not None:
        x, y, scale = sc.rel_path(R, s)
    elif mod == "circle":
        rho = sc.u(0.12, 0.17)
        hw = sc.group_halfwidth(1)
        cx = sc.u(0.15 + rho + hw, 0.85 - rho - hw)
        cy = sc.ground(0.35, 0.7) - sc.half_height() - rho * 0.5
        d = sc.sign()
        ph = sc.u(0, 2 * np.pi)
        x = cx + rho * np.cos(ph + d * 2 * np.pi * s)
        y = cy + 0.75 * rho * np.sin(ph + d * 2 * np.pi * s)
        scale = np.ones(T)
    else:
        on_table = not (mod == "down")
        x0, y0 = sc.place_for(dx, dy, se, n=n, on_table=on_table)
        if mod == "down":  # starts raised, ends on the table
            y0 = min(y0, 0.95 - dy - sc.half_height()) if y0 + dy > 0.95 - sc.half_height() else y0
        x = x0 + dx * s
        y = y0 + dy * s
        scale = 1.0 + (se - 1.0) * s
    sc.make_objects(n, x, y, scale, ang=ang, layer=layer)
    if action == "lift":
        arm = _unit(sc.u(-0.6, 0.6), 1.0)  # from below
    elif action == "move":
        arm = _unit(sc.sign() * sc.u(0.8, 1.2), -1.0)  # a diagonal grip from above one side
    else:
        arm = _unit(sc.u(-0.35, 0.35), -1.0)  # from above
    contact = _contact_point(sc, x, y, scale, arm, n=1)
    t_in, t_out = max(t_c0 - 0.2, 0.0), min(t_c1 + sc.u(0.15, 0.3), 1.0)
    if mod == "pretend":  # mimed lift: the hand rises without the object
        tip = sc.pretend_track(contact, arm, t_in, t_c0, t_c1, t_out, motion=np.array([0.0, -0.1]))
    else:
        tip = sc.contact_track(contact, arm, t_in, t_c0, t_c1, t_out)
    sc.set_hand(tip, arm)


def _throw(sc: _Scene, mod: str, R: Optional[dict]) -> None:
    """Throwing: grasp, quick swing, release; the object flies ballistically."""
    t, T = sc.t, sc.T
    t_c0 = sc.u(0.08, 0.18)
    t_r = t_c0 + sc.u(0.22, 0.3)  # release
    g = sc.u(2.0, 3.0)
    if R is not None:
        (x0, y0) = R["start"]
        xe, ye = R["end"]
        layer = R["layer"]
        direction = 1.0 if xe > x0 else -1.0
    elif mod == "down":
        direction = float(sc.sign())
        x0 = sc.u(0.2, 0.8)
        y0 = sc.u(sc.horizon - 0.05, sc.horizon + 0.1)
        layer = 2
    else:
        direction = 1.0 if mod == "lr" else -1.0 if mod == "rl" else float(sc.sign())
        if mod == "up":
            x0 = sc.u(0.25, 0.75)
        else:
            x0 = sc.u(0.12, 0.35) if direction > 0 else sc.u(0.65, 0.88)
        y0 = sc.ground(0.4, 0.9) - sc.half_height()
        layer = 2
    # wind-up: lift a little and move back, then swing forward to the release point
    lift = sc.u(0.05, 0.09)
    wind = _ss(t, t_c0 + 0.02, t_c0 + 0.12)
    swing = _ss(t, t_c0 + 0.12, t_r)
    if mod == "up":
        back = np.array([0.0, 0.03])
        fwd = np.array([0.0, -0.12])
    elif mod == "down":
        back = np.array([0.0, -0.03])
        fwd = np.array([0.0, 0.08])
    else:
        back = np.array([-direction * 0.05, 0.0])
        fwd = np.array([direction * 0.1, -0.02])
    hx = x0 + back[0] * wind + (fwd[0] - back[0]) * swing
    hy = y0 - lift * wind + (back[1] * wind) + (fwd[1] - back[1]) * swing
    pr = np.array([x0 + fwd[0], y0 - lift + fwd[1]])
    tau = np.maximum(t - t_r, 0.0)
    if R is not None:
        flight = sc.u(0.22, 0.32)
        v = (np.array([xe, ye]) - pr - 0.5 * np.array([0.0, g]) * flight ** 2) / flight
        tau = np.minimum(tau, flight)
    elif mod == "up":
        v = np.array([sc.u(-0.15, 0.15), -sc.u(2.0, 2.6)])
    elif mod == "down":
        v = np.array([direction * sc.u(0.0, 0.2), sc.u(1.6, 2.2)])
    else:
        v = np.array([direction * sc.u(1.5, 2.0), -sc.u(0.4, 0.8)])
    fx = pr[0] + v[0] * tau
    fy = pr[1] + v[1] * tau + 0.5 * g * tau ** 2
    if mod == "down":  # hits the table and stops
        floor_y = min(0.95 - sc.half_height(), pr[1] + 0.4)
        fy = np.minimum(fy, floor_y)
    if mod in ("lr", "rl", "up", "down"):
        # the object keeps its initial position (on the table) before being grasped
        pass
    x = np.where(t < t_r, hx, fx)
    y = np.where(t < t_r, hy, fy)
    ang = np.where(t < t_r, 0.0, direction * sc.u(1.0, 3.0) * tau)
    sc.make_objects(1, x, y, np.ones(T), ang=ang, layer=layer)
    arm = _unit(sc.u(-0.3, 0.3), -1.0)
    contact = _contact_point(sc, x, y, np.ones(T), arm)
    tip = sc.contact_track(contact, arm, max(t_c0 - 0.15, 0.0), t_c0, t_r, min(t_r + 0.45, 1.0))
    # after the release the hand keeps moving along the swing for a moment
    follow = (_ss(t, t_r, t_r + 0.1) * 0.06)[:, None] * _unit(*(fwd - back))[None, :]
    tip = tip + follow
    sc.set_hand(tip, arm)


def _carry_path(p0: Tuple[float, float], p1: Tuple[float, float], clear_y: float,
                s: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Lift from p0 to height clear_y, move across, lower onto p1; s [T] in [0, 1]."""
    a, b = 0.25, 0.7
    up = _ss(s, 0.0, a)
    across = _ss(s, a, b)
    down = _ss(s, b, 1.0)
    x = p0[0] + (p1[0] - p0[0]) * across
    y = p0[1] + (clear_y - p0[1]) * up + (p1[1] - clear_y) * down
    return x, y


def _carry(sc: _Scene, mod: str, action: str) -> None:
    """Putting / dropping / holding: the hand picks the object up from the table and carries it.

    Relations follow the same path whatever the action: the object starts on the table beside
    the box and ends in the relation (on it, inside it, next to it, behind it). Putting lowers it
    into place and lets go, dropping lets go above the target (free fall), holding never lets go.
    """
    t, T = sc.t, sc.T
    n = _COUNT.get(mod, 1)
    side = sc.sign()
    layer = 2
    R = sc.relation(mod, side) if mod in _RELATIONS else None
    hh = sc.half_height()
    if R is not None:
        layer = R["layer"]
        p0, p1 = R["start"], R["end"]
        se = R["scale_end"]
        clear = min(p0[1], p1[1], R["box_top"] - hh) - sc.u(0.06, 0.1)
    else:  # count / bounce / on its own: from one spot of the table to another
        hw = sc.group_halfwidth(n)
        lo, hi = sc.table_x(0.03)
        lo, hi = max(lo, 0.06) + hw, min(hi, 0.94) - hw
        d = sc.u(0.15, 0.28) if action != "hold" else sc.u(0.1, 0.2)
        x0 = sc.u(lo, hi)
        x1 = x0 + side * d
        if not lo <= x1 <= hi:
            x1 = x0 - side * d
        x1 = float(np.clip(x1, lo, hi))
        y0 = sc.ground(0.3, 0.85) - hh
        p0, p1 = (x0, y0), (x1, y0 + sc.u(-0.04, 0.04))
        se = 1.0
        clear = min(p0[1], p1[1]) - sc.u(0.1, 0.16)
    ang = np.zeros(T)
    t_c0 = sc.u(0.06, 0.16)  # the hand reaches the object
    if action == "put":
        t_d = sc.u(0.6, 0.72)  # placed
        s = _ss(t, t_c0 + 0.03, t_d)
        x, y = _carry_path(p0, p1, clear, s)
        scale = 1.0 + (se - 1.0) * _ss(s, 0.7, 1.0)
        t_rel = t_d + 0.03
        if mod == "edge":  # tips over the box's edge and falls down beside it
            tau = np.maximum(t - t_rel - 0.04, 0.0)
            drop = np.minimum(0.5 * sc.u(8.0, 11.0) * tau ** 2, R["bottom"] - hh - p1[1])
            x = x + side * np.minimum(tau * 0.6, 0.08)
            y = y + drop
            ang = side * np.minimum(tau * 6.0, np.pi / 2)
        arm = _unit(sc.u(-0.35, 0.35), -1.0)
        t_out = min(t_rel + sc.u(0.2, 0.3), 1.0)
    elif action == "drop":
        high = min(clear, p1[1] - sc.u(0.25, 0.35))
        high = max(high, 0.1)
        t_a = sc.u(0.38, 0.48)  # above the target
        t_rel = t_a + sc.u(0.03, 0.08)
        s = _ss(t, t_c0 + 0.03, t_a) * 0.7  # only the lift and the move across
        x, y = _carry_path(p0, (p1[0], high), high, s / 0.7)
        g = sc.u(9.0, 13.0)
        tau = np.maximum(t - t_rel, 0.0)
        y = np.where(t > t_rel, np.minimum(high + 0.5 * g * tau ** 2, p1[1]), y)
        if mod == "bounce":
            t_land = t_rel + np.sqrt(2 * max(p1[1] - high, 1e-6) / g)
            tb = np.maximum(t - t_land, 0.0)
            hgt = sc.u(0.1, 0.16) * np.exp(-tb * 4.0) * np.abs(np.sin(np.pi * tb / sc.u(0.14, 0.2)))
            y = y - hgt * (t > t_land)
        fall_s = np.clip((y - high) / max(p1[1] - high, 1e-6), 0, 1) * (t > t_rel)
        scale = 1.0 + (se - 1.0) * fall_s
        arm = _unit(sc.u(-0.35, 0.35), -1.0)
        t_out = min(t_rel + sc.u(0.25, 0.4), 1.0)
    else:  # hold: side grip, carried into place, then held still until the end
        s = _ss(t, t_c0 + 0.03, sc.u(0.5, 0.62))
        lift = sc.u(0.05, 0.1)
        if R is not None:  # low carry path; lowered into place (so "behind" stays partly hidden)
            clear_h = min(p0[1], R["box_top"] - hh) - 0.03 if mod in ("behind", "front") else clear
            x, y = _carry_path(p0, (p1[0], p1[1] - 0.02), clear_h, s)
        else:
            x, y = _carry_path(p0, (p1[0], p1[1] - lift), min(p0[1], p1[1]) - lift, s)
        scale = 1.0 + (se - 1.0) * s
        tremor = sc.rng.normal(0, 0.004, size=(T, 2)).cumsum(0) * 0.5 * (t >= t_c0)[:, None]
        x, y = x + tremor[:, 0], y + tremor[:, 1]
        arm = _unit(float(side) if R is not None else float(sc.sign()), sc.u(-0.3, 0.1))
        t_rel, t_out = 1.0, 1.0
    sc.make_objects(n, x, y, scale, ang=ang, layer=layer)
    contact = _contact_point(sc, x, y, scale, arm, n=n if action == "hold" else 1)
    if action == "drop":  # the hand stays up there after letting go
        hold_pt = np.where((t > t_rel)[:, None], _contact_point(sc, x, np.full(T, high), np.ones(T), arm), contact)
        tip = sc.contact_track(hold_pt, arm, 0.0, t_c0, t_rel + 0.12, t_out)
        tip = tip + arm[None, :] * (0.02 * _ss(t, t_rel - 0.02, t_rel + 0.05))[:, None]  # fingers open
    else:
        tip = sc.contact_track(contact, arm, 0.0, t_c0, t_rel, t_out)
    sc.set_hand(tip, arm)


def _squeeze(sc: _Scene, mod: str) -> None:
    """Squeezing: fingers close in on both sides, the object's width shrinks (partly recovers)."""
    t, T = sc.t, sc.T
    n = _COUNT.get(mod, 1)
    amount = {"slight": sc.u(0.2, 0.27), "pretend": 0.0}.get(mod, sc.u(0.5, 0.6))
    sc.r0 *= 1.25  # squeezable things are large and soft: the squeeze must span pixels at 32 x 32
    x0, y0 = sc.place_for(0.0, 0.0, 1.0, n=n)
    t_c0 = sc.u(0.2, 0.32)
    t_sq = t_c0 + sc.u(0.2, 0.3)
    t_rel = sc.u(0.7, 0.85)
    q = _ss(t, t_c0, t_sq) - 0.5 * _ss(t, t_rel, min(t_rel + 0.1, 1.0))
    sx = 1.0 - amount * q
    sy = 1.0 + 0.35 * amount * q
    x = np.full(T, x0)
    y = y0 - (sy - 1.0) * sc.half_height()
    sc.make_objects(n, x, y, np.ones(T), sx=sx, sy=sy)
    arm = _unit(sc.u(-0.3, 0.3), -1.0)
    top = _contact_point(sc, x, y - sc.half_height() * (sy - 1.0), np.ones(T), np.array([0.0, -1.0]))
    t_in, t_out = max(t_c0 - 0.2, 0.0), min(t_rel + 0.15, 1.0)
    gap = sc.u(0.05, 0.08) if mod == "pretend" else 0.0
    tip = sc.contact_track(top, arm, t_in, t_c0, t_rel, t_out, gap=gap * 0.5)
    # fingertips on both sides of the group, closing in with the squeeze
    hw = sc.group_halfwidth(n) * (1.0 - amount * q)
    close = _ss(t, t_c0 - 0.08, t_c0) - _ss(t, t_rel, t_out)
    open_w = 0.05 + gap
    lx = x - hw - 0.02 - open_w * (1 - close) - (0.1 if mod == "pretend" else 0.0) * np.sin(np.pi * _lin(t, t_c0, t_rel)) * 0 - gap
    rx = x + hw + 0.02 + open_w * (1 - close) + gap
    if mod == "pretend":  # mimed squeeze: fingers pulse, object untouched
        pulse = 0.02 * np.sin(np.pi * _lin(t, t_c0, t_rel))
        lx, rx = lx + pulse, rx - pulse
    fy = y + (tip[:, 1] - y) * 0.0 + 0.01
    sc.pincer = (lx, fy + (1 - close) * (tip[:, 1] - y), rx, fy + (1 - close) * (tip[:, 1] - y))
    sc.set_hand(tip, arm)


def _turn(sc: _Scene, mod: str) -> None:
    """Turning: a grip from above rotates the object in place (flip for 'upside down')."""
    t, T = sc.t, sc.T
    x0, y0 = sc.place_for(0.0, 0.0, 1.0)
    t_c0 = sc.u(0.18, 0.3)
    t_c1 = min(t_c0 + sc.u(0.4, 0.55), 0.92)
    s = _ss(t, t_c0 + 0.03, t_c1)
    ang = np.zeros(T)
    sy = np.ones(T)
    d = sc.sign()
    if mod == "upside":
        sy = np.cos(np.pi * s)
    elif mod == "slight":
        ang = d * sc.u(0.5, 0.7) * s
    elif mod == "spin":
        t_c1 = t_c0 + sc.u(0.12, 0.18)  # a quick twist, then it spins on its own
        ang = d * 2 * np.pi * sc.u(1.0, 1.4) * _ss(t, t_c0, min(t_c0 + sc.u(0.5, 0.65), 1.0))
    x = np.full(T, x0)
    y = np.full(T, y0)
    sc.make_objects(1, x, y, np.ones(T), ang=ang, sy=sy)
    arm = _unit(sc.u(-0.35, 0.35), -1.0)
    contact = _contact_point(sc, x, y, np.ones(T), np.array([0.0, -1.0]))
    t_in, t_out = max(t_c0 - 0.2, 0.0), min(t_c1 + sc.u(0.15, 0.3), 1.0)
    if mod == "pretend":
        tip = sc.pretend_track(contact, arm, t_in, t_c0, t_c1, t_out)
        wob = 0.04 * np.sin(4 * np.pi * _lin(t, t_c0, t_c1))
        tip = tip + np.stack([d * wob, np.zeros(T)], 1)
    else:
        tip = sc.contact_track(contact, arm, t_in, t_c0, t_c1, t_out)
        # the wrist twists: the tip circles a little with the rotation
        tip = tip + np.stack([np.sin(ang) * 0.02, np.zeros(T)], 1)
    sc.set_hand(tip, arm)


def _cover(sc: _Scene, mod: str) -> None:
    """Covering: the hand brings a sheet over the object(s) and lets go."""
    t, T = sc.t, sc.T
    n = _COUNT.get(mod, 1)
    x0, y0 = sc.place_for(0.0, 0.0, 1.0, n=n)
    sc.make_objects(n, np.full(T, x0), np.full(T, y0), np.ones(T))
    hw = sc.group_halfwidth(n) + sc.u(0.03, 0.05)
    hh = sc.half_height() + sc.u(0.03, 0.05)
    side = sc.sign()
    t_c = sc.u(0.5, 0.7)
    s = _ss(t, sc.u(0.05, 0.15), t_c)
    x_s = x0 + side * sc.u(0.35, 0.5)
    y_s = y0 - sc.u(0.15, 0.25)
    if mod == "slight":
        xe = x0 + side * hw * sc.u(1.2, 1.45)
    elif mod == "pretend":
        xe = x0 + side * (2 * hw + sc.u(0.04, 0.08))
    else:
        xe = x0
    ye = y0 + sc.u(-0.01, 0.01)
    x = x_s + (xe - x_s) * np.clip(s / 0.7, 0, 1)
    y = y_s + (ye - y_s) * np.clip((s - 0.4) / 0.6, 0, 1)
    if mod == "pretend":  # brought close, then taken away again
        back = _ss(t, t_c + 0.05, min(t_c + 0.3, 1.0))
        x = x + (x_s - xe) * back
        y = y + (y_s - ye) * back
    col = _hsv(sc.rng.random(), sc.u(0.0, 0.5), sc.u(0.3, 0.95))
    sc.sheet = _Shape(x, y, np.full(T, hw), np.full(T, hh), sc.rng.normal(0, 0.03) * np.ones(T), "square",
                      col, col * 0.85, 0.0, None, 5)
    arm = _unit(sc.u(-0.3, 0.3), -1.0)
    contact = np.stack([x, y - hh], 1)
    t_out = min(t_c + sc.u(0.15, 0.3), 1.0) if mod != "pretend" else 1.0
    tip = sc.contact_track(contact, arm, 0.0, 0.0, t_c if mod != "pretend" else 1.0, t_out)
    sc.set_hand(tip, arm)


def _build(sc: _Scene, action: str, mod: str) -> None:
    if action == "push":
        _table_motion(sc, mod, "trail", "const")
    elif action == "pull":
        _table_motion(sc, mod, "lead", "const")
    elif action == "slide":
        _table_motion(sc, mod, "trail", "glide")
    elif action == "roll":
        _table_motion(sc, mod, "trail", "roll")
    elif action == "hit":
        _table_motion(sc, mod, "palm", "strike")
    elif action == "poke":
        _table_motion(sc, mod, "finger", "poke")
    elif action in ("move", "pick", "lift", "throw"):
        _grasp_motion(sc, mod, action)
    elif action in ("put", "drop", "hold"):
        _carry(sc, mod, action)
    elif action == "squeeze":
        _squeeze(sc, mod)
    elif action == "turn":
        _turn(sc, mod)
    elif action == "cover":
        _cover(sc, mod)
    else:  # pragma: no cover
        raise ValueError(action)


def render_clip(spec: ClipSpec, rng: np.random.Generator) -> np.ndarray:
    """Render one clip.

    Args:
        spec: action, modifier and rendering parameters.
        rng: the only source of randomness (same state -> identical clip).

    Returns:
        uint8 [T, H, W, 3] frames.
    """
    if spec.action not in ACTIONS:
        raise CatsplitError(f"unknown action {spec.action!r}; choose from {sorted(ACTIONS)}")
    if spec.modifier not in ACTIONS[spec.action][1]:
        raise CatsplitError(f"modifier {spec.modifier!r} does not belong to action {spec.action!r}; "
                            f"it has {list(ACTIONS[spec.action][1])}")
    if spec.frames < 2 or spec.size < 8:
        raise CatsplitError(f"need frames >= 2 and size >= 8, got {spec.frames}, {spec.size}")
    sc = _Scene(spec, rng)
    _build(sc, spec.action, spec.modifier)
    sc.add_distractors()
    return sc.render()


# --------------------------------------------------------------------------------------------
# Data set
# --------------------------------------------------------------------------------------------

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


def _render_label(args: Tuple[WorldConfig, str, str, int, int]) -> np.ndarray:
    """Render clips [start, start + n) of one fine label of one split: uint8 [n, T, H, W, 3]."""
    config, split, label, start, n = args
    tax = taxonomy(config)
    spec = ClipSpec.of(tax, label, config)
    out = np.empty((n, config.frames, config.size, config.size, 3), dtype=np.uint8)
    for i in range(n):
        out[i] = render_clip(spec, clip_rng(config.seed, split, label, start + i))
    return out


def generate(config: WorldConfig = WorldConfig(), progress: bool = True,
             splits: Sequence[str] = SPLITS, workers: int = 1) -> Dataset:
    """Render the whole data set.

    Args:
        config: the world configuration.
        progress: draw a progress bar on stderr (only when it is a TTY).
        splits: which splits to render.
        workers: processes to render with (>1 uses multiprocessing; the clips are identical
            whatever the number of workers, since every clip has its own seed).

    Returns:
        A Dataset; within a split, clips are ordered by fine label, then clip index.
    """
    tax = taxonomy(config)
    labels = tax.labels
    counts = config.counts()
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise CatsplitError(f"unknown splits {unknown}; choose from {list(SPLITS)}")
    total = sum(counts[s] * len(labels) for s in splits)
    T, S = config.frames, config.size
    out: Dict[str, Split] = {}
    jobs = [(config, split, label, 0, counts[split]) for split in splits for label in labels]
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
