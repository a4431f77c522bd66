"""Street furniture and other distractors: cars, poles and street lamps, signs, bags, bins,
trees, bicycles and bollards, each drawn as a sprite standing on the ground.

Every drawer takes ``(rng, foot, ref_h)``: ``foot`` is the image point (x, y px) where the object
meets the ground (its bottom centre) and ``ref_h`` the height in pixels a standing person would
have at that ground position, which sets the object's size. It returns a :class:`Sprite`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from patchkit.toyworld.draw import ShapeMask, Sprite, smooth_noise
from patchkit.toyworld.textures import random_colour

_CAR_COLOURS = np.array(
    [[0.85, 0.85, 0.85], [0.1, 0.1, 0.12], [0.55, 0.56, 0.6], [0.6, 0.08, 0.08], [0.1, 0.2, 0.5],
     [0.9, 0.9, 0.92], [0.25, 0.3, 0.25], [0.8, 0.6, 0.1], [0.3, 0.35, 0.45]],
    np.float32,
)


def ring(centre: tuple[float, float], axes: tuple[float, float], thickness: float,
         arc: tuple[float, float] = (0.0, 360.0)) -> tuple[np.ndarray, int, int]:
    """An anti-aliased elliptic ring (or arc of one) ``thickness`` pixels wide, as
    ``(mask, ox, oy)`` for :meth:`Sprite.paint`."""
    m, ox, oy = ShapeMask.ellipse(centre, axes, 0.0, arc)
    inner = (max(axes[0] - thickness, 0.3), max(axes[1] - thickness, 0.3))
    mi, oxi, oyi = ShapeMask.ellipse(centre, inner, 0.0, arc)
    out = m.astype(np.int16)
    dy, dx = oyi - oy, oxi - ox
    hh, ww = min(mi.shape[0], out.shape[0] - dy), min(mi.shape[1], out.shape[1] - dx)
    out[dy : dy + hh, dx : dx + ww] -= mi[:hh, :ww]
    return np.clip(out, 0, 255).astype(np.uint8), ox, oy


def car(rng: np.random.Generator, foot: tuple[float, float], ref_h: float) -> Sprite:
    """A car seen from the side or from the front/back."""
    fx, fy = foot
    h = ref_h * rng.uniform(0.78, 0.95)
    body = random_colour(rng, _CAR_COLOURS, 0.05)
    glass = np.array([0.15, 0.2, 0.27], np.float32) + rng.uniform(0, 0.15)
    side = rng.random() < 0.6
    L = h * (rng.uniform(2.6, 3.1) if side else rng.uniform(1.1, 1.3))
    s = Sprite.empty(fx - L / 2, fy - h, fx + L / 2, fy)
    ox, oy = s.x0, s.y0
    X = lambda x: fx - ox + x * L / 2  # noqa: E731  (x in [-1, 1] across the car)
    Y = lambda y: fy - oy - y * h  # noqa: E731  (y in [0, 1] up from the ground)
    wheel_r = h * 0.2
    if side:
        lower = np.array([[X(-1), Y(0.18)], [X(-1), Y(0.5)], [X(-0.9), Y(0.56)], [X(0.9), Y(0.58)], [X(1), Y(0.48)], [X(1), Y(0.18)]])
        s.paint(*ShapeMask.polygon(lower), colour=body)
        a, b = rng.uniform(-0.6, -0.45), rng.uniform(0.3, 0.55)
        cabin = np.array([[X(a), Y(0.56)], [X(a + 0.18), Y(0.98)], [X(b - 0.15), Y(0.98)], [X(b), Y(0.56)]])
        s.paint(*ShapeMask.polygon(cabin), colour=body)
        for lo, hi in ((a + 0.05, (a + b) / 2 - 0.02), ((a + b) / 2 + 0.02, b - 0.05)):
            win = np.array([[X(lo), Y(0.6)], [X(lo + 0.12), Y(0.92)], [X(hi - 0.08), Y(0.92)], [X(hi), Y(0.6)]])
            s.paint(*ShapeMask.polygon(win), colour=glass)
        for wx in (-0.62, 0.62):
            s.paint(*ShapeMask.ellipse((X(wx), Y(0.2)), (wheel_r, wheel_r)), colour=np.array([0.05, 0.05, 0.05], np.float32))
            s.paint(*ShapeMask.ellipse((X(wx), Y(0.2)), (wheel_r * 0.5, wheel_r * 0.5)), colour=np.array([0.6, 0.6, 0.62], np.float32))
        s.paint(*ShapeMask.ellipse((X(0.96), Y(0.43)), (L * 0.02, h * 0.04)), colour=np.array([1.0, 0.95, 0.7], np.float32))
        s.paint(*ShapeMask.ellipse((X(-0.97), Y(0.43)), (L * 0.015, h * 0.04)), colour=np.array([0.8, 0.05, 0.05], np.float32))
    else:
        for wx in (-0.78, 0.78):
            s.paint(*ShapeMask.polygon(np.array([[X(wx - 0.14), Y(0.0)], [X(wx - 0.14), Y(0.25)], [X(wx + 0.14), Y(0.25)], [X(wx + 0.14), Y(0.0)]])),
                    colour=np.array([0.05, 0.05, 0.05], np.float32))
        lower = np.array([[X(-1), Y(0.12)], [X(-1), Y(0.55)], [X(1), Y(0.55)], [X(1), Y(0.12)]])
        s.paint(*ShapeMask.polygon(lower), colour=body)
        top = np.array([[X(-0.92), Y(0.55)], [X(-0.72), Y(0.97)], [X(0.72), Y(0.97)], [X(0.92), Y(0.55)]])
        s.paint(*ShapeMask.polygon(top), colour=body)
        shield = np.array([[X(-0.8), Y(0.58)], [X(-0.66), Y(0.92)], [X(0.66), Y(0.92)], [X(0.8), Y(0.58)]])
        s.paint(*ShapeMask.polygon(shield), colour=glass)
        lamp = np.array([1.0, 0.95, 0.75] if rng.random() < 0.5 else [0.85, 0.05, 0.05], np.float32)
        for lx in (-0.75, 0.75):
            s.paint(*ShapeMask.ellipse((X(lx), Y(0.42)), (L * 0.09, h * 0.05)), colour=lamp)
        s.paint(*ShapeMask.polygon(np.array([[X(-0.4), Y(0.2)], [X(-0.4), Y(0.35)], [X(0.4), Y(0.35)], [X(0.4), Y(0.2)]])),
                colour=body * 0.4)
    return s


def pole(rng: np.random.Generator, foot: tuple[float, float], ref_h: float) -> Sprite:
    """A street lamp or a bare pole (2-3.5 person heights)."""
    fx, fy = foot
    h = ref_h * rng.uniform(1.8, 3.5)
    w = max(ref_h * rng.uniform(0.03, 0.06), 1.0)
    col = random_colour(rng, np.array([[0.2, 0.2, 0.22], [0.45, 0.45, 0.45], [0.1, 0.25, 0.15], [0.6, 0.6, 0.55]], np.float32), 0.04)
    arm = rng.random() < 0.6
    reach = h * 0.18 * (1 if rng.random() < 0.5 else -1)
    s = Sprite.empty(fx - abs(reach) - w * 3, fy - h - w * 2, fx + abs(reach) + w * 3, fy)
    o = np.array([s.x0, s.y0], np.float64)
    base, top = np.array([fx, fy]) - o, np.array([fx, fy - h]) - o
    s.paint(*ShapeMask.capsule(base, top, w * 0.7, w * 0.45), colour=col)
    if arm:
        end = top + [reach, h * 0.02]
        s.paint(*ShapeMask.line(top, end, w * 0.6), colour=col)
        s.paint(*ShapeMask.ellipse((end[0], end[1] + w), (w * 2.2, w * 1.0)), colour=np.array([0.95, 0.92, 0.8], np.float32))
    return s


def sign(rng: np.random.Generator, foot: tuple[float, float], ref_h: float) -> Sprite:
    """A traffic sign on a post: round, triangular, square or octagonal board."""
    fx, fy = foot
    h = ref_h * rng.uniform(1.1, 1.6)
    r = ref_h * rng.uniform(0.12, 0.2)
    w = max(ref_h * 0.025, 0.8)
    s = Sprite.empty(fx - r * 1.2, fy - h - r * 1.2, fx + r * 1.2, fy)
    o = np.array([s.x0, s.y0], np.float64)
    c = np.array([fx, fy - h]) - o
    s.paint(*ShapeMask.line(np.array([fx, fy]) - o, c, w), colour=np.array([0.55, 0.55, 0.57], np.float32))
    red, blue, white = (np.array(v, np.float32) for v in ([0.8, 0.1, 0.1], [0.1, 0.25, 0.7], [0.95, 0.95, 0.95]))
    kind = int(rng.integers(4))
    if kind == 0:
        s.paint(*ShapeMask.ellipse(tuple(c), (r, r)), colour=red)
        s.paint(*ShapeMask.ellipse(tuple(c), (r * 0.75, r * 0.75)), colour=white if rng.random() < 0.5 else blue)
    elif kind == 1:
        tri = c + r * np.array([[0, -1.0], [0.95, 0.7], [-0.95, 0.7]])
        s.paint(*ShapeMask.polygon(tri), colour=red)
        s.paint(*ShapeMask.polygon(c + 0.65 * (tri - c)), colour=white)
    elif kind == 2:
        sq = c + r * np.array([[-0.9, -0.9], [0.9, -0.9], [0.9, 0.9], [-0.9, 0.9]])
        s.paint(*ShapeMask.polygon(sq), colour=blue)
        s.paint(*ShapeMask.polygon(c + r * np.array([[-0.15, -0.6], [0.15, -0.6], [0.15, 0.6], [-0.15, 0.6]])), colour=white)
    else:
        ang = np.pi / 8 + np.arange(8) * np.pi / 4
        s.paint(*ShapeMask.polygon(c + r * np.stack([np.cos(ang), np.sin(ang)], 1)), colour=red)
        s.paint(*ShapeMask.polygon(c + r * 0.5 * np.array([[-1.2, -0.25], [1.2, -0.25], [1.2, 0.25], [-1.2, 0.25]])), colour=white)
    return s


def bag(rng: np.random.Generator, foot: tuple[float, float], ref_h: float) -> Sprite:
    """A bag or suitcase on the ground, with a handle."""
    fx, fy = foot
    h = ref_h * rng.uniform(0.15, 0.4)
    w = h * rng.uniform(0.7, 1.5)
    col = random_colour(rng)
    s = Sprite.empty(fx - w / 2, fy - h * 1.4, fx + w / 2, fy)
    o = np.array([s.x0, s.y0], np.float64)
    body = np.array([[fx - w / 2, fy], [fx - w / 2 * 0.92, fy - h], [fx + w / 2 * 0.92, fy - h], [fx + w / 2, fy]]) - o
    s.paint(*ShapeMask.polygon(body), colour=col)
    handle = np.array([fx, fy - h]) - o
    t = max(h * 0.06, 0.8)
    s.paint(*ring((handle[0], handle[1]), (w * 0.25, h * 0.3), t, (180.0, 360.0)), colour=col * 0.7)
    s.paint(*ShapeMask.line(body[1] * [1, 1] + [0, h * 0.35], body[2] + [0, h * 0.35], max(h * 0.04, 0.7)), colour=col * 0.6)
    return s


def bin_(rng: np.random.Generator, foot: tuple[float, float], ref_h: float) -> Sprite:
    """A litter bin, post box or bollard."""
    fx, fy = foot
    kind = int(rng.integers(3))
    h = ref_h * (rng.uniform(0.45, 0.65) if kind < 2 else rng.uniform(0.25, 0.4))
    w = h * (rng.uniform(0.5, 0.75) if kind < 2 else rng.uniform(0.25, 0.35))
    col = random_colour(rng, np.array([[0.15, 0.3, 0.2], [0.7, 0.1, 0.1], [0.3, 0.3, 0.32], [0.8, 0.7, 0.2]], np.float32), 0.05)
    s = Sprite.empty(fx - w / 2 * 1.1, fy - h * 1.05, fx + w / 2 * 1.1, fy)
    o = np.array([s.x0, s.y0], np.float64)
    body = np.array([[fx - w / 2 * 0.9, fy], [fx - w / 2, fy - h * 0.9], [fx + w / 2, fy - h * 0.9], [fx + w / 2 * 0.9, fy]]) - o
    s.paint(*ShapeMask.polygon(body), colour=col)
    s.paint(*ShapeMask.ellipse((fx - o[0], fy - h * 0.9 - o[1]), (w / 2 * 1.05, h * 0.1)), colour=col * 0.75)
    return s


def tree(rng: np.random.Generator, foot: tuple[float, float], ref_h: float) -> Sprite:
    """A tree: a trunk and a crown of overlapping textured blobs."""
    fx, fy = foot
    h = ref_h * rng.uniform(2.0, 3.8)
    r = h * rng.uniform(0.2, 0.3)
    s = Sprite.empty(fx - r * 1.6, fy - h - r * 0.4, fx + r * 1.6, fy)
    o = np.array([s.x0, s.y0], np.float64)
    tw = max(h * 0.035, 1.0)
    s.paint(*ShapeMask.capsule(np.array([fx, fy]) - o, np.array([fx, fy - h * 0.6]) - o, tw, tw * 0.7),
            colour=np.array([0.3, 0.2, 0.12], np.float32) * rng.uniform(0.7, 1.2))
    green = np.array([0.18, 0.4, 0.15], np.float32) * rng.uniform(0.6, 1.3) + rng.uniform(-0.05, 0.05, 3).astype(np.float32)
    hh, ww = s.shape
    noise = smooth_noise(rng, hh, ww, max(r * 0.15, 2.0))
    tex = np.clip(green * (1.0 + 0.25 * noise)[..., None], 0.0, 1.0).astype(np.float32)
    centre = np.array([fx, fy - h + r]) - o
    for _ in range(int(rng.integers(4, 8))):
        c = centre + rng.normal(0, r * 0.35, 2)
        rr = r * rng.uniform(0.45, 0.8)
        s.paint(*ShapeMask.ellipse(tuple(c), (rr, rr * rng.uniform(0.8, 1.1))), texture=tex)
    return s


def bicycle(rng: np.random.Generator, foot: tuple[float, float], ref_h: float) -> Sprite:
    """A parked bicycle seen from the side (thin strokes)."""
    fx, fy = foot
    wr = ref_h * rng.uniform(0.17, 0.21)
    L = wr * 3.4
    lw = max(ref_h * 0.012, 0.7)
    col = random_colour(rng)
    s = Sprite.empty(fx - L / 2 - wr, fy - wr * 3.2, fx + L / 2 + wr, fy)
    o = np.array([s.x0, s.y0], np.float64)
    b, f = np.array([fx - L / 2 + wr, fy - wr]) - o, np.array([fx + L / 2 - wr, fy - wr]) - o
    dark = np.array([0.08, 0.08, 0.08], np.float32)
    for c in (b, f):
        s.paint(*ring((c[0], c[1]), (wr, wr), lw * 1.5), colour=dark)
    seat, bar = b + [wr * 0.8, -wr * 1.6], f + [-wr * 0.2, -wr * 1.7]
    crank = (b + f) / 2 + [-wr * 0.2, 0]
    for p, q in ((b, crank), (crank, seat), (seat, b), (seat, bar), (bar, crank), (bar, f)):
        s.paint(*ShapeMask.line(p, q, lw), colour=col)
    s.paint(*ShapeMask.line(seat + [-wr * 0.25, -lw], seat + [wr * 0.2, -lw], lw * 2), colour=dark)
    return s


DRAWERS: dict[str, Callable[[np.random.Generator, tuple[float, float], float], Sprite]] = {
    "car": car,
    "pole": pole,
    "sign": sign,
    "bag": bag,
    "bin": bin_,
    "tree": tree,
    "bicycle": bicycle,
}
"""Distractor kinds by name."""
