"""Periodic textures (adversarial clothing): toroidal crops, physical sizing, parameterisations.

A texture is one seamless tile ``(3, T, T)`` RGB in [0, 1] that stands for a physical repeat
length (centimetres) of the printed cloth. Training samples the infinitely tiled texture for each
person instance with its own random toroidal offset (TC-EGA's ``random_crop(crop_type='recursive')``)
and its own scale, set from the person's height, so one tile trains for people of every size.

Conventions:
    * tile coordinates are in tile pixels, pixel ``j`` sits at coordinate ``j`` and the texture is
      periodic with the tile's side;
    * offsets are ``(row, column)`` = ``(y, x)``, the same order as ``torch.roll(dims=(-2, -1))``;
    * every parameterisation is an ``nn.Module`` (a :class:`PatchParam`) whose ``forward()`` returns
      the tile ``(3, T, T)`` RGB in [0, 1] and whose ``project_()`` restores its constraint.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from patchkit.patches.parameterization import PatchParam, RawPatch

__all__ = [
    "Camouflage",
    "build_texture",
    "camouflage_tau",
    "TextureLowFreq",
    "TextureRaw",
    "random_offsets",
    "texture_scale",
    "tile_pixels",
    "toroidal_crops",
    "torus_voronoi",
]


# --------------------------------------------------------------------------- toroidal sampling


def toroidal_crops(
    tile: Tensor,
    offsets: Tensor,
    out_size: tuple[int, int],
    scale: Tensor | float = 1.0,
    angle: Tensor | None = None,
    displacement: Tensor | None = None,
    antialias: bool = False,
) -> Tensor:
    """Crops of the infinitely tiled texture, one per instance, in one differentiable call.

    Output pixel ``(r, c)`` of crop ``i`` samples the tiled texture (bilinearly) at tile coordinate
    ``offsets[i] + scale[i] * (r, c)``, taken modulo the tile's side. The tile is padded circularly
    by one pixel, so interpolation across the seam mixes the last and the first tile pixels.
    With integer offsets and ``scale == 1`` a crop equals the tiled texture rolled by ``-offsets``.
    Gradients reach ``tile`` (and ``offsets`` / ``scale`` when they require grad).

    Args:
        tile: ``(3, Th, Tw)`` RGB in [0, 1] (usually square).
        offsets: ``(N, 2)`` crop origins ``(y, x)`` in tile pixels (any real value; wrapped).
        out_size: ``(h, w)`` of every crop in output pixels.
        scale: ``(N,)`` or a scalar: tile pixels per output pixel (> 1 shrinks the texture).
            Without ``antialias``, for ``scale`` well above 1, low-pass the tile first.
        angle: ``(N,)`` radians or None: the output grid is rotated by ``angle`` about the
            crop's centre before sampling (the texture appears rotated by ``-angle``).
        displacement: ``(N, 2, h, w)`` or None: ``(dy, dx)`` in output pixels added to each output
            pixel's position before rotation and scaling (a cloth warp, e.g. a TPS field).
        antialias: an instance whose ``scale`` is 2 or more reads a mip level of the tile (the
            tile averaged over 2^l x 2^l blocks, l = floor(log2(scale)), at most 3) instead of
            skipping tile pixels; the mip levels need a tile side divisible by 2^l.

    Returns:
        ``(N, 3, h, w)``.
    """
    if tile.dim() != 3:
        raise ValueError(f"tile must be (C, H, W), got shape {tuple(tile.shape)}")
    if offsets.dim() != 2 or offsets.shape[1] != 2:
        raise ValueError(f"offsets must be (N, 2), got shape {tuple(offsets.shape)}")
    n = offsets.shape[0]
    h, w = out_size
    th, tw = tile.shape[-2:]
    dtype = tile.dtype if tile.is_floating_point() else torch.float32
    offsets = offsets.to(device=tile.device, dtype=dtype)
    scale = torch.as_tensor(scale, device=tile.device, dtype=dtype).reshape(-1).expand(n)

    rows = torch.arange(h, device=tile.device, dtype=dtype)
    cols = torch.arange(w, device=tile.device, dtype=dtype)
    if angle is None and displacement is None:  # separable: one (N, h) and one (N, w) profile
        y = torch.remainder(offsets[:, 0, None] + scale[:, None] * rows, th)[:, :, None].expand(n, h, w)
        x = torch.remainder(offsets[:, 1, None] + scale[:, None] * cols, tw)[:, None, :].expand(n, h, w)
    else:
        r, c = rows[None, :, None].expand(n, h, w), cols[None, None, :].expand(n, h, w)
        if displacement is not None:
            if displacement.shape != (n, 2, h, w):
                raise ValueError(f"displacement must be ({n}, 2, {h}, {w}), got {tuple(displacement.shape)}")
            r, c = r + displacement[:, 0].to(dtype), c + displacement[:, 1].to(dtype)
        if angle is not None:
            cos, sin = (f(angle.to(device=tile.device, dtype=dtype).reshape(n, 1, 1)) for f in (torch.cos, torch.sin))
            dr, dc = r - (h - 1) / 2, c - (w - 1) / 2
            r, c = (h - 1) / 2 + cos * dr - sin * dc, (w - 1) / 2 + sin * dr + cos * dc
        y = torch.remainder(offsets[:, 0, None, None] + scale[:, None, None] * r, th)  # (N, h, w) in [0, Th)
        x = torch.remainder(offsets[:, 1, None, None] + scale[:, None, None] * c, tw)

    if not antialias:
        return _sample_periodic(tile, y, x)
    # mip levels: level l is the tile averaged over 2^l x 2^l blocks (still seamless); an instance
    # reading 2^l or more tile pixels per output pixel samples level l (at most 3 levels)
    top = 0
    while top < 3 and th % 2 ** (top + 1) == 0 and tw % 2 ** (top + 1) == 0 and min(th, tw) // 2 ** (top + 1) >= 2:
        top += 1
    level = torch.log2(scale.detach().clamp_min(1.0)).floor().clamp(0, top).long()
    out = tile.new_zeros(n, tile.shape[0], h, w)
    for lv in level.unique().tolist():
        sel = (level == lv).nonzero().flatten()
        f = 2 ** lv
        mip = tile if lv == 0 else F.avg_pool2d(tile[None], f)[0]
        # level pixel j covers tile pixels [j f, (j + 1) f), centred at j f + (f - 1) / 2
        out[sel] = _sample_periodic(mip, (y[sel] - (f - 1) / 2) / f % (th // f), (x[sel] - (f - 1) / 2) / f % (tw // f))
    return out


def _sample_periodic(tile: Tensor, y: Tensor, x: Tensor) -> Tensor:
    """Bilinear samples of the tiled ``tile`` ``(C, Th, Tw)`` at tile coordinates ``y``, ``x``
    ``(N, h, w)`` in ``[0, Th)``, ``[0, Tw)`` -> ``(N, C, h, w)``; wraps across the seam."""
    th, tw = tile.shape[-2:]
    padded = F.pad(tile[None], (1, 1, 1, 1), mode="circular")  # (1, C, Th+2, Tw+2)
    # padded pixel j+1 is tile pixel j; align_corners=True maps -1..1 onto padded pixel 0..P-1
    grid = torch.stack((2 * (x + 1) / (tw + 1) - 1, 2 * (y + 1) / (th + 1) - 1), dim=-1)  # (N, h, w, 2) as (x, y)
    return F.grid_sample(
        padded.expand(y.shape[0], -1, -1, -1), grid, mode="bilinear", padding_mode="border", align_corners=True
    )


def random_offsets(n: int, tile_size: int, generator: torch.Generator | None = None) -> Tensor:
    """``(n, 2)`` crop origins ``(y, x)`` uniform in ``[0, tile_size)`` tile pixels (float32)."""
    return torch.rand(n, 2, generator=generator) * tile_size


# --------------------------------------------------------------------------- physical sizing


def tile_pixels(repeat_cm: float, px_per_cm: float) -> int:
    """Side of the digital tile in pixels for a printed repeat of ``repeat_cm`` centimetres at
    ``px_per_cm`` print pixels per centimetre (e.g. 150 dpi = 150 / 2.54). At least 1."""
    if repeat_cm <= 0 or px_per_cm <= 0:
        raise ValueError("repeat_cm and px_per_cm must be > 0")
    return max(1, int(round(repeat_cm * px_per_cm)))


def texture_scale(
    person_heights_px: Tensor,
    repeat_cm: float,
    tile_px: int,
    person_height_cm: float = 170.0,
) -> Tensor:
    """Tile pixels per image pixel for each person, for :func:`toroidal_crops`'s ``scale``.

    A person ``person_heights_px[i]`` image pixels tall stands for ``person_height_cm``
    centimetres, so one repeat of ``repeat_cm`` spans ``repeat_cm * h_i / person_height_cm``
    image pixels and holds ``tile_px`` tile pixels:
    ``scale_i = tile_px * person_height_cm / (repeat_cm * h_i)``.
    Crops rendered at another resolution than the image's need this multiplied by the image
    pixels per crop pixel.

    Args:
        person_heights_px: ``(N,)`` person heights in image pixels (> 0).
        repeat_cm: physical repeat length of the tile in centimetres.
        tile_px: side of the tile in tile pixels.
        person_height_cm: assumed real height of every person in centimetres.

    Returns:
        ``(N,)`` float.
    """
    if repeat_cm <= 0 or tile_px <= 0 or person_height_cm <= 0:
        raise ValueError("repeat_cm, tile_px and person_height_cm must be > 0")
    heights = torch.as_tensor(person_heights_px, dtype=torch.float32)
    if (heights <= 0).any():
        raise ValueError("person heights must be > 0 pixels")
    return tile_px * person_height_cm / (repeat_cm * heights)


# --------------------------------------------------------------------------- parameterisations


def _check_tile(init: Tensor) -> None:
    if init.dim() != 3 or init.shape[0] != 3 or init.shape[1] != init.shape[2]:
        raise ValueError(f"a texture tile must be (3, T, T), got shape {tuple(init.shape)}")


class TextureRaw(RawPatch):
    """Tile pixels as parameters, clamped to [0, 1] by ``project_()`` after each step (like the
    ``raw`` patch kind: ``forward()`` returns the pixels themselves, so gradients never vanish).

    Args:
        init: ``(3, T, T)`` RGB in [0, 1].
    """

    def __init__(self, init: Tensor):
        _check_tile(init)
        super().__init__(init)


class TextureLowFreq(PatchParam):
    """A coarse ``(3, T / factor, T / factor)`` grid upsampled to the tile with wrap-around.

    The coarse grid is padded circularly before upsampling and the padding cropped after, so the
    tile is exactly what upsampling the infinitely tiled grid gives: seamless. ``bilinear`` stays in
    [0, 1]; ``bicubic`` is smoother but overshoots, so the output is clamped to [0, 1].

    Args:
        init: ``(3, T, T)`` RGB in [0, 1]; area-downsampled to the coarse grid.
        factor: integer >= 1 dividing ``T`` (tile pixels per coarse pixel).
        mode: ``bilinear`` or ``bicubic``.
    """

    _PAD = 2  # coarse pixels of circular padding: enough for bicubic's 4-tap support

    def __init__(self, init: Tensor, factor: int, mode: str = "bilinear"):
        super().__init__()
        _check_tile(init)
        size = init.shape[-1]
        if factor < 1 or size % factor:
            raise ValueError(f"factor must be >= 1 and divide the tile side {size}, got {factor}")
        if mode not in ("bilinear", "bicubic"):
            raise ValueError(f"mode must be bilinear or bicubic, got {mode!r}")
        self.size, self.factor, self.mode = size, factor, mode
        coarse = F.interpolate(init[None].float(), scale_factor=1 / factor, mode="area")[0]
        self.coarse = nn.Parameter(coarse)

    def forward(self) -> Tensor:
        p, f = self._PAD, self.factor
        padded = F.pad(self.coarse[None], (p, p, p, p), mode="circular")
        up = F.interpolate(padded, scale_factor=f, mode=self.mode, align_corners=False)
        n = self.coarse.shape[-1] * f
        return up[0, :, p * f : p * f + n, p * f : p * f + n].clamp(0, 1)

    @torch.no_grad()
    def project_(self) -> None:
        self.coarse.clamp_(0, 1)


def torus_voronoi(seeds: Tensor, size: int, period: int | None = None) -> Tensor:
    """Nearest-seed index of every pixel of a ``size`` x ``size`` grid on a torus.

    Args:
        seeds: ``(C, 2)`` seed points ``(y, x)`` in pixels.
        size: side of the grid in pixels (pixel ``j`` at coordinate ``j``).
        period: side of the torus in pixels (default ``size``); a grid larger than the period
            repeats the period's map.

    Returns:
        ``(size, size)`` long in ``[0, C)``.
    """
    period = size if period is None else period
    coords = torch.arange(size, dtype=seeds.dtype, device=seeds.device)

    def axis_d2(seed_coord: Tensor) -> Tensor:  # (C,) -> (C, size): squared wrap-around distance
        d = torch.remainder(coords[None, :] - seed_coord[:, None], period)
        return torch.minimum(d, period - d).pow(2)

    d2 = axis_d2(seeds[:, 0])[:, :, None] + axis_d2(seeds[:, 1])[:, None, :]  # (C, size, size)
    return d2.argmin(dim=0)


class Camouflage(PatchParam):
    """Camouflage: toroidal Voronoi cells, each one of ``K`` palette colours (AdvCaT-style).

    The seed points are fixed (seeded) and the cell map is computed with wrap-around distances, so
    the tile is seamless. Each cell holds logits over the ``K`` colours; ``forward()`` draws a
    Gumbel-softmax sample at temperature ``tau`` (``hard=True``: a one-hot choice with a
    straight-through gradient). Anneal ``tau`` towards 0 during training with :meth:`anneal`, then
    print :meth:`harden`, whose every pixel is exactly a palette colour.

    Args:
        palette: ``(K, 3)`` printable digital sRGB in [0, 1] (e.g. ``load_palette(profile, K)``).
        cells: number of Voronoi cells.
        tile: side of the tile in tile pixels.
        tau: Gumbel-softmax temperature (> 0).
        seed: seeds the cell points and the initial logits (standard normal).
        hard: default of ``forward``'s straight-through one-hot sampling.
    """

    def __init__(
        self,
        palette: Tensor,
        cells: int,
        tile: int,
        tau: float = 1.0,
        seed: int = 0,
        hard: bool = False,
    ):
        super().__init__()
        palette = torch.as_tensor(palette, dtype=torch.float32)
        if palette.dim() != 2 or palette.shape[1] != 3 or palette.shape[0] < 1:
            raise ValueError(f"palette must be (K, 3), got shape {tuple(palette.shape)}")
        if cells < 1 or tile < 1:
            raise ValueError("cells and tile must be >= 1")
        self.register_buffer("palette", palette)
        gen = torch.Generator().manual_seed(seed)
        seeds = torch.rand(cells, 2, generator=gen) * tile
        self.register_buffer("seeds", seeds)  # (cells, 2) (y, x) in tile pixels
        self.register_buffer("cell_index", torus_voronoi(seeds, tile))  # (T, T)
        self.logits = nn.Parameter(torch.randn(cells, palette.shape[0], generator=gen))
        self.tile, self.hard = tile, hard
        self.tau = 1.0
        self.anneal(tau)

    def anneal(self, tau: float) -> None:
        """Set the Gumbel-softmax temperature (> 0)."""
        if not tau > 0 or not math.isfinite(tau):
            raise ValueError(f"tau must be a positive finite number, got {tau}")
        self.tau = float(tau)

    def _paint(self, weights: Tensor) -> Tensor:  # (cells, K) -> (3, T, T)
        colours = weights @ self.palette  # (cells, 3)
        return colours[self.cell_index].permute(2, 0, 1)

    def cell_weights(self, generator: torch.Generator | None = None, hard: bool | None = None) -> Tensor:
        """``(cells, K)`` Gumbel-softmax colour weights (rows sum to 1; one-hot when hard)."""
        hard = self.hard if hard is None else hard
        device = generator.device if generator is not None else self.logits.device
        u = torch.rand(self.logits.shape, generator=generator, device=device).to(self.logits.device)
        gumbel = -torch.log(-torch.log(u.clamp(1e-10, 1 - 1e-7)))
        soft = torch.softmax((self.logits + gumbel) / self.tau, dim=-1)
        if not hard:
            return soft
        one_hot = F.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft.dtype)
        return one_hot - soft.detach() + soft  # straight-through

    def forward(self, generator: torch.Generator | None = None, hard: bool | None = None) -> Tensor:
        """A sampled tile ``(3, T, T)`` RGB in [0, 1]; ``generator`` seeds the Gumbel noise."""
        return self._paint(self.cell_weights(generator, hard))

    @torch.no_grad()
    def colour_indices(self) -> Tensor:
        """``(T, T)`` long: the palette index of every pixel of the hardened tile."""
        return self.logits.argmax(-1)[self.cell_index]

    @torch.no_grad()
    def harden(self) -> Tensor:
        """The final tile ``(3, T, T)``: each cell its most likely colour (no noise), so every
        pixel is exactly a palette colour and at most ``K`` distinct colours appear."""
        return self.palette[self.colour_indices()].permute(2, 0, 1).contiguous()



# --------------------------------------------------------------------------- building


def camouflage_tau(step: int, total: int, tau: tuple[float, float] | list[float]) -> float:
    """Geometric annealing from ``tau[0]`` at step 0 to ``tau[1]`` at step ``total``."""
    start, end = float(tau[0]), float(tau[1])
    frac = min(max(step / max(total, 1), 0.0), 1.0)
    return start * (end / start) ** frac


def build_texture(cfg, init: Tensor, palette: Tensor | None = None) -> PatchParam:
    """The texture parameterisation of a :class:`~patchkit.patches.parameterization.PatchConfig`
    with ``kind: texture``: ``raw`` (:class:`TextureRaw`), ``lowres`` (:class:`TextureLowFreq`,
    ``lowres_factor``) or ``camouflage`` (:class:`Camouflage` with ``texture.colours`` colours of
    ``palette`` and ``texture.cells`` cells)."""
    if cfg.parameterization == "raw":
        return TextureRaw(init)
    if cfg.parameterization == "lowres":
        return TextureLowFreq(init, cfg.lowres_factor)
    if palette is None:
        raise ValueError("patch.parameterization=camouflage needs a palette (patch.palette)")
    t = cfg.texture
    return Camouflage(palette[: t.colours], t.cells, cfg.size, tau=t.tau[0])
