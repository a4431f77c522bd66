"""Named simulated print-and-capture set-ups shared by the shipped profiles, tests and demos.

``sim-halftone`` and ``sim-gamut`` are the two simulated printers whose profiles ship in
``printers/`` (fitted by ``patchkit calibrate`` from simulated photos, see
``examples/simulated_printers.py``); :func:`preset` rebuilds the exact printer and camera, so
a demo can print and film a patch with the same simulated devices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from patchkit.capture.camera import SimulatedCamera
from patchkit.capture.printers import make_printer


@dataclass(frozen=True)
class Preset:
    kind: str
    seed: int
    strength: float = 1.0
    blur_sigma: float = 1.0
    jpeg_quality: int = 85

    def printer(self):
        return make_printer(self.kind, self.seed, self.strength)

    def camera(self) -> SimulatedCamera:
        paper = self.printer().reflectance(np.ones((1, 3)))[0]
        return SimulatedCamera.from_seed(
            self.seed + 10, strength=self.strength, blur_sigma=self.blur_sigma, jpeg_quality=self.jpeg_quality, paper=paper
        )

    def describe(self) -> str:
        return (
            f"patchkit.capture.presets.preset('sim-{self.kind}'): make_printer('{self.kind}', seed={self.seed}, "
            f"strength={self.strength}); SimulatedCamera.from_seed({self.seed + 10}, strength={self.strength}, "
            f"blur_sigma={self.blur_sigma}, jpeg_quality={self.jpeg_quality})"
        )


PRESETS = {
    "sim-halftone": Preset("halftone", seed=1),
    "sim-gamut": Preset("gamut", seed=1),
}


def preset(name: str) -> Preset:
    """The simulated set-up ``name`` (``sim-halftone`` or ``sim-gamut``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r} (use {sorted(PRESETS)})")
    return PRESETS[name]
