"""Walking-figure sequences: a pedestrian walks towards and across the camera wearing a patch.

:func:`render_walk` draws one figure walking from the distance towards the camera and across
the view on a fixed street background. The patch is worn on the front of the torso and follows
the body: it turns with the body (yaw, weak perspective), is lit and shaded with it, folds
slightly with the walk (cloth warp) and is hidden where an arm swings in front of it. It returns
the frames with the figure's visible box and the patch corners per frame, so a patched video and
a control video (same seed, another patch) differ only in the patch pixels.

A printer and camera from :mod:`patchkit.capture` plug in as two callables:
:func:`printed_appearance` (what the printed patch looks like) and :func:`camera_filter` (the
camera's blur, noise and JPEG on each frame).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from patchkit.scenes.toyworld.background import render_background
from patchkit.scenes.toyworld.config import DISTRACTOR_KINDS
from patchkit.scenes.toyworld.draw import composite
from patchkit.scenes.toyworld.figure import FigureStyle, render_figure
from patchkit.scenes.toyworld.objects import DRAWERS
from patchkit.scenes.toyworld.photometric import Lighting, ToyCamera
from patchkit.scenes.toyworld.pose import Pose

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


def printed_appearance(printer, camera=None) -> Appearance:
    """What a patch printed by ``printer`` (:mod:`patchkit.capture.printers`) looks like to
    ``camera`` (:class:`patchkit.capture.CameraModel`; default a neutral camera exposing paper
    white at about 0.9) under the nominal light: uint8 patch -> float32 sRGB in [0, 1]."""
    from patchkit.capture import CameraModel
    from patchkit.capture.printers import print_reflectance

    cam = camera or CameraModel(exposure=0.9 / 0.88)

    def appearance(patch: np.ndarray) -> np.ndarray:
        refl = print_reflectance(printer, patch).astype(np.float64)
        return cam.respond(refl * cam.illuminant).astype(np.float32)

    return appearance


def camera_filter(camera, seed: int = 0) -> FrameFilter:
    """Apply a :class:`patchkit.capture.CameraModel`'s blur, shot/read noise and JPEG to each
    uint8 frame (in linear light); frame ``i`` draws its noise from ``default_rng([seed, i])``."""
    from patchkit.capture.camera import jpeg_round_trip
    from patchkit.printing.colour import linear_to_srgb_np, srgb_to_linear_np

    decode = srgb_to_linear_np(np.arange(256) / 255.0).astype(np.float32)  # uint8 -> linear LUT
    levels = 1 << 14
    encode = np.clip(np.round(linear_to_srgb_np(np.arange(levels) / (levels - 1.0)) * 255.0), 0, 255).astype(np.uint8)

    def apply(frame: np.ndarray, index: int) -> np.ndarray:
        rng = np.random.default_rng([int(seed), int(index)])
        lin = decode[frame]
        if camera.blur_sigma > 0:
            lin = cv2.GaussianBlur(lin, (0, 0), camera.blur_sigma)
        if camera.shot_noise > 0 or camera.read_noise > 0:
            std = np.sqrt(np.clip(lin, 0, None) * np.float32(camera.shot_noise) + np.float32(camera.read_noise**2))
            lin = lin + rng.standard_normal(lin.shape, dtype=np.float32) * std
        idx = np.clip(lin * np.float32(levels - 1) + np.float32(0.5), 0, levels - 1).astype(np.int32)
        out = encode[idx]
        return jpeg_round_trip(out, camera.jpeg_quality) if camera.jpeg_quality is not None else out

    return apply


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
) -> WalkSequence:
    """Render a figure walking towards and across the camera, wearing ``patch``.

    Args:
        patch: ``(h, w, 3)`` RGB patch (uint8, or float in [0, 1]); ``None`` for no patch.
        seed: everything except the patch pixels (background, figure, path, light, noise).
        n_frames: number of frames.
        size: ``(width, height)`` of the frames in pixels.
        fps: nominal frame rate (one stride takes about 1.2 s).
        appearance: maps the patch to its printed look (e.g. :func:`printed_appearance`); uint8
            in, uint8 or float [0, 1] out. Default: the digital patch itself.
        frame_filter: ``(frame uint8, index) -> frame`` applied last (e.g. :func:`camera_filter`).
        patch_size: patch width as a fraction of the shoulder width.
        patch_aspect: patch height / width: 1 is a square chest print; above 1 the print hangs
            from the collar like an apron, down over the legs (in front of them, behind the arms).
        cloth: cloth-fold amplitude (fraction of the patch size).
        start_height, end_height: the figure's height at the first and last frame, as a fraction
            of the frame height (it grows as it approaches).
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

    # the path in camera coordinates: depth Z (m-like units) and lateral X; focal = W px
    focal, person = float(W), 1.7
    z1 = focal * person / (end_height * H)
    z0 = focal * person / (start_height * H)
    hcam = person * (H - ground.horizon - 0.03 * H) / (end_height * H)  # last foot row ~3 % above the bottom
    side = 1.0 if rng.random() < 0.5 else -1.0
    x0 = W / 2 - side * W * rng.uniform(0.15, 0.3)
    x1 = W / 2 + side * W * rng.uniform(0.02, 0.15)
    X0, X1 = (x0 - W / 2) * z0 / focal, (x1 - W / 2) * z1 / focal
    yaw = float(np.arctan2(X1 - X0, z0 - z1))

    # static scene: distractors behind the path's start or off to the far side
    for _ in range(int(rng.integers(2, 6))):
        kind = DISTRACTOR_KINDS[int(rng.integers(len(DISTRACTOR_KINDS)))]
        fy = ground.horizon + rng.uniform(0.02, 0.9) * (focal * hcam / z0)
        fx = float(rng.uniform(0, W)) if rng.random() < 0.5 else float(W / 2 - side * W * rng.uniform(0.35, 0.6))
        ref_h = max((fy - ground.horizon) * person / hcam, 4.0)
        composite(bg, DRAWERS[kind](rng, (fx, fy), ref_h))
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
        a = t / max(n_frames - 1, 1)
        z = z0 + (z1 - z0) * a
        x = W / 2 + focal * (X0 + (X1 - X0) * a) / z
        foot_y = ground.horizon + focal * hcam / z
        height = focal * person / z
        pose = Pose(yaw=yaw, phase=phase0 + 2 * np.pi * t / stride_frames, stride=0.8, arm_swing=0.3,
                    abduct=np.array([0.12, 0.12]), elbow=np.array([0.2, 0.2]), lean=0.03, stance=0.1)
        fig = render_figure(style, pose, height, (x, foot_y), perspective=0.12, light=light, patch=look,
                            patch_size=patch_size, cloth=cloth, seed=int(seed),
                            patch_aspect=patch_aspect)
        img = bg.copy()
        sh = np.zeros((H, W), np.uint8)
        cv2.ellipse(sh, (int(round(x * 16)), int(round(foot_y * 16))), (int(height * 0.16 * 16), int(height * 0.035 * 16)),
                    0, 0, 360, 255, -1, cv2.LINE_AA, 4)
        img *= (1.0 - 0.35 * sh.astype(np.float32) / 255.0)[..., None]
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
