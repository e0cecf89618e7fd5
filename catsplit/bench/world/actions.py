"""The choreography of every action (what the hand does) x modifier (what happens to the object),
and render_clip, which renders one clip from its spec."""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from catsplit.bench.world.canvas import _Shape, _hsv, _lin, _ss
from catsplit.bench.world.clip_spec import ClipSpec
from catsplit.bench.world.scene import _Scene
from catsplit.bench.world.taxonomy import ACTIONS, PRETRAIN_ACTIONS
from catsplit.errors import CatsplitError


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
    # the pretraining world's verbs (taxonomy.PRETRAIN_ACTIONS): other hand / timing combinations
    elif action == "nudge":
        _table_motion(sc, mod, "lead", "glide")    # a brief tug from the front, then it glides
    elif action == "tap":
        _table_motion(sc, mod, "finger", "strike")  # a quick fingertip strike
    elif action == "shove":
        _table_motion(sc, mod, "palm", "const")     # the palm against it all the way
    elif action == "flick":
        _table_motion(sc, mod, "finger", "glide")   # a fingertip flick, then it glides
    elif action == "carry":
        _grasp_motion(sc, mod, action)              # grip from above, carried sideways
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
    table = ACTIONS if spec.action in ACTIONS else PRETRAIN_ACTIONS
    if spec.action not in table:
        raise CatsplitError(f"unknown action {spec.action!r}; choose from {sorted(ACTIONS)} "
                            f"(or the pretraining world's {sorted(PRETRAIN_ACTIONS)})")
    if spec.modifier not in table[spec.action][1]:
        raise CatsplitError(f"modifier {spec.modifier!r} does not belong to action {spec.action!r}; "
                            f"it has {list(table[spec.action][1])}")
    if spec.frames < 2 or spec.size < 8:
        raise CatsplitError(f"need frames >= 2 and size >= 8, got {spec.frames}, {spec.size}")
    sc = _Scene(spec, rng)
    _build(sc, spec.action, spec.modifier)
    sc.add_distractors()
    return sc.render()
