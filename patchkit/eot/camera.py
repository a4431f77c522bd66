"""Camera EOT operations: defocus and motion blur, sensor noise, JPEG.

They run on the patch at about its on-screen resolution (the pipeline's working tensor), so their
ranges are given in screen pixels and converted with ``scale`` = working pixels per screen pixel
``(N, 2)`` (x, y). Defocus and motion blur are :class:`~patchkit.eot.base.BlurOp`: each gives one
term (a Gaussian sigma, a streak) that the pipeline fuses into one kernel per instance
(:func:`blur_kernels`) applied with one grouped convolution (``kornia.filters.filter2d``). Noise
and JPEG are :class:`~patchkit.eot.base.PixelOp`.
"""

from __future__ import annotations

import math

import kornia
import torch
from torch import Tensor

from patchkit.eot.base import BlurOp, PixelOp, Range, RangeOp, register_op
from patchkit.eot.config import DefocusConfig, JPEGConfig, MotionConfig, NoiseConfig


def blur_radius(sigma: Tensor | None, motion: Tensor | None) -> float:
    """Kernel radius in working pixels that holds 3 sigma of defocus plus half the motion streak.

    Args:
        sigma: ``(N, 2)`` defocus standard deviations (x, y) in working pixels, or None.
        motion: ``(N, 2)`` motion streak vectors in working pixels, or None.
    """
    r = 0.0
    if sigma is not None and sigma.numel():
        r += 3.0 * float(sigma.max())
    if motion is not None and motion.numel():
        r += 0.5 * float(motion.abs().max())
    return r


def blur_kernels(sigma: Tensor | None, motion: Tensor | None, size: int) -> Tensor:
    """One normalised ``(N, size, size)`` kernel per instance: a line segment (motion) convolved
    with a Gaussian (defocus).

    Args:
        sigma: ``(N, 2)`` Gaussian standard deviations (x, y) in pixels, or None for no defocus;
            0 gives a delta.
        motion: ``(N, 2)`` streak vectors (dx, dy) in pixels, centred on the pixel, or None; a zero
            vector gives a delta. The segment is drawn with bilinear (tent) weights.
        size: odd kernel side; truncated kernels are renormalised to sum 1.
    """
    ref = sigma if sigma is not None else motion
    dt, dev = ref.dtype, ref.device
    r = size // 2
    ax = torch.arange(-r, r + 1, dtype=dt, device=dev)
    kernel = None
    if motion is not None:
        samples = max(2, min(65, 2 * math.ceil(float(motion.abs().max()) if motion.numel() else 0) + 1))
        t = torch.linspace(-0.5, 0.5, samples, dtype=dt, device=dev)
        px = motion[:, 0, None] * t  # (N, M)
        py = motion[:, 1, None] * t
        wx = (1 - (ax[None, None, :] - px[:, :, None]).abs()).clamp_min(0)  # (N, M, K)
        wy = (1 - (ax[None, None, :] - py[:, :, None]).abs()).clamp_min(0)
        kernel = torch.einsum("nmy,nmx->nyx", wy, wx)
    if sigma is not None:
        s = sigma.clamp_min(1e-6)
        if kernel is None:
            gx = torch.exp(-0.5 * (ax[None, :] / s[:, 0:1]) ** 2)
            gy = torch.exp(-0.5 * (ax[None, :] / s[:, 1:2]) ** 2)
            kernel = (gy / gy.sum(-1, keepdim=True))[:, :, None] * (gx / gx.sum(-1, keepdim=True))[:, None, :]
        else:
            # Gaussian applied to the line kernel as two (K, K) Toeplitz products (zero padding)
            d = ax[:, None] - ax[None, :]
            tx = torch.exp(-0.5 * (d[None] / s[:, 0, None, None]) ** 2)
            ty = torch.exp(-0.5 * (d[None] / s[:, 1, None, None]) ** 2)
            kernel = ty @ kernel @ tx.transpose(1, 2)
    return kernel / kernel.sum(dim=(-2, -1), keepdim=True)


def apply_blur(x: Tensor, kernels: Tensor) -> Tensor:
    """Convolve ``x`` ``(N, C, H, W)`` with per-instance ``kernels`` ``(N, K, K)``; borders replicate."""
    return kornia.filters.filter2d(x, kernels.to(x.dtype), border_type="replicate")


def gaussian_noise(x: Tensor, std: Tensor, seed: Tensor, per_channel: bool = False) -> Tensor:
    """``x + std * n`` with ``n`` standard normal noise drawn from a generator seeded with ``seed``.

    Args:
        x: ``(N, C, H, W)``, or ``(1, C, H, W)`` shared by the ``N`` instances.
        std: ``(N,)`` standard deviations in RGB units.
        seed: 1-element int64 tensor; the same seed, shape and device give the same noise.
        per_channel: independent noise per channel, else one value per pixel for all channels.
    """
    gen = torch.Generator(device=x.device)
    gen.manual_seed(int(seed.reshape(-1)[0].item()))
    n = max(x.shape[0], std.shape[0])  # a shared x (batch 1) still gets independent noise per instance
    shape = (n, x.shape[1] if per_channel else 1, x.shape[2], x.shape[3])
    noise = torch.randn(shape, generator=gen, device=x.device, dtype=x.dtype)
    return torch.addcmul(x, noise, std.to(x.dtype).view(-1, 1, 1, 1))


def jpeg(x: Tensor, quality: Tensor) -> Tensor:
    """Differentiable JPEG round trip (kornia), ``x`` ``(N, 3, H, W)`` in [0, 1], ``quality`` ``(N,)``
    in [1, 100]. kornia pads to multiples of 16 internally and crops back."""
    return kornia.enhance.jpeg_codec_differentiable(x, quality.to(x.dtype))


@register_op
class RandomDefocus(RangeOp, BlurOp):
    """Params: ``sigma`` ``(N,)`` Gaussian standard deviation in screen pixels."""

    config_class = DefocusConfig
    ranges = (Range("sigma", "sigma", 0.0),)

    def sigma(self, params: dict[str, Tensor]) -> Tensor:
        return params["sigma"]


@register_op
class RandomMotion(RangeOp, BlurOp):
    """Params: ``length`` ``(N,)`` streak length in screen pixels, ``angle`` ``(N,)`` degrees in the
    patch frame."""

    config_class = MotionConfig
    ranges = (Range("length", "length", 0.0), Range("angle", "angle", 0.0))

    def streak(self, params: dict[str, Tensor], dtype: torch.dtype) -> Tensor:
        a = params["angle"].to(dtype) * (math.pi / 180.0)
        return torch.stack((torch.cos(a), -torch.sin(a)), dim=-1) * params["length"].to(dtype)[:, None]


@register_op
class RandomNoise(RangeOp, PixelOp):
    """Params: ``std`` ``(N,)`` RGB units and ``seed`` ``(1,)`` int64 (one per call, not per
    instance): the noise itself is regenerated from the seed, so replay needs no stored noise."""

    config_class = NoiseConfig
    ranges = (Range("std", "std", 0.0),)
    shared_keys = ("seed",)
    unit_range = "may_leave"

    def sample(self, n: int, generator: torch.Generator, device: torch.device | str) -> dict[str, Tensor]:
        out = super().sample(n, generator, device)  # std first, then the seed
        seed = torch.randint(0, 2**62, (1,), generator=generator, device=generator.device, dtype=torch.int64)
        return {**out, "seed": seed.to(device)}

    def identity(self, n: int, device: torch.device | str) -> dict[str, Tensor]:
        return {**super().identity(n, device), "seed": torch.zeros(1, dtype=torch.int64, device=device)}

    def forward(self, x: Tensor, params: dict[str, Tensor]) -> Tensor:
        return gaussian_noise(x, params["std"], params["seed"], self.cfg.per_channel)


@register_op
class RandomJPEG(RangeOp, PixelOp):
    """Params: ``quality`` ``(N,)`` in [1, 100]; instances not selected by ``p`` get 101, meaning
    "not compressed" (only the selected instances go through the codec)."""

    config_class = JPEGConfig
    ranges = (Range("quality", "quality", 101.0),)
    unit_range = "requires"

    def forward(self, x: Tensor, params: dict[str, Tensor]) -> Tensor:
        quality = params["quality"]
        selected = quality <= 100.0
        if not bool(selected.any()):
            return x
        if x.shape[0] != quality.shape[0]:  # a shared patch: one copy per instance
            x = x.expand(quality.shape[0], -1, -1, -1)
        if bool(selected.all()):
            return jpeg(x, quality)
        idx = selected.nonzero().squeeze(1)
        return x.index_copy(0, idx, jpeg(x.index_select(0, idx), quality.index_select(0, idx)))
