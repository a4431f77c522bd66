"""A stand-in detector for evaluation tests: finds red "persons" on canvases; each person's
confidence drops with the share of its box covered by pure blue (the "trained patch" colour), so
the patch condition has a known effect and the random/gray controls have none."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from patchkit.detections import Detections
from patchkit.detectors.base import Detector, DetectorInfo

S = 192  # canvas side


class BlueSensitiveDetector(Detector):
    def __init__(self, sensitivity: float, base: float = 0.9) -> None:
        super().__init__()
        self.info = DetectorInfo("fake", f"blue{sensitivity}", {0: "person"}, imgsz=S)
        self.sensitivity = sensitivity
        self.base = base
        self.dummy = torch.nn.Parameter(torch.zeros(1), requires_grad=False)

    def detect(self, images, conf=0.25, iou=0.45, classes=None, max_det=300):
        out = []
        for img in (images * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy():
            r, g, b = (img[..., k].astype(int) for k in range(3))
            person = ((r - b) > 100) & (g < 80)
            blue = (b > 200) & (r < 60) & (g < 60)
            n, _, stats, _ = cv2.connectedComponentsWithStats((person | blue).astype(np.uint8))
            boxes, confs = [], []
            for x, y, w, h, area in stats[1:]:
                if area < 100 or not person[y:y + h, x:x + w].any():
                    continue
                cover = blue[y:y + h, x:x + w].mean()
                c = self.base * max(0.0, 1.0 - self.sensitivity * cover)
                if c >= conf:
                    boxes.append([x, y, x + w, y + h])
                    confs.append(c)
            if boxes:
                out.append(Detections(torch.tensor(boxes, dtype=torch.float32), torch.tensor(confs, dtype=torch.float32),
                                      torch.zeros(len(boxes), dtype=torch.long)))
            else:
                out.append(Detections.empty())
        return out


def make_canvases(n: int = 6, seed: int = 0):
    """uint8 canvases (n, 3, S, S) with 1-2 red persons each, and their true boxes."""
    rng = np.random.default_rng(seed)
    imgs, boxes = [], []
    for k in range(n):
        img = np.full((S, S, 3), 120, np.uint8)
        img[..., 0] = np.linspace(90, 150, S, dtype=np.uint8)[None]
        bb = []
        for j in range(1 + k % 2):
            w, h = 40, 110
            x = 10 + j * 95 + int(rng.integers(0, 20))
            y = 20 + int(rng.integers(0, 40))
            img[y:y + h, x:x + w] = (220, 30, 40)
            bb.append([x, y, x + w, y + h])
        imgs.append(img)
        boxes.append(torch.tensor(bb, dtype=torch.float32))
    return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous(), boxes


@pytest.fixture
def blue_detector():
    return BlueSensitiveDetector


@pytest.fixture
def canvases():
    return make_canvases
