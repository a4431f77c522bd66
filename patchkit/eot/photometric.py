"""Photometric EOT operations on RGB in [0, 1].

Contrast, brightness, saturation and hue are affine colour maps ``y = M x + b``
(:class:`~patchkit.eot.base.ColourOp`); each returns its ``(N, 3, 4)`` matrix ``[M | b]`` and the
pipeline multiplies them into one matrix per instance, so the four cost one batched matrix product
(performance.md: kornia's ``ColorJitter`` is about 5x slower than plain arithmetic). No clamping
happens between them; the pipeline clamps once, as a camera saturates once. Gamma (the camera tone
curve, a :class:`~patchkit.eot.base.PixelOp` that clamps) is the only non-linear one.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from patchkit.eot.base import ColourOp, PixelOp, Range, RangeOp, register_op
from patchkit.eot.config import BrightnessConfig, ContrastConfig, GammaConfig, HueConfig, SaturationConfig

#: Rec. 601 luma weights (R, G, B), as kornia's ``rgb_to_grayscale``.
LUMA = (0.299, 0.587, 0.114)
_RGB2YIQ = (
    (0.299, 0.587, 0.114),
    (0.595716, -0.274453, -0.321263),
    (0.211456, -0.522591, 0.311135),
)


def _affine(m: Tensor, b: Tensor | None = None) -> Tensor:
    """``(N, 3, 3)`` linear part and ``(N, 3)`` offset -> ``(N, 3, 4)``."""
    if b is None:
        b = m.new_zeros(m.shape[0], 3)
    return torch.cat((m, b[:, :, None]), dim=2)


def contrast_affine(factor: Tensor) -> Tensor:
    """``x * factor`` (adversarial-yolo's contrast, kornia's ``adjust_contrast``); ``(N,)``."""
    eye = torch.eye(3, dtype=factor.dtype, device=factor.device)
    return _affine(factor[:, None, None] * eye)


def brightness_affine(delta: Tensor) -> Tensor:
    """``x + delta``; ``(N,)`` in RGB units."""
    eye = torch.eye(3, dtype=delta.dtype, device=delta.device).expand(delta.shape[0], 3, 3)
    return _affine(eye, delta[:, None].expand(-1, 3))


def saturation_affine(factor: Tensor) -> Tensor:
    """``luma + factor * (x - luma)``; 0 gives gray, 1 the identity; ``(N,)``."""
    dt, dev = factor.dtype, factor.device
    eye = torch.eye(3, dtype=dt, device=dev)
    gray = torch.tensor(LUMA, dtype=dt, device=dev).expand(3, 3)  # every row = luma weights
    f = factor[:, None, None]
    return _affine(f * eye + (1.0 - f) * gray)


def hue_affine(degrees: Tensor) -> Tensor:
    """Rotation of the chroma plane (I, Q of YIQ) by ``degrees`` ``(N,)``; luma is kept."""
    dt, dev = degrees.dtype, degrees.device
    t = torch.tensor(_RGB2YIQ, dtype=dt, device=dev)
    t_inv = torch.linalg.inv(t)
    a = degrees * (math.pi / 180.0)
    c, s = torch.cos(a), torch.sin(a)
    rot = torch.zeros(degrees.shape[0], 3, 3, dtype=dt, device=dev)
    rot[:, 0, 0] = 1.0
    rot[:, 1, 1], rot[:, 1, 2] = c, -s
    rot[:, 2, 1], rot[:, 2, 2] = s, c
    return _affine(t_inv @ rot @ t)


def compose_affine(outer: Tensor, inner: Tensor) -> Tensor:
    """The ``(N, 3, 4)`` affine map ``outer(inner(x))``."""
    m = outer[:, :, :3] @ inner[:, :, :3]
    b = (outer[:, :, :3] @ inner[:, :, 3:]).squeeze(-1) + outer[:, :, 3]
    return _affine(m, b)


def apply_color_affine(x: Tensor, affine: Tensor) -> Tensor:
    """Apply ``(N, 3, 4)`` affine colour maps to ``x`` ``(N or 1, 3, H, W)`` -> ``(N, 3, H, W)``.

    A shared ``x`` (batch 1) is broadcast, so a single patch never gets copied N times first.
    """
    n = affine.shape[0]
    h, w = x.shape[-2:]
    flat = x.reshape(x.shape[0], 3, h * w).expand(n, 3, h * w)
    out = torch.baddbmm(affine[:, :, 3:].to(x.dtype), affine[:, :, :3].to(x.dtype), flat)
    return out.view(n, 3, h, w)


def adjust_gamma(x: Tensor, gamma: Tensor, eps: float = 1e-4) -> Tensor:
    """``clamp(x, 0, 1) ** gamma`` per instance, computed as ``exp(gamma * log x)`` (much faster
    than ``pow`` with a tensor exponent on CPU). ``x`` ``(N, C, H, W)``, ``gamma`` ``(N,)``.
    Values below ``eps`` are floored to ``eps`` (so ``0`` maps to ``eps ** gamma``)."""
    g = gamma.to(x.dtype).view(-1, 1, 1, 1)
    return torch.exp(torch.log(x.clamp(eps, 1.0)) * g)


@register_op
class RandomContrast(RangeOp, ColourOp):
    """Params: ``factor`` ``(N,)`` gain."""

    config_class = ContrastConfig
    ranges = (Range("factor", "factor", 1.0),)

    def affine(self, params: dict[str, Tensor]) -> Tensor:
        return contrast_affine(params["factor"])


@register_op
class RandomBrightness(RangeOp, ColourOp):
    """Params: ``delta`` ``(N,)`` RGB units."""

    config_class = BrightnessConfig
    ranges = (Range("delta", "delta", 0.0),)

    def affine(self, params: dict[str, Tensor]) -> Tensor:
        return brightness_affine(params["delta"])


@register_op
class RandomSaturation(RangeOp, ColourOp):
    """Params: ``factor`` ``(N,)``."""

    config_class = SaturationConfig
    ranges = (Range("factor", "factor", 1.0),)

    def affine(self, params: dict[str, Tensor]) -> Tensor:
        return saturation_affine(params["factor"])


@register_op
class RandomHue(RangeOp, ColourOp):
    """Params: ``degrees`` ``(N,)``."""

    config_class = HueConfig
    ranges = (Range("degrees", "degrees", 0.0),)

    def affine(self, params: dict[str, Tensor]) -> Tensor:
        return hue_affine(params["degrees"])


@register_op
class RandomGamma(RangeOp, PixelOp):
    """Params: ``gamma`` ``(N,)`` exponent, drawn log-uniformly."""

    config_class = GammaConfig
    ranges = (Range("gamma", "gamma", 1.0, log=True),)
    unit_range = "clamps"

    def forward(self, x: Tensor, params: dict[str, Tensor]) -> Tensor:
        return adjust_gamma(x, params["gamma"])
