"""EOT for clothing textures: how a printed periodic cloth looks when worn and filmed.

For ``N`` persons (all boxes of a batch), one vectorised pass (no loop per person)::

    tile (3, T, T) --printer colour (shared, once)--> (3, T, T)
      --per person: random toroidal offset, repeat scaled to the person's height x jitter,
        random pattern rotation, TPS cloth drag (the pipeline's ``tps`` op, in box units)-->
      --shaded by the photo's own luminance under the garment--> (N, 3, Sh, Sw)
      --the pipeline's photometric and camera ops (colour, blur, noise, gamma, JPEG)-->
      --composited through each person's soft garment mask--> (B, 3, H, W)

The geometric ops of :class:`~patchkit.eot.config.EOTConfig` (scale, rotation, perspective,
translation) place a *patch* on a box; a texture's geometry is the garment mask, so they are not
used here. Randomness comes only from the ``torch.Generator`` passed in; the draw is returned and
passing it back replays the identical output (see :class:`TextureDraw`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from patchkit.eot.base import WarpOp
from patchkit.eot.cloth_render import render_cloth
from patchkit.eot.params import EOTParams
from patchkit.eot.pipeline import EOTPipeline
from patchkit.patches.parameterization import TextureConfig
from patchkit.patches.texture import texture_scale
from patchkit.scenes.masks import garment_region


@dataclass
class TextureDraw:
    """One draw for ``N`` persons: ``offsets`` ``(N, 2)`` tile pixels ``(y, x)``, ``jitter`` ``(N,)``
    repeat factor, ``angle`` ``(N,)`` radians, and the pipeline's op parameters ``eot``."""

    offsets: Tensor
    jitter: Tensor
    angle: Tensor
    eot: EOTParams


class TexturePipeline(nn.Module):
    """Render a texture tile as worn cloth on every person of a batch, with EOT.

    Args:
        cfg: the tile's physical size and how it is worn (:class:`TextureConfig`).
        eot: the patch pipeline whose printer, photometric, camera and ``tps`` ops are reused.

    Shape:
        - tile: ``(3, T, T)`` RGB in [0, 1] (gradients flow to it).
        - images: ``(B, 3, H, W)`` RGB in [0, 1].
        - boxes: ``(N, 4)`` person boxes xyxy in pixels; batch_idx ``(N,)`` long.
        - masks: ``(N, H, W)`` garment alpha, float in [0, 1] or uint8 in [0, 255], or None: the
          box-derived clothing region
          (:func:`~patchkit.scenes.masks.garment_region`, an approximation).
        - output: ``(B, 3, H, W)``.
    """

    def __init__(self, cfg: TextureConfig, eot: EOTPipeline):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.eot = eot
        self._warp = next((op for op in eot.ops.values() if isinstance(op, WarpOp)), None)

    def sample(self, boxes: Tensor, batch_idx: Tensor, tile_px: int, image_hw: tuple[int, int],
               generator: torch.Generator) -> TextureDraw:
        """Draw offsets, repeat jitter, rotation and the pipeline's ops for ``N`` persons."""
        n, dev = boxes.shape[0], boxes.device
        u = torch.rand(n, 4, generator=generator, device=generator.device).to(dev)
        j = math.log1p(self.cfg.scale_jitter)
        centres, sizes = (boxes[:, :2] + boxes[:, 2:]) / 2, (boxes[:, 2:] - boxes[:, :2]).clamp_min(1.0)
        return TextureDraw(
            offsets=u[:, :2] * tile_px,
            jitter=torch.exp((2 * u[:, 2] - 1) * j),
            angle=(2 * u[:, 3] - 1) * math.radians(self.cfg.rotation),
            eot=self.eot.sample(centres, sizes, batch_idx, image_hw, generator),
        )

    def garments(self, boxes: Tensor, image_hw: tuple[int, int], masks: Tensor | None) -> Tensor:
        """``masks`` (float in [0, 1] or uint8 in [0, 255]), or the box-derived clothing region
        when None -> ``(N, H, W)``."""
        if masks is not None:
            return masks
        return garment_region(boxes, image_hw, self.cfg.garment, softness=self.cfg.softness)

    def forward(self, tile: Tensor, images: Tensor, boxes: Tensor, batch_idx: Tensor,
                masks: Tensor | None = None, generator: torch.Generator | None = None,
                draw: TextureDraw | None = None, tile_cm: float | None = None,
                inplace: bool = False) -> tuple[Tensor, TextureDraw]:
        """Every person of ``images`` wearing ``tile`` (``tile_cm`` overrides the config's repeat
        length; ``inplace`` composites into ``images``, see :func:`render_cloth`); returns the
        images and the draw used."""
        hw = (int(images.shape[-2]), int(images.shape[-1]))
        boxes = boxes.to(images.device).float()
        batch_idx = batch_idx.to(images.device).long()
        if draw is None:
            if generator is None:
                raise ValueError("TexturePipeline: pass a draw to replay or a torch.Generator to sample")
            draw = self.sample(boxes, batch_idx, int(tile.shape[-1]), hw, generator)
        if boxes.shape[0] == 0:
            return images.clone() + (tile.sum() * 0).to(images.dtype), draw
        printed = self.eot.printer(tile[None])[0]
        heights = (boxes[:, 3] - boxes[:, 1]).clamp_min(1.0)
        repeat = self.cfg.tile_cm if tile_cm is None else tile_cm
        scale = texture_scale(heights, repeat, int(tile.shape[-1]), self.cfg.person_height_cm).to(images.device)
        field = self._warp.displacement_field(draw.eot[self._warp.name]) if self._warp is not None else None
        out = render_cloth(
            images, printed, self.garments(boxes, hw, masks), batch_idx, boxes, draw.offsets,
            scale / draw.jitter, shading=self.cfg.shading > 0, shade_strength=self.cfg.shading,
            max_factor=self.cfg.max_shade, angle=draw.angle, field=field,
            appearance=lambda x, idx: self.eot.appearance(x, draw.eot.select(idx)), inplace=inplace,
            scratch=self.eot.scratch_for(images),
        )
        return out, draw
