"""Non-printability score (Sharif et al. 2016, https://arxiv.org/abs/1801.00349 style)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class NonPrintabilityScore(nn.Module):
    """Mean over pixels of the distance to the nearest palette colour.

    Args:
        palette: ``(K, 3)`` printable colours, digital sRGB in [0, 1]. The legacy 30-colour
            palette of the literature holds *photographed* colours; a palette derived from a
            fitted printer profile holds digital ones (see ``patchkit.printing.palette``).

    Shape:
        Input: patch ``(3, H, W)`` in [0, 1]. Output: scalar, in [0, sqrt(3)].
    """

    def __init__(self, palette: Tensor):
        super().__init__()
        palette = torch.as_tensor(palette, dtype=torch.float32)
        if palette.ndim != 2 or palette.shape[1] != 3 or palette.shape[0] == 0:
            raise ValueError(f"palette must be (K, 3), got {tuple(palette.shape)}")
        self.register_buffer("palette", palette)

    def forward(self, patch: Tensor) -> Tensor:
        pixels = patch.reshape(3, -1).t()  # (HW, 3)
        d2 = (pixels.unsqueeze(1) - self.palette.unsqueeze(0)).pow(2).sum(-1)  # (HW, K)
        return (d2.amin(dim=1) + 1e-12).sqrt().mean()
