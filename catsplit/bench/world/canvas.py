"""Rendering primitives: easing ramps, colours, the drawable shape and the canvas that draws it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np


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
