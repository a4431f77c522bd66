"""Detection metrics: box matching, AP, detection rate, ASR (see :mod:`patchkit.metrics.ap`)."""

from patchkit.metrics.ap import (
    IOU_50_95,
    MatchTable,
    PRCurve,
    aligned_box_iou,
    ap50_95,
    asr_from_ap,
    attack_success_rate,
    average_precision,
    box_iou,
    box_iou_numpy,
    detection_rate,
    hallucinations_per_image,
    match,
    match_image,
    pr_curve,
)

__all__ = [
    "IOU_50_95",
    "MatchTable",
    "PRCurve",
    "aligned_box_iou",
    "ap50_95",
    "asr_from_ap",
    "attack_success_rate",
    "average_precision",
    "box_iou",
    "box_iou_numpy",
    "detection_rate",
    "hallucinations_per_image",
    "match",
    "match_image",
    "pr_curve",
]
