"""Total variation: a smoothness prior that keeps patches printable and camera-robust."""

from __future__ import annotations

from torch import Tensor, nn


class TotalVariation(nn.Module):
    """Mean absolute difference between neighbouring pixels.

    Shape:
        Input: patch ``(3, H, W)`` in [0, 1]. Output: scalar in [0, 1] (0 = flat).
    """

    def forward(self, patch: Tensor) -> Tensor:
        dx = (patch[:, :, 1:] - patch[:, :, :-1]).abs().mean()
        dy = (patch[:, 1:, :] - patch[:, :-1, :]).abs().mean()
        return (dx + dy) / 2
