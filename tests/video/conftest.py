"""Synthetic scenes for the video tests: a rendered "person" whose colour encodes the confidence
a stand-in detector reports, wearing a printed marker board at a known camera pose."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from patchkit.detections import Detections
from patchkit.detectors.base import Detector, DetectorInfo
from patchkit.markers import PinholeCamera
from patchkit.capture.board import board_pose, composite_board, render_board

W, H = 960, 540
HFOV = 70.0


class ColorDetector(Detector):
    """Finds red rectangles ("persons": R - B > 100); confidence = mean green / 255 inside.

    A box is returned when its confidence >= conf. ``calls`` counts detect() calls; with
    ``interrupt_after`` set, the call after that many raises KeyboardInterrupt (a Ctrl-C)."""

    def __init__(self, interrupt_after: int | None = None) -> None:
        super().__init__()
        self.info = DetectorInfo("fake", "color", {0: "person"})
        self.calls = 0
        self.interrupt_after = interrupt_after

    def detect(self, images, conf=0.25, iou=0.45, classes=None, max_det=300):
        if self.interrupt_after is not None and self.calls >= self.interrupt_after:
            raise KeyboardInterrupt
        self.calls += 1
        out = []
        x = (images * 255).round()
        for img in x:
            r, g, b = img[0], img[1], img[2]
            mask = (r - b) > 100
            boxes, confs = [], []
            # two persons at most, split by the image's vertical midline
            for half in (slice(0, img.shape[2] // 2), slice(img.shape[2] // 2, img.shape[2])):
                m = torch.zeros_like(mask)
                m[:, half] = mask[:, half]
                if m.sum() < 50:
                    continue
                ys, xs = torch.nonzero(m, as_tuple=True)
                c = float(g[m].median()) / 255.0
                if c >= conf:
                    boxes.append([xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1])
                    confs.append(c)
            if boxes:
                out.append(Detections(torch.tensor(boxes, dtype=torch.float32), torch.tensor(confs),
                                      torch.zeros(len(boxes), dtype=torch.long)))
            else:
                out.append(Detections.empty())
        return out


def background(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, H)[:, None, None]
    x = np.linspace(0, 1, W)[None, :, None]
    base = 90 + 60 * y + 30 * x + rng.normal(0, 4, (H, W, 3))
    return np.clip(base, 0, 255).astype(np.uint8) * np.ones(3, np.uint8)


def render_frame(k: int, conf: float, board_pose_args: dict | None, distractor_conf: float | None = None):
    """One 960x540 frame: the target person on the left, optional distractor on the right; the
    marker board on the target's torso at ``board_pose_args`` (``distance``, ``yaw``) or none."""
    frame = background(k).copy()
    cam = PinholeCamera.from_hfov(W, H, HFOV)
    g = int(round(conf * 255))
    frame[60:520, 150:430] = (235, g, 40)  # target "person"
    if distractor_conf is not None:
        frame[80:500, 640:860] = (235, int(round(distractor_conf * 255)), 40)
    truth = None
    if board_pose_args is not None:
        rot, t = board_pose(cam, (290, 250), board_pose_args["distance"], board_pose_args.get("yaw", 0.0))
        frame, _ = composite_board(frame, BOARD, cam, rot, t)
        ray = t / np.linalg.norm(t)
        truth = {"distance_m": float(np.linalg.norm(t)) / 1000.0,
                 "angle_deg": float(np.degrees(np.arccos(abs(rot[:, 2] @ ray))))}
    return frame, truth


# a small print (so it stays inside the person box at 0.8 m): 100 mm patch, 40 mm markers
BOARD = render_board(patch_mm=(100.0, 100.0), marker_mm=40.0, margin_mm=6.0, px_per_mm=3.0)


@pytest.fixture
def color_detector():
    return ColorDetector


@pytest.fixture
def scene():
    """(render_frame, BOARD, camera hfov)"""
    return render_frame, BOARD, HFOV
