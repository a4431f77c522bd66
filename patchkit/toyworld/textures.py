"""Clothing materials: a base colour, a second colour and a pattern (stripes, checks, dots...).

Patterns are evaluated in the figure's own units (fraction of its height), so a stripe keeps its
size on the body whatever the figure's size in pixels. Everything is vectorised over the layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PATTERNS = ("solid", "solid", "solid", "hstripes", "vstripes", "checks", "dots", "mottled", "gradient")

# Clothing palette (sRGB in [0, 1]): dark, muted and saturated garments.
_PALETTE = np.array(
    [
        [0.08, 0.08, 0.10], [0.20, 0.22, 0.28], [0.12, 0.16, 0.35], [0.25, 0.35, 0.60], [0.55, 0.10, 0.12],
        [0.80, 0.20, 0.15], [0.85, 0.75, 0.20], [0.20, 0.45, 0.25], [0.45, 0.50, 0.30], [0.55, 0.40, 0.30],
        [0.70, 0.60, 0.48], [0.90, 0.90, 0.88], [0.55, 0.55, 0.58], [0.40, 0.20, 0.45], [0.95, 0.50, 0.60],
        [0.30, 0.65, 0.75], [0.95, 0.55, 0.15], [0.35, 0.25, 0.18], [0.15, 0.30, 0.30], [0.65, 0.15, 0.35],
    ],
    np.float32,
)
SKIN_TONES = np.array(
    [[0.96, 0.80, 0.69], [0.90, 0.72, 0.58], [0.80, 0.60, 0.45], [0.65, 0.45, 0.32], [0.45, 0.30, 0.22], [0.30, 0.20, 0.15]],
    np.float32,
)
HAIR_COLOURS = np.array(
    [[0.05, 0.04, 0.04], [0.20, 0.12, 0.07], [0.40, 0.25, 0.12], [0.75, 0.60, 0.35], [0.55, 0.55, 0.55], [0.55, 0.20, 0.08]],
    np.float32,
)


def random_colour(rng: np.random.Generator, palette: np.ndarray = _PALETTE, jitter: float = 0.08) -> np.ndarray:
    """A palette colour with a small random jitter, ``(3,)`` float32 in [0, 1]."""
    c = palette[rng.integers(len(palette))] + rng.uniform(-jitter, jitter, 3).astype(np.float32)
    return np.clip(c, 0.0, 1.0).astype(np.float32)


@dataclass
class Material:
    """A garment's look.

    Attributes:
        pattern: one of :data:`PATTERNS`.
        colour: ``(3,)`` base colour, sRGB in [0, 1].
        colour2: ``(3,)`` pattern colour.
        period: pattern period as a fraction of the figure height (0.02-0.08).
        angle: pattern rotation in radians.
    """

    pattern: str
    colour: np.ndarray
    colour2: np.ndarray
    period: float
    angle: float

    @classmethod
    def sample(cls, rng: np.random.Generator, patterned: float = 0.4) -> "Material":
        """A random material; ``patterned`` is the chance of a non-solid pattern."""
        pattern = "solid" if rng.random() >= patterned else PATTERNS[rng.integers(3, len(PATTERNS))]
        return cls(
            pattern=pattern,
            colour=random_colour(rng),
            colour2=random_colour(rng),
            period=float(rng.uniform(0.02, 0.08)),
            angle=float(rng.uniform(-0.3, 0.3)),
        )

    def render(self, u: np.ndarray, v: np.ndarray, seed: int = 0) -> np.ndarray:
        """Texture ``(h, w, 3)`` float32 at figure coordinates ``u, v`` (``(h, w)`` each, in
        figure heights); ``seed`` fixes the mottled pattern."""
        ca, sa = np.cos(self.angle), np.sin(self.angle)
        ru, rv = (u * ca - v * sa) / self.period, (u * sa + v * ca) / self.period
        if self.pattern == "solid":
            t = None
        elif self.pattern == "hstripes":
            t = (np.mod(rv, 1.0) < 0.5)
        elif self.pattern == "vstripes":
            t = (np.mod(ru, 1.0) < 0.5)
        elif self.pattern == "checks":
            t = (np.floor(ru) + np.floor(rv)).astype(np.int64) % 2 == 0
        elif self.pattern == "dots":
            t = (np.mod(ru, 1.0) - 0.5) ** 2 + (np.mod(rv, 1.0) - 0.5) ** 2 < 0.09
        elif self.pattern == "mottled":
            t = np.clip(0.5 + 0.5 * np.sin(ru * 2.1 + 1.7 * np.sin(rv * 1.3 + seed)) * np.cos(rv * 1.7 - seed), 0, 1)
        elif self.pattern == "gradient":
            t = np.clip(v / max(float(np.ptp(v)), 1e-6) - float(v.min()) / max(float(np.ptp(v)), 1e-6), 0, 1)
        else:  # pragma: no cover - patterns are sampled from PATTERNS
            raise ValueError(f"unknown pattern {self.pattern!r}")
        h, w = u.shape
        if t is None:
            return np.broadcast_to(self.colour, (h, w, 3)).astype(np.float32)
        t = t.astype(np.float32)[..., None]
        return (self.colour * (1.0 - t) + self.colour2 * t).astype(np.float32)
