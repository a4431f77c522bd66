"""T-SEA's self-ensemble for training a patch (Huang et al., CVPR 2023, https://arxiv.org/abs/2211.09773):
cut pieces out of the patch, and perturb the detector's residual branches, so the patch does not
overfit one exact model and one exact pattern.

- :class:`PatchCutout`: with probability ``p`` per step, a square covering ``fraction`` of the
  patch's area (at a random place) is filled with ``fill`` before the patch is pasted.
- :class:`ShakeDrop`: while active, each residual block ``y = x + F(x)`` of the detector becomes
  ``y = x + s * F(x)``, ``s`` drawn per block and step: 1 with probability ``1 - p``, else uniform in
  ``[1 - alpha, 1 + alpha]``. Leaving the context removes the hooks: the detector is exactly the
  clean one again.

Both draw only from the generator they are given, so a resumed run replays them exactly.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class SelfEnsembleConfig:
    """Self-ensemble options (all off by default).

    Attributes:
        cutout_p: probability per step of cutting a square out of the patch, in [0, 1].
        cutout_fraction: area of that square as a fraction of the patch's area, in (0, 1).
        cutout_fill: gray level the square is filled with, in [0, 1].
        shakedrop_p: probability that a residual branch is rescaled in a step, in [0, 1].
        shakedrop_alpha: rescaled branches are multiplied by ``U(1 - alpha, 1 + alpha)``, >= 0.
    """

    cutout_p: float = 0.0
    cutout_fraction: float = 0.4
    cutout_fill: float = 0.5
    shakedrop_p: float = 0.0
    shakedrop_alpha: float = 0.5

    def validate(self) -> None:
        for key in ("cutout_p", "cutout_fill", "shakedrop_p"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"self_ensemble.{key} must be in [0, 1], got {getattr(self, key)}")
        if not 0.0 < self.cutout_fraction < 1.0:
            raise ValueError(f"self_ensemble.cutout_fraction must be in (0, 1), got {self.cutout_fraction}")
        if self.shakedrop_alpha < 0:
            raise ValueError(f"self_ensemble.shakedrop_alpha must be >= 0, got {self.shakedrop_alpha}")


class PatchCutout(nn.Module):
    """Fill a random square of the patch ``(3, P, P)`` with a gray level (differentiable outside it).

    Args:
        p: probability of cutting, per call.
        fraction: area of the square / area of the patch, in (0, 1).
        fill: gray level in [0, 1].
    """

    def __init__(self, p: float = 0.0, fraction: float = 0.4, fill: float = 0.5):
        super().__init__()
        self.p, self.fraction, self.fill = p, fraction, fill

    def forward(self, patch: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if self.p <= 0:
            return patch
        u = torch.rand(3, generator=generator)  # cut?, x, y: drawn every call so draws stay aligned
        if float(u[0]) >= self.p:
            return patch
        h, w = patch.shape[-2:]
        side = max(1, round(math.sqrt(self.fraction * h * w)))
        sh, sw = min(side, h), min(side, w)
        y0 = int(float(u[2]) * (h - sh + 1))
        x0 = int(float(u[1]) * (w - sw + 1))
        mask = torch.zeros(1, h, w, dtype=torch.bool, device=patch.device)
        mask[:, y0 : y0 + sh, x0 : x0 + sw] = True
        return patch.masked_fill(mask, self.fill)


def residual_blocks(model: nn.Module) -> list[nn.Module]:
    """The residual blocks ``y = x + F(x)`` of a detector: ultralytics ``Bottleneck`` modules with
    their shortcut on (used by YOLOv5's C3 and YOLOv8's C2f)."""
    return [m for m in model.modules() if type(m).__name__ == "Bottleneck" and getattr(m, "add", False)]


class ShakeDrop:
    """Random rescaling of a detector's residual branches, as a context manager.

    Usage::

        shake = ShakeDrop(detector, p=0.5, alpha=0.5)
        with shake.active(generator):   # a fresh draw per step
            raw = detector.forward_letterboxed(x)
        # hooks removed: the detector is the clean one

    Args:
        model: the detector (any module holding ultralytics ``Bottleneck`` blocks).
        p: probability per block and step of rescaling its branch.
        alpha: rescaled branches are multiplied by ``U(1 - alpha, 1 + alpha)``.
    """

    def __init__(self, model: nn.Module, p: float = 0.5, alpha: float = 0.5):
        self.blocks = residual_blocks(model)
        self.p, self.alpha = p, alpha
        self.scales: Tensor = torch.ones(len(self.blocks))

    def draw(self, generator: torch.Generator | None = None) -> Tensor:
        """Per-block scales ``(n_blocks,)`` for one step."""
        n = len(self.blocks)
        on = torch.rand(n, generator=generator) < self.p
        s = 1.0 + self.alpha * (2.0 * torch.rand(n, generator=generator) - 1.0)
        return torch.where(on, s, torch.ones(n))

    @contextlib.contextmanager
    def active(self, generator: torch.Generator | None = None):
        """Hooks in place for the duration of the block, with scales drawn from ``generator``."""
        if self.p <= 0 or not self.blocks:
            yield self
            return
        self.scales = self.draw(generator)
        handles = []
        for block, s in zip(self.blocks, self.scales.tolist()):
            if s != 1.0:
                handles.append(block.register_forward_hook(_rescale_branch(s)))
        try:
            yield self
        finally:
            for h in handles:
                h.remove()


def _rescale_branch(scale: float):
    def hook(module: nn.Module, inputs: tuple, output: Tensor) -> Tensor:
        x = inputs[0]
        return x + scale * (output - x)  # output = x + F(x)

    return hook
