"""Cheap training-time monitoring computed from raw detector outputs (no NMS)."""

from __future__ import annotations

import torch
from torch import Tensor

from patchkit.detectors.base import RawOutput
from patchkit.losses.suppression import candidates_on_boxes, target_scores


@torch.no_grad()
def box_hit_rate(
    raw: RawOutput,
    boxes: Tensor,
    batch_idx: Tensor,
    class_id: int = 0,
    conf: float = 0.25,
    iou: float = 0.5,
) -> Tensor:
    """Share of target boxes ``(N, 4)`` still covered by a candidate of ``class_id`` with
    confidence >= ``conf`` and IoU >= ``iou`` (a 0-dim tensor; no host sync). An NMS-free proxy of
    the detection rate, used for progress display."""
    if boxes.shape[0] == 0:
        return torch.zeros((), device=boxes.device)
    scores = target_scores(raw, class_id, "obj_cls")[batch_idx]  # (N, A)
    hit = (candidates_on_boxes(raw.boxes, boxes, batch_idx, "iou", iou) & (scores >= conf)).any(dim=1)
    return hit.float().mean()
