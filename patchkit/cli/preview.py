"""``patchkit preview``: the digital patch next to how it should look printed and filmed."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from patchkit.cli.common import add_patch_input, add_quiet_option, output_file, patch_input
from patchkit.errors import PatchkitError
from patchkit.evaluation.conditions import read_patch_uint8
from patchkit.io import atomic_write_json, save_image
from patchkit.printing.gamut import gamut_report
from patchkit.printing.profile import PrinterProfile


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "preview",
        help="show a patch next to its predicted print-and-capture, with the out-of-gamut share",
        description=(
            "Write a side-by-side image: the digital patch, its predicted appearance printed and filmed "
            "(through the printer profile), and the out-of-gamut pixels (farther than --threshold dE2000 from "
            "any printable colour) in magenta. Prints the share of pixels out of gamut."
        ),
    )
    add_patch_input(p, "the digital patch")
    p.add_argument("--printer", required=True, metavar="PROFILE", help="printer profile (e.g. printers/NAME)")
    p.add_argument("-o", "--out", metavar="FILE.png|DIR",
                   help="output image, or a folder for DIR/PATCH_preview.png (default: next to the patch)")
    add_quiet_option(p)
    p.add_argument("--threshold", type=float, default=3.0, help="out-of-gamut threshold in dE2000 (default 3)")
    p.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    p.set_defaults(func=run)


def side_by_side(patch: np.ndarray, predicted: np.ndarray, out_of_gamut: np.ndarray, height: int = 320) -> np.ndarray:
    """Three panels (digital | predicted capture | out-of-gamut in magenta), each ``height`` px
    tall (nearest-neighbour scaling), separated by white gutters, with captions."""
    h, w = patch.shape[:2]
    width = max(1, round(w * height / h))
    def scale(img: np.ndarray) -> np.ndarray:
        return cv2.resize(img, (width, height), interpolation=cv2.INTER_NEAREST)
    flagged = patch.copy()
    flagged[out_of_gamut] = (255, 0, 255)
    grey = (0.3 * patch.mean(axis=2, keepdims=True) + 0.7 * 255).astype(np.uint8).repeat(3, axis=2)
    flagged = np.where(out_of_gamut[..., None], flagged, grey)
    panels = [scale(patch), scale(predicted), scale(flagged)]
    gutter, top = 12, 28
    canvas = np.full((height + top + gutter, 3 * width + 4 * gutter, 3), 255, np.uint8)
    for i, (panel, caption) in enumerate(zip(panels, ["digital", "printed + filmed (profile)", "out of gamut"])):
        x = gutter + i * (width + gutter)
        canvas[top : top + height, x : x + width] = panel
        cv2.putText(canvas, caption, (x, top - 9), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def run(args: argparse.Namespace) -> int:
    if not args.threshold > 0:
        raise PatchkitError(f"--threshold {args.threshold} must be positive")
    args.patch = patch_input(args)
    patch = read_patch_uint8(args.patch, "preview")
    profile = PrinterProfile.load(args.printer)
    rep = gamut_report(profile, patch, threshold=args.threshold)
    stem = Path(args.patch).stem + "_preview"
    out = output_file(args.out, stem, ".png", (".png",)) if args.out else Path(args.patch).with_name(stem + ".png")
    save_image(out, side_by_side(patch, rep.predicted, rep.distance > args.threshold))
    print(
        f"{args.patch}: {rep.share_out_of_gamut:.1%} of pixels out of gamut (> {args.threshold:g} dE2000 from any "
        f"printable colour); mean dE2000 digital vs predicted capture {rep.mean_print_error:.2f}"
    )
    print(f"wrote {out}")
    if args.json:
        atomic_write_json(
            args.json,
            {
                "patch": str(args.patch),
                "printer": str(args.printer),
                "profile_sha256": profile.sha256,
                "threshold": args.threshold,
                "share_out_of_gamut": rep.share_out_of_gamut,
                "mean_print_error": rep.mean_print_error,
                "preview": str(out),
            },
        )
    return 0
