"""Cloth rendering (issue 15): shading, exact background, gradients, tiling, batching, overlaps."""

from __future__ import annotations

import pytest
import torch

from patchkit.eot.cloth_render import luminance, mask_rois, render_cloth, shading_factor
from patchkit.patches.texture import toroidal_crops
from patchkit.scenes.masks import garment_region

H = W = 64
T = 16


def _scene(seed: int = 0):
    """2 random photos, 3 people (2 apart on image 0, 1 on image 1), soft garment masks."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(2, 3, H, W, generator=g)
    boxes = torch.tensor([[2.0, 4.0, 26.0, 60.0], [34.5, 3.2, 61.0, 62.0], [10.0, 8.0, 50.0, 58.0]])
    batch_idx = torch.tensor([0, 0, 1])
    masks = garment_region(boxes, (H, W), "both", softness=0.05)
    offsets = torch.rand(3, 2, generator=g) * T
    scale = torch.tensor([0.7, 1.3, 0.5])
    tile = torch.rand(3, T, T, generator=g)
    return images, tile, masks, batch_idx, boxes, offsets, scale


def test_uniform_gray_texture_on_uniform_gray_shirt_leaves_the_photo_unchanged():
    images, _, masks, batch_idx, boxes, offsets, scale = _scene()
    g = 0.42
    shirt = (masks.amax(0) > 0)  # every garment pixel of either image
    images[:, :, shirt] = g
    tile = torch.full((3, T, T), g)
    out = render_cloth(images, tile, masks, batch_idx, boxes, offsets, scale)
    assert torch.allclose(out, images, atol=1e-5)


def test_pixels_outside_every_mask_are_unchanged_exactly():
    images, tile, masks, batch_idx, boxes, offsets, scale = _scene()
    out = render_cloth(images, tile, masks, batch_idx, boxes, offsets, scale)
    for b in range(2):
        outside = masks[batch_idx == b].amax(0) == 0
        assert torch.equal(out[b][:, outside], images[b][:, outside])
        assert not torch.allclose(out[b][:, ~outside], images[b][:, ~outside])


def test_gradients_reach_the_tile():
    images, tile, masks, batch_idx, boxes, offsets, scale = _scene()
    tile = tile.clone().requires_grad_(True)
    out = render_cloth(images, tile, masks, batch_idx, boxes, offsets, scale)
    (out * torch.randn_like(out)).sum().backward()
    assert tile.grad is not None and torch.isfinite(tile.grad).all() and tile.grad.abs().sum() > 0


def test_gradcheck_on_a_tiny_scene():
    g = torch.Generator().manual_seed(3)
    images = torch.rand(1, 3, 10, 12, generator=g, dtype=torch.float64) * 0.5 + 0.25
    tile = (torch.rand(3, 4, 4, generator=g, dtype=torch.float64) * 0.5 + 0.25).requires_grad_(True)
    boxes = torch.tensor([[1.0, 1.0, 9.0, 9.0], [4.0, 2.0, 11.0, 10.0]], dtype=torch.float64)
    masks = garment_region(boxes, (10, 12), softness=0.2).double()
    args = (masks, torch.tensor([0, 0]), boxes, torch.tensor([[0.3, 1.7], [2.2, 0.4]], dtype=torch.float64),
            torch.tensor([0.6, 0.9], dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda t: render_cloth(images, t, *args, max_factor=10.0), (tile,))


def test_shading_darkens_the_texture_by_the_photo_ratio():
    images = torch.full((1, 3, H, W), 0.6)
    images[:, :, 32:, :] = 0.3  # lower half of the shirt in shadow
    masks = torch.zeros(1, H, W)
    masks[0, 16:48, 16:48] = 1.0  # half lit, half shaded
    colour = torch.tensor([0.7, 0.4, 0.2])
    tile = colour.view(3, 1, 1).expand(3, T, T).clone()
    args = (masks, torch.tensor([0]), torch.tensor([[16.0, 16.0, 48.0, 48.0]]), torch.zeros(1, 2), 1.0)
    out = render_cloth(images, tile, *args)
    mean = 0.45
    lit, dark = out[0, :, 16:32, 16:48], out[0, :, 32:48, 16:48]
    assert torch.allclose(lit, (colour * 0.6 / mean).view(3, 1, 1).expand_as(lit), atol=1e-5)
    assert torch.allclose(dark, (colour * 0.3 / mean).view(3, 1, 1).expand_as(dark), atol=1e-5)
    assert torch.allclose(dark / lit, torch.full_like(dark, 0.5), atol=1e-5)
    # half strength: 1 + 0.5 * (factor - 1)
    half = render_cloth(images, tile, *args, shade_strength=0.5)[0, :, 40, 20]
    assert torch.allclose(half, colour * (1 + 0.5 * (0.3 / mean - 1)), atol=1e-5)
    # no shading: the texture's own colour
    for flat in (render_cloth(images, tile, *args, shading=False),
                 render_cloth(images, tile, *args, shade_strength=0.0)):
        inside = flat[0, :, 16:48, 16:48]
        assert torch.allclose(inside, colour.view(3, 1, 1).expand_as(inside), atol=1e-6)


def test_shading_factor_is_one_on_a_uniform_photo_and_clamped():
    lum = torch.full((2, 5, 5), 0.3)
    alpha = torch.rand(2, 5, 5)
    assert torch.allclose(shading_factor(lum, alpha), torch.ones(2, 5, 5))
    lum[0, 0, 0] = 30.0
    assert shading_factor(lum, alpha, max_factor=2.0).max() <= 2.0
    assert torch.allclose(luminance(torch.full((3, 2, 2), 0.25)), torch.full((2, 2), 0.25))


def test_texture_follows_the_box_corner_like_toroidal_crops():
    """Integer box corner, hard mask over the box: the box shows toroidal_crops' crop."""
    g = torch.Generator().manual_seed(5)
    images = torch.rand(1, 3, H, W, generator=g)
    tile = torch.rand(3, T, T, generator=g)
    masks = torch.zeros(1, H, W)
    masks[0, 10:40, 20:44] = 1.0
    boxes = torch.tensor([[20.0, 10.0, 44.0, 40.0]])
    offsets, scale = torch.tensor([[3.25, 7.5]]), torch.tensor([0.8])
    out = render_cloth(images, tile, masks, torch.tensor([0]), boxes, offsets, scale, shading=False)
    crop = toroidal_crops(tile, offsets, (30, 24), scale)[0]
    assert torch.allclose(out[0, :, 10:40, 20:44], crop, atol=1e-5)


def test_shifting_offsets_by_one_tile_period_changes_nothing():
    images, tile, masks, batch_idx, boxes, offsets, scale = _scene()
    out = render_cloth(images, tile, masks, batch_idx, boxes, offsets, scale)
    for shift in ([T, 0.0], [0.0, -T], [2 * T, T]):
        shifted = render_cloth(images, tile, masks, batch_idx, boxes, offsets + torch.tensor(shift), scale)
        assert torch.allclose(out, shifted, atol=1e-5)


def test_batched_equals_one_instance_at_a_time_when_they_do_not_overlap():
    images, tile, masks, batch_idx, boxes, offsets, scale = _scene()
    assert (masks[0] * masks[1]).sum() == 0  # the two people of image 0 do not overlap
    out = render_cloth(images, tile, masks, batch_idx, boxes, offsets, scale)
    seq = images
    for i in range(3):
        s = slice(i, i + 1)
        seq = render_cloth(seq, tile, masks[s], batch_idx[s], boxes[s], offsets[s], scale[s])
    assert torch.allclose(out, seq, atol=1e-5)
    # both images were textured
    for b in range(2):
        assert not torch.allclose(out[b], images[b])


def test_overlapping_instances_blend_by_alpha():
    g = torch.Generator().manual_seed(7)
    images = torch.rand(1, 3, 32, 32, generator=g)
    tile = torch.rand(3, T, T, generator=g)
    boxes = torch.tensor([[2.0, 2.0, 22.0, 22.0], [10.0, 10.0, 30.0, 30.0]])
    offsets, scale, bi = torch.tensor([[0.0, 0.0], [5.0, 9.0]]), torch.tensor([1.0, 0.6]), torch.tensor([0, 0])
    hard = torch.zeros(2, 32, 32)
    hard[0, 2:22, 2:22] = 1.0
    hard[1, 10:30, 10:30] = 1.0
    # each instance alone with a full mask gives its colour c_i
    c = [render_cloth(images, tile, hard[i:i + 1], bi[:1], boxes[i:i + 1], offsets[i:i + 1], scale[i:i + 1])[0]
         for i in range(2)]
    ov = (slice(None), slice(10, 22), slice(10, 22))
    # hard masks overlapping: the average of both colours
    both = render_cloth(images, tile, hard, bi, boxes, offsets, scale)[0]
    assert torch.allclose(both[ov], 0.5 * (c[0][ov] + c[1][ov]), atol=1e-5)
    assert torch.allclose(both[:, 2:10, 2:10], c[0][:, 2:10, 2:10], atol=1e-5)
    assert torch.allclose(both[:, 22:30, 22:30], c[1][:, 22:30, 22:30], atol=1e-5)
    # soft masks with total alpha below 1: img + sum a_i (c_i - img)
    soft = hard * torch.tensor([0.3, 0.4]).view(2, 1, 1)
    out = render_cloth(images, tile, soft, bi, boxes, offsets, scale)[0]
    img = images[0]
    expect = img + 0.3 * (c[0] - img) + 0.4 * (c[1] - img)
    assert torch.allclose(out[ov], expect[ov], atol=1e-5)


def test_rois_cover_the_mask_support_inside_the_image():
    masks = torch.zeros(3, 20, 30)
    masks[0, 2:5, 3:9] = 0.5
    masks[1, 15:20, 25:30] = 1.0  # at the corner: the common ROI is moved inside
    y0, x0, sh, sw = mask_rois(masks)
    assert (sh, sw) == (5, 6)
    assert y0.tolist()[:2] == [2, 15] and x0.tolist()[:2] == [3, 24]
    assert mask_rois(torch.zeros(2, 8, 8))[2:] == (0, 0)


def test_empty_inputs_return_a_copy():
    images = torch.rand(2, 3, 16, 16)
    tile = torch.rand(3, 4, 4)
    out = render_cloth(images, tile, torch.zeros(0, 16, 16), torch.zeros(0, dtype=torch.long),
                       torch.zeros(0, 4), torch.zeros(0, 2), torch.zeros(0))
    assert torch.equal(out, images) and out is not images
    out = render_cloth(images, tile, torch.zeros(1, 16, 16), torch.tensor([1]), torch.tensor([[0.0, 0, 8, 8]]),
                       torch.zeros(1, 2), 1.0)
    assert torch.equal(out, images)


def test_bad_shapes_raise():
    images = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError):
        render_cloth(images, torch.rand(3, 4, 4), torch.ones(1, 8, 8), torch.tensor([0]),
                     torch.zeros(1, 4), torch.zeros(1, 2), 1.0)
