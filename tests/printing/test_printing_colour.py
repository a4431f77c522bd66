"""Colour science: sRGB/XYZ/Lab conversions and CIEDE2000 against independent references."""

import numpy as np
import pytest
import torch

from _printing_sim import one_thread  # noqa: F401 (fixture)

from patchkit.printing.colour import (
    delta_e2000,
    delta_e2000_srgb,
    lab_to_srgb,
    linear_to_srgb,
    srgb_to_lab,
    srgb_to_linear,
)

# Sharma, Wu & Dalal (2005), Table 1: (Lab1, Lab2, dE00), published to 4 decimals.
SHARMA = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, 3.1571, -77.2803), (50.0, 0.0, -82.7485), 2.8615),
    ((50.0, 2.8361, -74.0200), (50.0, 0.0, -82.7485), 3.4412),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.5, 0.0), (50.0, 0.0, -2.5), 4.3065),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((22.7233, 20.0904, -46.6940), (23.0331, 14.9730, -42.5619), 2.0373),
]


def test_delta_e2000_sharma_pairs():
    a = torch.tensor([p[0] for p in SHARMA], dtype=torch.float64)
    b = torch.tensor([p[1] for p in SHARMA], dtype=torch.float64)
    want = torch.tensor([p[2] for p in SHARMA], dtype=torch.float64)
    got = delta_e2000(a, b)
    assert torch.allclose(got, want, atol=6e-5)
    assert torch.allclose(delta_e2000(b, a), got, atol=1e-12)  # symmetric


def test_delta_e2000_matches_colour_science(one_thread):
    colour = pytest.importorskip("colour")
    rng = np.random.default_rng(1)
    lab1 = colour.XYZ_to_Lab(colour.sRGB_to_XYZ(rng.random((4000, 3))))
    lab2 = colour.XYZ_to_Lab(colour.sRGB_to_XYZ(rng.random((4000, 3))))
    # include near pairs, neutral colours and hue wrap-around cases
    lab2[:1000] = lab1[:1000] + rng.normal(0, 1.5, (1000, 3))
    lab1[1000:1100, 1:] = 0.0
    ref = colour.delta_E(lab1, lab2, method="CIE 2000")
    for dtype, tol in ((torch.float64, 1e-9), (torch.float32, 1e-3)):
        got = delta_e2000(torch.tensor(lab1, dtype=dtype), torch.tensor(lab2, dtype=dtype)).double().numpy()
        assert np.abs(got - ref).max() < tol


def test_srgb_to_lab_matches_colour_science_and_inverts(one_thread):
    colour = pytest.importorskip("colour")
    rng = np.random.default_rng(2)
    x = rng.random((3000, 3))
    x[:4] = [[0, 0, 0], [1, 1, 1], [0.02, 0.01, 0.0], [1, 0, 0]]
    ref = colour.XYZ_to_Lab(colour.sRGB_to_XYZ(x))
    for dtype, tol in ((torch.float64, 1e-9), (torch.float32, 1e-3)):
        lab = srgb_to_lab(torch.tensor(x, dtype=dtype)).double().numpy()
        assert np.abs(lab - ref).max() < tol
    back = lab_to_srgb(torch.tensor(ref)).numpy()
    assert np.abs(back - x).max() < 1e-9


def test_channel_axis_and_images():
    img = torch.rand(2, 3, 4, 5, dtype=torch.float64)
    lab_img = srgb_to_lab(img, dim=1)
    lab_pts = srgb_to_lab(img.movedim(1, -1))
    assert torch.allclose(lab_img.movedim(1, -1), lab_pts)
    de = delta_e2000_srgb(img, img.flip(0), dim=1)
    assert de.shape == (2, 4, 5)
    assert torch.allclose(delta_e2000_srgb(img, img, dim=1), torch.zeros(2, 4, 5, dtype=torch.float64), atol=1e-9)


def test_transfer_function_round_trip_and_gradient():
    x = torch.linspace(0, 1, 1001, dtype=torch.float64)
    assert torch.allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-12)
    a = torch.rand(64, 3, dtype=torch.float64, requires_grad=True)
    b = torch.rand(64, 3, dtype=torch.float64)
    delta_e2000_srgb(a, b).sum().backward()
    assert torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0
