"""Where a patch goes on a target box: the placement rule shared by training, evaluation and video.

The rule follows adversarial-yolo (Thys et al. 2019): the patch side is a fraction of the box
diagonal (0.2 in the literature), centred on the box, optionally shifted by a fraction of the box
size. Coordinates are continuous pixels with pixel ``i`` covering ``[i, i + 1)``, the convention of
xyxy detection boxes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from patchkit.errors import PatchkitError


@dataclass
class PlacementConfig:
    """Patch placement relative to a target box.

    Attributes:
        scale: patch width as a fraction of the box diagonal, > 0 (literature default 0.2).
        offset_x: patch centre offset from the box centre, as a fraction of the box width
            (+ = right).
        offset_y: patch centre offset as a fraction of the box height (+ = down; -0.1 moves the
            patch towards the chest of a standing person).
        aspect: patch height / width, > 0 (1 = square).
    """

    scale: float = 0.2
    offset_x: float = 0.0
    offset_y: float = 0.0
    aspect: float = 1.0

    def validate(self) -> None:
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"placement.scale must be > 0, got {self.scale}")
        if not (math.isfinite(self.aspect) and self.aspect > 0):
            raise ValueError(f"placement.aspect must be > 0, got {self.aspect}")
        for key in ("offset_x", "offset_y"):
            if not math.isfinite(getattr(self, key)):
                raise ValueError(f"placement.{key} must be a finite number")


def place_patches(boxes: Tensor, cfg: PlacementConfig) -> tuple[Tensor, Tensor]:
    """Patch centres and sizes for a batch of boxes, vectorised.

    Args:
        boxes: ``(N, 4)`` xyxy boxes in pixels.
        cfg: the placement rule.

    Returns:
        ``centers`` ``(N, 2)`` patch centres (x, y) in pixels and ``sizes`` ``(N, 2)`` patch
        (width, height) in pixels, with width = ``scale`` * box diagonal and
        height = width * ``aspect``. Same dtype and device as ``boxes``.
    """
    if not isinstance(boxes, Tensor) or boxes.ndim != 2 or boxes.shape[-1] != 4:
        shape = tuple(boxes.shape) if isinstance(boxes, Tensor) else type(boxes).__name__
        raise PatchkitError(f"place_patches: boxes must be an (N, 4) xyxy tensor, got {shape}")
    try:
        cfg.validate()
    except ValueError as exc:
        raise PatchkitError(str(exc)) from exc
    boxes = boxes if boxes.is_floating_point() else boxes.float()
    x1, y1, x2, y2 = boxes.unbind(-1)
    bw = (x2 - x1).clamp_min(0)
    bh = (y2 - y1).clamp_min(0)
    side = cfg.scale * torch.sqrt(bw * bw + bh * bh)
    centers = torch.stack(
        (0.5 * (x1 + x2) + cfg.offset_x * bw, 0.5 * (y1 + y2) + cfg.offset_y * bh), dim=-1
    )
    sizes = torch.stack((side, side * cfg.aspect), dim=-1)
    return centers, sizes
