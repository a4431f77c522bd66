"""Post-processing shared by every detector family.

:func:`non_max_suppression` reproduces ``non_max_suppression`` of the yolov5 repository and of
ultralytics with ``multi_label=False``: one best class per candidate, a confidence filter on the
final confidence, class-aware NMS (``torchvision.ops.batched_nms``), ``max_det`` per image. For
families with objectness (original YOLOv5) candidates are first kept where ``obj > conf`` and
the final confidence is ``obj * cls``.

:func:`topk_detections` reproduces the NMS-free post-processing of end-to-end heads (YOLOv10,
YOLO26 one-to-one branch): top-k over (candidate, class) pairs, then the confidence filter.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import batched_nms, nms

from patchkit.detections import Detections

MAX_NMS = 30000  # candidates kept (by confidence) before NMS, as yolov5 / ultralytics


def _class_filter(cls: Tensor, classes: list[int] | Tensor | None) -> Tensor | None:
    if classes is None:
        return None
    wanted = torch.as_tensor(classes, device=cls.device, dtype=cls.dtype).view(1, -1)
    return (cls.view(-1, 1) == wanted).any(1)


def non_max_suppression(
    boxes: Tensor,
    scores: Tensor,
    objectness: Tensor | None = None,
    conf: float = 0.25,
    iou: float = 0.45,
    classes: list[int] | None = None,
    max_det: int = 300,
    agnostic: bool = False,
) -> list[Detections]:
    """Class-aware NMS of a batch.

    Args:
        boxes: ``(B, A, 4)`` xyxy boxes (any pixel frame; NMS is done in that frame).
        scores: ``(B, A, C)`` class probabilities in [0, 1] (conditional on an object when
            ``objectness`` is given).
        objectness: ``(B, A)`` in [0, 1], or ``None`` for anchor-free families.
        conf: keep candidates whose final confidence is ``> conf``.
        iou: NMS IoU threshold.
        classes: keep only these class ids.
        max_det: detections kept per image.
        agnostic: class-agnostic NMS.

    Returns:
        One :class:`Detections` per image, sorted by descending confidence.
    """
    out = []
    for b in range(boxes.shape[0]):
        box, score = boxes[b], scores[b]
        if objectness is not None:
            obj = objectness[b]
            keep = obj > conf
            box, score = box[keep], score[keep] * obj[keep, None]
        else:
            keep = score.amax(1) > conf
            box, score = box[keep], score[keep]
        best, cls = score.max(1) if score.shape[0] else (score.new_zeros(0), score.new_zeros(0, dtype=torch.long))
        keep = best > conf
        box, best, cls = box[keep], best[keep], cls[keep]
        wanted = _class_filter(cls, classes)
        if wanted is not None:
            box, best, cls = box[wanted], best[wanted], cls[wanted]
        if best.shape[0] > MAX_NMS:
            top = best.topk(MAX_NMS).indices
            box, best, cls = box[top], best[top], cls[top]
        box, best = box.float(), best.float()
        keep = nms(box, best, iou) if agnostic else batched_nms(box, best, cls, iou)
        keep = keep[:max_det]
        out.append(Detections(box[keep], best[keep], cls[keep].long()))
    return out


def topk_detections(
    boxes: Tensor,
    scores: Tensor,
    conf: float = 0.25,
    classes: list[int] | None = None,
    max_det: int = 300,
    topk: int = 300,
    agnostic: bool = False,
) -> list[Detections]:
    """NMS-free post-processing of end-to-end (one-to-one) heads, as ultralytics does it.

    Per image: the ``k = min(max(topk, max_det), A)`` candidates with the highest best-class
    score, then the ``k`` highest (candidate, class) pairs among them (so one candidate may
    appear with two classes), then ``conf`` / ``classes`` filters and ``max_det``.

    Args:
        boxes: ``(B, A, 4)`` xyxy boxes.
        scores: ``(B, A, C)`` class probabilities in [0, 1].
    """
    bsz, anchors, nc = scores.shape
    k = min(max(topk, max_det), anchors)
    if agnostic:
        best, labels = scores.max(-1)
        conf_k, index = best.topk(k, dim=1)
        cls_k = labels.gather(1, index)
    else:
        first = scores.amax(-1).topk(k, dim=1).indices  # (B, k)
        cand = scores.gather(1, first[..., None].expand(-1, -1, nc))  # (B, k, C)
        conf_k, flat = cand.flatten(1).topk(k, dim=1)
        cls_k = flat % nc
        index = first.gather(1, flat // nc)
    box_k = boxes.gather(1, index[..., None].expand(-1, -1, 4))
    out = []
    for b in range(bsz):
        keep = conf_k[b] > conf
        wanted = _class_filter(cls_k[b], classes)
        if wanted is not None:
            keep &= wanted
        idx = keep.nonzero().view(-1)[:max_det]
        out.append(Detections(box_k[b, idx].float(), conf_k[b, idx].float(), cls_k[b, idx].long()))
    return out
