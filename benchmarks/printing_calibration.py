"""Printing acceptance numbers on the simulator (CPU, seeded, both simulated printers).

For each printer family (halftone, gamut), condition (nominal, hard) and seed: print and
photograph the chart (870 x 1160 px, 1.01 MP), detect the markers, run ``calibrate`` and score
the fitted profile against the simulator's truth on 2000 uniform colours, next to an affine fit
of the same measurements and no calibration. Then the round trip (export -> simulated print and
photo -> measured vs the profile's training-time prediction) for the shipped profiles, and the
speed of the differentiable lookup.

    python benchmarks/printing_calibration.py [--seeds 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from patchkit.capture import SimulatedCamera, make_printer, photograph_chart, photograph_sheet, random_sheet_pose, simulated_truth  # noqa: E402
from patchkit.capture.presets import preset  # noqa: E402
from patchkit.printing import PrinterProfile  # noqa: E402
from patchkit.printing.calibrate import calibrate  # noqa: E402
from patchkit.printing.chart import layout_for_key  # noqa: E402
from patchkit.printing.drawing import PAGE_SIZES_MM, rasterize  # noqa: E402
from patchkit.printing.export import export_patch  # noqa: E402
from patchkit.printing.fit import delta_e_rgb, fit_polynomial  # noqa: E402
from patchkit.printing.lut import lookup_seconds  # noqa: E402
from patchkit.printing.measure import chart_homography, detect_markers  # noqa: E402
from patchkit.printing.qa import measure_print_photo  # noqa: E402

CONDITIONS = {
    "nominal": dict(strength=1.0, blur=1.0, jpeg=85, perspective=0.08),
    "hard": dict(strength=1.5, blur=1.5, jpeg=70, perspective=0.12),
}


def calibration_row(kind: str, cond: str, seed: int, test: np.ndarray) -> dict:
    c = CONDITIONS[cond]
    layout = layout_for_key(0)
    printer = make_printer(kind, seed, c["strength"])
    camera = SimulatedCamera.from_seed(seed + 10, strength=c["strength"], blur_sigma=c["blur"], jpeg_quality=c["jpeg"],
                                   paper=printer.reflectance(np.ones((1, 3)))[0])
    photo, pose = photograph_chart(layout, printer, camera, (870, 1160), seed=seed + 20, perspective=c["perspective"])
    found = detect_markers(photo)
    ox, oy = layout.origin_mm
    corner_err = max(
        np.linalg.norm(found[m] - pose.project(mm + [ox, oy]), axis=1).max()
        for m, mm in layout.marker_corners_mm().items() if m in found
    )
    H, rms, _ = chart_homography(found, layout)
    t0 = time.perf_counter()
    profile, report = calibrate([("photo", photo)], layout)
    seconds = time.perf_counter() - t0
    truth = simulated_truth(printer, camera, test)
    de = delta_e_rgb(profile.predict(test).double().numpy(), truth)
    kept = profile.measurements["photo_kept"][0]
    x, y = layout.digital()[kept], profile.measurements["photo_normalised"][0][kept].astype(np.float64)
    affine = delta_e_rgb(fit_polynomial(x, y, 1).predict(test), truth).mean()
    none = delta_e_rgb(test, truth).mean()
    return {
        "printer": kind, "condition": cond, "seed": seed,
        "markers": len(found), "corner_err_px": float(corner_err), "reproj_px": float(rms),
        "mean": float(de.mean()), "p95": float(np.percentile(de, 95)), "max": float(de.max()),
        "cv_mean": report.cv["mean"], "cv_p95": report.cv["p95"],
        "affine": float(affine), "none": float(none),
        "x_affine": float(affine / de.mean()), "x_none": float(none / de.mean()),
        "calibrate_s": seconds, "used": report.n_used, "swatches": report.n_swatches,
    }


def round_trip(name: str) -> dict:
    prof = PrinterProfile.load(ROOT / "printers" / name)
    blocks = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    patch = np.kron(blocks, np.ones((12, 12, 1), np.uint8))
    exp = export_patch(patch, 120.0, markers=True, profile=prof)
    p = preset(name)
    sheet = PAGE_SIZES_MM["a4"]
    pose = random_sheet_pose(sheet, (960, 1280), np.random.default_rng(7), fill=0.85, perspective=0.08)
    scale = np.linalg.norm(pose.corners[1] - pose.corners[0]) / sheet[0]
    photo = photograph_sheet(rasterize(exp.pages[0], 2.2 * scale), sheet, p.printer(), p.camera(), pose, (960, 1280), seed=3)
    check = measure_print_photo(photo, exp.meta, prof)
    cell = 15.0
    centres = np.array([[(j + 0.5) * cell, (i + 0.5) * cell] for i in range(8) for j in range(8)])
    with torch.no_grad():
        pred = prof(torch.from_numpy(patch).permute(2, 0, 1)[None].float() / 255)[0]
    idx = ((centres / cell - 0.5) * 12 + 6).astype(int)
    de = delta_e_rgb(check.sample(centres, 7.5), pred[:, idx[:, 1], idx[:, 0]].T.double().numpy())
    return {"profile": name, "round_trip_mean": float(de.mean()), "round_trip_p95": float(np.percentile(de, 95)),
            "qa_strip_mean": float(check.qa_delta_e.mean())}


def lookup_speed() -> float:
    lut = torch.rand(9, 9, 9, 3, requires_grad=True)
    x = torch.rand(8, 3, 300, 300, requires_grad=True)
    return lookup_seconds(x, lut)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    test = np.random.default_rng(12345).random((2000, 3))
    rows = [calibration_row(k, c, s, test) for k in ("halftone", "gamut") for c in CONDITIONS for s in range(1, args.seeds + 1)]
    print("| printer | cond | seed | markers | corner err px | LUT mean | LUT p95 | LUT max | CV mean | affine | none | x affine | x none | calibrate s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['printer']} | {r['condition']} | {r['seed']} | {r['markers']}/4 | {r['corner_err_px']:.2f} | {r['mean']:.2f} | "
              f"{r['p95']:.2f} | {r['max']:.1f} | {r['cv_mean']:.2f} | {r['affine']:.2f} | {r['none']:.1f} | "
              f"{r['x_affine']:.1f} | {r['x_none']:.1f} | {r['calibrate_s']:.1f} |")
    trips = [round_trip(n) for n in ("sim-halftone", "sim-gamut")]
    print("\n| profile | round trip mean dE2000 | p95 | QA strip mean |\n|---|---|---|---|")
    for t in trips:
        print(f"| {t['profile']} | {t['round_trip_mean']:.2f} | {t['round_trip_p95']:.2f} | {t['qa_strip_mean']:.2f} |")
    speed = lookup_speed()
    print(f"\nLUT lookup 8x3x300x300 forward+backward: {speed:.3f} s (CPU, {torch.get_num_threads()} threads)")
    if args.json:
        Path(args.json).write_text(json.dumps({"calibration": rows, "round_trip": trips, "lookup_fwd_bwd_s": speed}, indent=2))


if __name__ == "__main__":
    main()
