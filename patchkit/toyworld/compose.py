"""One toy-world image: background, pedestrians and distractors in depth order, light, camera.

Items stand on the ground plane (:class:`~patchkit.toyworld.background.Ground`), are
drawn far to near, and an object-id map records what is visible at each pixel; a pedestrian's
label is the tight box of its visible pixels (coverage > 0.5), kept when enough of it is visible.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from patchkit.toyworld.background import render_background
from patchkit.toyworld.config import DISTRACTOR_CLASSES, OCCLUDER_KINDS, ToyWorldConfig
from patchkit.toyworld.draw import Sprite, composite
from patchkit.toyworld.figure import FigureStyle, render_figure
from patchkit.toyworld.objects import DRAWERS
from patchkit.toyworld.photometric import Lighting, ToyCamera
from patchkit.toyworld.pose import BodyPose

_MIN_BOX_W, _MIN_BOX_H = 5, 12
_MAX_OBJECT_REF = 0.6  # distractors stand where a person would be at most this x image height


@dataclass
class ToyImage:
    """A rendered image and its labels.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        boxes: ``(N, 4)`` float32 xyxy visible boxes in pixels.
        classes: ``(N,)`` int64 class ids (0 = person).
        jpeg_quality: the quality to encode it with (sampled with the image).
        masks: when the pedestrians wear a texture suit (``render_scene(..., suit=)``), ``(N, H, W)``
            float32 in [0, 1]: each labelled box's visible suit coverage (its shirt and trousers
            where nothing nearer hides them), in box order; rows of non-person boxes are 0.
    """

    image: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray
    jpeg_quality: int = 90
    masks: np.ndarray | None = None


@dataclass
class _Item:
    foot_y: float
    sprite: Sprite
    cls: int  # -1 = unlabelled
    shadow: tuple[float, float, float]  # x, y, half width (px)
    suit: np.ndarray | None = None  # the sprite's suit coverage, when the item wears a suit


def _size(rng: np.random.Generator, lo_hi: list[int]) -> int:
    lo, hi = int(np.ceil(lo_hi[0] / 32)), int(lo_hi[1] // 32)
    return 32 * int(rng.integers(lo, max(hi, lo) + 1))


def _persons(rng: np.random.Generator, cfg: ToyWorldConfig, ground, W: int, H: int, light: float,
             suit=None) -> list[_Item]:
    if rng.random() < cfg.empty_prob:
        return []
    items = []
    lo, hi = np.log(cfg.person_height[0]), np.log(cfg.person_height[1] * H / 416)
    for _ in range(int(rng.integers(cfg.persons[0], cfg.persons[1] + 1))):
        h = float(np.exp(rng.uniform(lo, max(hi, lo))))
        foot_y = max(ground.foot_y(h), ground.far + 1.0)
        h = float(ground.person_height(foot_y)) * rng.uniform(0.9, 1.1)
        child = rng.random() < cfg.child_prob
        if child:
            h *= rng.uniform(0.55, 0.7)
        x = rng.uniform(-0.05, 1.05) * W
        fig = render_figure(FigureStyle.sample(rng, child), BodyPose.sample(rng), h, (x, foot_y),
                            perspective=float(rng.uniform(0.0, 0.15)), light=light * rng.uniform(0.5, 1.0),
                            seed=int(rng.integers(1 << 16)), suit=suit)
        items.append(_Item(foot_y, fig.sprite, 0, (x, foot_y, h * 0.16), fig.suit_alpha))
    return items


def _object(rng: np.random.Generator, kind: str, foot: tuple[float, float], ground, label: bool) -> _Item:
    ref_h = max(float(ground.person_height(foot[1])), 4.0)
    sprite = DRAWERS[kind](rng, foot, ref_h)
    cls = DISTRACTOR_CLASSES.get(kind, -1) if label else -1
    half = sprite.shape[1] / 2
    return _Item(foot[1], sprite, cls, (foot[0], foot[1], half * (0.9 if kind in ("car", "bag", "bin", "bicycle") else 0.3)))


def _distractors(rng: np.random.Generator, cfg: ToyWorldConfig, ground, W: int, H: int, persons: list[_Item]) -> list[_Item]:
    items = []
    kinds = cfg.distractor_kinds
    if kinds:
        for _ in range(int(rng.integers(cfg.distractors[0], cfg.distractors[1] + 1))):
            kind = kinds[rng.integers(len(kinds))]
            # size first (a person's height there, log-uniform), then where it stands
            ref_h = float(np.exp(rng.uniform(np.log(10.0), np.log(max(_MAX_OBJECT_REF * H, 11.0)))))
            foot = (float(rng.uniform(-0.1, 1.1) * W), max(ground.foot_y(ref_h), ground.far + 1.0))
            items.append(_object(rng, kind, foot, ground, cfg.label_distractors))
    occluders = [k for k in OCCLUDER_KINDS if k in kinds]
    for p in persons:
        if occluders and rng.random() < cfg.occluder_prob:
            x, y, half = p.shadow
            h = half / 0.16
            kind = occluders[rng.integers(len(occluders))]
            foot = (float(x + rng.uniform(-0.25, 0.25) * h), float(y + rng.uniform(0.02, 0.12) * h / ground.k + 1))
            items.append(_object(rng, kind, foot, ground, cfg.label_distractors))
    return items


def _shadows(img: np.ndarray, items: list[_Item], strength: float) -> None:
    H, W = img.shape[:2]
    m = np.zeros((H, W), np.uint8)
    for it in items:
        x, y, half = it.shadow
        if -half < x < W + half and y < H + half:
            cv2.ellipse(m, (int(round(x * 16)), int(round(y * 16))), (int(max(half, 1) * 16), int(max(half * 0.22, 1) * 16)),
                        0, 0, 360, 255, -1, cv2.LINE_AA, 4)
    img *= (1.0 - strength * cv2.GaussianBlur(m, (0, 0), 1.5).astype(np.float32) / 255.0)[..., None]


def visible_boxes(ids: np.ndarray, sprites: list[Sprite], classes: list[int], full: list[int],
                  min_visible: float, index: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Label boxes from an object-id map.

    Args:
        ids: ``(H, W)`` int map, the index of the item visible at each pixel (-1 for none), as
            written by :func:`~patchkit.toyworld.draw.composite`.
        sprites: the items' sprites, in id order.
        classes: each item's class id; ``-1`` items are not labelled.
        full: each item's covered pixel count (inside or outside the image).
        min_visible: label an item only when at least this fraction of ``full`` is visible.
        index: when a list is given, the item id of each returned box is appended to it.

    Returns:
        ``(boxes (N, 4) float32 xyxy px, classes (N,) int64)``: the tight boxes of the visible
        pixels of labelled items at least 5 x 12 px.
    """
    H, W = ids.shape
    boxes, out_cls = [], []
    for k, (s, cls) in enumerate(zip(sprites, classes)):
        if cls < 0 or full[k] == 0:
            continue
        y0, x0 = max(s.y0, 0), max(s.x0, 0)
        y1, x1 = min(s.y0 + s.shape[0], H), min(s.x0 + s.shape[1], W)
        if y1 <= y0 or x1 <= x0:
            continue
        mine = ids[y0:y1, x0:x1] == k
        n = int(np.count_nonzero(mine))
        if n < min_visible * full[k]:
            continue
        rows = np.flatnonzero(mine.any(1))
        cols = np.flatnonzero(mine.any(0))
        box = [x0 + cols[0], y0 + rows[0], x0 + cols[-1] + 1, y0 + rows[-1] + 1]
        if box[2] - box[0] >= _MIN_BOX_W and box[3] - box[1] >= _MIN_BOX_H:
            boxes.append(box)
            out_cls.append(cls)
            if index is not None:
                index.append(k)
    return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(out_cls, np.int64)


def _suit_masks(items: list[_Item], H: int, W: int) -> np.ndarray:
    """``(K, H, W)`` float32: each item's visible suit coverage on the canvas, nearer items (later
    in ``items``) painted over it with their alpha, exactly as :func:`composite` paints them."""
    masks = np.zeros((len(items), H, W), np.float32)
    for k, it in enumerate(items):
        s = it.sprite
        h, w = s.shape
        x0, y0 = max(s.x0, 0), max(s.y0, 0)
        x1, y1 = min(s.x0 + w, W), min(s.y0 + h, H)
        if x1 <= x0 or y1 <= y0:
            continue
        sx, sy = x0 - s.x0, y0 - s.y0
        a = s.alpha[sy:sy + y1 - y0, sx:sx + x1 - x0]
        masks[:k, y0:y1, x0:x1] *= 1.0 - a
        if it.suit is not None:
            masks[k, y0:y1, x0:x1] = it.suit[sy:sy + y1 - y0, sx:sx + x1 - x0]
    return masks


def render_scene(rng: np.random.Generator, cfg: ToyWorldConfig | None = None, suit=None) -> ToyImage:
    """Draw one random image with its visible-box labels; everything comes from ``rng``.

    With ``suit`` (a :class:`~patchkit.toyworld.suit.TextureSuit`) every pedestrian wears it (each
    with its own offset drawn from its figure seed; ``rng`` is consumed exactly as without a suit,
    so the image is the same scene in other clothes) and ``ToyImage.masks`` holds each labelled
    person's visible suit coverage."""
    cfg = cfg or ToyWorldConfig()
    W, H = _size(rng, cfg.width), _size(rng, cfg.height)
    theme = cfg.themes[rng.integers(len(cfg.themes))]
    img, ground = render_background(rng, W, H, theme)
    light = float(rng.uniform(-0.3, 0.3))
    persons = _persons(rng, cfg, ground, W, H, light, suit)
    items = persons + _distractors(rng, cfg, ground, W, H, persons)
    items.sort(key=lambda it: it.foot_y)  # far to near (stable: ties keep creation order)
    _shadows(img, items, float(rng.uniform(0.2, 0.5)))
    ids = np.full((H, W), -1, np.int32)
    full = [composite(img, it.sprite, ids, k) for k, it in enumerate(items)]
    index: list[int] = []
    boxes, classes = visible_boxes(ids, [it.sprite for it in items], [it.cls for it in items], full, cfg.min_visible,
                                   index)
    masks = _suit_masks(items, H, W)[index] if suit is not None else None
    img = Lighting.sample(rng, tuple(cfg.light)).apply(img)
    camera = ToyCamera.sample(rng, tuple(cfg.blur), cfg.motion_blur_prob, tuple(cfg.noise))
    image = camera.capture(img, rng)
    quality = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
    return ToyImage(image, boxes, classes, quality, masks)
