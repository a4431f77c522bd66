"""Regenerate the shipped profiles in printers/: identity, sim-halftone and sim-gamut.

The two simulated printers are calibrated exactly as a user would calibrate a real one: the
chart is "printed" and "photographed" twice (two poses) by the simulator, the photos are written
as JPEG files, and ``patchkit calibrate`` fits the profile from them.

    python examples/simulated_printers.py [--out printers]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from PIL import Image

from patchkit.capture import photograph_chart
from patchkit.capture.presets import PRESETS
from patchkit.cli.main import main as patchkit_main
from patchkit.printing import PrinterProfile
from patchkit.printing.chart import layout_for_key


def build(out: Path, photos: int = 2) -> None:
    PrinterProfile.identity().save(out / "identity")
    layout = layout_for_key(0)
    with tempfile.TemporaryDirectory() as tmp:
        for name, p in PRESETS.items():
            printer, camera = p.printer(), p.camera()
            files = []
            for shot in range(photos):
                photo, _ = photograph_chart(layout, printer, camera, (1200, 1600), seed=1000 + 17 * shot)
                path = Path(tmp) / f"{name}_{shot}.jpg"
                Image.fromarray(photo).save(path, quality=92)
                files.append(path.name)  # the profile records photo names, not temporary folders
            cwd = os.getcwd()
            os.chdir(tmp)
            try:
                rc = patchkit_main(
                    ["calibrate", *files, "-o", str(out.resolve() / name), "--name", name,
                     "--printer-model", f"simulated {p.kind} printer", "--paper", "simulated",
                     "--camera", "simulated camera", "--notes", p.describe()]
                )
            finally:
                os.chdir(cwd)
            if rc != 0:
                raise SystemExit(rc)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "printers"))
    ap.add_argument("--photos", type=int, default=2)
    a = ap.parse_args()
    build(Path(a.out), a.photos)
