"""Compositing: exact placement, anti-aliased edges, borders, overlaps, empty batches, gradcheck."""

from __future__ import annotations

import torch

from patchkit.eot import EOTConfig, EOTPipeline
from patchkit.eot.composite import composite


def _flat(patch, images, centers, sizes, batch_idx, **kw):
    return EOTPipeline(EOTConfig.all_disabled())(patch, images, centers, sizes, batch_idx,
                                                 generator=torch.Generator().manual_seed(0), **kw)[0]


def test_constant_patch_lands_exactly_in_the_placement_square():
    images = torch.zeros(1, 3, 64, 80)
    colour = torch.tensor([0.9, 0.2, 0.4])
    patch = colour.view(3, 1, 1).expand(3, 32, 32).clone()
    # square [30.3, 50.3] x [20.6, 40.6]: fractional edges to exercise anti-aliasing
    centers, sizes = torch.tensor([[40.3, 30.6]]), torch.tensor([[20.0, 20.0]])
    out = _flat(patch, images, centers, sizes, torch.tensor([0]))
    # pixels fully inside: exact colour
    inside = out[0, :, 21:40, 31:50]
    assert torch.allclose(inside, colour.view(3, 1, 1).expand_as(inside), atol=1e-6)
    # pixels well outside: unchanged
    mask = torch.ones(64, 80, dtype=torch.bool)
    mask[19:43, 28:53] = False
    assert torch.equal(out[0][:, mask], images[0][:, mask])
    # border pixels: strictly between background and colour, coverage = overlap fraction
    left = out[0, 0, 30, 30] / colour[0]  # pixel [30, 31) covered over [30.3, 31): 0.7
    top = out[0, 0, 20, 40] / colour[0]  # pixel [20, 21) covered over [20.6, 21): 0.4
    assert 0 < left < 1 and 0 < top < 1
    assert abs(left - 0.7) < 1e-5 and abs(top - 0.4) < 1e-5
    assert torch.all(out[0, :, 40, 35] < colour) and torch.all(out[0, :, 40, 35] > 0)


def test_background_shows_through_edges_not_inside():
    images = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    patch = torch.zeros(3, 8, 8)
    out = _flat(patch, images, torch.tensor([[24.0, 24.0]]), torch.tensor([[16.0, 16.0]]), torch.tensor([0]))
    assert torch.all(out[0, :, 16:32, 16:32] == 0)  # integer edges: exactly covered
    assert torch.equal(out[0, :, :16], images[0, :, :16])
    assert torch.equal(out[0, :, 32:], images[0, :, 32:])


def test_empty_batch_leaves_images_unchanged():
    images = torch.rand(2, 3, 32, 32)
    patch = torch.rand(3, 16, 16, requires_grad=True)
    empty = torch.zeros(0, 2)
    eot = EOTPipeline(EOTConfig())
    out, params = eot(patch, images, empty, empty, torch.zeros(0, dtype=torch.long),
                      generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, images) and out is not images
    assert params.num_instances == 0
    out.sum().backward()  # still connected: a trainer's backward works on an empty batch
    assert torch.equal(patch.grad, torch.zeros_like(patch))
    out2, _ = eot(patch, images, empty, empty, torch.zeros(0, dtype=torch.long), params=params)
    assert torch.equal(out2, images)


def test_roi_clipping_at_image_borders():
    images = torch.zeros(1, 3, 40, 40)
    patch = torch.ones(3, 16, 16)
    centers = torch.tensor([[2.0, 2.0], [39.0, 20.0], [20.0, 45.0], [-30.0, 10.0]])
    sizes = torch.full((4, 2), 16.0)
    out = _flat(patch, images, centers, sizes, torch.zeros(4, dtype=torch.long))
    assert torch.all(out[0, :, 0:10, 0:10] == 1)  # corner patch, clipped on two sides
    assert torch.all(out[0, :, 12:28, 32:40] == 1)  # right edge
    assert torch.all(out[0, :, 38:40, 13:27] == 1)  # bottom edge, mostly outside
    assert torch.all(out[0, :, 14:30, 0:4] == 0)  # the patch entirely outside draws nothing
    assert torch.isfinite(out).all()


def test_patches_entirely_outside_leave_images_unchanged():
    images = torch.rand(1, 3, 32, 32)
    patch = torch.rand(3, 8, 8, requires_grad=True)
    out, _ = EOTPipeline(EOTConfig())(patch, images, torch.tensor([[-40.0, 10.0], [10.0, 80.0]]),
                                      torch.full((2, 2), 10.0), torch.tensor([0, 0]),
                                      generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, images)
    out.mean().backward()
    assert torch.equal(patch.grad, torch.zeros_like(patch))


def test_overlapping_patches_are_averaged():
    images = torch.zeros(1, 3, 40, 40)
    patches = torch.zeros(2, 3, 8, 8)
    patches[0, 0] = 1.0  # red
    patches[1, 2] = 1.0  # blue
    centers = torch.tensor([[16.0, 20.0], [24.0, 20.0]])
    sizes = torch.full((2, 2), 16.0)
    out = _flat(patches, images, centers, sizes, torch.zeros(2, dtype=torch.long))
    assert torch.allclose(out[0, :, 20, 20], torch.tensor([0.5, 0.0, 0.5]))  # overlap
    assert torch.allclose(out[0, :, 20, 10], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(out[0, :, 20, 30], torch.tensor([0.0, 0.0, 1.0]))


def test_instances_go_to_their_own_image():
    images = torch.zeros(3, 3, 32, 32)
    out = _flat(torch.ones(3, 8, 8), images, torch.tensor([[16.0, 16.0]]), torch.tensor([[8.0, 8.0]]),
                torch.tensor([2]))
    assert torch.equal(out[:2], images[:2])
    assert out[2].sum() == 3 * 64


def test_channels_last_and_inplace_match():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 40, 48, generator=g)
    patch = torch.rand(3, 12, 12, generator=g)
    args = (torch.tensor([[20.0, 20.0], [30.0, 22.0]]), torch.full((2, 2), 14.0), torch.tensor([0, 1]))
    ref = _flat(patch, images, *args)
    cl = _flat(patch, images.contiguous(memory_format=torch.channels_last), *args)
    assert cl.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(cl, ref, atol=1e-6)
    buf = images.clone()
    inp = _flat(patch, buf, *args, inplace=True)
    assert inp is buf and torch.allclose(inp, ref, atol=1e-6)


def test_composite_gradcheck_float64():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 7, 8, dtype=torch.float64, generator=g, requires_grad=True)
    colour = torch.rand(3, 3, 4, 5, dtype=torch.float64, generator=g, requires_grad=True)
    alpha = torch.rand(3, 1, 4, 5, dtype=torch.float64, generator=g)
    batch_idx = torch.tensor([0, 0, 1])
    x0, y0 = torch.tensor([1, 3, 5]), torch.tensor([0, 2, 4])  # overlap, and clipping on image 1
    assert torch.autograd.gradcheck(lambda i, c: composite(i, c, alpha, batch_idx, x0, y0), (images, colour))


def test_pipeline_gradcheck_float64():
    g = torch.Generator().manual_seed(0)
    cfg = EOTConfig()
    cfg.noise.enabled = False  # its float64 noise is fine, but keep the check small and smooth
    cfg.gamma.enabled = False
    eot = EOTPipeline(cfg)
    images = torch.rand(1, 3, 20, 20, dtype=torch.float64, generator=g)
    patch = (0.25 + 0.5 * torch.rand(3, 6, 6, dtype=torch.float64, generator=g)).requires_grad_(True)
    centers, sizes = torch.tensor([[10.0, 10.0]]), torch.tensor([[9.0, 9.0]])
    params = eot.sample(centers, sizes, torch.tensor([0]), (20, 20), g)
    params["brightness"]["delta"].zero_()  # stay away from the clamp's kinks
    params["contrast"]["factor"].fill_(1.0)

    def fn(p):
        return eot(p, images, centers, sizes, torch.tensor([0]), params=params)[0]

    assert torch.autograd.gradcheck(fn, (patch,), atol=1e-6, fast_mode=True)


def test_memory_order_paste_matches_the_general_path_and_its_gradient():
    """A batch without gradient (training's case) is pasted in memory order; the output and the
    colour gradient equal the general path's (logical indices), for NCHW and channels-last
    batches, in place or not, with overlapping ROIs, whatever the layout of the incoming gradient."""
    g = torch.Generator().manual_seed(1)
    images = torch.rand(2, 3, 9, 11, dtype=torch.float64, generator=g)
    colour0 = torch.rand(3, 3, 4, 5, dtype=torch.float64, generator=g)
    alpha = torch.rand(3, 1, 4, 5, dtype=torch.float64, generator=g)
    batch_idx, x0, y0 = torch.tensor([0, 0, 1]), torch.tensor([1, 3, 8]), torch.tensor([0, 2, 6])
    weight = torch.rand(2, 3, 9, 11, dtype=torch.float64, generator=g)

    def run(imgs, inplace=False, grad_format=torch.contiguous_format):
        colour = colour0.clone().requires_grad_(True)
        out = composite(imgs, colour, alpha, batch_idx, x0, y0, inplace=inplace)
        out.backward(weight.contiguous(memory_format=grad_format))
        return out.detach().clone(), colour.grad

    ref_out, ref_grad = run(images.clone().requires_grad_(True))  # general path
    for fmt in (torch.contiguous_format, torch.channels_last):
        for inplace in (False, True):
            for grad_format in (torch.contiguous_format, torch.channels_last):
                batch = images.clone().contiguous(memory_format=fmt)
                out, grad = run(batch, inplace, grad_format)
                assert torch.equal(out, ref_out)  # the same arithmetic, bit for bit
                assert torch.equal(grad, ref_grad)
                assert torch.equal(batch, out) == inplace  # in place writes the batch, otherwise it is untouched
    colour = colour0.clone().requires_grad_(True)
    cl = images.contiguous(memory_format=torch.channels_last)
    assert torch.autograd.gradcheck(lambda c: composite(cl, c, alpha, batch_idx, x0, y0), (colour,))
