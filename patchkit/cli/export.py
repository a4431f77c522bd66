"""``patchkit export``: print-ready PDF (or PNG) of a patch at an exact physical size."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from patchkit.cli.common import (add_json_option, add_patch_input, add_quiet_option, check_range, output_file,
                                 patch_input, write_json_option)
from patchkit.evaluation.conditions import read_patch_uint8
from patchkit.io import atomic_write_bytes, atomic_write_json
from patchkit.printing.drawing import PAGE_SIZES_MM
from patchkit.printing.export import export_patch
from patchkit.printing.pngio import save_png
from patchkit.printing.profile import PrinterProfile


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="write a print-ready PDF of a patch at an exact physical size",
        description=(
            "Upsample the patch by nearest neighbour to round(mm / 25.4 * dpi) pixels, store it losslessly in a PDF "
            "placed at exactly WIDTH x HEIGHT mm, with crop marks, a 100 mm scale bar, a label (size, profile hash), "
            "a QA strip and optional ArUco markers; --tile splits large patches over pages. A JSON record of the "
            "layout (sizes, marker ids and positions in mm) is written next to the output."
        ),
    )
    add_patch_input(p, "the digital patch (RGB image)")
    p.add_argument("--width-mm", type=float, required=True, help="printed width in mm")
    p.add_argument("--height-mm", type=float, help="printed height in mm (default: keep the aspect ratio)")
    p.add_argument("--dpi", type=float, default=300.0, help="printer resolution for the upsampling (default 300)")
    p.add_argument("--markers", action="store_true", help="add 4 ArUco markers around the patch (for video scoring)")
    p.add_argument("--marker-mm", type=float, help="marker side in mm (default 15%% of the shorter side, 10..40)")
    p.add_argument("--page", choices=sorted(PAGE_SIZES_MM), default="a4", help="page size (default a4)")
    p.add_argument("--tile", action="store_true", help="split over several pages with overlaps and registration marks")
    p.add_argument("--overlap-mm", type=float, default=10.0, help="tile overlap in mm (default 10)")
    p.add_argument("--printer", metavar="PROFILE", help="printer profile: its name and hash go on the label and QA strip")
    p.add_argument("--no-qa-strip", action="store_true", help="leave out the grey ramp / swatch strip")
    p.add_argument("-o", "--out", required=True, metavar="FILE.pdf|DIR",
                   help="output .pdf (or .png: the upsampled image only), or a folder for DIR/PATCH.pdf")
    p.add_argument("--random", action="store_true",
                   help="export the random-noise control print instead: uniform noise of the patch's pixel size, "
                        "printed at the same size with the same markers (for 'patchkit score --control')")
    p.add_argument("--seed", type=int, default=0, help="seed of the --random noise (default 0)")
    add_json_option(p, "the layout record (also written next to the output)")
    add_quiet_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    args.patch = patch_input(args)
    out = output_file(args.out, args.patch if not args.random else Path(args.patch).stem + "_random", ".pdf",
                      (".pdf", ".png"))
    patch = read_patch_uint8(args.patch, "export")
    if args.random:
        patch = np.random.default_rng(args.seed).integers(0, 256, patch.shape, dtype=np.uint8)
    profile = PrinterProfile.load(args.printer) if args.printer else None
    if args.marker_mm is not None:
        check_range("marker-mm", args.marker_mm, 5, 100)
    exp = export_patch(
        patch,
        args.width_mm,
        args.height_mm,
        dpi=args.dpi,
        page=args.page,
        markers=args.markers,
        marker_mm=args.marker_mm,
        tile=args.tile,
        overlap_mm=args.overlap_mm,
        profile=profile,
        qa_strip=not args.no_qa_strip,
        source=f"random noise (seed {args.seed}) of the size of {args.patch}" if args.random else str(args.patch),
    )
    if out.suffix.lower() == ".png":
        save_png(out, exp.image, args.dpi)
        exp.meta["output"] = {"format": "png", "note": "image only; no marks (use .pdf for crop marks and markers)"}
    else:
        atomic_write_bytes(out, exp.pdf)
        exp.meta["output"] = {"format": "pdf", "pages": exp.meta.get("pages", 1)}
    sidecar = out.with_suffix(".json")
    atomic_write_json(sidecar, exp.meta)
    write_json_option(args, exp.meta)
    w, h = exp.meta["size_mm"]
    nx, ny = exp.meta["pixels"]
    print(f"wrote {out} ({w:g} x {h:g} mm, {nx} x {ny} px @ {args.dpi:g} dpi, {exp.meta.get('pages', 1)} page(s)) and {sidecar}")
    print("print at 100% (Actual size), no scaling; check the scale bar with a ruler")
    return 0
