"""Hidden, or only cut into pieces? How many labelled people a patch really takes out of sight.

The detection rate of the literature counts a person as found when one detection overlaps the
labelled box with IoU >= 0.5. A patch can pass that test by breaking a person into partial boxes
(a head, the legs, a small figure on the chest): the person is then "missed" at IoU 0.5, yet a
person box still sits on him, and a camera system that alarms on any person box still fires.
:func:`person_coverage` reports, per labelled person and after NMS, found at IoU >= 0.5, found at
a looser IoU, and *touched*: some person box whose centre lies inside the labelled box.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    """

    found: float
    found_loose: float
    touched: float
    false_per_image: float
    persons: int


def person_coverage(detections: Sequence[Detections], labels: Sequence[Tensor], conf: float = 0.25,
                    loose_iou: float = 0.3) -> PersonCoverage:
    """Coverage of the labelled persons (``labels[i]``: ``(M, 4)`` xyxy, the detections' pixels) by the
    detections of each image with confidence >= ``conf`` (pass one class's detections)."""
    if len(detections) != len(labels):
        raise ValueError(f"{len(detections)} detection sets for {len(labels)} label sets")
    found = loose = touched = false = persons = 0
    for det, gt in zip(detections, labels):
        gt = gt.reshape(-1, 4).float()
        boxes = det.xyxy.float()[det.conf >= conf]
        persons += gt.shape[0]
        if boxes.shape[0] == 0:
            continue
        if gt.shape[0] == 0:
            false += boxes.shape[0]
            continue
        iou = aligned_box_iou(gt[:, None, :], boxes[None])  # (M, D)
        inside = candidates_on_boxes(boxes[None], gt, gt.new_zeros(gt.shape[0], dtype=torch.long), "centre")
        found += int((iou >= 0.5).any(1).sum())
        loose += int((iou >= loose_iou).any(1).sum())
        touched += int(inside.any(1).sum())
        false += int((iou.amax(0) < 0.5).sum())
    n = max(persons, 1)
    return PersonCoverage(found / n, loose / n, touched / n, false / max(len(labels), 1), persons)


__all__ = ["PersonCoverage", "person_coverage"]
