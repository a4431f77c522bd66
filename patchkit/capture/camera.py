"""A simulated camera: linear scene radiance -> 8-bit sRGB-like photo.

Pipeline (all seeded): optical blur (Gaussian, in linear light) -> white-balance gains -> 3x3
channel crosstalk -> exposure -> flare (a constant veil) -> shot + read noise -> clip -> sRGB
transfer curve -> S-shaped tone curve -> 8-bit quantisation -> JPEG. The illumination falloff
(a smooth quadratic field over the frame) and the light's colour belong to the scene and are
applied by :mod:`patchkit.capture.render` before the camera.

:meth:`SimulatedCamera.respond` is the noise-free point-wise part (no blur, noise, quantisation or
JPEG): the "truth" of what the camera records for a given radiance.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from patchkit.printing.colour import linear_to_srgb_np


def _enc(x: np.ndarray) -> np.ndarray:
    return linear_to_srgb_np(x)


@dataclass
class SimulatedCamera:
    """Camera parameters. Radiances are linear, 1 = a perfect white diffuser under the light."""

    wb: np.ndarray = field(default_factory=lambda: np.ones(3))  # (3,) white-balance gains
    crosstalk: np.ndarray = field(default_factory=lambda: np.eye(3))  # (3, 3), rows sum to 1
    exposure: float = 0.9
    flare: float = 0.0  # linear veil added to every pixel
    s_curve: float = 0.0  # 0 = pure sRGB; 0.2 = moderate contrast boost
    blur_sigma: float = 0.0  # px
    shot_noise: float = 0.0  # noise variance per unit of linear signal
    read_noise: float = 0.0  # noise standard deviation (linear)
    jpeg_quality: int | None = None
    illuminant: np.ndarray = field(default_factory=lambda: np.ones(3))  # light colour (scene)
    field_coef: np.ndarray = field(default_factory=lambda: np.zeros(5))  # u, v, u^2, v^2, uv

    @classmethod
    def from_seed(
        cls,
        seed: int = 0,
        strength: float = 1.0,
        blur_sigma: float = 1.0,
        jpeg_quality: int | None = 85,
        noise: float = 1.0,
        paper: np.ndarray | None = None,
    ) -> "SimulatedCamera":
        """Random camera: WB +-10 %, crosstalk +-0.12, light tint, flare about 1.2 %, falloff
        +-10 % (all times ``strength``); exposure set so that ``paper`` (a reflectance, default
        0.88) lands just below clipping at the brightest point of the frame, minus up to 12 %."""
        rng = np.random.default_rng(seed)
        s = float(strength)
        ct = np.eye(3) + rng.uniform(-0.12, 0.12, (3, 3)) * s * (1 - np.eye(3))
        ct = ct / ct.sum(axis=1, keepdims=True)
        cam = cls(
            wb=1.0 + rng.uniform(-0.1, 0.1, 3) * s,
            crosstalk=ct,
            exposure=1.0,
            flare=float(0.012 * (1 + rng.uniform(-0.3, 0.3))),
            s_curve=float(rng.uniform(0.0, 0.25)),
            blur_sigma=float(blur_sigma),
            shot_noise=2e-4 * noise,
            read_noise=1.5e-3 * noise,
            jpeg_quality=jpeg_quality,
            illuminant=1.0 + rng.uniform(-0.06, 0.06, 3) * s,
            field_coef=rng.uniform(-0.1, 0.1, 5) * min(s, 1.2),
        )
        paper = np.full(3, 0.88) if paper is None else np.asarray(paper, dtype=np.float64)
        peak = float(cam.field(65, 65).max())
        sensor = cam._sensor(paper * cam.illuminant * peak)
        target = 0.9 * (1.0 - 0.12 * rng.random())
        return replace(cam, exposure=float((target - cam.flare) / sensor.max()))

    def neutral(self) -> "SimulatedCamera":
        """Same colour response with no blur, noise, JPEG or falloff."""
        return replace(self, blur_sigma=0.0, shot_noise=0.0, read_noise=0.0, jpeg_quality=None, field_coef=np.zeros(5))

    # ------------------------------------------------------------------ point-wise parts
    def _sensor(self, radiance: np.ndarray) -> np.ndarray:
        return (radiance * self.wb) @ self.crosstalk.T

    def linear(self, radiance: np.ndarray) -> np.ndarray:
        """Radiance ``(..., 3)`` -> linear sensor value after WB, crosstalk, exposure and flare."""
        return self._sensor(radiance) * self.exposure + self.flare

    def tone(self, linear: np.ndarray) -> np.ndarray:
        """Linear sensor value -> encoded [0, 1] (clip, sRGB curve, S-curve)."""
        y = _enc(np.clip(linear, 0.0, 1.0))
        return y - self.s_curve * np.sin(2 * np.pi * y) / (2 * np.pi)

    def respond(self, radiance: np.ndarray) -> np.ndarray:
        """Noise-free encoded response in [0, 1] to radiance ``(..., 3)``."""
        return self.tone(self.linear(radiance))

    def field(self, height: int, width: int) -> np.ndarray:
        """Illumination falloff ``(H, W)`` over the frame (mean about 1)."""
        v, u = np.meshgrid(np.linspace(-1, 1, height), np.linspace(-1, 1, width), indexing="ij")
        c = self.field_coef
        f = 1.0 + c[0] * u + c[1] * v + c[2] * (u * u - 1 / 3) + c[3] * (v * v - 1 / 3) + c[4] * u * v
        return np.clip(f, 0.2, None)

    # ------------------------------------------------------------------ full capture
    def capture(self, radiance: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Radiance image ``(H, W, 3)`` -> uint8 RGB photo (blur, noise, tone, JPEG)."""
        x = np.asarray(radiance, dtype=np.float32)
        if self.blur_sigma > 0:
            x = cv2.GaussianBlur(x, (0, 0), self.blur_sigma)
        x = self.linear(x).astype(np.float32)
        if self.shot_noise > 0 or self.read_noise > 0:
            std = np.sqrt(np.clip(x, 0, None) * self.shot_noise + self.read_noise**2)
            x = x + rng.standard_normal(x.shape, dtype=np.float32) * std.astype(np.float32)
        y = self.tone(x.astype(np.float64))
        out = np.clip(np.round(y * 255.0), 0, 255).astype(np.uint8)
        if self.jpeg_quality is not None:
            out = jpeg_round_trip(out, self.jpeg_quality)
        return out


def jpeg_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode an RGB uint8 image as JPEG at ``quality`` (OpenCV, 4:2:0)."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV always encodes uint8 RGB
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
