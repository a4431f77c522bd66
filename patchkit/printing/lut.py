"""3-D lattice look-up tables (LUTs) over the RGB cube, with differentiable trilinear lookup.

A LUT is a tensor ``(S, S, S, 3)`` indexed ``[r, g, b]``: node ``(i, j, k)`` holds the output
colour for the input ``(i, j, k) / (S - 1)``. Inputs are RGB in [0, 1] (values outside are
clamped to the cube, i.e. border extension); outputs are whatever the LUT stores (for a printer
profile: captured RGB in [0, 1]).

The torch lookup is one ``F.grid_sample`` call on the volume ``(3, S_r, S_g, S_b)``, so it is
differentiable in both the image and the LUT and runs batched. ``apply_lut_numpy`` is a plain
numpy reference used by the tests.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F


def identity_lut(size: int = 9, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The LUT ``(S, S, S, 3)`` whose lookup returns its input."""
    t = torch.linspace(0.0, 1.0, size, dtype=dtype)
    r, g, b = torch.meshgrid(t, t, t, indexing="ij")
    return torch.stack((r, g, b), dim=-1)


def lattice_points(size: int) -> np.ndarray:
    """The node inputs of a LUT, ``(S**3, 3)`` float64 in [0, 1], in ``lut.reshape(-1, 3)`` order."""
    return identity_lut(size, torch.float64).reshape(-1, 3).numpy()


def apply_lut(images: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    """Trilinear lookup of images through one LUT or one LUT per image.

    Args:
        images: ``(N, 3, H, W)`` RGB in [0, 1] (clamped to the cube).
        lut: ``(S, S, S, 3)`` shared by the batch, or ``(N, S, S, S, 3)`` one per image.
    Returns:
        ``(N, 3, H, W)``, differentiable in ``images`` and ``lut``.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (N, 3, H, W), got {tuple(images.shape)}")
    n, _, h, w = images.shape
    if lut.dim() == 4:
        vol = lut.permute(3, 0, 1, 2).unsqueeze(0).expand(n, -1, -1, -1, -1)
    elif lut.dim() == 5 and lut.shape[0] == n:
        vol = lut.permute(0, 4, 1, 2, 3)
    else:
        raise ValueError(f"lut must be (S, S, S, 3) or (N, S, S, S, 3), got {tuple(lut.shape)}")
    vol = vol.to(images.dtype)
    # grid_sample's last grid axis is (x, y, z) = (W, H, D) = (b, g, r), scaled to [-1, 1].
    grid = images.clamp(0.0, 1.0).flip(1).permute(0, 2, 3, 1).unsqueeze(1) * 2.0 - 1.0
    out = F.grid_sample(vol, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out.squeeze(2)


def lookup_seconds(images: torch.Tensor, lut: torch.Tensor, repeats: int = 3) -> float:
    """Best wall time in seconds, over ``repeats`` runs, of one :func:`apply_lut` forward and
    backward (``.sum().backward()``; the gradients of ``images`` and ``lut`` accumulate): the
    lookup speed that the tests check and the printing benchmark reports."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        apply_lut(images, lut).sum().backward()
        best = min(best, time.perf_counter() - t0)
    return best


def apply_lut_points(points: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    """Lookup of a point set ``(..., 3)`` through one LUT ``(S, S, S, 3)``; returns ``(..., 3)``."""
    shape = points.shape
    img = points.reshape(1, -1, 1, 3).permute(0, 3, 1, 2)
    return apply_lut(img, lut).permute(0, 2, 3, 1).reshape(shape)


def trilinear_weights(points: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Node indices ``(N, 8)`` (into ``lut.reshape(-1, 3)``) and weights ``(N, 8)`` of points
    ``(N, 3)`` in [0, 1] (clamped) on an ``S``-node lattice."""
    p = np.clip(np.asarray(points, dtype=np.float64), 0.0, 1.0) * (size - 1)
    i0 = np.minimum(np.floor(p).astype(np.int64), size - 2)
    f = p - i0
    idx = np.empty((len(p), 8), dtype=np.int64)
    wts = np.empty((len(p), 8), dtype=np.float64)
    c = 0
    for dr in (0, 1):
        for dg in (0, 1):
            for db in (0, 1):
                ir, ig, ib = i0[:, 0] + dr, i0[:, 1] + dg, i0[:, 2] + db
                idx[:, c] = (ir * size + ig) * size + ib
                wts[:, c] = (
                    (f[:, 0] if dr else 1 - f[:, 0])
                    * (f[:, 1] if dg else 1 - f[:, 1])
                    * (f[:, 2] if db else 1 - f[:, 2])
                )
                c += 1
    return idx, wts


def interpolation_matrix(points: np.ndarray, size: int) -> np.ndarray:
    """Dense ``(N, S**3)`` matrix ``W`` with ``W @ lut.reshape(-1, 3) == lookup(points)``."""
    idx, wts = trilinear_weights(points, size)
    m = np.zeros((len(idx), size**3))
    np.add.at(m, (np.repeat(np.arange(len(idx)), 8), idx.ravel()), wts.ravel())
    return m


def apply_lut_numpy(lut: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Numpy reference trilinear lookup: ``lut (S, S, S, 3)``, points ``(N, 3)`` -> ``(N, 3)``."""
    lut = np.asarray(lut, dtype=np.float64)
    size = lut.shape[0]
    idx, wts = trilinear_weights(points, size)
    flat = lut.reshape(-1, lut.shape[-1])
    return np.einsum("nk,nkc->nc", wts, flat[idx])
