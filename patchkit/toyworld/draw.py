"""Anti-aliased drawing primitives for the toy world: sprites built from OpenCV masks.

A :class:`Sprite` is a small premultiplied RGBA layer (float32, RGB in [0, 1]) anchored at an
integer pixel offset of the image; shapes (convex polygons, ellipses, tapered capsules) are
rasterised with OpenCV's ``LINE_AA`` at 1/16-pixel precision into a coverage mask and painted
with a flat colour or a texture. Sprites are composited "over" the canvas in depth order; a
per-pixel object-id map records which object is visible where (coverage > 0.5), from which the
dataset's visible boxes are read.

Coordinates: continuous image pixels, pixel ``(i, j)`` centred at ``x = j, y = i`` (OpenCV).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SHIFT = 4  # fixed-point bits for OpenCV drawing (1/16 px)
_ONE = 1 << SHIFT


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points, dtype=np.float64) * _ONE).astype(np.int32)


@dataclass
class Sprite:
    """A premultiplied RGBA layer.

    Attributes:
        x0, y0: image pixel of the layer's top-left element.
        rgb: ``(h, w, 3)`` float32 premultiplied colour (colour x alpha), in [0, 1].
        alpha: ``(h, w)`` float32 coverage in [0, 1].
    """

    x0: int
    y0: int
    rgb: np.ndarray
    alpha: np.ndarray

    @classmethod
    def empty(cls, x0: float, y0: float, x1: float, y1: float, pad: int = 2) -> "Sprite":
        """A transparent layer covering the box ``[x0, x1] x [y0, y1]`` (pixels) plus ``pad``."""
        ix0, iy0 = int(np.floor(x0)) - pad, int(np.floor(y0)) - pad
        w = max(1, int(np.ceil(x1)) + pad + 1 - ix0)
        h = max(1, int(np.ceil(y1)) + pad + 1 - iy0)
        return cls(ix0, iy0, np.zeros((h, w, 3), np.float32), np.zeros((h, w), np.float32))

    @property
    def shape(self) -> tuple[int, int]:
        return self.alpha.shape  # type: ignore[return-value]

    def box(self, threshold: float = 0.5) -> np.ndarray | None:
        """Tight ``[x1, y1, x2, y2]`` image-pixel box of the pixels covered ``> threshold``."""
        rows = np.flatnonzero((self.alpha > threshold).any(1))
        if rows.size == 0:
            return None
        cols = np.flatnonzero((self.alpha > threshold).any(0))
        return np.array(
            [self.x0 + cols[0], self.y0 + rows[0], self.x0 + cols[-1] + 1, self.y0 + rows[-1] + 1], np.float64
        )

    def paint(self, mask: np.ndarray, ox: int, oy: int, colour: np.ndarray | None = None,
              texture: np.ndarray | None = None) -> None:
        """Paint ``mask`` (uint8 coverage or float in [0, 1], placed at layer offset ``ox, oy``)
        with a flat ``colour`` (3,) or a ``texture`` of the whole layer's shape ``(h, w, 3)``."""
        h, w = self.alpha.shape
        mh, mw = mask.shape
        ax0, ay0 = max(ox, 0), max(oy, 0)
        ax1, ay1 = min(ox + mw, w), min(oy + mh, h)
        if ax1 <= ax0 or ay1 <= ay0:
            return
        m = mask[ay0 - oy : ay1 - oy, ax0 - ox : ax1 - ox]
        m = m.astype(np.float32) * (1.0 / 255.0) if m.dtype == np.uint8 else m.astype(np.float32)
        src = texture[ay0:ay1, ax0:ax1] if texture is not None else np.asarray(colour, np.float32)
        a = self.alpha[ay0:ay1, ax0:ax1]
        c = self.rgb[ay0:ay1, ax0:ax1]
        inv = 1.0 - m
        c *= inv[..., None]
        c += src * m[..., None]
        a *= inv
        a += m

    def shade(self, factor: np.ndarray | float) -> None:
        """Multiply the colour by ``factor`` (scalar, ``(h, w)`` or ``(h, w, 3)``)."""
        f = np.asarray(factor, np.float32)
        self.rgb *= f[..., None] if f.ndim == 2 else f


class ShapeMask:
    """Rasterise one anti-aliased shape into a tight uint8 coverage mask.

    Every method returns ``(mask, ox, oy)``: the mask and the layer coordinates of its top-left
    pixel, for :meth:`Sprite.paint`. Inputs are in layer coordinates (pixels).
    """

    @staticmethod
    def _canvas(x0: float, y0: float, x1: float, y1: float) -> tuple[np.ndarray, int, int]:
        ox, oy = int(np.floor(x0)) - 1, int(np.floor(y0)) - 1
        w = int(np.ceil(x1)) + 2 - ox
        h = int(np.ceil(y1)) + 2 - oy
        return np.zeros((max(h, 1), max(w, 1)), np.uint8), ox, oy

    @classmethod
    def polygon(cls, points: np.ndarray) -> tuple[np.ndarray, int, int]:
        """A filled convex polygon ``(N, 2)``."""
        p = np.asarray(points, np.float64).reshape(-1, 2)
        m, ox, oy = cls._canvas(*p.min(0), *p.max(0))
        cv2.fillConvexPoly(m, _fixed(p - (ox, oy)), 255, cv2.LINE_AA, SHIFT)
        return m, ox, oy

    @classmethod
    def polygons(cls, polys: list[np.ndarray]) -> tuple[np.ndarray, int, int]:
        """Filled (possibly non-convex) polygons, even-odd filled together."""
        allp = np.concatenate([np.asarray(p, np.float64).reshape(-1, 2) for p in polys])
        m, ox, oy = cls._canvas(*allp.min(0), *allp.max(0))
        cv2.fillPoly(m, [_fixed(np.asarray(p, np.float64).reshape(-1, 2) - (ox, oy)) for p in polys], 255, cv2.LINE_AA, SHIFT)
        return m, ox, oy

    @classmethod
    def ellipse(cls, centre: tuple[float, float], axes: tuple[float, float], angle_deg: float = 0.0,
                arc: tuple[float, float] = (0.0, 360.0)) -> tuple[np.ndarray, int, int]:
        """A filled ellipse (semi-axes in pixels, rotation in degrees), or a filled sector ``arc``."""
        ax, ay = max(axes[0], 0.3), max(axes[1], 0.3)
        r = max(ax, ay)
        cx, cy = centre
        m, ox, oy = cls._canvas(cx - r, cy - r, cx + r, cy + r)
        c = _fixed((cx - ox, cy - oy))
        cv2.ellipse(m, (int(c[0]), int(c[1])), (int(round(ax * _ONE)), int(round(ay * _ONE))), angle_deg,
                    arc[0], arc[1], 255, -1, cv2.LINE_AA, SHIFT)
        return m, ox, oy

    @classmethod
    def capsule(cls, p1: np.ndarray, p2: np.ndarray, r1: float, r2: float) -> tuple[np.ndarray, int, int]:
        """A tapered limb: round ends of radius ``r1`` at ``p1`` and ``r2`` at ``p2`` joined by
        their outer tangents (approximated by the perpendicular offsets)."""
        p1, p2 = np.asarray(p1, np.float64), np.asarray(p2, np.float64)
        r1, r2 = max(r1, 0.5), max(r2, 0.5)
        lo = np.minimum(p1 - r1, p2 - r2)
        hi = np.maximum(p1 + r1, p2 + r2)
        m, ox, oy = cls._canvas(*lo, *hi)
        d = p2 - p1
        n = np.array([-d[1], d[0]]) / max(np.hypot(*d), 1e-6)
        off = np.array((ox, oy))
        quad = np.stack([p1 + n * r1, p2 + n * r2, p2 - n * r2, p1 - n * r1]) - off
        cv2.fillConvexPoly(m, _fixed(quad), 255, cv2.LINE_AA, SHIFT)
        for p, r in ((p1, r1), (p2, r2)):
            c = _fixed(p - off)
            cv2.circle(m, (int(c[0]), int(c[1])), int(round(r * _ONE)), 255, -1, cv2.LINE_AA, SHIFT)
        return m, ox, oy

    @classmethod
    def line(cls, p1: np.ndarray, p2: np.ndarray, width: float) -> tuple[np.ndarray, int, int]:
        """A straight stroke of ``width`` pixels with round ends."""
        return cls.capsule(p1, p2, width / 2, width / 2)


def composite(canvas: np.ndarray, sprite: Sprite, ids: np.ndarray | None = None, obj_id: int = -1,
              threshold: float = 0.5) -> int:
    """Composite ``sprite`` over ``canvas`` ``(H, W, 3)`` float32 in place; where its coverage is
    ``> threshold``, write ``obj_id`` into ``ids`` ``(H, W)``. Returns the number of the sprite's
    pixels (inside or outside the canvas) covered ``> threshold``."""
    H, W = canvas.shape[:2]
    h, w = sprite.alpha.shape
    x0, y0 = max(sprite.x0, 0), max(sprite.y0, 0)
    x1, y1 = min(sprite.x0 + w, W), min(sprite.y0 + h, H)
    full = int(np.count_nonzero(sprite.alpha > threshold))
    if x1 <= x0 or y1 <= y0:
        return full
    sx, sy = x0 - sprite.x0, y0 - sprite.y0
    a = sprite.alpha[sy : sy + y1 - y0, sx : sx + x1 - x0]
    c = sprite.rgb[sy : sy + y1 - y0, sx : sx + x1 - x0]
    region = canvas[y0:y1, x0:x1]
    region *= (1.0 - a)[..., None]
    region += c
    if ids is not None:
        ids[y0:y1, x0:x1][a > threshold] = obj_id
    return full


def smooth_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Smooth random field ``(height, width)`` float32, about zero mean and unit std, with
    features of about ``cell`` pixels (bicubic upsampling of a coarse Gaussian grid)."""
    gh = max(2, int(np.ceil(height / cell)) + 2)
    gw = max(2, int(np.ceil(width / cell)) + 2)
    g = rng.standard_normal((gh, gw)).astype(np.float32)
    return cv2.resize(g, (width, height), interpolation=cv2.INTER_CUBIC)
