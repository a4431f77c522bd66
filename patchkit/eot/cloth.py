"""Thin-plate-spline cloth warp (TC-EGA style: random offsets of a regular control grid).

Rendering needs the map from a plane point ``q`` (where the camera looks) to the texture
coordinate ``t = f(q)`` seen there. ``f`` is the thin-plate spline through the regular control
grid ``c_k`` with ``f(c_k) = c_k + offset_k`` (random offsets; the cloth drags the texture by up
to ``offset``). Its centres are fixed, so the spline system is inverted once per grid size and N
random warps cost one matrix product (kornia's ``get_tps_transform`` re-solves a system per
sample). Evaluation uses kornia's ``warp_points_tps`` layout. Coordinates are in the plane frame
where the patch spans [-1, 1] (``grid_sample``, ``align_corners=False``).

The pipeline does not evaluate the spline at every pixel: :class:`RandomTPS`, a
:class:`~patchkit.eot.base.WarpOp`, gives :func:`tps_displacement_field`, ``f(q) - q`` evaluated
on a coarse grid once per instance, and :func:`apply_displacement_field` interpolates it
bilinearly (the spline is smooth, the error is far below a pixel), which is what makes the warp
cost independent of the number of control points.
"""

from __future__ import annotations

import functools
import math

import torch
from kornia.geometry.transform import warp_points_tps
from torch import Tensor

from patchkit.eot.base import WarpOp, register_op, uniform
from patchkit.eot.composite import sample_atlas
from patchkit.eot.config import TPSConfig


def control_grid(grid: int, device=None, dtype=torch.float32) -> Tensor:
    """``(grid * grid, 2)`` regular control points (x, y) covering [-1, 1]^2, row-major."""
    lin = torch.linspace(-1.0, 1.0, grid, device=device, dtype=dtype)
    ys, xs = torch.meshgrid(lin, lin, indexing="ij")
    return torch.stack((xs, ys), dim=-1).reshape(-1, 2)


def tps_kernel(sq_dist: Tensor) -> Tensor:
    """TPS radial basis ``U = r^2 log r`` from squared distances (0 at r = 0), as kornia's."""
    safe = torch.where(sq_dist > 0, sq_dist, torch.ones_like(sq_dist))
    return torch.where(sq_dist > 0, 0.5 * sq_dist * safe.log(), torch.zeros_like(sq_dist))


@functools.lru_cache(maxsize=8)
def _tps_inverse_system(grid: int) -> Tensor:
    """Inverse of the float64 ``(K + 3, K + 3)`` TPS system ``[[U(c, c), P], [P^T, 0]]`` of the
    regular ``grid x grid`` control points ``c`` (``P = [1, c]``): fixed per grid size, so solving
    for the weights of N random warps is one matrix product."""
    c = control_grid(grid, dtype=torch.float64)
    k = c.shape[0]
    u = tps_kernel(((c[:, None] - c[None]) ** 2).sum(-1))
    p = torch.cat((torch.ones(k, 1, dtype=torch.float64), c), dim=1)
    system = torch.zeros(k + 3, k + 3, dtype=torch.float64)
    system[:k, :k], system[:k, k:], system[k:, :k] = u, p, p.T
    return torch.linalg.inv(system)


def tps_weights(offsets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Spline with ``f(c_k) = c_k + offsets_k`` at the regular control points ``c``.

    Args:
        offsets: ``(N, G * G, 2)`` offsets in plane units.

    Returns:
        ``centers`` ``(N, G * G, 2)``, ``kernel_weights`` ``(N, G * G, 2)`` and ``affine_weights``
        ``(N, 3, 2)`` in the layout of ``kornia.geometry.transform.warp_points_tps``.
    """
    n, k, _ = offsets.shape
    grid = int(round(k**0.5))
    if grid * grid != k:
        raise ValueError(f"TPS offsets must hold grid * grid points, got {k}")
    dt, dev = offsets.dtype, offsets.device
    c = control_grid(grid, device=dev, dtype=dt)
    rhs = torch.cat((c + offsets, offsets.new_zeros(n, 3, 2)), dim=1)  # (N, K + 3, 2)
    w = _tps_inverse_system(grid).to(device=dev, dtype=dt) @ rhs
    return c.expand(n, k, 2), w[:, :k], w[:, k:]


def tps_map(points: Tensor, offsets: Tensor) -> Tensor:
    """Exact spline (``kornia.geometry.transform.warp_points_tps``): plane points -> texture
    coordinates.

    Args:
        points: ``(N, M, 2)`` plane coordinates.
        offsets: ``(N, G * G, 2)`` control-point offsets (plane units): the texture point seen at
            plane point ``c_k`` is ``c_k + offsets_k``.

    Returns:
        ``(N, M, 2)`` texture coordinates ``f(points)``.
    """
    centers, kernel_w, affine_w = tps_weights(offsets.to(points.dtype))
    return warp_points_tps(points, centers, kernel_w, affine_w)


@functools.lru_cache(maxsize=16)
def _displacement_operator(grid: int, extent: float, resolution: int) -> Tensor:
    """``(R * R, K)`` float64 matrix ``D`` with ``f(q) - q = D @ offsets`` at the field grid points.

    The spline reproduces affine maps exactly, so the displacement depends on the offsets only,
    linearly: ``D = [U(q, c), 1, q] @ inverse_system[:, :K]``.
    """
    c = control_grid(grid, dtype=torch.float64)
    lin = torch.linspace(-extent, extent, resolution, dtype=torch.float64)
    ys, xs = torch.meshgrid(lin, lin, indexing="ij")
    q = torch.stack((xs, ys), dim=-1).reshape(-1, 2)
    basis = torch.cat((tps_kernel(((q[:, None] - c[None]) ** 2).sum(-1)), torch.ones_like(q[:, :1]), q), dim=1)
    return basis @ _tps_inverse_system(grid)[:, : grid * grid]


def tps_displacement_field(offsets: Tensor, extent: float, resolution: int, dtype=torch.float32) -> Tensor:
    """``f(q) - q`` sampled on a ``resolution x resolution`` grid over ``[-extent, extent]^2``.

    One matrix product with a cached ``(R * R, K)`` operator (see :func:`_displacement_operator`).

    Returns:
        ``(N, 2, resolution, resolution)`` displacement in plane units (channel 0 = x), laid out
        for ``grid_sample`` with ``align_corners=True`` over that square.
    """
    n, k, _ = offsets.shape
    grid = int(round(k**0.5))
    op = _displacement_operator(grid, float(extent), int(resolution)).to(device=offsets.device, dtype=dtype)
    disp = op @ offsets.to(dtype)  # (N, R*R, 2)
    return disp.view(n, resolution, resolution, 2).permute(0, 3, 1, 2).contiguous()


def apply_displacement_field(q: Tensor, inst: Tensor, field: Tensor, extent: float) -> Tensor:
    """Texture coordinates ``q + field(q)`` for a flat list of plane points.

    Args:
        q: ``(M, 2)`` plane coordinates.
        inst: ``(M,)`` int64 instance of each point.
        field: ``(N, 2, G, G)`` from :func:`tps_displacement_field` over ``[-extent, extent]^2``.

    Returns:
        ``(M, 2)`` texture coordinates (bilinear interpolation of the field, clamped at its border).
    """
    g = field.shape[-1]
    # field grid point j sits at q = -extent + j * 2 extent / (g - 1) (align_corners=True);
    # sample_atlas takes align_corners=False coordinates
    tq = ((q / extent + 1.0) * (0.5 * (g - 1)) + 0.5) * (2.0 / g) - 1.0
    return q + sample_atlas(field.to(q.dtype), inst, tq).T


@register_op
class RandomTPS(WarpOp):
    """Cloth warp. Params: ``offsets`` ``(N, G * G, 2)`` control-point offsets in plane units."""

    config_class = TPSConfig

    def sample(self, n: int, generator: torch.Generator, device: torch.device | str) -> dict[str, Tensor]:
        k = self.cfg.grid * self.cfg.grid
        off = uniform(-self.cfg.offset, self.cfg.offset, n * k * 2, generator, device)
        return {"offsets": off.view(n, k, 2)}

    def identity(self, n: int, device: torch.device | str) -> dict[str, Tensor]:
        k = self.cfg.grid * self.cfg.grid
        return {"offsets": torch.zeros(n, k, 2, device=device)}

    def displacement_field(self, params: dict[str, Tensor]) -> tuple[Tensor, float]:
        """:func:`tps_displacement_field` on ``8 (G - 1) + 1`` points a side, over a square that
        holds the patch and its largest offset (few distinct extents, so the operator cache hits)."""
        offsets = params["offsets"].float()
        grid = int(round(offsets.shape[1] ** 0.5))
        extent = math.ceil((1.25 + 1.5 * float(offsets.abs().max())) * 4.0) / 4.0
        return tps_displacement_field(offsets, extent, 8 * (grid - 1) + 1), extent
