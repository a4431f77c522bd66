"""The ``loss:`` section of a training config: which detection loss, and the regularisers' weights."""

from __future__ import annotations

from dataclasses import dataclass

from patchkit.losses.suppression import MATCHES, MODES, REDUCTIONS, SCORE_SPACES

OBJECTIVES = ("suppress", "targeted")


def _choices(names: tuple[str, ...]) -> str:
    """``a, b or c``, for error messages."""
    return f"{', '.join(names[:-1])} or {names[-1]}"


@dataclass
class LossConfig:
    """Loss terms and their weights.

    Attributes:
        objective: ``suppress`` (hide ``class_id``) or ``targeted`` (turn it into ``target_class``).
        class_id: the attacked class (COCO person = 0).
        target_class: the class to turn into, for ``targeted``.
        mode: how the detection score is read: ``obj_cls`` | ``obj`` | ``cls``.
        reduction: ``max`` per image, ``topk`` mean, or ``per_box`` (the highest score inside each
            target box, averaged over the image's boxes) or ``per_box_topk`` (the mean of the ``topk``
            highest inside each box); see :class:`patchkit.losses.TargetSuppression`.
        topk: candidates averaged by ``topk`` and acted on by ``targeted``.
        score_space: ``prob`` (push the scores down) or ``bce`` (push ``-log(1 - score)`` down: the
            gradient concentrates on people still detected; ``suppress`` only).
        match: which candidates stand for a person with the ``per_box`` reductions: ``centre``
            (centred inside the labelled box) or ``iou`` (IoU >= ``match_iou`` with it: the boxes
            that would count as finding the person; see :func:`patchkit.losses.suppression.candidates_on_boxes`)
            or ``soft_iou`` (each score weighed by ``sigmoid((IoU - match_iou) / match_softness)``,
            differentiable in the candidate's box: a candidate also stops counting when its box slides
            off the person, as in the box term of YOLO's own training loss that VQ's patches maximise).
        match_iou: the IoU threshold of ``match: iou`` / ``soft_iou``, in (0, 1] (evaluation counts a
            person found at 0.5; a lower value keeps a margin).
        match_softness: the sigmoid's width of ``match: soft_iou``, IoU units (> 0).
        centre_weight: with ``match: iou`` or ``soft_iou``, also push down the candidates centred
            inside the box with this weight (>= 0): fewer partial boxes (false positives) on the person, at some cost
            in detection rate. 0 = off.
        nps_weight: weight of the non-printability score (0 = off).
        palette: ``legacy`` (the literature's 30 photographed colours) or a printer profile path.
        tv_weight: weight of total variation.
        tv_floor: the weighted TV term is ``max(tv_weight * tv, tv_floor)`` (adversarial-yolo).
    """

    objective: str = "suppress"
    class_id: int = 0
    target_class: int = -1
    mode: str = "obj_cls"
    reduction: str = "max"
    topk: int = 10
    score_space: str = "prob"
    match: str = "centre"
    match_iou: float = 0.5
    match_softness: float = 0.05
    centre_weight: float = 0.0
    nps_weight: float = 0.0
    palette: str = "legacy"
    tv_weight: float = 2.5
    tv_floor: float = 0.1

    def validate(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"loss.objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if self.objective == "targeted" and self.target_class < 0:
            raise ValueError("loss.target_class must be set (>= 0) for loss.objective=targeted")
        if self.mode not in MODES:
            raise ValueError(f"loss.mode must be {_choices(MODES)}, got {self.mode!r}")
        if self.reduction not in REDUCTIONS:
            raise ValueError(f"loss.reduction must be {_choices(REDUCTIONS)}, got {self.reduction!r}")
        if self.score_space not in SCORE_SPACES:
            raise ValueError(f"loss.score_space must be {_choices(SCORE_SPACES)}, got {self.score_space!r}")
        if self.match not in MATCHES:
            raise ValueError(f"loss.match must be {_choices(MATCHES)}, got {self.match!r}")
        if not 0.0 < self.match_iou <= 1.0:
            raise ValueError(f"loss.match_iou must be in (0, 1], got {self.match_iou}")
        if not self.match_softness > 0.0:
            raise ValueError(f"loss.match_softness must be > 0, got {self.match_softness}")
        if not self.centre_weight >= 0.0:
            raise ValueError(f"loss.centre_weight must be >= 0, got {self.centre_weight}")
        if self.score_space != "prob" and self.objective != "suppress":
            raise ValueError("loss.score_space=bce is for loss.objective=suppress")
