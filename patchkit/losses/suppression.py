"""Hide a target class: push down its highest detection scores (Thys et al. 2019).

"Fooling automated surveillance cameras: adversarial patches to attack person detection",
https://arxiv.org/abs/1904.08653. Their OBJ / CLS / OBJ-CLS variants are ``mode`` here.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from patchkit.detectors.base import RawOutput

MODES = ("obj_cls", "obj", "cls")
REDUCTIONS = ("max", "topk")


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


class TargetSuppression(nn.Module):
    """Loss ``(B,)`` = max (or top-k mean) over candidates of the target-class score.

    Args:
        class_id: the class to hide (COCO person = 0).
        mode: ``obj_cls`` | ``obj`` | ``cls`` (see :func:`target_scores`).
        reduction: ``max`` per image, or ``topk`` mean of the ``k`` highest scores.
        k: candidates averaged with ``topk``.

    Shape:
        Input: a :class:`RawOutput` with ``B`` images. Output: ``(B,)``, in [0, 1].
    """

    def __init__(self, class_id: int = 0, mode: str = "obj_cls", reduction: str = "max", k: int = 10):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.class_id, self.mode, self.reduction, self.k = class_id, mode, reduction, k

    def forward(self, raw: RawOutput) -> Tensor:
        scores = target_scores(raw, self.class_id, self.mode)
        if self.reduction == "max":
            return scores.amax(dim=1)
        k = min(self.k, scores.shape[1])
        return scores.topk(k, dim=1).values.mean(dim=1)
