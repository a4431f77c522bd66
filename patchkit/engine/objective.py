"""The attack objective: detection loss + printability + smoothness, weights from config."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from patchkit.detectors.base import RawOutput
from patchkit.losses import NonPrintabilityScore, TargetedMisclassification, TargetSuppression, TotalVariation
from patchkit.losses.config import LossConfig

class AttackObjective(nn.Module):
    """``forward(raw, patch) -> (total, parts)``: total is a scalar to minimise, parts a dict of
    detached scalars (``det``, ``nps``, ``tv``) for logging."""

    def __init__(self, cfg: LossConfig, palette: Tensor | None = None):
        super().__init__()
        if cfg.objective == "suppress":
            self.detection = TargetSuppression(cfg.class_id, cfg.mode, cfg.reduction, cfg.topk, cfg.score_space,
                                               cfg.match, cfg.match_iou, cfg.centre_weight, cfg.match_softness)
        else:
            self.detection = TargetedMisclassification(cfg.class_id, cfg.target_class, cfg.topk, cfg.mode)
        self.nps = NonPrintabilityScore(palette) if cfg.nps_weight > 0 and palette is not None else None
        self.tv = TotalVariation()
        self.cfg = cfg

    def regularisers(self, patch: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The patch-only terms: weighted TV (with its floor) and NPS -> (scalar, parts)."""
        tv = self.tv(patch)
        total = torch.clamp(self.cfg.tv_weight * tv, min=self.cfg.tv_floor)
        parts = {"tv": tv.detach()}
        if self.nps is not None:
            nps = self.nps(patch)
            total = total + self.cfg.nps_weight * nps
            parts["nps"] = nps.detach()
        return total, parts

    def forward(self, raw: RawOutput, patch: Tensor, boxes: Tensor | None = None,
                batch_idx: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        det = self.detection(raw, boxes, batch_idx).mean()
        reg, parts = self.regularisers(patch)
        return det + reg, {"det": det.detach(), **parts}
