"""Simulated printers: digital sRGB -> linear RGB reflectance of the print.

Two structurally different models, so that tests do not favour the model family that matches
the simulator:

* :class:`HalftonePrinter`: an ink model. RGB -> CMY through a per-channel driver gamma, grey
  component replacement into K, a total ink limit, parabolic dot gain, then the 16 Demichel
  primaries (every on/off combination of C, M, Y, K) mixed by the Yule-Nielsen modified
  Neugebauer equation, plus a first-surface reflection.
* :class:`GamutPrinter`: a CIELAB gamut-compression model. Lightness is mapped into
  ``[L_min, L_max]`` with a tone gamma, chroma is compressed with ``C_max tanh(g C / C_max)``, hue
  is rotated by a three-harmonic function of hue, and the paper tint is added in the highlights.

Both take ``(N, 3)`` float arrays of digital sRGB in [0, 1] and return ``(N, 3)`` float64 linear
reflectance (a perfect white diffuser is 1). ``from_seed(seed, strength)`` draws the parameters;
strength 1 is the nominal case, 1.5 the hard case.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from patchkit.printing.colour import lab_to_xyz, srgb_to_lab, xyz_to_linear


@dataclass
class HalftonePrinter:
    """CMYK halftone print (Yule-Nielsen modified spectral Neugebauer, in RGB)."""

    gamma: np.ndarray  # (3,) driver gamma of C, M, Y
    gcr: float  # share of min(C, M, Y) moved into K
    ink_limit: float  # total area coverage limit (e.g. 2.6 = 260 %)
    dot_gain: np.ndarray  # (4,) gain at 50 % coverage for C, M, Y, K
    yn: float  # Yule-Nielsen n
    paper: np.ndarray  # (3,) linear reflectance of the bare paper
    inks: np.ndarray  # (4, 3) multiplicative reflectance of each solid ink layer
    surface: float  # first-surface (specular) reflection added everywhere

    name = "halftone"

    @classmethod
    def from_seed(cls, seed: int = 0, strength: float = 1.0) -> "HalftonePrinter":
        rng = np.random.default_rng(seed)
        s = float(strength)
        base_inks = np.array([[0.10, 0.45, 0.85], [0.72, 0.12, 0.40], [0.92, 0.85, 0.10], [0.05, 0.05, 0.055]])
        inks = np.clip(base_inks * np.exp(rng.normal(0, 0.12 * s, base_inks.shape)), 0.02, 0.97)
        return cls(
            gamma=1.0 + rng.uniform(-0.2, 0.2, 3) * s,
            gcr=float(np.clip(0.6 + rng.uniform(-0.1, 0.1) * s, 0.0, 1.0)),
            ink_limit=float(2.6 - 0.2 * rng.random() * s),
            dot_gain=np.clip(rng.uniform(0.10, 0.20, 4) * s, 0.0, 0.25),
            yn=float(rng.uniform(1.8, 2.4)),
            paper=np.array([0.86, 0.87, 0.89]) + rng.uniform(-0.02, 0.02, 3),
            inks=inks,
            surface=0.015,
        )

    def coverage(self, rgb: np.ndarray) -> np.ndarray:
        """Effective C, M, Y, K area coverages ``(N, 4)`` after ink limit and dot gain."""
        rgb = np.clip(np.asarray(rgb, dtype=np.float64), 0.0, 1.0)
        cmy = (1.0 - rgb) ** self.gamma
        k = self.gcr * cmy.min(axis=1, keepdims=True)
        cmy = cmy - k
        total = cmy.sum(axis=1, keepdims=True) + k
        over = total > self.ink_limit
        scale = np.where(over, (self.ink_limit - k) / np.maximum(cmy.sum(axis=1, keepdims=True), 1e-9), 1.0)
        cmyk = np.concatenate([cmy * scale, k], axis=1)
        return np.clip(cmyk + 4.0 * self.dot_gain * cmyk * (1.0 - cmyk), 0.0, 1.0)

    def reflectance(self, rgb: np.ndarray) -> np.ndarray:
        a = self.coverage(rgb)
        acc = np.zeros((len(a), 3))
        inv_n = 1.0 / self.yn
        for on in itertools.product((0, 1), repeat=4):
            w = np.ones(len(a))
            refl = self.paper.copy()
            for i, bit in enumerate(on):
                w = w * (a[:, i] if bit else 1.0 - a[:, i])
                if bit:
                    refl = refl * self.inks[i]
            acc += w[:, None] * refl[None, :] ** inv_n
        return acc**self.yn + self.surface


@dataclass
class GamutPrinter:
    """CIELAB gamut compression with lightness range, chroma saturation, hue rotation, tint."""

    l_min: float
    l_max: float
    tone_gamma: float
    c_max: float
    chroma_gain: float
    hue_amp_deg: np.ndarray  # (3,) amplitudes of the hue harmonics
    hue_phase: np.ndarray  # (3,) phases (radians)
    tint: np.ndarray  # (2,) paper tint (a*, b*) at full lightness

    name = "gamut"

    @classmethod
    def from_seed(cls, seed: int = 0, strength: float = 1.0) -> "GamutPrinter":
        rng = np.random.default_rng(seed)
        s = float(strength)
        return cls(
            l_min=float(20.0 + rng.uniform(-3, 3) * s),
            l_max=float(92.0 + rng.uniform(-2, 2)),
            tone_gamma=float(1.0 + rng.uniform(-0.25, 0.25) * s),
            c_max=float(np.clip(rng.uniform(45, 65) / s**0.5, 30, 80)),
            chroma_gain=float(1.0 + rng.uniform(-0.1, 0.1) * s),
            hue_amp_deg=rng.uniform(-8.0 / 3.0, 8.0 / 3.0, 3) * s,
            hue_phase=rng.uniform(0, 2 * np.pi, 3),
            tint=rng.uniform(-2.0, 2.0, 2) + np.array([0.0, -1.5]),
        )

    def reflectance(self, rgb: np.ndarray) -> np.ndarray:
        rgb = np.clip(np.asarray(rgb, dtype=np.float64), 0.0, 1.0)
        lab = srgb_to_lab(torch.from_numpy(rgb)).numpy()
        L = np.clip(lab[:, 0], 0.0, 100.0)
        Lp = self.l_min + (self.l_max - self.l_min) * (L / 100.0) ** self.tone_gamma
        C = np.hypot(lab[:, 1], lab[:, 2])
        h = np.arctan2(lab[:, 2], lab[:, 1])
        Cp = self.c_max * np.tanh(self.chroma_gain * C / self.c_max)
        k = np.arange(1, 4)[None, :]
        hp = h + np.deg2rad((self.hue_amp_deg[None, :] * np.sin(k * h[:, None] + self.hue_phase[None, :])).sum(1))
        w = ((Lp - self.l_min) / (self.l_max - self.l_min))[:, None] ** 2
        ab = np.stack([Cp * np.cos(hp), Cp * np.sin(hp)], 1) + w * self.tint[None, :]
        out = torch.from_numpy(np.concatenate([Lp[:, None], ab], 1))
        lin = xyz_to_linear(lab_to_xyz(out)).numpy()
        return np.clip(lin, 0.002, 1.0)


def make_printer(kind: str, seed: int = 0, strength: float = 1.0) -> HalftonePrinter | GamutPrinter:
    """``kind`` ``"halftone"`` or ``"gamut"``."""
    kinds = {"halftone": HalftonePrinter, "gamut": GamutPrinter}
    if kind not in kinds:
        raise ValueError(f"unknown simulated printer {kind!r} (use {sorted(kinds)})")
    return kinds[kind].from_seed(seed, strength)


def print_reflectance(printer, digital: np.ndarray) -> np.ndarray:
    """Apply a printer to an image ``(H, W, 3)`` uint8 (or float in [0, 1]); returns float32
    reflectance ``(H, W, 3)``. Images with few distinct colours (charts) are mapped per colour."""
    img = np.asarray(digital)
    h, w = img.shape[:2]
    if img.dtype == np.uint8:
        packed = ((img[..., 0].astype(np.int32) << 16) | (img[..., 1].astype(np.int32) << 8) | img[..., 2]).ravel()
        # colours from a subsample, then a binary search per pixel (much faster than a full sort);
        # any colour the subsample missed is added and the search repeated
        uniq = np.unique(packed[:: 7])
        inv = np.clip(np.searchsorted(uniq, packed), 0, len(uniq) - 1)
        missing = uniq[inv] != packed
        if missing.any():
            uniq = np.union1d(uniq, packed[missing])
            inv = np.searchsorted(uniq, packed)
        cols = np.stack([(uniq >> 16) & 255, (uniq >> 8) & 255, uniq & 255], 1) / 255.0
        refl = printer.reflectance(cols).astype(np.float32)
        return refl[inv].reshape(h, w, 3)
    flat = img.reshape(-1, 3).astype(np.float64)
    out = np.concatenate([printer.reflectance(flat[i : i + 65536]) for i in range(0, len(flat), 65536)])
    return out.astype(np.float32).reshape(h, w, 3)
