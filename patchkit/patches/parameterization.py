"""Patch parameterisations.

Each is an ``nn.Module`` whose ``forward()`` returns the digital patch ``(3, H, W)`` RGB in
[0, 1] and whose ``project_()`` restores its constraint after an optimiser step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from patchkit.errors import PatchkitError
from patchkit.io import load_image_tensor

KINDS = ("raw", "sigmoid", "lowres", "palette")


@dataclass
class PatchConfig:
    """The patch being optimised.

    Attributes:
        size: side of the digital patch in pixels (square).
        init: ``gray`` | ``random`` | ``white`` | path to an RGB PNG of exactly ``size`` x ``size``.
        parameterization: ``raw`` (pixels, clamped to [0, 1]), ``sigmoid`` (pixels through a
            sigmoid), ``lowres`` (a ``size / lowres_factor`` grid upsampled bilinearly) or
            ``palette`` (per-pixel convex mixture of printable colours).
        lowres_factor: downsampling factor of ``lowres`` (integer >= 1).
        palette: for ``palette``: ``legacy`` (the literature's 30 colours) or a printer profile path.
        palette_size: colours drawn from a printer profile for ``palette``.
    """

    size: int = 300
    init: str = "gray"
    parameterization: str = "raw"
    lowres_factor: int = 4
    palette: str = "legacy"
    palette_size: int = 32

    def validate(self) -> None:
        if self.size < 8:
            raise ValueError("patch.size must be >= 8 pixels")
        if self.parameterization not in KINDS:
            raise ValueError(
                f"patch.parameterization must be one of {', '.join(KINDS)}, got {self.parameterization!r}"
            )
        if self.lowres_factor < 1 or self.size % self.lowres_factor:
            raise ValueError("patch.lowres_factor must be >= 1 and divide patch.size")


def initial_patch(init: str, size: int, generator: torch.Generator | None = None) -> Tensor:
    """The starting patch ``(3, size, size)`` in [0, 1]."""
    if init == "gray":
        return torch.full((3, size, size), 0.5)
    if init == "white":
        return torch.ones(3, size, size)
    if init == "random":
        return torch.rand(3, size, size, generator=generator)
    path = Path(init)
    if path.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"):
        raise PatchkitError(f"patch.init must be gray, white, random or an image file, got {init!r}")
    image = load_image_tensor(path)
    if image.shape[1:] != (size, size):
        raise PatchkitError(
            f"patch image is {image.shape[2]}x{image.shape[1]} px but patch.size is {size}", path
        )
    return image


def _logit(x: Tensor) -> Tensor:
    x = x.clamp(1e-4, 1 - 1e-4)
    return torch.log(x / (1 - x))


class PatchParam(nn.Module):
    """Base: ``forward() -> (3, H, W)`` in [0, 1]; ``project_()`` after each step."""

    def project_(self) -> None:  # default: no constraint to restore
        return None


class RawPatch(PatchParam):
    """Pixels as parameters, clamped to [0, 1] after each step."""

    def __init__(self, init: Tensor):
        super().__init__()
        self.pixels = nn.Parameter(init.clone().float())

    def forward(self) -> Tensor:
        return self.pixels

    @torch.no_grad()
    def project_(self) -> None:
        self.pixels.clamp_(0, 1)


class SigmoidPatch(PatchParam):
    """Unconstrained logits through a sigmoid: always in (0, 1), no clamping."""

    def __init__(self, init: Tensor):
        super().__init__()
        self.logits = nn.Parameter(_logit(init.float()))

    def forward(self) -> Tensor:
        return torch.sigmoid(self.logits)


class LowResPatch(PatchParam):
    """A coarse grid upsampled bilinearly: smooth, large-scale structure survives printing."""

    def __init__(self, init: Tensor, factor: int):
        super().__init__()
        self.size = init.shape[-1]
        low = F.interpolate(init[None].float(), scale_factor=1 / factor, mode="area")[0]
        self.pixels = nn.Parameter(low)

    def forward(self) -> Tensor:
        up = F.interpolate(self.pixels[None], size=(self.size, self.size), mode="bilinear", align_corners=False)
        return up[0].clamp(0, 1)

    @torch.no_grad()
    def project_(self) -> None:
        self.pixels.clamp_(0, 1)


class PalettePatch(PatchParam):
    """Each pixel a convex mixture (softmax weights) of ``K`` printable colours.

    Args:
        init: starting patch; weights start at a softmax of negative distances to the palette.
        palette: ``(K, 3)`` digital sRGB in [0, 1].
        temperature: softmax temperature of the initialisation (smaller = closer to one colour).
    """

    def __init__(self, init: Tensor, palette: Tensor, temperature: float = 0.05):
        super().__init__()
        self.register_buffer("palette", torch.as_tensor(palette, dtype=torch.float32))
        d2 = (init.float().permute(1, 2, 0).unsqueeze(-2) - self.palette).pow(2).sum(-1)  # (H,W,K)
        self.logits = nn.Parameter((-d2 / temperature).permute(2, 0, 1).contiguous())  # (K,H,W)

    def forward(self) -> Tensor:
        weights = torch.softmax(self.logits, dim=0)
        return torch.einsum("khw,kc->chw", weights, self.palette)


def build_patch(cfg: PatchConfig, palette: Tensor | None = None, generator: torch.Generator | None = None) -> PatchParam:
    """Build the parameterisation named by ``cfg.parameterization``."""
    init = initial_patch(cfg.init, cfg.size, generator)
    if cfg.parameterization == "raw":
        return RawPatch(init)
    if cfg.parameterization == "sigmoid":
        return SigmoidPatch(init)
    if cfg.parameterization == "lowres":
        return LowResPatch(init, cfg.lowres_factor)
    if palette is None:
        raise PatchkitError("patch.parameterization=palette needs a palette")
    return PalettePatch(init, palette)
