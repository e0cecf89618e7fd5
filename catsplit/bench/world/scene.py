"""The scene of one clip: layout, appearance, the hand, modifier geometry, distractors, background,
and drawing it all onto a canvas."""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from catsplit.bench.world.canvas import _SKIN, _Canvas, _Shape, _hsv, _lin, _object_colour, _ss
from catsplit.bench.world.clip_spec import ClipSpec


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
