"""Texture suits: toy-world figures dressed in a periodic texture (adversarial clothing, issue 15).

A :class:`TextureSuit` is a seamless tile ``(3, T, T)`` RGB in [0, 1] that stands for a printed
repeat of ``tile_cm`` centimetres. A figure wearing it (:func:`patchkit.toyworld.render_figure`
with ``suit=``) has a long-sleeved shirt (torso and arms) and trousers (pelvis and legs) filled
with the infinitely tiled texture, scaled so that one repeat spans ``tile_cm`` of a
``person_cm`` (170 cm) person (:func:`patchkit.patches.texture.texture_scale`), sampled with one
:func:`~patchkit.patches.texture.toroidal_crops` call over the figure's whole sprite. The texture
is anchored at the top of the figure (above the soles' centre), so it moves with the walker, with
a toroidal offset per person (given, or drawn from the figure's seed). The renderer then shades it
like any garment (side light, darker lower body).

A texture much finer than the image pixels is low-passed first (:func:`prefilter_tile`), as a
camera's pixels average the printed cloth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from patchkit.patches.texture import texture_scale, toroidal_crops

__all__ = ["SUIT_MATERIALS", "TextureSuit", "gray_suit", "prefilter_tile", "suit_offset", "suit_texture"]

SUIT_MATERIALS = ("shirt", "pants")  # the figure materials a suit replaces
_OFFSET_STREAM = 15  # rng stream of the per-person offset: default_rng([seed, 15])


@dataclass
class TextureSuit:
    """A suit (long-sleeved shirt and trousers) made of a periodic texture.

    Attributes:
        tile: ``(3, T, T)`` RGB in [0, 1] (torch or numpy, float; uint8 is read as /255), seamless.
        tile_cm: the physical repeat length of one tile in centimetres.
        offset: ``(y, x)`` toroidal offset in tile pixels at the figure's anchor (the top of its
            head above the soles); ``None`` draws one uniformly from the figure's ``seed``.
        person_cm: the real height every figure stands for.
    """

    tile: Tensor | np.ndarray
    tile_cm: float = 20.0
    offset: tuple[float, float] | None = None
    person_cm: float = 170.0

    def __post_init__(self) -> None:
        t = torch.as_tensor(np.asarray(self.tile) if not isinstance(self.tile, Tensor) else self.tile)
        t = t.detach().cpu()
        t = t.float() / 255.0 if t.dtype == torch.uint8 else t.float()
        if t.dim() != 3 or t.shape[0] != 3 or t.shape[1] != t.shape[2] or t.shape[1] < 1:
            raise ValueError(f"a suit tile must be (3, T, T), got shape {tuple(t.shape)}")
        if not self.tile_cm > 0 or not self.person_cm > 0:
            raise ValueError("tile_cm and person_cm must be > 0")
        self.tile = t.clamp(0.0, 1.0).contiguous()

    @property
    def tile_px(self) -> int:
        return int(self.tile.shape[-1])


def gray_suit(value: float = 0.5, tile_cm: float = 20.0, size: int = 8) -> TextureSuit:
    """A uniform (neutral) suit: where a texture will be rendered in training."""
    return TextureSuit(torch.full((3, size, size), float(value)), tile_cm)


def suit_offset(suit: TextureSuit, seed: int) -> np.ndarray:
    """The suit's ``(y, x)`` offset in tile pixels: ``suit.offset`` or one drawn from ``seed``."""
    if suit.offset is not None:
        return np.asarray(suit.offset, np.float64).reshape(2)
    return np.random.default_rng([int(seed), _OFFSET_STREAM]).uniform(0.0, suit.tile_px, 2)


def prefilter_tile(tile: Tensor, scale: float, max_scale: float = 1.25) -> tuple[Tensor, float]:
    """Low-pass a ``(3, T, T)`` tile that will be sampled at ``scale`` tile pixels per image pixel.

    Above ``max_scale`` the tile is resampled (bilinear with antialiasing) to ``n`` ~ ``T / scale``
    pixels, so each image pixel samples about one tile pixel. The resampling is done on a 3 x 3
    tiling and the centre period kept, so the result stays seamless. Returns the tile and the
    matching scale (``scale * n / T``); coordinates in the original tile map to ``n / T`` times them.
    """
    t = tile.shape[-1]
    if scale <= max_scale:
        return tile, float(scale)
    n = max(2, int(round(t / scale)))
    big = tile.repeat(1, 3, 3)[None]
    small = F.interpolate(big, size=(3 * n, 3 * n), mode="bilinear", align_corners=False, antialias=True)[0]
    return small[:, n:2 * n, n:2 * n].contiguous(), float(scale) * n / t


@torch.no_grad()
def suit_texture(suit: TextureSuit, shape: tuple[int, int], origin: tuple[float, float],
                 anchor: tuple[float, float], height_px: float, seed: int = 0) -> np.ndarray:
    """The tiled texture over a layer, ``(h, w, 3)`` float32 in [0, 1].

    Args:
        suit: the suit.
        shape: ``(h, w)`` of the layer in pixels.
        origin: ``(y, x)`` image pixel of the layer's top-left element.
        anchor: ``(y, x)`` image point where the texture's origin (plus ``offset``) sits.
        height_px: the figure's standing height in image pixels (sets the scale).
        seed: draws the offset when ``suit.offset`` is None.
    """
    tile = suit.tile
    t = suit.tile_px
    scale = float(texture_scale(torch.tensor([float(height_px)]), suit.tile_cm, t, suit.person_cm)[0])
    small, new_scale = prefilter_tile(tile, scale)
    ratio = small.shape[-1] / t  # new tile px per old tile px
    off = suit_offset(suit, seed) * ratio
    start = off + new_scale * (np.asarray(origin, np.float64) - np.asarray(anchor, np.float64))
    crop = toroidal_crops(small, torch.tensor(start[None], dtype=torch.float32), (int(shape[0]), int(shape[1])),
                          new_scale)[0]
    return np.ascontiguousarray(crop.permute(1, 2, 0).clamp(0.0, 1.0).numpy(), dtype=np.float32)
