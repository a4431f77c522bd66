"""Hidden, or only cut into pieces? How many labelled people a patch really takes out of sight.

The detection rate of the literature counts a person as found when one detection overlaps the
labelled box with IoU >= 0.5. A patch can pass that test by breaking a person into partial boxes
(a head, the legs, a small figure on the chest): the person is then "missed" at IoU 0.5, yet a
person box still sits on him, and a camera system that alarms on any person box still fires.
:func:`person_coverage` reports, per labelled person and after NMS, found at IoU >= 0.5, found at
a looser IoU, and *touched*: some person box whose centre lies inside the labelled box; and the
found share by the person's height in pixels, because a patch can hide people of one size and
fail on another (README, "Stronger patches": the yolov8n patch and the tallest people).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import Tensor

from patchkit.detections import Detections
from patchkit.losses.suppression import candidates_on_boxes
from patchkit.metrics.ap import aligned_box_iou


@dataclass
class PersonCoverage:
    """Shares of the labelled persons, in [0, 1], and false boxes per image.

    Attributes:
        found: a detection with IoU >= 0.5 (the detection rate of the literature, except that one
            detection may count for two overlapping people: the AP matching is one-to-one).
        found_loose: a detection with IoU >= the looser threshold (0.3 by default).
        touched: a detection whose centre lies inside the labelled box.
        false_per_image: detections with IoU < 0.5 to every labelled box, per image.
        persons: labelled persons counted.
        found_by_height: the found share per band of labelled box height in pixels (keys like
            ``"128-256"``, ``">=384"``); a band without people is left out.
        persons_by_height: persons per band (same keys).
    """

    found: float
    found_loose: float
    touched: float
    false_per_image: float
    persons: int
    found_by_height: dict[str, float] = field(default_factory=dict)
    persons_by_height: dict[str, int] = field(default_factory=dict)


def height_band_names(edges: Sequence[float]) -> list[str]:
    """Names of the bands cut by increasing pixel ``edges``: ``(128, 256)`` -> ``["<128", "128-256", ">=256"]``."""
    e = [f"{v:g}" for v in edges]
    return [f"<{e[0]}", *(f"{a}-{b}" for a, b in zip(e, e[1:])), f">={e[-1]}"]


def person_coverage(detections: Sequence[Detections], labels: Sequence[Tensor], conf: float = 0.25,
                    loose_iou: float = 0.3, height_edges: Sequence[float] = (128, 256, 384)) -> PersonCoverage:
    """Coverage of the labelled persons (``labels[i]``: ``(M, 4)`` xyxy, the detections' pixels) by the
    detections of each image with confidence >= ``conf`` (pass one class's detections);
    ``height_edges``: increasing box heights in pixels that cut the persons into bands for
    ``found_by_height``."""
    if len(detections) != len(labels):
        raise ValueError(f"{len(detections)} detection sets for {len(labels)} label sets")
    if not height_edges or any(b <= a for a, b in zip(height_edges, height_edges[1:])):
        raise ValueError(f"height_edges must be increasing pixel heights, got {list(height_edges)}")
    loose = touched = false = 0
    found_each, heights = [], []
    for det, gt in zip(detections, labels):
        gt = gt.reshape(-1, 4).float()
        boxes = det.xyxy.float()[det.conf >= conf]
        if gt.shape[0] == 0:
            false += boxes.shape[0]
            continue
        iou = aligned_box_iou(gt[:, None, :], boxes[None])  # (M, D); D may be 0
        inside = candidates_on_boxes(boxes[None], gt, gt.new_zeros(gt.shape[0], dtype=torch.long), "centre")
        found_each.append((iou >= 0.5).any(1))
        heights.append(gt[:, 3] - gt[:, 1])
        loose += int((iou >= loose_iou).any(1).sum())
        touched += int(inside.any(1).sum())
        false += int((iou.amax(0) < 0.5).sum())
    found_t = torch.cat(found_each) if found_each else torch.zeros(0, dtype=torch.bool)
    height = torch.cat(heights) if heights else torch.zeros(0)
    persons, n = int(found_t.numel()), max(int(found_t.numel()), 1)
    band = torch.bucketize(height, torch.tensor(list(height_edges), dtype=height.dtype), right=True)
    by_height, count = {}, {}
    for k, name in enumerate(height_band_names(height_edges)):
        sel = band == k
        if sel.any():
            by_height[name], count[name] = float(found_t[sel].float().mean()), int(sel.sum())
    return PersonCoverage(int(found_t.sum()) / n, loose / n, touched / n, false / max(len(labels), 1), persons,
                          by_height, count)


__all__ = ["PersonCoverage", "height_band_names", "person_coverage"]
