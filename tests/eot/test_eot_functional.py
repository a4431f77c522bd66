"""The pure functions behind the ops, called with fixed parameters."""

from __future__ import annotations

import kornia
import pytest
import torch

from patchkit.eot.camera import blur_kernels, gaussian_noise, jpeg
from patchkit.eot.cloth import apply_displacement_field, control_grid, tps_displacement_field, tps_map
from patchkit.eot.composite import dehomogenise, pixels_per_unit, quad_pixels
from patchkit.eot.geometry import perspective_matrix, placement_matrices, rotation_matrix
from patchkit.eot.photometric import (adjust_gamma, apply_color_affine, brightness_affine, compose_affine,
                                      contrast_affine, hue_affine, saturation_affine)


def _corners(h):
    x = torch.tensor([[-1.0, 1.0, 1.0, -1.0]], dtype=h.dtype).expand(h.shape[0], 4)
    y = torch.tensor([[-1.0, -1.0, 1.0, 1.0]], dtype=h.dtype).expand(h.shape[0], 4)
    return torch.stack(dehomogenise(h, x, y), dim=-1)


def test_placement_and_rotation_map_corners():
    t, d = placement_matrices(torch.tensor([[50.0, 40.0]]), torch.tensor([[20.0, 10.0]]))
    corners = _corners(t @ d)[0]
    assert torch.allclose(corners, torch.tensor([[40.0, 35.0], [60.0, 35.0], [60.0, 45.0], [40.0, 45.0]]))
    r = rotation_matrix(torch.tensor([90.0]))
    # counter-clockwise on screen (y down): the right-pointing x axis turns to point up
    x, y = dehomogenise(r, torch.tensor([[1.0]]), torch.tensor([[0.0]]))
    assert torch.allclose(torch.stack((x, y)).flatten(), torch.tensor([0.0, -1.0]), atol=1e-6)


def test_perspective_foreshortens_and_keeps_centre():
    h = perspective_matrix(torch.tensor([60.0, 0.0]), torch.tensor([0.0, 0.0]), torch.tensor([1e6, 5.0]))
    corners = _corners(h)
    width = corners[0, 1, 0] - corners[0, 0, 0]
    assert abs(float(width) - 2 * 0.5) < 1e-4  # far camera: cos(60 deg) foreshortening
    assert torch.allclose(corners[1], _corners(torch.eye(3)[None])[0])  # no rotation: identity
    h = perspective_matrix(torch.tensor([40.0]), torch.tensor([0.0]), torch.tensor([3.0]))
    c = _corners(h)[0]
    left, right = c[3, 1] - c[0, 1], c[2, 1] - c[1, 1]
    assert left != pytest.approx(float(right), abs=1e-3)  # keystone at a close camera
    x, y = dehomogenise(h, torch.zeros(1, 1), torch.zeros(1, 1))
    assert float(x.abs() + y.abs()) < 1e-6
    assert pixels_per_unit(h)[0, 0] < 1.0 and abs(float(pixels_per_unit(h)[0, 1]) - 1.0) < 1e-6


def test_colour_affines_match_kornia():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 5, 6, generator=g) * 0.8 + 0.1
    f = torch.tensor([0.7, 1.2])
    assert torch.allclose(apply_color_affine(x, contrast_affine(f)), x * f.view(2, 1, 1, 1))
    d = torch.tensor([0.05, -0.08])
    assert torch.allclose(apply_color_affine(x, brightness_affine(d)), x + d.view(2, 1, 1, 1))
    gray = apply_color_affine(x, saturation_affine(torch.zeros(2)))
    assert torch.allclose(gray, kornia.color.rgb_to_grayscale(x).expand_as(x), atol=1e-6)
    sat = apply_color_affine(x, saturation_affine(torch.tensor([0.5, 1.5])))
    ref = kornia.enhance.adjust_saturation_with_gray_subtraction(x, torch.tensor([0.5, 1.5]))
    assert torch.allclose(sat[0], ref[0], atol=1e-5)  # kornia clamps; factor 0.5 stays in range


def test_hue_rotation_keeps_luma_and_wraps():
    x = torch.rand(3, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    out = apply_color_affine(x, hue_affine(torch.tensor([0.0, 30.0, 360.0])))
    assert torch.allclose(out[0], x[0], atol=1e-5) and torch.allclose(out[2], x[2], atol=1e-5)
    luma = kornia.color.rgb_to_grayscale
    assert torch.allclose(luma(out[1:2]), luma(x[1:2]), atol=1e-5)
    assert not torch.allclose(out[1], x[1], atol=1e-3)


def test_compose_affine_is_function_composition():
    x = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(2))
    a = contrast_affine(torch.tensor([1.1, 0.9]))
    b = brightness_affine(torch.tensor([0.1, -0.1]))
    c = hue_affine(torch.tensor([10.0, -20.0]))
    seq = apply_color_affine(apply_color_affine(apply_color_affine(x, a), b), c)
    fused = apply_color_affine(x, compose_affine(c, compose_affine(b, a)))
    assert torch.allclose(seq, fused, atol=1e-6)


def test_gamma():
    x = torch.tensor([0.0, 0.25, 1.0, 1.5]).view(1, 1, 1, 4)
    out = adjust_gamma(x, torch.tensor([2.0]))
    assert torch.allclose(out.flatten()[1:], torch.tensor([0.0625, 1.0, 1.0]))
    assert out.flatten()[0] < 1e-6


def test_blur_kernels():
    zero = torch.zeros(2, 2)
    k = blur_kernels(zero, zero, 5)
    delta = torch.zeros(5, 5)
    delta[2, 2] = 1
    assert torch.allclose(k, delta.expand(2, 5, 5))
    sigma = torch.tensor([[1.0, 1.0]])
    k = blur_kernels(sigma, None, 7)[0]
    g1 = kornia.filters.get_gaussian_kernel1d(7, 1.0).flatten()
    assert torch.allclose(k, g1[:, None] * g1[None, :], atol=1e-6)
    k = blur_kernels(None, torch.tensor([[4.0, 0.0]]), 7)[0]  # horizontal streak of 4 px
    assert torch.allclose(k.sum(), torch.tensor(1.0))
    assert k[3].sum() > 0.99 and k[3, 1:6].min() > 0 and k[3, 3] < 0.35
    both = blur_kernels(torch.tensor([[0.8, 0.8]]), torch.tensor([[0.0, 3.0]]), 9)[0]
    assert torch.allclose(both, both.flip(0), atol=1e-6) and torch.allclose(both.sum(), torch.tensor(1.0))
    assert both[:, 4].sum() > both[4, :].sum()  # vertical streak


def test_noise_is_seeded_and_scaled():
    x = torch.full((2, 3, 64, 64), 0.5)
    std = torch.tensor([0.0, 0.1])
    a = gaussian_noise(x, std, torch.tensor([5]))
    b = gaussian_noise(x, std, torch.tensor([5]))
    c = gaussian_noise(x, std, torch.tensor([6]))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(a[0], x[0])
    assert abs(float((a[1] - 0.5).std()) - 0.1) < 0.01
    assert torch.equal(a[1, 0], a[1, 1])  # luminance noise by default
    d = gaussian_noise(x, std, torch.tensor([5]), per_channel=True)
    assert not torch.equal(d[1, 0], d[1, 1])
    shared = gaussian_noise(x[:1], torch.tensor([0.1, 0.1]), torch.tensor([5]))
    assert shared.shape == (2, 3, 64, 64) and not torch.equal(shared[0], shared[1])


@pytest.mark.parametrize("hw", [(24, 40), (17, 33)])
def test_jpeg_handles_any_size(hw):
    x = torch.rand(2, 3, *hw, generator=torch.Generator().manual_seed(0), requires_grad=True)
    out = jpeg(x, torch.tensor([30.0, 95.0]))
    assert out.shape == x.shape
    err = (out - x).abs().mean(dim=(1, 2, 3))
    assert err[0] > err[1] > 0
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_tps_interpolates_controls_and_field_matches_exact():
    g = torch.Generator().manual_seed(0)
    off = (torch.rand(2, 25, 2, generator=g) - 0.5) * 0.2
    c = control_grid(5).expand(2, 25, 2)
    assert torch.allclose(tps_map(c, off), c + off, atol=1e-5)
    zero = torch.zeros(1, 25, 2)
    q = torch.rand(1, 50, 2, generator=g) * 2 - 1
    assert torch.allclose(tps_map(q, zero), q, atol=1e-5)
    field = tps_displacement_field(off, 1.4, 33)
    pts = (torch.rand(2, 99, 2, generator=g) * 2 - 1) * 1.2
    inst = torch.arange(2).repeat_interleave(99)
    approx = apply_displacement_field(pts.reshape(-1, 2), inst, field, 1.4).view_as(pts)
    exact = tps_map(pts, off)
    assert (approx - exact).abs().max() < 5e-3  # plane units: 0.25 % of the patch side


def test_quad_pixels_matches_brute_force():
    g = torch.Generator().manual_seed(3)
    n, img_h, img_w = 6, 48, 64
    t, d = placement_matrices(torch.rand(n, 2, generator=g) * torch.tensor([80.0, 60.0]) - 8,
                              torch.rand(n, 2, generator=g) * 30 + 4)
    h = (t @ rotation_matrix(torch.rand(n, generator=g) * 360) @ d
         @ perspective_matrix(torch.rand(n, generator=g) * 100 - 50, torch.rand(n, generator=g) * 60 - 30,
                              torch.full((n,), 3.0))).double()
    limit = 1.0 + torch.rand(n, 2, generator=g).double() * 0.2
    inst, ys, xs, q, _ = quad_pixels(h, limit, (img_h, img_w))
    # brute force: every pixel of every image
    yy, xx = torch.meshgrid(torch.arange(img_h).double() + 0.5, torch.arange(img_w).double() + 0.5, indexing="ij")
    bx, by = dehomogenise(torch.linalg.inv(h), xx.expand(n, -1, -1), yy.expand(n, -1, -1))
    inside = (bx.abs() < limit[:, 0, None, None]) & (by.abs() < limit[:, 1, None, None])
    got = torch.zeros(n, img_h, img_w, dtype=torch.bool)
    got[inst, ys, xs] = True
    assert inst.numel() == int(got.sum())  # no duplicates
    assert torch.equal(got, inside)
    assert torch.allclose(q.double(), torch.stack((bx, by), -1)[inst, ys, xs], atol=1e-4)
