"""Targeted misclassification: make the target object read as another class."""

from __future__ import annotations

from torch import Tensor, nn

from patchkit.detectors.base import RawOutput
from patchkit.losses.suppression import target_scores


class TargetedMisclassification(nn.Module):
    """Loss ``(B,)``: on the ``k`` candidates most confident in ``source_class``, lower the
    source-class score and raise the ``target_class`` score (both in [0, 1]).

    Args:
        source_class: the class to turn away from (e.g. person = 0).
        target_class: the class to turn into.
        k: candidates per image the loss acts on.
        mode: how the source score is read (see :func:`target_scores`).

    Shape:
        Input: a :class:`RawOutput` with ``B`` images. Output: ``(B,)`` in [-1, 1].
    """

    def __init__(self, source_class: int = 0, target_class: int = 1, k: int = 10, mode: str = "obj_cls"):
        super().__init__()
        if source_class == target_class:
            raise ValueError("source_class and target_class must differ")
        self.source_class, self.target_class, self.k, self.mode = source_class, target_class, k, mode

    def forward(self, raw: RawOutput, boxes: Tensor | None = None, batch_idx: Tensor | None = None) -> Tensor:
        source = target_scores(raw, self.source_class, self.mode)
        target = target_scores(raw, self.target_class, self.mode)
        k = min(self.k, source.shape[1])
        idx = source.topk(k, dim=1).indices
        return source.gather(1, idx).mean(dim=1) - target.gather(1, idx).mean(dim=1)
