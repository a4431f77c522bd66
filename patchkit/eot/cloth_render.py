"""Render a periodic texture as cloth on every person of a batch, in one vectorised pass (issue 15).

:func:`render_cloth` lays the infinitely tiled texture (:func:`~patchkit.patches.texture.toroidal_crops`)
over each person instance, shades it with the photo's own luminance (the folds and shadows of the
original clothing survive) and pastes it through the instance's soft garment mask
(:func:`~patchkit.scenes.masks.garment_region` / :func:`~patchkit.scenes.masks.garment_from_mask`).
The photometric, printer-colour and camera EOT are applied by the caller afterwards (printer colour
may equally be applied to the tile before rendering).

Steps (no Python loop over instances):

1. **ROI**: the bounding rectangle of each mask's support (``mask > 0``), all instances at one
   common size ``(Sh, Sw)`` = the largest support extent, moved inside the image. Pixels outside a
   mask's support have zero alpha, so nothing is lost by not rendering them.
2. **Texture**: one :func:`toroidal_crops` call over the ROIs. Image pixel ``(y, x)`` (integer
   pixel indices, the convention of ``toroidal_crops``' output pixels) of instance ``i`` samples the
   tile at ``offsets[i] + scale[i] * ((y, x) - (box_y0[i], box_x0[i]))``, i.e. the texture is
   anchored at the box's top-left corner. With an integer box corner the ROI is exactly a crop of
   ``toroidal_crops(tile, offsets, ..., scale)`` pasted at the box corner.
3. **Shading**: luminance ``L = 0.2126 R + 0.7152 G + 0.0722 B`` (Rec. 709 weights applied to the
   sRGB values as stored, no linearisation) of the photo; ``factor = L / mean_i(L)`` with the mean
   weighted by instance ``i``'s soft mask, softened to ``1 + shade_strength * (factor - 1)`` and
   clamped to ``[0, max_factor]``; ``rendered = clamp(texture * factor, 0, 1)``. A uniform photo
   gives ``factor == 1`` (the texture's own colours); a pixel half as bright as the garment's mean
   halves the texture there.
4. **Paste**: :func:`~patchkit.eot.composite.composite`, one scatter:
   ``out = img + sum_i w_i * (rendered_i - img)`` with ``w_i = a_i / max(1, sum_j a_j)``; for one
   instance that is ``img * (1 - a) + rendered * a``. Overlapping instances of one image are
   averaged weighted by alpha (order independent). Pixels with zero alpha are never written.

Memory: the crops, the gathered photo and the masks over the ROIs are ``O(N * Sh * Sw)`` floats
(about ``8 * N * Sh * Sw``, plus the autograd buffers of ``grid_sample``), at most
``O(N * H * W)`` when some mask spans the whole image; the inputs ``masks`` are already
``(N, H, W)``. The only host synchronisation is reading ``(Sh, Sw)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from patchkit.eot.composite import composite
from patchkit.patches.texture import toroidal_crops

__all__ = ["LUMA_709", "luminance", "mask_rois", "render_cloth", "shading_factor"]

# Rec. 709 luma weights (sum to 1, so a gray pixel's luminance is its value).
LUMA_709: tuple[float, float, float] = (0.2126, 0.7152, 0.0722)


def luminance(images: Tensor) -> Tensor:
    """Rec. 709 luminance ``(..., H, W)`` of RGB ``(..., 3, H, W)`` (weights applied to the values as
    given, e.g. sRGB in [0, 1]; no linearisation)."""
    w = torch.tensor(LUMA_709, dtype=images.dtype, device=images.device)
    return torch.einsum("...chw,c->...hw", images, w)


def mask_rois(masks: Tensor) -> tuple[Tensor, Tensor, int, int]:
    """Common-size ROIs covering each mask's support (``mask > 0``), inside the image.

    Args:
        masks: ``(N, H, W)`` soft masks.

    Returns:
        ``y0``, ``x0`` ``(N,)`` int64 ROI top-left pixel, and ``sh``, ``sw``: the common ROI size in
        pixels (the largest support extent; 0 when every mask is empty). Each ROI contains its
        mask's whole support; an empty mask gets an arbitrary ROI.
    """
    n, h, w = masks.shape
    dev = masks.device
    support = masks > 0
    rows, cols = support.any(2), support.any(1)  # (N, H), (N, W)

    def extent(occupied: Tensor, size: int) -> tuple[Tensor, Tensor]:
        first = occupied.int().argmax(1)
        last = size - 1 - occupied.flip(1).int().argmax(1)
        length = torch.where(occupied.any(1), last - first + 1, torch.zeros_like(first))
        return first.long(), length.long()

    ry, hy = extent(rows, h)
    rx, wx = extent(cols, w)
    sh = int(hy.max().item()) if n else 0
    sw = int(wx.max().item()) if n else 0
    y0 = ry.clamp(max=h - sh) if sh else torch.zeros(n, dtype=torch.long, device=dev)
    x0 = rx.clamp(max=w - sw) if sw else torch.zeros(n, dtype=torch.long, device=dev)
    return y0, x0, sh, sw


def shading_factor(lum: Tensor, alpha: Tensor, shade_strength: float = 1.0, max_factor: float = 2.0,
                   eps: float = 1e-4) -> Tensor:
    """Per-pixel shading ``1 + shade_strength * (L / mean(L) - 1)``, clamped to ``[0, max_factor]``.

    Args:
        lum: ``(N, h, w)`` photo luminance under each instance (in [0, 1]).
        alpha: ``(N, h, w)`` soft masks weighting each instance's mean luminance.
        shade_strength: 0 = no shading, 1 = the photo's full luminance ratio.
        max_factor: upper clamp of the factor (highlights brighten the texture at most this much).
        eps: lower clamp of the mean luminance (a pitch-black garment).

    Returns:
        ``(N, h, w)`` factor (1 where the photo equals its masked mean).
    """
    weight = alpha.flatten(1).sum(1).clamp_min(1e-12)
    mean = (lum * alpha).flatten(1).sum(1) / weight  # (N,)
    factor = lum / mean.clamp_min(eps)[:, None, None]
    return (1.0 + shade_strength * (factor - 1.0)).clamp(0.0, max_factor)


def render_cloth(
    images: Tensor,
    tile: Tensor,
    masks: Tensor,
    batch_idx: Tensor,
    boxes: Tensor,
    offsets: Tensor,
    scale: Tensor | float,
    shading: bool = True,
    shade_strength: float = 1.0,
    max_factor: float = 2.0,
) -> Tensor:
    """Texture every person instance's garment with the tiled ``tile``, batched and differentiable.

    See the module docstring for the geometry, shading and compositing rules.

    Args:
        images: ``(B, 3, H, W)`` photos, RGB in [0, 1].
        tile: ``(3, T, T)`` texture tile, RGB in [0, 1] (gradients flow to it).
        masks: ``(N, H, W)`` soft garment masks in [0, 1] (alpha; not differentiated), e.g. from
            :func:`~patchkit.scenes.masks.garment_region`.
        batch_idx: ``(N,)`` int64 image index of each instance.
        boxes: ``(N, 4)`` person boxes xyxy in image pixels; the texture is anchored at
            ``(y0, x0) = (boxes[:, 1], boxes[:, 0])``.
        offsets: ``(N, 2)`` texture origin ``(y, x)`` in tile pixels at the box's top-left (wrapped).
        scale: ``(N,)`` or a scalar, tile pixels per image pixel (e.g.
            :func:`~patchkit.patches.texture.texture_scale`).
        shading: multiply the texture by the photo's luminance ratio under the mask.
        shade_strength: blend of the shading factor, ``1 + shade_strength * (factor - 1)``.
        max_factor: upper clamp of the shading factor.

    Returns:
        ``(B, 3, H, W)`` rendered images; pixels where every mask is 0 are exactly the input.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (B, 3, H, W), got shape {tuple(images.shape)}")
    if masks.dim() != 3 or masks.shape[-2:] != images.shape[-2:]:
        raise ValueError(f"masks must be (N, H, W) with the images' H, W, got shape {tuple(masks.shape)}")
    n = masks.shape[0]
    if batch_idx.shape != (n,) or boxes.shape != (n, 4) or offsets.shape != (n, 2):
        raise ValueError(
            f"batch_idx (N,), boxes (N, 4), offsets (N, 2) must match the {n} masks; got "
            f"{tuple(batch_idx.shape)}, {tuple(boxes.shape)}, {tuple(offsets.shape)}"
        )
    dev = images.device
    dtype = tile.dtype if tile.is_floating_point() else torch.float32
    if n == 0:
        return images.clone()
    masks = masks.detach().to(device=dev, dtype=dtype)
    batch_idx = batch_idx.to(device=dev, dtype=torch.long)
    y0, x0, sh, sw = mask_rois(masks)
    if sh == 0 or sw == 0:
        return images.clone()

    # texture over each ROI: ROI pixel (r, c) is image pixel (y0 + r, x0 + c)
    scale_t = torch.as_tensor(scale, device=dev, dtype=dtype).reshape(-1).expand(n)
    anchor = torch.stack((boxes[:, 1], boxes[:, 0]), dim=1).to(device=dev, dtype=dtype)  # (N, 2) y, x
    roi_origin = torch.stack((y0, x0), dim=1).to(dtype)
    crop_offsets = offsets.to(device=dev, dtype=dtype) + scale_t[:, None] * (roi_origin - anchor)
    texture = toroidal_crops(tile.to(dev), crop_offsets, (sh, sw), scale_t)  # (N, 3, sh, sw)

    # gather masks and photo over the ROIs (the ROIs lie inside the image)
    ys = y0[:, None] + torch.arange(sh, device=dev)  # (N, sh)
    xs = x0[:, None] + torch.arange(sw, device=dev)  # (N, sw)
    inst = torch.arange(n, device=dev)[:, None, None]
    alpha = masks[inst, ys[:, :, None], xs[:, None, :]].clamp(0.0, 1.0)  # (N, sh, sw)

    if shading and shade_strength != 0.0:
        photo = images[batch_idx[:, None, None, None], torch.arange(3, device=dev)[None, :, None, None],
                       ys[:, None, :, None], xs[:, None, None, :]].to(dtype)  # (N, 3, sh, sw)
        factor = shading_factor(luminance(photo), alpha, shade_strength, max_factor)
        rendered = (texture * factor[:, None]).clamp(0.0, 1.0)
    else:
        rendered = texture

    return composite(images, rendered.to(images.dtype), alpha[:, None].to(images.dtype), batch_idx, x0, y0)
