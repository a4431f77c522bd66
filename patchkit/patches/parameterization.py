"""Patch parameterisations.

Each is an ``nn.Module`` whose ``forward()`` returns the digital patch ``(3, H, W)`` RGB in
[0, 1] and whose ``project_()`` restores its constraint after an optimiser step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from patchkit.errors import PatchkitError
from patchkit.io import load_image_tensor

KINDS = ("raw", "sigmoid", "lowres", "palette")
TEXTURE_KINDS = ("raw", "lowres", "camouflage")
PATCH_KINDS = ("patch", "texture")


@dataclass
class TextureConfig:
    """A clothing texture (``patch.kind: texture``): one seamless tile and how it is worn.

    Attributes:
        tile_cm: the tile's physical repeat length in centimetres (square tile).
        person_height_cm: assumed height of every person: the cloth's scale follows each
            person's box height (one repeat spans ``tile_cm * box_h / person_height_cm`` pixels).
        garment: ``upper`` | ``lower`` | ``both`` (the part of the body the cloth covers).
        edge: soft-edge width in canvas pixels of mask-derived garments (odd).
        softness: soft edge of box-derived garments, as a fraction of the box size.
        scale_jitter: per person, the repeat is scaled by a log-uniform factor in
            ``[1 / (1 + j), 1 + j]`` (height and body-build variation).
        rotation: per person, the cloth pattern is rotated uniformly in ``+-rotation`` degrees.
        shading: strength of the shading by the photo's own luminance (0 = flat, 1 = full).
        max_shade: highest shading factor (highlights).
        cells: Voronoi cells of the tile for ``parameterization: camouflage``.
        colours: printable colours of ``camouflage``: the ``colours`` of ``patch.palette`` (its
            ``palette_size`` colours for a profile) farthest apart in CIELAB.
        tau: ``[start, end]`` Gumbel-softmax temperature of ``camouflage``, annealed
            geometrically over the run; the saved tile is hardened (exactly ``colours`` colours).
    """

    tile_cm: float = 20.0
    person_height_cm: float = 170.0
    garment: str = "both"
    edge: int = 5
    softness: float = 0.05
    scale_jitter: float = 0.2
    rotation: float = 10.0
    shading: float = 1.0
    max_shade: float = 2.0
    cells: int = 64
    colours: int = 4
    tau: list[float] = field(default_factory=lambda: [1.0, 0.1])

    def validate(self) -> None:
        if self.tile_cm <= 0 or self.person_height_cm <= 0:
            raise ValueError("patch.texture.tile_cm and person_height_cm must be > 0 centimetres")
        if self.garment not in ("upper", "lower", "both"):
            raise ValueError(f"patch.texture.garment must be upper, lower or both, got {self.garment!r}")
        if self.edge < 1 or self.edge % 2 == 0:
            raise ValueError(f"patch.texture.edge must be an odd number of pixels >= 1, got {self.edge}")
        if not 0 <= self.scale_jitter < 4 or not 0 <= self.rotation <= 180 or not 0 <= self.shading <= 1:
            raise ValueError("patch.texture: scale_jitter in [0, 4), rotation in [0, 180] degrees, shading in [0, 1]")
        if self.cells < 1 or self.colours < 1:
            raise ValueError("patch.texture.cells and colours must be >= 1")
        if len(self.tau) != 2 or not all(t > 0 for t in self.tau):
            raise ValueError(f"patch.texture.tau must be [start, end], both > 0, got {list(self.tau)}")


@dataclass
class PatchConfig:
    """The patch being optimised.

    Attributes:
        kind: ``patch`` (a printed square placed on each box) or ``texture`` (a periodic tile
            worn as clothing over each person's garment region; see :class:`TextureConfig`).
        size: side of the digital patch (or texture tile) in pixels (square).
        init: ``gray`` | ``random`` | ``white`` | path to an RGB PNG of exactly ``size`` x ``size``.
        parameterization: ``raw`` (pixels, clamped to [0, 1]), ``sigmoid`` (pixels through a
            sigmoid), ``lowres`` (a ``size / lowres_factor`` grid upsampled bilinearly) or
            ``palette`` (per-pixel convex mixture of printable colours).
        lowres_factor: downsampling factor of ``lowres`` (integer >= 1).
        palette: for ``palette``: ``legacy`` (the literature's 30 colours) or a printer profile path.
        palette_size: colours drawn from a printer profile for ``palette``.
        texture: the tile's physical size and how it is worn (``kind: texture``); textures
            take ``parameterization`` ``raw``, ``lowres`` (seamless, wrap-around upsampling) or
            ``camouflage``.
    """

    kind: str = "patch"
    size: int = 300
    init: str = "gray"
    parameterization: str = "raw"
    lowres_factor: int = 4
    palette: str = "legacy"
    palette_size: int = 32
    texture: TextureConfig = field(default_factory=TextureConfig)

    def validate(self) -> None:
        if self.size < 8:
            raise ValueError("patch.size must be >= 8 pixels")
        if self.kind not in PATCH_KINDS:
            raise ValueError(f"patch.kind must be patch or texture, got {self.kind!r}")
        if self.kind == "texture":
            if self.parameterization not in TEXTURE_KINDS:
                raise ValueError(f"a texture's patch.parameterization must be one of {', '.join(TEXTURE_KINDS)}, "
                                 f"got {self.parameterization!r}")
        elif self.parameterization not in KINDS:
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
    """Build the parameterisation named by ``cfg.parameterization`` (of a texture tile when
    ``cfg.kind == "texture"``)."""
    init = initial_patch(cfg.init, cfg.size, generator)
    if cfg.kind == "texture":
        from patchkit.patches.texture import build_texture  # texture.py builds on this module

        return build_texture(cfg, init, palette)
    if cfg.parameterization == "raw":
        return RawPatch(init)
    if cfg.parameterization == "sigmoid":
        return SigmoidPatch(init)
    if cfg.parameterization == "lowres":
        return LowResPatch(init, cfg.lowres_factor)
    if palette is None:
        raise PatchkitError("patch.parameterization=palette needs a palette")
    return PalettePatch(init, palette)
