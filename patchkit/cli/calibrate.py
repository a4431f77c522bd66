"""``patchkit calibrate``: fit a printer profile from photos (or a video) of a printed chart."""

from __future__ import annotations

import argparse
from pathlib import Path

from patchkit.cli.common import add_quiet_option, check_range
from patchkit.io import atomic_write_json
from patchkit.printing.calibrate import calibrate_files


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "calibrate",
        help="fit a printer profile from photos of a printed calibration chart",
        description=(
            "Detect the chart's markers, rectify, measure the swatches (flat-fielded, paper-white relative), "
            "fit a 9x9x9 lattice (smoothness by cross-validation in dE2000) and save the profile "
            "(profile.json + profile.npz). Prints the cross-validated mean / p95 / max dE2000."
        ),
    )
    p.add_argument("inputs", nargs="+", metavar="PHOTO_OR_VIDEO", help="photos and/or short videos of one chart")
    p.add_argument("-o", "--out", required=True, metavar="PROFILE_PATH", help="profile folder, e.g. printers/NAME")
    p.add_argument("--chart", metavar="CHART_JSON", help="chart.json to check the photos against (optional)")
    p.add_argument("--name", help="profile name (default: the output folder's name)")
    p.add_argument("--printer-model", default="", help="note: printer model and driver settings")
    p.add_argument("--paper", default="", help="note: paper or medium")
    p.add_argument("--camera", default="", help="note: camera and mode")
    p.add_argument("--notes", default="", help="free-text note")
    p.add_argument("--lut-size", type=int, default=9, help="lattice nodes per axis (default 9)")
    p.add_argument("--json", metavar="FILE", help="also write the fit report as JSON")
    add_quiet_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_range("lut-size", args.lut_size, 3, 33)
    out = Path(args.out)
    notes = {k: v for k, v in (("printer", args.printer_model), ("paper", args.paper), ("camera", args.camera), ("text", args.notes)) if v}
    name = args.name or (out.stem if out.suffix.lower() in (".json", ".npz") else out.name)
    profile, report = calibrate_files(args.inputs, chart=args.chart, lut_size=args.lut_size, name=name, notes=notes)
    path = profile.save(out)
    print(report.format())
    print(f"saved {path} (sha256 {profile.meta['sha256'][:12]})")
    if args.json:
        atomic_write_json(args.json, {**report.to_json(), "profile": str(path), "sha256": profile.meta["sha256"]})
    return 0
