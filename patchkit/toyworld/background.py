"""Backgrounds: sky, building facades, streets, parks, plazas and plain walls over a ground plane.

The camera looks horizontally over a flat ground, so a standing person whose soles are at image
row ``y`` is ``k * (y - horizon)`` pixels tall (:class:`Ground`); ``k`` is the ratio of a person's
height to the camera's. Ground textures (asphalt, tiles, grass) are drawn in perspective from the
same geometry. Everything is vectorised over the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from patchkit.toyworld.draw import smooth_noise
from patchkit.toyworld.textures import random_colour

THEMES = ("street", "street", "plaza", "park", "indoor")

_SKIES = np.array(
    [[[0.35, 0.55, 0.85], [0.75, 0.85, 0.95]], [[0.6, 0.62, 0.66], [0.82, 0.83, 0.85]],
     [[0.3, 0.35, 0.6], [0.95, 0.7, 0.5]], [[0.5, 0.7, 0.9], [0.9, 0.93, 0.95]]],
    np.float32,
)
_FACADES = np.array(
    [[0.75, 0.7, 0.62], [0.6, 0.35, 0.28], [0.85, 0.83, 0.78], [0.45, 0.45, 0.48], [0.7, 0.62, 0.45],
     [0.55, 0.6, 0.65], [0.9, 0.85, 0.7], [0.35, 0.3, 0.3]],
    np.float32,
)


@dataclass
class Ground:
    """Ground-plane geometry of an image.

    Attributes:
        horizon: image row of the horizon (px).
        k: standing-person height per pixel below the horizon (person height / camera height).
        vanish_x: image column of the vanishing point of the lines along the view direction.
        far: the farthest row objects may stand on (bottom of the far facades), px.
    """

    horizon: float
    k: float
    vanish_x: float
    far: float

    def person_height(self, foot_y: np.ndarray | float) -> np.ndarray | float:
        """Height in pixels of a standing person with soles at row ``foot_y``."""
        return self.k * (np.asarray(foot_y, dtype=np.float64) - self.horizon)

    def foot_y(self, height_px: float) -> float:
        """The row where a person ``height_px`` tall stands."""
        return self.horizon + height_px / self.k


def _vertical_gradient(h: int, w: int, top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    return np.broadcast_to(top * (1 - t) + bottom * t, (h, w, 3)).astype(np.float32)


def _ground_coords(yy: np.ndarray, xx: np.ndarray, g: Ground, focal: float) -> tuple[np.ndarray, np.ndarray]:
    """Ground-plane coordinates (depth, lateral), in camera heights, of image pixels below the
    horizon for a pinhole camera of focal length ``focal`` px (rows above it get a large depth)."""
    dy = np.maximum(yy - g.horizon, 0.5)
    return focal / dy, (xx - g.vanish_x) / dy


def _buildings(rng: np.random.Generator, img: np.ndarray, xx: np.ndarray, yy: np.ndarray, base: float) -> None:
    """Facades with window grids standing on row ``base``."""
    H, W = img.shape[:2]
    x = -rng.uniform(0, 0.2) * W
    while x < W:
        bw = rng.uniform(0.15, 0.5) * W
        top = rng.uniform(-0.2, 0.85) * base
        colour = random_colour(rng, _FACADES, 0.05)
        x0, x1, y0 = int(max(x, 0)), int(min(x + bw, W)), int(max(top, 0))
        y1 = int(np.ceil(base))
        if x1 > x0 and y1 > y0:
            region = img[y0:y1, x0:x1]
            region[:] = colour
            px, py = rng.uniform(0.04, 0.09) * W, rng.uniform(0.06, 0.12) * H
            wx, wy = px * rng.uniform(0.35, 0.65), py * rng.uniform(0.35, 0.6)
            gx = (xx[y0:y1, x0:x1] - x) % px
            gy = (yy[y0:y1, x0:x1] - top) % py
            win = (gx > (px - wx) / 2) & (gx < (px + wx) / 2) & (gy > (py - wy) / 2) & (gy < (py + wy) / 2)
            glass = np.array([0.2, 0.25, 0.32], np.float32) + rng.uniform(-0.05, 0.35)
            region[win] = glass
            if rng.random() < 0.5:  # a shop front at street level
                sh = int(min(y1 - y0, rng.uniform(0.25, 0.5) * (y1 - max(top, 0))))
                region[-sh:] = random_colour(rng) * 0.8
        x += bw + rng.uniform(0, 0.05) * W


def render_background(rng: np.random.Generator, width: int, height: int, theme: str | None = None) -> tuple[np.ndarray, Ground]:
    """A random background ``(H, W, 3)`` float32 in [0, 1] and its ground geometry."""
    theme = theme or THEMES[rng.integers(len(THEMES))]
    H, W = height, width
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    horizon = float(rng.uniform(0.22, 0.5) * H)
    g = Ground(horizon=horizon, k=float(rng.uniform(0.9, 2.0)), vanish_x=float(rng.uniform(0.2, 0.8) * W),
               far=horizon + float(rng.uniform(0.02, 0.1)) * (H - horizon))
    sky = _SKIES[rng.integers(len(_SKIES))] + rng.uniform(-0.05, 0.05, (2, 3)).astype(np.float32)
    img = _vertical_gradient(H, W, sky[0], sky[1]).copy()
    depth, lateral = _ground_coords(yy, xx, g, float(W))
    below = yy >= g.far
    noise = smooth_noise(rng, H, W, max(W / 40, 2.0))[..., None]

    if theme in ("street", "plaza"):
        _buildings(rng, img, xx, yy, g.far)
        pave = random_colour(rng, np.array([[0.6, 0.58, 0.55], [0.7, 0.68, 0.62], [0.55, 0.5, 0.48]], np.float32), 0.05)
        tile = rng.uniform(0.3, 1.2)
        tiles = (np.abs((depth / tile) % 1.0 - 0.5) > 0.47) | (np.abs((lateral / tile) % 1.0 - 0.5) > 0.47)
        ground = pave * (1 + 0.06 * noise) * np.where(tiles[..., None], 0.85, 1.0)
        if theme == "street":
            asphalt = np.array([0.3, 0.3, 0.32], np.float32) * rng.uniform(0.7, 1.3)
            if rng.random() < 0.5:  # a road across the view
                r0 = g.far + rng.uniform(0.05, 0.35) * (H - g.far)
                r1 = r0 + rng.uniform(0.15, 0.4) * (H - g.far)
                road = (yy > r0) & (yy < r1)
                mid = (r0 + r1) / 2
                dash = (np.abs(yy - mid) < np.maximum((yy - horizon) * 0.015, 0.6)) & ((lateral / 2.0) % 1.0 < 0.5)
            else:  # a road along the view
                half = rng.uniform(1.5, 4.0)
                road = np.abs(lateral) < half
                dash = (np.abs(lateral) < 0.06) & ((depth / 2.0) % 1.0 < 0.5)
            road &= below
            ground = np.where(road[..., None], asphalt * (1 + 0.08 * noise), ground)
            ground = np.where((dash & road)[..., None], np.array([0.9, 0.9, 0.85], np.float32), ground)
    elif theme == "park":
        far_green = np.array([0.25, 0.4, 0.2], np.float32) * rng.uniform(0.7, 1.2)
        tree_line = yy > g.far - rng.uniform(0.05, 0.25) * horizon * (1 + 0.3 * smooth_noise(rng, H, W, W / 8))
        img = np.where(tree_line[..., None], far_green * (1 + 0.2 * noise), img)
        grass = np.array([0.3, 0.5, 0.22], np.float32) * rng.uniform(0.7, 1.2)
        ground = grass * (1 + 0.15 * noise) * (1 + 0.05 * np.sin(lateral * 6))[..., None]
        path = np.abs(lateral - rng.uniform(-2, 2)) < rng.uniform(0.8, 2.0)
        ground = np.where(path[..., None], np.array([0.7, 0.62, 0.5], np.float32) * (1 + 0.05 * noise), ground)
    else:  # indoor: a wall and a floor
        wall = random_colour(rng, _FACADES, 0.08)
        img = (wall * (1 + 0.04 * noise)).astype(np.float32) * np.ones((H, W, 1), np.float32)
        if rng.random() < 0.5:
            _buildings(rng, img, xx, yy, g.far * rng.uniform(0.3, 0.9))  # posters / windows
        floor = random_colour(rng, np.array([[0.55, 0.4, 0.28], [0.7, 0.7, 0.68], [0.4, 0.4, 0.42]], np.float32), 0.05)
        boards = (np.abs((lateral / 0.3) % 1.0 - 0.5) > 0.46)
        ground = floor * (1 + 0.08 * noise) * np.where(boards[..., None], 0.85, 1.0)
    img = np.where(below[..., None], ground, img).astype(np.float32)
    return np.clip(img, 0.0, 1.0), g
