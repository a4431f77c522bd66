"""A tiny page description shared by the PDF writer and the raster renderer.

A :class:`Page` is a list of primitives in millimetres with the origin at the page's top-left
corner and y pointing down. Three primitives are enough for charts and exports: filled
axis-aligned rectangles, single-line text, and RGB images placed at an exact physical size.
:func:`rasterize` renders a page (or a region of it) to uint8 RGB at any resolution with hard
edges (no anti-aliasing), so a chart raster holds exactly its swatch colours;
:mod:`patchkit.printing.pdf` writes the same page as vector PDF.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

PAGE_SIZES_MM = {"a4": (210.0, 297.0), "letter": (215.9, 279.4)}

Colour = tuple[int, int, int]
BLACK: Colour = (0, 0, 0)
WHITE: Colour = (255, 255, 255)


@dataclass
class Rect:
    """Filled rectangle: top-left ``(x, y)`` and size ``(w, h)`` in mm; ``fill`` 8-bit RGB."""

    x: float
    y: float
    w: float
    h: float
    fill: Colour = BLACK


@dataclass
class Text:
    """One line of ASCII text; ``(x, y)`` is the left end of the baseline in mm and ``size`` the
    font size in mm (cap height is about 0.7 of it)."""

    x: float
    y: float
    text: str
    size: float = 3.0
    fill: Colour = BLACK


@dataclass
class Picture:
    """An RGB image ``(H, W, 3)`` uint8 placed exactly into the rectangle ``(x, y, w, h)`` mm.
    The PDF stores these pixels losslessly (Flate), never resampled."""

    x: float
    y: float
    w: float
    h: float
    pixels: np.ndarray


@dataclass
class Page:
    """A page of ``width x height`` mm with a white background."""

    width: float
    height: float
    items: list = field(default_factory=list)

    def rect(self, x: float, y: float, w: float, h: float, fill: Colour = BLACK) -> None:
        self.items.append(Rect(x, y, w, h, tuple(int(c) for c in fill)))

    def line(self, x1: float, y1: float, x2: float, y2: float, width: float = 0.25, fill: Colour = BLACK) -> None:
        """Axis-aligned line of ``width`` mm (drawn as a thin rectangle)."""
        if abs(x1 - x2) < 1e-9:
            self.rect(x1 - width / 2, min(y1, y2), width, abs(y2 - y1), fill)
        elif abs(y1 - y2) < 1e-9:
            self.rect(min(x1, x2), y1 - width / 2, abs(x2 - x1), width, fill)
        else:
            raise ValueError("only horizontal or vertical lines are supported")

    def text(self, x: float, y: float, text: str, size: float = 3.0, fill: Colour = BLACK) -> None:
        self.items.append(Text(x, y, str(text).encode("ascii", "replace").decode("ascii"), size, fill))

    def picture(self, x: float, y: float, w: float, h: float, pixels: np.ndarray) -> None:
        arr = np.ascontiguousarray(pixels)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError("pictures must be (H, W, 3) uint8 RGB")
        self.items.append(Picture(x, y, w, h, arr))

    def cross(self, x: float, y: float, arm: float = 4.0, width: float = 0.2) -> None:
        """Registration cross centred on ``(x, y)`` with arms of ``arm`` mm."""
        self.line(x - arm, y, x + arm, y, width)
        self.line(x, y - arm, x, y + arm, width)


def _span(a: float, b: float, ppm: float, limit: int) -> tuple[int, int]:
    """Pixel index range whose centres lie in [a, b) mm at ``ppm`` px/mm (clamped)."""
    lo = int(np.ceil(a * ppm - 0.5))
    hi = int(np.ceil(b * ppm - 0.5))
    return max(lo, 0), min(hi, limit)


def rasterize(
    page: Page,
    px_per_mm: float,
    region: tuple[float, float, float, float] | None = None,
) -> np.ndarray:
    """Render ``page`` to ``(H, W, 3)`` uint8 RGB at ``px_per_mm``.

    ``region = (x, y, w, h)`` mm renders only that part (its top-left becomes pixel (0, 0)).
    A pixel takes a rectangle's colour when its centre is inside it (rectangles thinner than a
    pixel still get one); pictures are resampled by
    nearest neighbour; text uses OpenCV's Hershey font (an approximation of the PDF's Helvetica).
    """
    x0, y0, rw, rh = region if region is not None else (0.0, 0.0, page.width, page.height)
    width = int(round(rw * px_per_mm))
    height = int(round(rh * px_per_mm))
    out = np.full((height, width, 3), 255, dtype=np.uint8)
    for item in page.items:
        if isinstance(item, Rect):
            c0, c1 = _span(item.x - x0, item.x - x0 + item.w, px_per_mm, width)
            r0, r1 = _span(item.y - y0, item.y - y0 + item.h, px_per_mm, height)
            # hairlines thinner than a pixel still get one pixel
            if c1 <= c0 and 0 <= (item.x - x0 + item.w / 2) * px_per_mm < width:
                c0 = int((item.x - x0 + item.w / 2) * px_per_mm)
                c1 = c0 + 1
            if r1 <= r0 and 0 <= (item.y - y0 + item.h / 2) * px_per_mm < height:
                r0 = int((item.y - y0 + item.h / 2) * px_per_mm)
                r1 = r0 + 1
            if c1 > c0 and r1 > r0:
                out[r0:r1, c0:c1] = item.fill
        elif isinstance(item, Picture):
            c0, c1 = _span(item.x - x0, item.x - x0 + item.w, px_per_mm, width)
            r0, r1 = _span(item.y - y0, item.y - y0 + item.h, px_per_mm, height)
            if c1 <= c0 or r1 <= r0:
                continue
            ph, pw = item.pixels.shape[:2]
            cols = ((np.arange(c0, c1) + 0.5) / px_per_mm + x0 - item.x) / item.w * pw
            rows = ((np.arange(r0, r1) + 0.5) / px_per_mm + y0 - item.y) / item.h * ph
            ci = np.clip(np.floor(cols).astype(int), 0, pw - 1)
            ri = np.clip(np.floor(rows).astype(int), 0, ph - 1)
            out[r0:r1, c0:c1] = item.pixels[ri[:, None], ci[None, :]]
        elif isinstance(item, Text):
            scale = item.size * px_per_mm / 30.0  # Hershey simplex: about 30 px em at scale 1
            thickness = max(1, int(round(scale * 1.6)))
            org = (int(round((item.x - x0) * px_per_mm)), int(round((item.y - y0) * px_per_mm)))
            cv2.putText(out, item.text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, tuple(int(c) for c in item.fill), thickness, cv2.LINE_8)
    return out
