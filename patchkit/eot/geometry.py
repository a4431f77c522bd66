"""Geometric EOT operations, all composed into one homography per patch instance.

Frames:

- plane coordinates ``q`` in [-1, 1]^2: the flat patch, (-1, -1) its top-left corner, +x right,
  +y down (the ``grid_sample`` frame with ``align_corners=False``);
- image coordinates in continuous pixels, pixel ``i`` covering ``[i, i + 1)`` (the convention of
  xyxy boxes), y down.

The homography of instance ``i`` maps ``q`` to image pixels::

    H = T(center) @ T(translation) @ R(rotation) @ S(scale) @ D(size / 2) @ P(perspective)

Each operation is a :class:`~patchkit.eot.base.GeometricOp` that contributes its matrix
(``matrix(params, sizes)``); the pipeline multiplies them in: ``"screen"``-frame ops (scale,
rotation, translation) left of ``D(size / 2)``, ``"plane"``-frame ops (perspective) right of it,
each acting on points in draw order. The math is in the ``*_matrix`` pure functions. All matrices
are ``(N, 3, 3)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from patchkit.eot.base import GeometricOp, Range, RangeOp, register_op
from patchkit.eot.config import PerspectiveConfig, RotationConfig, ScaleConfig, TranslationConfig


def _eye(n: int, like: Tensor) -> Tensor:
    return torch.eye(3, dtype=like.dtype, device=like.device).expand(n, 3, 3).clone()


def translation_matrix(offset: Tensor) -> Tensor:
    """``(N, 2)`` offsets (x, y) in pixels -> ``(N, 3, 3)`` translation."""
    m = _eye(offset.shape[0], offset)
    m[:, 0, 2] = offset[:, 0]
    m[:, 1, 2] = offset[:, 1]
    return m


def scale_matrix(factor: Tensor) -> Tensor:
    """``(N,)`` uniform factors, or ``(N, 2)`` (x, y) factors -> ``(N, 3, 3)`` scaling."""
    f = factor if factor.ndim == 2 else factor[:, None].expand(-1, 2)
    m = _eye(f.shape[0], f)
    m[:, 0, 0] = f[:, 0]
    m[:, 1, 1] = f[:, 1]
    return m


def rotation_matrix(angle: Tensor) -> Tensor:
    """``(N,)`` angles in degrees, positive = counter-clockwise as seen on screen (y down)."""
    a = angle * (math.pi / 180.0)
    c, s = torch.cos(a), torch.sin(a)
    m = _eye(angle.shape[0], angle)
    m[:, 0, 0] = c
    m[:, 0, 1] = s
    m[:, 1, 0] = -s
    m[:, 1, 1] = c
    return m


def perspective_matrix(yaw: Tensor, pitch: Tensor, distance: Tensor) -> Tensor:
    """Homography of the patch plane rotated out of plane and seen by a pinhole camera.

    The plane point ``(qx, qy, 0)`` is rotated by ``Rx(pitch) @ Ry(yaw)`` (degrees), placed at
    ``distance`` patch sides (``2 * distance`` in plane units, where the patch spans [-1, 1]) and
    projected with the focal length that keeps the patch centre and its nominal scale. Result maps
    plane coordinates to plane coordinates ``(N, 3, 3)``.
    """
    ya = yaw * (math.pi / 180.0)
    pa = pitch * (math.pi / 180.0)
    cy, sy, cp, sp = torch.cos(ya), torch.sin(ya), torch.cos(pa), torch.sin(pa)
    f = 2.0 * distance
    # columns 0 and 1 of Rx(pitch) @ Ry(yaw)
    r11, r21, r31 = cy, sp * sy, -cp * sy
    r12, r22, r32 = torch.zeros_like(cp), cp, sp
    m = _eye(yaw.shape[0], yaw)
    m[:, 0, 0], m[:, 0, 1] = r11, r12
    m[:, 1, 0], m[:, 1, 1] = r21, r22
    m[:, 2, 0], m[:, 2, 1] = r31 / f, r32 / f
    return m


def placement_matrices(centers: Tensor, sizes: Tensor) -> tuple[Tensor, Tensor]:
    """``T(center)`` and ``D(size / 2)`` of the placement, each ``(N, 3, 3)``.

    Args:
        centers: ``(N, 2)`` patch centres in pixels.
        sizes: ``(N, 2)`` patch (width, height) in pixels.
    """
    return translation_matrix(centers), scale_matrix(0.5 * sizes)


@register_op
class RandomScale(RangeOp, GeometricOp):
    """Scale jitter. Params: ``factor`` ``(N,)``, unitless."""

    config_class = ScaleConfig
    ranges = (Range("factor", "factor", 1.0),)

    def matrix(self, params: dict[str, Tensor], sizes: Tensor) -> Tensor:
        return scale_matrix(params["factor"].to(sizes.dtype))

    def size_factor(self, params: dict[str, Tensor]) -> Tensor:
        return params["factor"]


@register_op
class RandomRotation(RangeOp, GeometricOp):
    """In-plane rotation. Params: ``angle`` ``(N,)`` degrees."""

    config_class = RotationConfig
    ranges = (Range("angle", "degrees", 0.0),)

    def matrix(self, params: dict[str, Tensor], sizes: Tensor) -> Tensor:
        return rotation_matrix(params["angle"].to(sizes.dtype))


@register_op
class RandomPerspective(RangeOp, GeometricOp):
    """Out-of-plane rotation. Params: ``yaw``, ``pitch`` ``(N,)`` degrees and ``distance`` ``(N,)``
    patch sides (the config's, not random)."""

    config_class = PerspectiveConfig
    ranges = (Range("yaw", "yaw", 0.0), Range("pitch", "pitch", 0.0))
    frame = "plane"

    def sample(self, n: int, generator: torch.Generator, device: torch.device | str) -> dict[str, Tensor]:
        return {**super().sample(n, generator, device), "distance": self._distance(n, device)}

    def identity(self, n: int, device: torch.device | str) -> dict[str, Tensor]:
        return {**super().identity(n, device), "distance": self._distance(n, device)}

    def _distance(self, n: int, device: torch.device | str) -> Tensor:
        return torch.full((n,), float(self.cfg.distance), device=device)

    def matrix(self, params: dict[str, Tensor], sizes: Tensor) -> Tensor:
        dt = sizes.dtype
        return perspective_matrix(params["yaw"].to(dt), params["pitch"].to(dt), params["distance"].to(dt))


@register_op
class RandomTranslation(RangeOp, GeometricOp):
    """Translation jitter. Params: ``offset`` ``(N, 2)`` as fractions of the patch (width, height)."""

    config_class = TranslationConfig
    ranges = (Range("offset", "fraction", 0.0, width=2),)

    def matrix(self, params: dict[str, Tensor], sizes: Tensor) -> Tensor:
        return translation_matrix(params["offset"].to(sizes.dtype) * sizes)
