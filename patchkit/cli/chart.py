"""``patchkit chart``: write a printable colour calibration chart (PDF, PNG, layout JSON)."""

from __future__ import annotations

import argparse
from pathlib import Path

from patchkit.cli.common import add_json_option, add_quiet_option, check_range, write_json_option
from patchkit.errors import PatchkitError
from patchkit.io import atomic_write_bytes, atomic_write_json
from patchkit.printing.chart import N_KEYS, chart_image, chart_page, layout_for_key
from patchkit.printing.drawing import PAGE_SIZES_MM
from patchkit.printing.pdf import write_pdf
from patchkit.printing.pngio import save_png


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "chart",
        help="write a printable colour calibration chart",
        description=(
            "Write DIR/chart.pdf (vector marks at exact physical size), DIR/chart.png (with its DPI) and "
            "DIR/chart.json (swatch colours and positions in mm, marker ids and positions). Print it at 100%% "
            "with the printer, paper and settings of the patch, photograph it, then run patchkit calibrate."
        ),
    )
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--page", choices=sorted(PAGE_SIZES_MM), default="a4", help="page size (default a4)")
    p.add_argument(
        "--key", type=int, default=0, help=f"layout key 0..{N_KEYS - 1}: marker ids and swatch order (default 0)"
    )
    p.add_argument("--dpi", type=float, default=300.0, help="resolution of chart.png (default 300)")
    add_json_option(p, "the chart layout (as DIR/chart.json)")
    add_quiet_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_range("dpi", args.dpi, 50, 2400)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise PatchkitError("--out must be a folder", out)
    layout = layout_for_key(args.key, args.page)
    atomic_write_bytes(out / "chart.pdf", write_pdf([chart_page(layout)], title=layout.chart_id))
    save_png(out / "chart.png", chart_image(layout, args.dpi), args.dpi)
    data = layout.to_json()
    data["png_dpi"] = args.dpi
    atomic_write_json(out / "chart.json", data)
    write_json_option(args, data)
    print(f"wrote {out / 'chart.pdf'}, {out / 'chart.png'} ({args.dpi:g} dpi), {out / 'chart.json'}")
    print(f"{layout.chart_id}: {layout.n_swatches} swatches, marker ids {layout.marker_ids}; print at 100% (Actual size)")
    return 0
