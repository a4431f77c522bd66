"""``patchkit export``: print-ready PDF (or PNG) of a patch at an exact physical size."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from patchkit.cli.common import (add_json_option, add_patch_input, add_quiet_option, check_range, output_file,
                                 patch_input, write_json_option)
from patchkit.errors import PatchkitError
from patchkit.evaluation.conditions import read_patch_uint8, read_sidecar
from patchkit.io import atomic_write_bytes, atomic_write_json
from patchkit.printing.drawing import PAGE_SIZES_MM
from patchkit.printing.export import export_patch
from patchkit.printing.fabric import DEFAULT_FABRIC_DPI, export_fabric, is_texture, sidecar_tile_cm
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
    p.add_argument("--width-mm", type=float, help="printed width in mm (required for a patch)")
    p.add_argument("--height-mm", type=float, help="printed height in mm (default: keep the aspect ratio)")
    p.add_argument("--dpi", type=float, help="printer resolution for the upsampling (default 300; fabric 150)")
    p.add_argument("--fabric-cm", type=float, nargs="+", metavar=("W", "H"),
                   help="texture: write the fabric print, the tile repeated over W x H cm (H defaults to W); "
                        "implied by a sidecar with \"kind\": \"texture\" (writes .pdf, .png and .json)")
    p.add_argument("--tile-cm", type=float, metavar="C",
                   help="texture: repeat length of the tile in cm (default: the sidecar's tile_cm)")
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
    try:
        sidecar = read_sidecar(args.patch)
    except PatchkitError:
        if args.fabric_cm is not None or args.width_mm is None:
            raise
        sidecar = {}  # a patch export never needed its sidecar
    if args.fabric_cm is not None or is_texture(sidecar):
        return _run_fabric(args, sidecar)
    if args.width_mm is None:
        raise PatchkitError("--width-mm is required to export a patch (or --fabric-cm W [H] for a texture)")
    if args.dpi is None:
        args.dpi = 300.0
    out = output_file(args.out, args.patch if not args.random else Path(args.patch).stem + "_random", ".pdf",
                      (".pdf", ".png"))
    _refuse_overwriting(Path(args.patch), (out, out.with_suffix(".json")), "patch")
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


def _refuse_overwriting(src: Path, outputs, what: str) -> None:
    """A one-line error when an output would replace the exported image or its existing sidecar."""
    inputs = {p.resolve() for p in (src, src.with_suffix(".json")) if p.exists()}
    for path in outputs:
        if path.resolve() in inputs:
            raise PatchkitError(f"would overwrite the {what} or its sidecar; choose another --out", path)


def _run_fabric(args: argparse.Namespace, sidecar: dict) -> int:
    """``export`` of a texture tile: the fabric print as PDF + PNG (same stem) + JSON record."""
    src = Path(args.patch)
    fabric = args.fabric_cm
    if fabric is None:
        raise PatchkitError("is a texture (its sidecar says kind texture): give the fabric size with --fabric-cm W [H]",
                            src)
    if len(fabric) > 2:
        raise PatchkitError(f"--fabric-cm takes W or W H in cm, got {len(fabric)} numbers")
    for option in ("width_mm", "height_mm", "marker_mm"):
        if getattr(args, option) is not None:
            raise PatchkitError(f"--{option.replace('_', '-')} is for patches; a fabric print takes --fabric-cm W [H]")
    for option in ("markers", "tile", "random"):
        if getattr(args, option):
            raise PatchkitError(f"--{option} is for patches, not for a fabric print")
    tile_cm = args.tile_cm if args.tile_cm is not None else sidecar_tile_cm(sidecar, src)
    if tile_cm is None:
        raise PatchkitError("no repeat length: its sidecar has no tile_cm; give --tile-cm C (cm)", src)
    out = output_file(args.out, src.stem + "_fabric", ".pdf", (".pdf", ".png"))
    pdf, png, record = out.with_suffix(".pdf"), out.with_suffix(".png"), out.with_suffix(".json")
    _refuse_overwriting(src, (pdf, png, record), "texture")
    tile = read_patch_uint8(src, "export")
    profile = PrinterProfile.load(args.printer) if args.printer else None
    dpi = DEFAULT_FABRIC_DPI if args.dpi is None else args.dpi
    exp = export_fabric(tile, tile_cm, fabric[0], fabric[-1], dpi=dpi, profile=profile,
                        qa_strip=not args.no_qa_strip, source=str(src))
    atomic_write_bytes(pdf, exp.pdf)
    save_png(png, exp.image, dpi)
    exp.meta["output"] = {"pdf": str(pdf), "png": str(png)}
    atomic_write_json(record, exp.meta)
    write_json_option(args, exp.meta)
    m = exp.meta
    print(f"wrote {pdf}, {png} and {record} (fabric {fabric[0]:g} x {fabric[-1]:g} cm, {m['pixels'][0]} x "
          f"{m['pixels'][1]} px @ {dpi:g} dpi; repeat {m['repeat_cm']:g} cm = {m['repeat_px']} px, "
          f"{m['repeats'][0]:.4g} x {m['repeats'][1]:.4g} repeats)")
    print("print at 100% (Actual size), no scaling; check the cm ruler with a tape measure")
    return 0
