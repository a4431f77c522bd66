"""Scene lighting and the toy camera: light gain, tint and gradient; optical and motion blur,
sensor noise, 8-bit quantisation. Images are ``(H, W, 3)`` float32 RGB in [0, 1] until the
camera turns them into uint8."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Lighting:
    """A global light: ``gain`` (brightness), ``tint`` ``(3,)`` (light colour, about 1) and a
    linear ``gradient`` ``(gx, gy)`` (relative change across the image width / height)."""

    gain: float = 1.0
    tint: np.ndarray | None = None
    gradient: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def sample(cls, rng: np.random.Generator, gain: tuple[float, float] = (0.6, 1.25)) -> "Lighting":
        warm = rng.uniform(-0.08, 0.08)
        tint = np.array([1 + warm, 1.0, 1 - warm], np.float32) + rng.uniform(-0.03, 0.03, 3).astype(np.float32)
        return cls(float(rng.uniform(*gain)), tint, (float(rng.uniform(-0.3, 0.3)), float(rng.uniform(-0.2, 0.2))))

    def field(self, height: int, width: int) -> np.ndarray:
        """``(H, W, 3)`` float32 multiplicative light field."""
        gx, gy = self.gradient
        x = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :]
        y = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None]
        f = np.clip(self.gain * (1.0 + gx * x + gy * y), 0.05, None)
        tint = self.tint if self.tint is not None else np.ones(3, np.float32)
        return f[..., None] * tint.astype(np.float32)

    def apply(self, img: np.ndarray) -> np.ndarray:
        return img * self.field(*img.shape[:2])


@dataclass
class ToyCamera:
    """Camera degradations: Gaussian blur ``blur`` (sigma px), a linear motion blur of
    ``motion`` px at ``motion_angle`` degrees (0 = none), Gaussian noise ``noise`` (std, fraction
    of full scale). :meth:`capture` returns uint8 RGB."""

    blur: float = 0.0
    motion: float = 0.0
    motion_angle: float = 0.0
    noise: float = 0.0

    @classmethod
    def sample(cls, rng: np.random.Generator, blur: tuple[float, float], motion_prob: float,
               noise: tuple[float, float]) -> "ToyCamera":
        motion = float(rng.uniform(2.0, 6.0)) if rng.random() < motion_prob else 0.0
        return cls(float(rng.uniform(*blur)), motion, float(rng.uniform(0, 180)), float(rng.uniform(*noise)))

    def capture(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = np.ascontiguousarray(img, dtype=np.float32)
        if self.blur > 0.05:
            x = cv2.GaussianBlur(x, (0, 0), self.blur)
        if self.motion >= 1.0:
            n = int(np.ceil(self.motion)) | 1
            k = np.zeros((n, n), np.float32)
            c = n // 2
            a = np.deg2rad(self.motion_angle)
            t = np.linspace(-self.motion / 2, self.motion / 2, 4 * n)
            xs = np.clip(np.round(c + t * np.cos(a)).astype(int), 0, n - 1)
            ys = np.clip(np.round(c + t * np.sin(a)).astype(int), 0, n - 1)
            k[ys, xs] = 1.0
            x = cv2.filter2D(x, -1, k / k.sum(), borderType=cv2.BORDER_REFLECT)
        if self.noise > 0:
            x = x + rng.standard_normal(x.shape, dtype=np.float32) * np.float32(self.noise)
        return to_uint8(x)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8, rounded to nearest (half to even), clipped."""
    y = np.multiply(x, np.float32(255.0), dtype=np.float32)
    np.rint(y, out=y)
    np.clip(y, 0.0, 255.0, out=y)
    return y.astype(np.uint8)
