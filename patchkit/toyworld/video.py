"""Walking-figure sequences: a pedestrian walks towards and across the camera wearing a patch.

:func:`render_walk` draws one figure walking from the distance towards the camera and across
the view on a fixed street background. The patch is worn on the front of the torso and follows
the body: it turns with the body (yaw, weak perspective), is lit and shaded with it, folds
slightly with the walk (cloth warp) and is hidden where an arm swings in front of it. It returns
the frames with the figure's visible box and the patch corners per frame, so a patched video and
a control video (same seed, another patch) differ only in the patch pixels.

A printer and camera plug in as two callables, ``appearance`` (what the printed patch looks
like) and ``frame_filter`` (the camera's blur, noise and JPEG on each frame):
:func:`patchkit.capture.film.printed_appearance` and :func:`patchkit.capture.film.camera_filter`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from patchkit.toyworld.background import render_background
from patchkit.toyworld.config import DISTRACTOR_KINDS
from patchkit.toyworld.draw import composite
from patchkit.toyworld.figure import FigureStyle, render_figure
from patchkit.toyworld.objects import DRAWERS
from patchkit.toyworld.photometric import Lighting, ToyCamera
from patchkit.toyworld.pose import BodyPose

Appearance = Callable[[np.ndarray], np.ndarray]
FrameFilter = Callable[[np.ndarray, int], np.ndarray]


@dataclass
class WalkSequence:
    """A rendered walk.

    Attributes:
        frames: ``(T, H, W, 3)`` uint8 RGB.
        boxes: ``(T, 4)`` float32 xyxy box of the walker's visible pixels, in pixels.
        quads: ``(T, 4, 2)`` float32 patch corners in pixels (top-left, top-right, bottom-right,
            bottom-left of the patch image); NaN in frames where the patch faces away.
        fps: frame rate for writing the video.
    """

    frames: np.ndarray
    boxes: np.ndarray
    quads: np.ndarray
    fps: float

    def __len__(self) -> int:
        return len(self.frames)

    def to_json(self) -> dict:
        """Per-frame boxes and patch corners as plain lists (NaN corners become ``null``)."""
        quads = [None if np.isnan(q).any() else np.round(q, 2).tolist() for q in self.quads]
        return {"fps": self.fps, "size": [int(self.frames.shape[2]), int(self.frames.shape[1])],
                "frames": [{"index": i, "person_box": np.round(b, 2).tolist(), "patch_quad": q}
                           for i, (b, q) in enumerate(zip(self.boxes, quads))]}


def _as_appearance(patch: np.ndarray, appearance: Appearance | None) -> np.ndarray:
    patch = np.asarray(patch)
    if patch.ndim != 3 or patch.shape[2] != 3:
        raise ValueError(f"patch must be (h, w, 3) RGB, got shape {patch.shape}")
    if appearance is not None:
        out = np.asarray(appearance(patch))
    else:
        out = patch
    if out.dtype == np.uint8:
        return out.astype(np.float32) / 255.0
    return np.clip(out.astype(np.float32), 0.0, 1.0)


def render_walk(
    patch: np.ndarray | None,
    *,
    seed: int = 0,
    n_frames: int = 48,
    size: tuple[int, int] = (416, 320),
    fps: float = 12.0,
    appearance: Appearance | None = None,
    frame_filter: FrameFilter | None = None,
    patch_size: float = 0.85,
    patch_aspect: float = 1.0,
    cloth: float = 0.02,
    start_height: float = 0.22,
    end_height: float = 0.8,
    suit=None,
) -> WalkSequence:
    """Render a figure walking towards and across the camera, wearing ``patch``.

    Args:
        patch: ``(h, w, 3)`` RGB patch (uint8, or float in [0, 1]); ``None`` for no patch.
        seed: everything except the patch pixels (background, figure, path, light, noise).
        n_frames: number of frames.
        size: ``(width, height)`` of the frames in pixels.
        fps: nominal frame rate (one stride takes about 1.2 s).
        appearance: maps the patch to its printed look (e.g. :func:`patchkit.capture.film.printed_appearance`); uint8
            in, uint8 or float [0, 1] out. Default: the digital patch itself.
        frame_filter: ``(frame uint8, index) -> frame`` applied last (e.g. :func:`patchkit.capture.film.camera_filter`).
        patch_size: patch width as a fraction of the shoulder width.
        patch_aspect: patch height / width: 1 is a square chest print; above 1 the print hangs
            from the collar like an apron, down over the legs (in front of them, behind the arms).
        cloth: cloth-fold amplitude (fraction of the patch size).
        start_height, end_height: the figure's height at the first and last frame, as a fraction
            of the frame height (it grows as it approaches).
        suit: a :class:`~patchkit.toyworld.suit.TextureSuit` the walker wears (shirt and trousers of
            its tiled texture; its offset, when not given, comes from ``seed``, so a suit walk and its
            control with another tile differ only in the suit's pixels). ``None``: his own clothes.
    """
    if n_frames < 1:
        raise ValueError("n_frames must be >= 1")
    if not 0 < start_height < end_height:
        raise ValueError("need 0 < start_height < end_height")
    W, H = int(size[0]), int(size[1])
    rng = np.random.default_rng([int(seed), 3])
    theme = ("street", "plaza", "park")[int(rng.integers(3))]
    bg, ground = render_background(rng, W, H, theme)
    look = _as_appearance(patch, appearance) if patch is not None else None
    path = _WalkPath.sample(rng, W, H, ground.horizon, start_height, end_height)
    _add_distractors(bg, rng, path, ground.horizon)
    style = FigureStyle.sample(rng)
    stride_frames = 1.2 * fps
    phase0 = float(rng.uniform(0, 2 * np.pi))
    light = float(rng.uniform(-0.3, 0.3))
    lighting = Lighting.sample(rng, (0.8, 1.15))
    cam = ToyCamera(blur=float(rng.uniform(0.3, 0.7)), noise=float(rng.uniform(0.005, 0.015)))
    field = lighting.field(H, W)

    frames = np.empty((n_frames, H, W, 3), np.uint8)
    boxes = np.zeros((n_frames, 4), np.float32)
    quads = np.full((n_frames, 4, 2), np.nan, np.float32)
    for t in range(n_frames):
        x, foot_y, height = path.at(t / max(n_frames - 1, 1), ground.horizon)
        pose = BodyPose(yaw=path.yaw, phase=phase0 + 2 * np.pi * t / stride_frames, stride=0.8, arm_swing=0.3,
                        abduct=np.array([0.12, 0.12]), elbow=np.array([0.2, 0.2]), lean=0.03, stance=0.1)
        fig = render_figure(style, pose, height, (x, foot_y), perspective=0.12, light=light, patch=look,
                            patch_size=patch_size, cloth=cloth, seed=int(seed),
                            patch_aspect=patch_aspect, suit=suit)
        img = _with_shadow(bg, x, foot_y, height)
        composite(img, fig.sprite)
        frame = cam.capture(img * field, np.random.default_rng([int(seed), 4, t]))
        if frame_filter is not None:
            frame = np.ascontiguousarray(frame_filter(frame, t), dtype=np.uint8)
        frames[t] = frame
        box = fig.sprite.box()
        boxes[t] = np.clip(box, 0, [W, H, W, H]) if box is not None else 0.0
        if fig.patch_quad is not None:
            quads[t] = fig.patch_quad
    return WalkSequence(frames, boxes, quads, float(fps))


@dataclass
class _WalkPath:
    """The walk in camera coordinates: depth ``z`` (m-like units), lateral ``X``; focal = W px."""

    W: int
    focal: float
    person: float
    z0: float
    z1: float
    hcam: float
    X0: float
    X1: float
    side: float

    @classmethod
    def sample(cls, rng: np.random.Generator, W: int, H: int, horizon: float, start_height: float,
               end_height: float) -> "_WalkPath":
        focal, person = float(W), 1.7
        z1 = focal * person / (end_height * H)
        z0 = focal * person / (start_height * H)
        hcam = person * (H - horizon - 0.03 * H) / (end_height * H)  # last foot row ~3 % above the bottom
        side = 1.0 if rng.random() < 0.5 else -1.0
        x0 = W / 2 - side * W * rng.uniform(0.15, 0.3)
        x1 = W / 2 + side * W * rng.uniform(0.02, 0.15)
        X0, X1 = (x0 - W / 2) * z0 / focal, (x1 - W / 2) * z1 / focal
        return cls(W, focal, person, z0, z1, hcam, X0, X1, side)

    @property
    def yaw(self) -> float:
        return float(np.arctan2(self.X1 - self.X0, self.z0 - self.z1))

    def at(self, a: float, horizon: float) -> tuple[float, float, float]:
        """Foot position (x, y px) and height (px) at fraction ``a`` of the walk."""
        z = self.z0 + (self.z1 - self.z0) * a
        x = self.W / 2 + self.focal * (self.X0 + (self.X1 - self.X0) * a) / z
        return x, horizon + self.focal * self.hcam / z, self.focal * self.person / z


def _add_distractors(bg: np.ndarray, rng: np.random.Generator, path: _WalkPath, horizon: float) -> None:
    """Static scene: distractors behind the path's start or off to the far side."""
    W = path.W
    for _ in range(int(rng.integers(2, 6))):
        kind = DISTRACTOR_KINDS[int(rng.integers(len(DISTRACTOR_KINDS)))]
        fy = horizon + rng.uniform(0.02, 0.9) * (path.focal * path.hcam / path.z0)
        fx = float(rng.uniform(0, W)) if rng.random() < 0.5 else float(W / 2 - path.side * W * rng.uniform(0.35, 0.6))
        ref_h = max((fy - horizon) * path.person / path.hcam, 4.0)
        composite(bg, DRAWERS[kind](rng, (fx, fy), ref_h))


def _with_shadow(bg: np.ndarray, x: float, foot_y: float, height: float) -> np.ndarray:
    """A copy of the background with the walker's soft ground shadow at his feet."""
    H, W = bg.shape[:2]
    img = bg.copy()
    sh = np.zeros((H, W), np.uint8)
    cv2.ellipse(sh, (int(round(x * 16)), int(round(foot_y * 16))), (int(height * 0.16 * 16), int(height * 0.035 * 16)),
                0, 0, 360, 255, -1, cv2.LINE_AA, 4)
    img *= (1.0 - 0.35 * sh.astype(np.float32) / 255.0)[..., None]
    return img
