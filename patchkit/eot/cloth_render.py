"""Render a periodic texture as cloth on every person of a batch, in one vectorised pass (issue 15).

:func:`render_cloth` lays the infinitely tiled texture (:func:`~patchkit.patches.texture.toroidal_crops`)
over each person instance, shades it with the photo's own luminance (the folds and shadows of the
original clothing survive) and pastes it through the instance's soft garment mask
(:func:`~patchkit.scenes.masks.garment_region` / :func:`~patchkit.scenes.masks.garment_from_mask`).
The photometric, printer-colour and camera EOT are applied by the caller afterwards (printer colour
may equally be applied to the tile before rendering).

Steps (no Python loop over instances):

1. **ROI**: the bounding rectangle of each mask's support (``mask > 0``); instances are split into
   at most three groups by size (:func:`roi_groups`), each group rendered at one common size
   ``(Sh, Sw)`` = its largest support extent, moved inside the image. Pixels outside a
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
4. **Paste**: :func:`~patchkit.eot.composite.composite_pixels`, one scatter:
   ``out = img + sum_i w_i * (rendered_i - img)`` with ``w_i = a_i / max(1, sum_j a_j)``; for one
   instance that is ``img * (1 - a) + rendered * a``. Overlapping instances of one image are
   averaged weighted by alpha (order independent; all size groups in one scatter). Pixels with
   zero alpha are never written.

Memory: the crops, the gathered photo and the masks over the ROIs are ``O(N * Sh * Sw)`` floats
(about ``8 * N * Sh * Sw``, plus the autograd buffers of ``grid_sample``), at most
``O(N * H * W)`` when some mask spans the whole image; the inputs ``masks`` are already
``(N, H, W)``. The only host synchronisation is reading ``(Sh, Sw)``.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from patchkit.eot.composite import boxes_overlap, composite_pixels, roi_pixels
from patchkit.patches.texture import toroidal_crops

__all__ = ["LUMA_709", "luminance", "mask_rois", "render_cloth", "shading_factor"]

# Rec. 709 luma weights (sum to 1, so a gray pixel's luminance is its value).
LUMA_709: tuple[float, float, float] = (0.2126, 0.7152, 0.0722)


def luminance(images: Tensor) -> Tensor:
    """Rec. 709 luminance ``(..., H, W)`` of RGB ``(..., 3, H, W)`` (weights applied to the values as
    given, e.g. sRGB in [0, 1]; no linearisation)."""
    w = torch.tensor(LUMA_709, dtype=images.dtype, device=images.device)
    return torch.einsum("...chw,c->...hw", images, w)


def _extent(occupied: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """First occupied index and run length (0 when empty) of each row of ``occupied (N, L)``."""
    first = occupied.int().argmax(1)
    last = size - 1 - occupied.flip(1).int().argmax(1)
    length = torch.where(occupied.any(1), last - first + 1, torch.zeros_like(first))
    return first.long(), length.long()


def _mask_extents(masks: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """First row, first column, height and width ``(N,)`` int64 of each mask's support (``> 0``;
    0 x 0 when empty)."""
    # max over rows / columns: no full-size boolean mask (about 50x faster than any() on uint8)
    ry, hy = _extent(masks.amax(2) > 0, masks.shape[-2])
    rx, wx = _extent(masks.amax(1) > 0, masks.shape[-1])
    return ry, rx, hy, wx


def mask_rois(masks: Tensor) -> tuple[Tensor, Tensor, int, int]:
    """Common-size ROIs covering each mask's support (``mask > 0``), inside the image.

    Args:
        masks: ``(N, H, W)`` soft masks.

    Returns:
        ``y0``, ``x0`` ``(N,)`` int64 ROI top-left pixel, and ``sh``, ``sw``: the common ROI size in
        pixels (the largest support extent; 0 when every mask is empty). Each ROI contains its
        mask's whole support; an empty mask gets an arbitrary ROI.
    """
    ry, rx, hy, wx = _mask_extents(masks)
    return _common_rois(ry, rx, hy, wx, *masks.shape[-2:])


def _common_rois(ry: Tensor, rx: Tensor, hy: Tensor, wx: Tensor, h: int, w: int) -> tuple[Tensor, Tensor, int, int]:
    """One ROI size (the largest extent) for supports starting at ``(ry, rx)`` of size ``(hy, wx)``."""
    n, dev = ry.shape[0], ry.device
    sh = int(hy.max().item()) if n else 0
    sw = int(wx.max().item()) if n else 0
    y0 = ry.clamp(max=h - sh) if sh else torch.zeros(n, dtype=torch.long, device=dev)
    x0 = rx.clamp(max=w - sw) if sw else torch.zeros(n, dtype=torch.long, device=dev)
    return y0, x0, sh, sw


def roi_groups(hy: Tensor, wx: Tensor, max_groups: int = 3) -> list[Tensor]:
    """Split instances whose supports are ``hy x wx`` pixels into at most ``max_groups`` groups
    rendered at one ROI size each (a group's largest extent), minimising the pixels rendered
    (instances sorted by area, contiguous splits, dynamic programming). Returns index tensors."""
    n = int(hy.shape[0])
    order = (hy * wx).argsort()
    hs, ws = hy[order].tolist(), wx[order].tolist()
    best = {(0, 0): (0, [])}  # (instances done, groups used) -> (cost, cut points)
    for g in range(1, max_groups + 1):
        for end in range(1, n + 1):
            cands = []
            for start in range(0, end):
                prev = best.get((start, g - 1))
                if prev is None:
                    continue
                cost = prev[0] + (end - start) * max(hs[start:end]) * max(ws[start:end])
                cands.append((cost, prev[1] + [end]))
            if cands:
                best[(end, g)] = min(cands)
    _, _, cuts = min((best[(n, g)][0], g, best[(n, g)][1]) for g in range(1, max_groups + 1) if (n, g) in best)
    bounds = [0] + cuts
    return [order[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


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


def _roi_displacement(field: tuple[Tensor, float], boxes: Tensor, y0: Tensor, x0: Tensor, sh: int,
                      sw: int) -> Tensor:
    """A box-frame displacement field sampled at every ROI pixel -> ``(N, 2, sh, sw)`` ``(dy, dx)``
    in image pixels (a box unit is half the box side)."""
    disp, extent = field
    n, dev, dtype = boxes.shape[0], boxes.device, boxes.dtype
    half = ((boxes[:, 2:] - boxes[:, :2]) / 2).clamp_min(0.5)  # (N, 2) half (w, h)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    ys = (y0[:, None] + torch.arange(sh, device=dev)).to(dtype) + 0.5  # pixel centres
    xs = (x0[:, None] + torch.arange(sw, device=dev)).to(dtype) + 0.5
    qy = (ys - centre[:, 1:2]) / half[:, 1:2]  # (N, sh) box units
    qx = (xs - centre[:, 0:1]) / half[:, 0:1]  # (N, sw)
    grid = torch.stack((qx[:, None, :].expand(n, sh, sw), qy[:, :, None].expand(n, sh, sw)), dim=-1) / extent
    d = F.grid_sample(disp.to(dtype), grid, mode="bilinear", padding_mode="border", align_corners=True)
    return torch.stack((d[:, 1] * half[:, 1, None, None], d[:, 0] * half[:, 0, None, None]), dim=1)


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
    angle: Tensor | None = None,
    field: tuple[Tensor, float] | None = None,
    appearance: Callable[[Tensor, Tensor], Tensor] | None = None,
    inplace: bool = False,
    scratch: Tensor | None = None,
) -> Tensor:
    """Texture every person instance's garment with the tiled ``tile``, batched and differentiable.

    See the module docstring for the geometry, shading and compositing rules.

    Args:
        images: ``(B, 3, H, W)`` photos, RGB in [0, 1].
        tile: ``(3, T, T)`` texture tile, RGB in [0, 1] (gradients flow to it).
        masks: ``(N, H, W)`` soft garment masks in [0, 1] (alpha; not differentiated), or uint8
            in [0, 255] (``Scene.masks``' form), e.g. from
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
        angle: ``(N,)`` radians: each instance's texture rotated about its ROI centre (cloth
            pattern orientation), see :func:`~patchkit.patches.texture.toroidal_crops`.
        field: a cloth warp ``(displacement (N, 2, G, G), extent)`` as given by
            :meth:`patchkit.eot.cloth.RandomTPS.displacement_field`: the displacement in the
            box's normalised frame (the box spans [-1, 1]; channel 0 = x) sampled over
            ``[-extent, extent]^2``; the texture is dragged by it, in box units.
        appearance: ``appearance(x, idx)`` is applied to the shaded texture ``x`` ``(k, 3, sh, sw)``
            of the instances ``idx`` ``(k,)`` before compositing (the photometric and camera EOT
            of :meth:`patchkit.eot.pipeline.EOTPipeline.appearance`).
        inplace: composite into ``images`` itself (saves a full-size copy; only when ``images``
            does not require grad and is not needed afterwards).
        scratch: a zero-filled per-pixel buffer for overlapping garments, reused across calls
            (see :func:`~patchkit.eot.composite.coverage_weights`).

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
    masks = masks.detach().to(device=dev)  # uint8 masks stay uint8 (a quarter of the memory traffic)
    batch_idx = batch_idx.to(device=dev, dtype=torch.long)
    h, w = masks.shape[-2:]
    ry, rx, hy, wx = _mask_extents(masks)
    if int(hy.max()) == 0 or int(wx.max()) == 0:
        return images.clone()
    scale_t = torch.as_tensor(scale, device=dev, dtype=dtype).reshape(-1).expand(n)
    boxes = boxes.to(device=dev, dtype=dtype)
    offsets = offsets.to(device=dev, dtype=dtype)
    lum = None
    if shading and shade_strength != 0.0:
        with torch.no_grad():  # the photo is not differentiated; luminance once per image
            lum = luminance(images.detach().to(dtype))
    pixels = []  # each group's covered pixels, pasted together in one scatter
    # persons of very different sizes are rendered in a few groups, each at its own ROI size
    for idx in roi_groups(hy, wx) if n > 1 else [torch.arange(n, device=dev)]:
        y0, x0, sh, sw = _common_rois(ry[idx], rx[idx], hy[idx], wx[idx], h, w)
        if sh == 0 or sw == 0:
            continue
        # texture over each ROI: ROI pixel (r, c) is image pixel (y0 + r, x0 + c)
        sc, bx = scale_t[idx], boxes[idx]
        anchor = torch.stack((bx[:, 1], bx[:, 0]), dim=1)  # (k, 2) y, x
        crop_offsets = offsets[idx] + sc[:, None] * (torch.stack((y0, x0), dim=1).to(dtype) - anchor)
        disp = None if field is None else _roi_displacement((field[0][idx], field[1]), bx, y0, x0, sh, sw)
        texture = toroidal_crops(tile.to(dev), crop_offsets, (sh, sw), sc, None if angle is None else angle[idx],
                                 disp, antialias=True)  # (k, 3, sh, sw)
        # flat gathers (take) instead of 4-D advanced indexing: several times faster on CPU
        pix = (y0[:, None] + torch.arange(sh, device=dev))[:, :, None] * w + (x0[:, None] + torch.arange(sw, device=dev))[:, None, :]
        alpha = masks.take(idx[:, None, None] * (h * w) + pix).to(dtype)
        alpha = alpha / 255.0 if masks.dtype == torch.uint8 else alpha.clamp(0.0, 1.0)
        rendered = texture
        if lum is not None:
            factor = shading_factor(lum.take(batch_idx[idx][:, None, None] * (h * w) + pix), alpha, shade_strength,
                                    max_factor)
            rendered = (texture * factor[:, None]).clamp(0.0, 1.0)
        if appearance is not None:
            rendered = appearance(rendered, idx)
        pixels.append(roi_pixels(rendered.to(images.dtype), alpha[:, None].to(images.dtype), batch_idx[idx], x0, y0,
                                 (h, w)))
    colour, a, batch, ys, xs = (torch.cat(p, dim=-1 if k == 0 else 0) for k, p in enumerate(zip(*pixels)))
    # normalise overlapping garments only when two supports of one image intersect
    overlap = boxes_overlap(torch.stack((rx, ry, rx + wx, ry + hy), dim=1), batch_idx)
    return composite_pixels(images, colour, a, batch, ys, xs, inplace=inplace, overlap=overlap, scratch=scratch)
