"""Hide a target class: push down its highest detection scores (Thys et al. 2019).

"Fooling automated surveillance cameras: adversarial patches to attack person detection",
https://arxiv.org/abs/1904.08653. Their OBJ / CLS / OBJ-CLS variants are ``mode`` here.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from patchkit.detectors.base import RawOutput
from patchkit.metrics.ap import aligned_box_iou

MODES = ("obj_cls", "obj", "cls")
REDUCTIONS = ("max", "topk", "per_box", "per_box_topk")
SCORE_SPACES = ("prob", "bce")
MATCHES = ("centre", "iou", "soft_iou")


def to_score_space(scores: Tensor, space: str = "prob") -> Tensor:
    """``prob``: the scores as they are, in [0, 1]. ``bce``: ``-log(1 - s)``, each candidate's binary
    cross-entropy against "no target" (>= 0, about 13.8 at most): its gradient with respect to the
    score's logit is ``s`` itself, so a person still detected at 0.9 pulls 9x harder than one already
    hidden at 0.1, where the plain score gives both the same ``s(1 - s)`` = 0.09. This puts the effort
    where the detection rate is decided. Monotone, so ``max`` picks the same candidate in both.
    """
    if space == "prob":
        return scores
    if space == "bce":
        return -torch.log1p(-scores.clamp(max=1.0 - 1e-6))
    raise ValueError(f"score_space must be one of {SCORE_SPACES}, got {space!r}")


def target_scores(raw: RawOutput, class_id: int, mode: str = "obj_cls") -> Tensor:
    """Per-candidate score ``(B, A)`` in [0, 1] that the attack pushes down.

    ``obj_cls`` = objectness x class probability, ``obj`` = objectness alone, ``cls`` = class
    probability alone. Families without objectness (anchor-free ultralytics heads) have only the
    class score, which every mode then uses (their column 4 is a class, not objectness).
    """
    cls = raw.scores[..., class_id]
    if raw.objectness is None or mode == "cls":
        return cls
    if mode == "obj":
        return raw.objectness
    return raw.objectness * cls


def candidates_on_boxes(cand_boxes: Tensor, boxes: Tensor, batch_idx: Tensor, match: str = "centre",
                        iou: float = 0.5) -> Tensor:
    """``(N, A)`` bool: which candidates of its image stand for each target box.

    ``centre``: the candidate's centre lies inside the box. ``iou``: the candidate overlaps the box
    with IoU >= ``iou``, the rule a detection must pass to count as finding that person (detection
    rate, AP50): small boxes the patch itself raises on the chest, which only count as false
    positives, are left out, so the effort goes to the boxes that find the person.

    Args:
        cand_boxes: ``(B, A, 4)`` candidate xyxy boxes in pixels.
        boxes: ``(N, 4)`` target xyxy boxes in the same pixels.
        batch_idx: ``(N,)`` image of each target box.
    """
    cand = cand_boxes[batch_idx]  # (N, A, 4)
    if match == "centre":
        centre = 0.5 * (cand[..., :2] + cand[..., 2:])
        return ((centre >= boxes[:, None, :2]) & (centre <= boxes[:, None, 2:])).all(dim=-1)
    if match == "iou":
        return aligned_box_iou(cand, boxes[:, None, :]) >= iou
    raise ValueError(f"match must be 'centre' or 'iou', got {match!r}")


def soft_iou_weights(cand_boxes: Tensor, boxes: Tensor, batch_idx: Tensor, iou: float = 0.5,
                     softness: float = 0.05) -> tuple[Tensor, Tensor]:
    """How much each candidate still counts as finding each target box, differentiable in the
    candidate's box: ``sigmoid((IoU - iou) / softness)``, ``(N, A)`` in (0, 1), and the ``(N, A)``
    bool mask of the candidates within ``4 * softness`` below ``iou`` or above (the rest weigh < 2 %
    and are left out). A candidate stops finding the person when its score falls or when its box
    slides off him (IoU below ``iou``); both lower the weighted score.

    Args:
        cand_boxes: ``(B, A, 4)`` candidate xyxy boxes in pixels (with their gradient).
        boxes: ``(N, 4)`` target xyxy boxes in the same pixels.
        batch_idx: ``(N,)`` image of each target box.
        iou: the IoU at which a candidate counts as finding the box (evaluation: 0.5).
        softness: the sigmoid's width in IoU units, > 0.
    """
    overlap = aligned_box_iou(cand_boxes[batch_idx], boxes[:, None, :])
    return torch.sigmoid((overlap - iou) / softness), overlap.detach() >= iou - 4.0 * softness


def per_box_max(scores: Tensor, cand_boxes: Tensor, boxes: Tensor, batch_idx: Tensor, n_images: int,
                k: int = 1, match: str = "centre", iou: float = 0.5, softness: float = 0.05) -> Tensor:
    """Mean over each image's target boxes of the highest score (``k`` > 1: the mean of the ``k``
    highest) among the candidates that stand for that box (:func:`candidates_on_boxes`: centred
    inside it, or overlapping it with IoU >= ``iou``), vectorised over all boxes: ``(B,)`` in
    [0, 1] (0 for an image without boxes). ``match="soft_iou"`` weighs each score by
    :func:`soft_iou_weights` (width ``softness``), so the gradient also moves the candidate boxes.

    Args:
        scores: ``(B, A)`` candidate scores.
        cand_boxes: ``(B, A, 4)`` candidate xyxy boxes in pixels.
        boxes: ``(N, 4)`` target xyxy boxes in the same pixels.
        batch_idx: ``(N,)`` image of each target box.
        n_images: ``B``.
    """
    if boxes.shape[0] == 0:
        return scores.new_zeros(n_images)
    if match == "soft_iou":
        weight, inside = soft_iou_weights(cand_boxes, boxes, batch_idx, iou, softness)
        masked = (scores[batch_idx] * weight).masked_fill(~inside, 0.0)
    else:
        inside = candidates_on_boxes(cand_boxes.detach(), boxes, batch_idx, match, iou)
        masked = scores[batch_idx].masked_fill(~inside, 0.0)
    per_box = masked.amax(dim=1) if k <= 1 else masked.topk(min(k, masked.shape[1]), dim=1).values.mean(dim=1)
    total = scores.new_zeros(n_images).index_add(0, batch_idx, per_box)
    count = scores.new_zeros(n_images).index_add(0, batch_idx, torch.ones_like(per_box))
    return total / count.clamp_min(1.0)


class TargetSuppression(nn.Module):
    """Loss ``(B,)`` = max (or top-k mean, or per-target-box max) over candidates of the
    target-class score.

    Args:
        class_id: the class to hide (COCO person = 0).
        mode: ``obj_cls`` | ``obj`` | ``cls`` (see :func:`target_scores`).
        reduction: ``max`` per image; ``topk`` mean of the ``k`` highest scores; ``per_box``: for
            every target box the highest score among candidates centred inside it, averaged over
            the image's boxes (every patched person counts, and unpatched people in the
            background, whom the patch cannot hide, do not steal the gradient); ``per_box_topk``:
            the mean of the ``k`` highest inside each box (also pushes down the second and third
            boxes a patch can raise on the same person, e.g. person-like shapes in the patch).
        k: candidates averaged with ``topk``.
        score_space: ``prob`` (the scores) or ``bce`` (``-log(1 - score)``, see
            :func:`to_score_space`), applied to every candidate before the reduction.
        match: which candidates stand for a target box with ``per_box``: ``centre`` (centred
            inside it), ``iou`` (IoU >= ``match_iou`` with it; see :func:`candidates_on_boxes`) or
            ``soft_iou`` (every score weighed by a sigmoid of its IoU, :func:`soft_iou_weights`:
            the gradient may also push a candidate's box off the person).
        match_iou: the IoU threshold of ``match="iou"`` / ``"soft_iou"``, in (0, 1].
        match_softness: the sigmoid's width of ``soft_iou`` in IoU units, > 0.
        centre_weight: with ``match="iou"`` or ``"soft_iou"``, add this weight (>= 0) times the centre-matched loss:
            it also pushes down the partial boxes a patch raises on the person (a head, the legs),
            which count as false positives, at some cost in detection rate.

    Shape:
        Input: a :class:`RawOutput` with ``B`` images (plus the target boxes ``(N, 4)`` and their
        ``batch_idx (N,)`` for ``per_box``). Output: ``(B,)``, in [0, 1] (``bce``: >= 0).
    """

    def __init__(self, class_id: int = 0, mode: str = "obj_cls", reduction: str = "max", k: int = 10,
                 score_space: str = "prob", match: str = "centre", match_iou: float = 0.5,
                 centre_weight: float = 0.0, match_softness: float = 0.05):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        if score_space not in SCORE_SPACES:
            raise ValueError(f"score_space must be one of {SCORE_SPACES}, got {score_space!r}")
        self.class_id, self.mode, self.reduction, self.k = class_id, mode, reduction, k
        if match not in MATCHES:
            raise ValueError(f"match must be one of {MATCHES}, got {match!r}")
        if not 0.0 < match_iou <= 1.0:
            raise ValueError(f"match_iou must be in (0, 1], got {match_iou}")
        if not centre_weight >= 0.0:
            raise ValueError(f"centre_weight must be >= 0, got {centre_weight}")
        if not match_softness > 0.0:
            raise ValueError(f"match_softness must be > 0, got {match_softness}")
        self.score_space, self.match, self.match_iou = score_space, match, match_iou
        self.match_softness, self.centre_weight = match_softness, centre_weight

    def forward(self, raw: RawOutput, boxes: Tensor | None = None, batch_idx: Tensor | None = None) -> Tensor:
        scores = to_score_space(target_scores(raw, self.class_id, self.mode), self.score_space)
        if self.reduction in ("per_box", "per_box_topk"):
            if boxes is None or batch_idx is None:
                raise ValueError(f"reduction '{self.reduction}' needs the target boxes and their batch_idx")
            k = self.k if self.reduction == "per_box_topk" else 1
            loss = per_box_max(scores, raw.boxes, boxes, batch_idx, scores.shape[0], k, self.match, self.match_iou,
                               self.match_softness)
            if self.match != "centre" and self.centre_weight > 0:
                loss = loss + self.centre_weight * per_box_max(scores, raw.boxes, boxes, batch_idx, scores.shape[0], k)
            return loss
        if self.reduction == "max":
            return scores.amax(dim=1)
        k = min(self.k, scores.shape[1])
        return scores.topk(k, dim=1).values.mean(dim=1)
