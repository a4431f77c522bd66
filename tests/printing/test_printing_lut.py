"""3-D LUT lookup: numpy reference, gradients, batching, speed."""

import numpy as np
import torch

from _printing_sim import one_thread  # noqa: F401 (fixture)

from patchkit.printing.lut import (
    apply_lut,
    apply_lut_numpy,
    apply_lut_points,
    identity_lut,
    interpolation_matrix,
    lookup_seconds,
)


def _random_lut(size=9, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(size, size, size, 3, generator=g, dtype=dtype)


def test_lookup_equals_numpy_reference():
    lut = _random_lut()
    rng = np.random.default_rng(0)
    pts = rng.random((20000, 3))
    pts[:27] = np.stack(np.meshgrid(*[[0.0, 0.5, 1.0]] * 3, indexing="ij"), -1).reshape(-1, 3)
    ref = apply_lut_numpy(lut.numpy(), pts)
    got = apply_lut_points(torch.tensor(pts, dtype=torch.float32), lut).double().numpy()
    assert np.abs(got - ref).max() < 1e-5
    # nodes are reproduced exactly; the interpolation matrix agrees too
    assert np.allclose(interpolation_matrix(pts[:500], 9) @ lut.double().numpy().reshape(-1, 3), ref[:500])
    # outside the cube is clamped to the border
    out = apply_lut_points(torch.tensor([[1.5, -0.2, 0.3]]), lut)
    assert torch.allclose(out, apply_lut_points(torch.tensor([[1.0, 0.0, 0.3]]), lut))


def test_identity_lut_and_per_image_luts():
    x = torch.rand(3, 3, 7, 5)
    assert torch.allclose(apply_lut(x, identity_lut(5)), x, atol=1e-6)
    luts = torch.stack([_random_lut(5, s) for s in range(3)])
    batched = apply_lut(x, luts)
    for i in range(3):
        assert torch.allclose(batched[i : i + 1], apply_lut(x[i : i + 1], luts[i]), atol=1e-6)


def test_gradcheck_image_and_lut(one_thread):
    lut = _random_lut(4, 1, torch.float64).requires_grad_(True)
    img = (torch.rand(2, 3, 3, 4, dtype=torch.float64) * 0.9 + 0.05).requires_grad_(True)
    assert torch.autograd.gradcheck(apply_lut, (img, lut), eps=1e-6, atol=1e-5)


def test_forward_backward_speed_8x3x300x300():
    lut = _random_lut().requires_grad_(True)
    x = torch.rand(8, 3, 300, 300, requires_grad=True)
    best = lookup_seconds(x, lut)
    assert best < 2.0, f"8x3x300x300 forward+backward took {best:.2f} s"
    assert x.grad is not None and lut.grad is not None
