"""Colour science in torch: sRGB <-> linear <-> XYZ <-> CIELAB, and CIEDE2000.

Colours are tensors whose channel axis is ``dim`` (default: the last one), so the same
functions take point sets ``(N, 3)`` and images ``(B, 3, H, W)`` (``dim=1``). sRGB values are
encoded (gamma) in [0, 1]; XYZ is relative to Y = 1 for the D65 white; Lab uses the D65 white.
Everything is differentiable and works in float32 or float64.

The sRGB transfer functions are :mod:`kornia.color`'s (the same values to the last bit as the IEC
formulas). XYZ and Lab stay here: kornia's ``rgb_to_lab`` uses a 6-digit sRGB matrix, the white
(0.95047, 1, 1.08883) and the rounded CIE constant 7.787, and its Lab differs from the IEC 61966-2-1
/ CIE 15 values below by up to 0.02 (the printer profiles and CIEDE2000 are checked against those).

Constants follow IEC 61966-2-1 (sRGB) and CIE 15; CIEDE2000 follows Sharma, Wu & Dalal (2005),
"The CIEDE2000 color-difference formula: implementation notes, supplementary test data, and
mathematical observations", Color Res. Appl. 30(1).
"""

from __future__ import annotations

import math
from typing import Callable

import kornia
import numpy as np
import torch
import torch.nn.functional as F

# Linear sRGB -> XYZ as published in IEC 61966-2-1; Lab white = D65 from x, y = 0.3127, 0.3290.
_RGB_TO_XYZ = (
    (0.4124, 0.3576, 0.1805),
    (0.2126, 0.7152, 0.0722),
    (0.0193, 0.1192, 0.9505),
)
_D65 = (0.3127 / 0.3290, 1.0, (1.0 - 0.3127 - 0.3290) / 0.3290)
_EPS = 216.0 / 24389.0
_KAPPA = 24389.0 / 27.0


def _move(x: torch.Tensor, dim: int) -> torch.Tensor:
    return x.movedim(dim, -1)


def _back(x: torch.Tensor, dim: int) -> torch.Tensor:
    return x.movedim(-1, dim)


def _elementwise(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``fn``, a :mod:`kornia.color` transfer function (it takes ``(*, 3, H, W)``), on ``x`` of any
    shape: the function is element-wise, so any layout with 3 rows gives the same values."""
    if x.ndim >= 3 and x.shape[-3] == 3:
        return fn(x)
    flat = x.reshape(-1)
    n = flat.numel()
    return fn(F.pad(flat, (0, -n % 3)).view(3, 1, -1)).reshape(-1)[:n].reshape(x.shape)


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """sRGB-encoded values in [0, 1] -> linear light (element-wise, any shape;
    :func:`kornia.color.rgb_to_linear_rgb`)."""
    return _elementwise(kornia.color.rgb_to_linear_rgb, x)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """Linear light -> sRGB-encoded values (element-wise, any shape; negative inputs stay linear;
    :func:`kornia.color.linear_rgb_to_rgb`)."""
    return _elementwise(kornia.color.linear_rgb_to_rgb, x)


def _matrix(rows, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(rows, dtype=like.dtype, device=like.device)


def linear_to_xyz(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Linear sRGB -> XYZ (D65, Y of white = 1)."""
    m = _matrix(_RGB_TO_XYZ, x)
    return _back(_move(x, dim) @ m.T, dim)


def xyz_to_linear(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """XYZ (D65) -> linear sRGB (may leave [0, 1] for out-of-gamut colours)."""
    m = torch.linalg.inv(_matrix(_RGB_TO_XYZ, x).double()).to(x.dtype)
    return _back(_move(x, dim) @ m.T, dim)


def xyz_to_lab(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """XYZ (D65) -> CIELAB (L* in [0, 100])."""
    x = _move(x, dim) / _matrix(_D65, x)
    f = torch.where(x > _EPS, x.clamp(min=_EPS) ** (1.0 / 3.0), (_KAPPA * x + 16.0) / 116.0)
    fx, fy, fz = f.unbind(-1)
    lab = torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=-1)
    return _back(lab, dim)


def lab_to_xyz(lab: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """CIELAB -> XYZ (D65)."""
    L, a, b = _move(lab, dim).unbind(-1)
    fy = (L + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = fy - b / 200.0
    f = torch.stack((fx, fy, fz), dim=-1)
    f3 = f**3
    xyz = torch.where(f3 > _EPS, f3, (116.0 * f - 16.0) / _KAPPA)
    # Y uses L directly below the knee (CIE 15 inverse).
    y = torch.where(L > _KAPPA * _EPS, fy**3, L / _KAPPA)
    xyz = torch.stack((xyz[..., 0], y, xyz[..., 2]), dim=-1)
    return _back(xyz * _matrix(_D65, lab), dim)


def srgb_to_lab(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """sRGB-encoded [0, 1] -> CIELAB (D65)."""
    return xyz_to_lab(linear_to_xyz(srgb_to_linear(x), dim), dim)


def lab_to_srgb(lab: torch.Tensor, dim: int = -1, clip: bool = True) -> torch.Tensor:
    """CIELAB (D65) -> sRGB-encoded; ``clip`` clamps to [0, 1] (out-of-gamut colours)."""
    lin = xyz_to_linear(lab_to_xyz(lab, dim), dim)
    if clip:
        lin = lin.clamp(0.0, 1.0)
    return linear_to_srgb(lin)


def delta_e2000(lab1: torch.Tensor, lab2: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """CIEDE2000 colour difference between two Lab tensors (kL = kC = kH = 1).

    The channel axis ``dim`` is reduced; the other axes broadcast. Differentiable except where
    both chromas are zero (the hue terms then have zero weight).
    """
    L1, a1, b1 = _move(lab1, dim).unbind(-1)
    L2, a2, b2 = _move(lab2, dim).unbind(-1)
    tiny = 1e-12 if L1.dtype == torch.float64 else 1e-6
    C1 = torch.sqrt(a1 * a1 + b1 * b1 + tiny * tiny) - tiny
    C2 = torch.sqrt(a2 * a2 + b2 * b2 + tiny * tiny) - tiny
    Cbar = 0.5 * (C1 + C2)
    Cbar7 = Cbar**7
    G = 0.5 * (1.0 - torch.sqrt(Cbar7 / (Cbar7 + 25.0**7)))
    a1p = (1.0 + G) * a1
    a2p = (1.0 + G) * a2
    C1p = torch.sqrt(a1p * a1p + b1 * b1 + tiny * tiny) - tiny
    C2p = torch.sqrt(a2p * a2p + b2 * b2 + tiny * tiny) - tiny
    zero1 = C1p <= tiny
    zero2 = C2p <= tiny
    h1p = torch.remainder(torch.atan2(b1, a1p), 2 * math.pi)
    h2p = torch.remainder(torch.atan2(b2, a2p), 2 * math.pi)
    h1p = torch.where(zero1, torch.zeros_like(h1p), h1p)
    h2p = torch.where(zero2, torch.zeros_like(h2p), h2p)
    either_zero = zero1 | zero2

    dLp = L2 - L1
    dCp = C2p - C1p
    dh = h2p - h1p
    dh = torch.where(dh > math.pi, dh - 2 * math.pi, dh)
    dh = torch.where(dh < -math.pi, dh + 2 * math.pi, dh)
    dh = torch.where(either_zero, torch.zeros_like(dh), dh)
    dHp = 2.0 * torch.sqrt(C1p * C2p + tiny * tiny) * torch.sin(dh / 2.0)

    Lbarp = 0.5 * (L1 + L2)
    Cbarp = 0.5 * (C1p + C2p)
    hsum = h1p + h2p
    hdiff = torch.abs(h1p - h2p)
    hbarp = torch.where(
        hdiff <= math.pi,
        0.5 * hsum,
        torch.where(hsum < 2 * math.pi, 0.5 * hsum + math.pi, 0.5 * hsum - math.pi),
    )
    hbarp = torch.where(either_zero, hsum, hbarp)

    T = (
        1.0
        - 0.17 * torch.cos(hbarp - math.radians(30))
        + 0.24 * torch.cos(2 * hbarp)
        + 0.32 * torch.cos(3 * hbarp + math.radians(6))
        - 0.20 * torch.cos(4 * hbarp - math.radians(63))
    )
    dtheta = math.radians(30) * torch.exp(-(((torch.rad2deg(hbarp) - 275.0) / 25.0) ** 2))
    Cbarp7 = Cbarp**7
    RC = 2.0 * torch.sqrt(Cbarp7 / (Cbarp7 + 25.0**7))
    Lm = (Lbarp - 50.0) ** 2
    SL = 1.0 + 0.015 * Lm / torch.sqrt(20.0 + Lm)
    SC = 1.0 + 0.045 * Cbarp
    SH = 1.0 + 0.015 * Cbarp * T
    RT = -torch.sin(2 * dtheta) * RC
    tL = dLp / SL
    tC = dCp / SC
    tH = dHp / SH
    sq = tL * tL + tC * tC + tH * tH + RT * tC * tH
    return torch.sqrt(sq.clamp(min=0.0) + tiny * tiny) - tiny


def delta_e2000_srgb(rgb1: torch.Tensor, rgb2: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """CIEDE2000 between two sRGB-encoded tensors (values in [0, 1], channel axis ``dim``)."""
    return delta_e2000(srgb_to_lab(rgb1, dim), srgb_to_lab(rgb2, dim), dim)


def srgb_to_linear_np(x: np.ndarray) -> np.ndarray:
    """Numpy version of :func:`srgb_to_linear` (float64 unless given float32)."""
    x = np.asarray(x, dtype=np.float32 if np.asarray(x).dtype == np.float32 else np.float64)
    return np.where(x <= 0.04045, x / 12.92, ((np.maximum(x, 0.04045) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb_np(x: np.ndarray) -> np.ndarray:
    """Numpy version of :func:`linear_to_srgb` (float64 unless given float32)."""
    x = np.asarray(x, dtype=np.float32 if np.asarray(x).dtype == np.float32 else np.float64)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.maximum(x, 0.0031308) ** (1.0 / 2.4) - 0.055)
