"""The colour calibration chart: its layout, colours and printable page.

Layout (all in mm, chart frame coordinates: origin at the top-left corner of the top-left
marker, y down). Four ArUco ``DICT_4X4_50`` markers of 18 mm sit at the frame corners; their ids
``4k .. 4k+3`` (top-left, top-right, bottom-right, bottom-left) encode the layout key ``k``
(0 <= k < 10), so :func:`layout_for_key` rebuilds the layout from a photo alone. Between the
marker rows lies a 22 x 19 grid of 8 mm cells, each holding a 6 mm swatch: the 2 mm paper-white
gaps are the flat-field reference. The 418 swatches are a 6x6x6 RGB grid, a 17-step neutral
ramp, 4 extra replicates each of white, black, mid-grey and the 6 primaries/secondaries, and a
low-discrepancy (Halton) fill pushed towards the gamut shell; placement is shuffled with the
seed ``k``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from patchkit.errors import PatchkitError
from patchkit.markers import DEFAULT_DICTIONARY, marker_bits
from patchkit.printing.drawing import PAGE_SIZES_MM, Page, rasterize

LAYOUT_VERSION = 1
MARKER_DICT = DEFAULT_DICTIONARY
N_KEYS = 10  # chart keys use marker ids 0..39; ids 40.. are reserved for export markers
MARKER_MM = 18.0
CELL_MM = 8.0
SWATCH_MM = 6.0
COLS, ROWS = 22, 19
FRAME_W, FRAME_H = 186.0, 198.0
GRID_X, GRID_Y = (FRAME_W - COLS * CELL_MM) / 2.0, 22.0
FRAME_TOP_MM = 12.0  # frame's top edge on the page


@dataclass
class ChartLayout:
    """Everything needed to print a chart and to measure a photo of it.

    ``swatch_rgb`` ``(N, 3)`` uint8 digital colours; ``swatch_xy`` ``(N, 2)`` top-left corners
    in frame mm; ``swatch_cell`` ``(N, 2)`` (col, row); ``markers`` maps id -> top-left corner
    (frame mm); ``origin_mm`` is where the frame's top-left sits on the page.
    """

    key: int
    swatch_rgb: np.ndarray
    swatch_xy: np.ndarray
    swatch_cell: np.ndarray
    markers: dict[int, tuple[float, float]]
    page: str = "a4"
    origin_mm: tuple[float, float] = (12.0, FRAME_TOP_MM)
    version: int = LAYOUT_VERSION
    marker_mm: float = MARKER_MM
    swatch_mm: float = SWATCH_MM
    cell_mm: float = CELL_MM
    frame_mm: tuple[float, float] = (FRAME_W, FRAME_H)
    grid_origin_mm: tuple[float, float] = (GRID_X, GRID_Y)
    grid_shape: tuple[int, int] = (COLS, ROWS)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def chart_id(self) -> str:
        return f"patchkit-chart-v{self.version}-k{self.key}"

    @property
    def marker_ids(self) -> list[int]:
        return sorted(self.markers)

    @property
    def n_swatches(self) -> int:
        return len(self.swatch_rgb)

    def digital(self) -> np.ndarray:
        """Swatch digital colours ``(N, 3)`` float64 in [0, 1]."""
        return self.swatch_rgb.astype(np.float64) / 255.0

    def swatch_centres(self) -> np.ndarray:
        """``(N, 2)`` swatch centres in frame mm."""
        return self.swatch_xy + self.swatch_mm / 2.0

    def marker_corners_mm(self) -> dict[int, np.ndarray]:
        """id -> ``(4, 2)`` corners in frame mm, in OpenCV's order (TL, TR, BR, BL)."""
        s = self.marker_mm
        out = {}
        for mid, (x, y) in self.markers.items():
            out[mid] = np.array([[x, y], [x + s, y], [x + s, y + s], [x, y + s]], dtype=np.float64)
        return out

    def gap_points_mm(self) -> np.ndarray:
        """``(M, 2)`` centres of the paper-white crossings between cells (flat-field samples)."""
        gx, gy = self.grid_origin_mm
        cols, rows = self.grid_shape
        xs = gx + self.cell_mm * np.arange(cols + 1)
        ys = gy + self.cell_mm * np.arange(rows + 1)
        xx, yy = np.meshgrid(xs, ys)
        return np.stack([xx.ravel(), yy.ravel()], axis=1)

    def fingerprint(self) -> str:
        """sha256 (first 16 hex digits) of the colours and positions: two charts with the same
        fingerprint measure identically."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.swatch_rgb).tobytes())
        h.update(np.ascontiguousarray(np.round(self.swatch_xy * 1000).astype(np.int64)).tobytes())
        h.update(json.dumps(sorted(self.markers.items())).encode())
        return h.hexdigest()[:16]

    # -------------------------------------------------------------- JSON
    def to_json(self) -> dict[str, Any]:
        return {
            "schema": "patchkit.chart",
            "chart_id": self.chart_id,
            "version": self.version,
            "key": self.key,
            "fingerprint": self.fingerprint(),
            "page": self.page,
            "units": "mm; frame coordinates, origin at the top-left marker's top-left corner, y down",
            "origin_on_page_mm": list(self.origin_mm),
            "frame_mm": list(self.frame_mm),
            "marker_dictionary": MARKER_DICT,
            "marker_size_mm": self.marker_mm,
            "markers": [
                {"id": int(mid), "corner": ["top-left", "top-right", "bottom-right", "bottom-left"][i], "xy_mm": list(xy)}
                for i, (mid, xy) in enumerate(sorted(self.markers.items()))
            ],
            "swatch_size_mm": self.swatch_mm,
            "cell_mm": self.cell_mm,
            "grid_origin_mm": list(self.grid_origin_mm),
            "grid_shape": list(self.grid_shape),
            "swatches": [
                {"rgb": [int(v) for v in rgb], "xy_mm": [float(x), float(y)], "cell": [int(c), int(r)]}
                for rgb, (x, y), (c, r) in zip(self.swatch_rgb, self.swatch_xy, self.swatch_cell)
            ],
            **({"extra": self.extra} if self.extra else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], path: str | Path | None = None) -> "ChartLayout":
        try:
            if data.get("schema") != "patchkit.chart":
                raise KeyError("schema")
            sw = data["swatches"]
            markers = {int(m["id"]): tuple(float(v) for v in m["xy_mm"]) for m in data["markers"]}
            return cls(
                key=int(data["key"]),
                swatch_rgb=np.array([s["rgb"] for s in sw], dtype=np.uint8),
                swatch_xy=np.array([s["xy_mm"] for s in sw], dtype=np.float64),
                swatch_cell=np.array([s["cell"] for s in sw], dtype=np.int64),
                markers=markers,
                page=str(data.get("page", "a4")),
                origin_mm=tuple(data.get("origin_on_page_mm", (12.0, FRAME_TOP_MM))),
                version=int(data["version"]),
                marker_mm=float(data["marker_size_mm"]),
                swatch_mm=float(data["swatch_size_mm"]),
                cell_mm=float(data["cell_mm"]),
                frame_mm=tuple(data["frame_mm"]),
                grid_origin_mm=tuple(data["grid_origin_mm"]),
                grid_shape=tuple(int(v) for v in data["grid_shape"]),
                extra=dict(data.get("extra", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PatchkitError(f"not a valid patchkit chart layout (bad or missing {exc})", path) from exc

    @classmethod
    def load(cls, path: str | Path) -> "ChartLayout":
        path = Path(path)
        if path.is_dir():
            path = path / "chart.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise PatchkitError("chart layout file not found", path) from exc
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PatchkitError(f"cannot read chart layout ({exc})", path) from exc
        if not isinstance(data, dict):
            raise PatchkitError("not a valid patchkit chart layout", path)
        return cls.from_json(data, path)


# ---------------------------------------------------------------------- colours
def _halton(n: int, base: int, skip: int) -> np.ndarray:
    out = np.zeros(n)
    for i in range(n):
        f, r, k = 1.0, 0.0, i + 1 + skip
        while k > 0:
            f /= base
            r += f * (k % base)
            k //= base
        out[i] = r
    return out


def chart_colours(key: int, total: int = COLS * ROWS) -> tuple[np.ndarray, np.ndarray]:
    """``(total, 3)`` uint8 swatch colours and ``(total,)`` group labels (0 grid, 1 ramp,
    2 replicates, 3 fill), in a fixed order before shuffling."""
    levels = np.round(np.linspace(0, 255, 6)).astype(int)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    ramp = np.repeat(np.round(np.linspace(0, 255, 17)).astype(int)[:, None], 3, axis=1)
    reps = np.array(
        [[255, 255, 255], [0, 0, 0], [128, 128, 128], [255, 0, 0], [0, 255, 0], [0, 0, 255], [0, 255, 255], [255, 0, 255], [255, 255, 0]]
    )
    reps = np.repeat(reps, 4, axis=0)
    n_fill = total - len(grid) - len(ramp) - len(reps)
    if n_fill < 0:
        raise ValueError("chart too small for its fixed colours")
    rng = np.random.default_rng(1000 + key)
    pts = np.stack([_halton(n_fill, b, 17 + key * 97) for b in (2, 3, 5)], axis=1)
    pts = (pts + rng.random(3)) % 1.0  # Cranley-Patterson rotation per key
    shell = np.arange(n_fill) % 2 == 0  # every other point pushed towards the cube's surface
    c = 2.0 * pts[shell] - 1.0
    pts[shell] = 0.5 + 0.5 * np.sign(c) * np.abs(c) ** 0.5
    fill = np.clip(np.round(pts * 255), 0, 255).astype(int)
    colours = np.concatenate([grid, ramp, reps, fill]).astype(np.uint8)
    groups = np.concatenate([np.zeros(len(grid)), np.ones(len(ramp)), np.full(len(reps), 2), np.full(n_fill, 3)]).astype(np.int64)
    return colours, groups


def layout_for_key(key: int = 0, page: str = "a4") -> ChartLayout:
    """The (deterministic) chart layout with marker ids ``4*key .. 4*key+3``."""
    if not 0 <= int(key) < N_KEYS:
        raise PatchkitError(f"chart key must be in 0..{N_KEYS - 1}, got {key}")
    if page not in PAGE_SIZES_MM:
        raise PatchkitError(f"unknown page size {page!r} (use a4 or letter)")
    key = int(key)
    colours, groups = chart_colours(key)
    order = np.random.default_rng(key).permutation(len(colours))
    cells = np.array([(c, r) for r in range(ROWS) for c in range(COLS)], dtype=np.int64)
    offset = (CELL_MM - SWATCH_MM) / 2.0
    xy = np.stack([GRID_X + CELL_MM * cells[:, 0] + offset, GRID_Y + CELL_MM * cells[:, 1] + offset], 1)
    s = MARKER_MM
    markers = {
        4 * key + 0: (0.0, 0.0),
        4 * key + 1: (FRAME_W - s, 0.0),
        4 * key + 2: (FRAME_W - s, FRAME_H - s),
        4 * key + 3: (0.0, FRAME_H - s),
    }
    pw, _ = PAGE_SIZES_MM[page]
    return ChartLayout(
        key=key,
        swatch_rgb=colours[order],
        swatch_xy=xy,
        swatch_cell=cells,
        markers=markers,
        page=page,
        origin_mm=((pw - FRAME_W) / 2.0, FRAME_TOP_MM),
        extra={"group": groups[order].tolist()},
    )


# ---------------------------------------------------------------------- drawing
def draw_marker(page: Page, marker_id: int, x: float, y: float, size: float) -> None:
    """Vector ArUco marker of ``size`` mm with its top-left corner at ``(x, y)`` mm."""
    bits = marker_bits(marker_id, MARKER_DICT)
    m = size / bits.shape[0]
    for r in range(bits.shape[0]):
        c = 0
        while c < bits.shape[1]:  # merge horizontal runs into one rectangle
            if bits[r, c]:
                c1 = c
                while c1 < bits.shape[1] and bits[r, c1]:
                    c1 += 1
                page.rect(x + c * m, y + r * m, (c1 - c) * m, m)
                c = c1
            else:
                c += 1


def draw_scale_bar(page: Page, x: float, y: float, length: float = 100.0) -> None:
    """A ``length`` mm bar with 10 mm ticks; ``(x, y)`` is its left end (top of the bar)."""
    page.rect(x, y, length, 0.5)
    for i in range(int(length // 10) + 1):
        tick = 3.0 if i % 5 == 0 else 1.8
        page.rect(x + 10 * i - 0.15, y, 0.3, tick)
    page.text(x + length + 2, y + 2.5, f"{length:g} mm", 2.8)


def chart_page(layout: ChartLayout, date: str | None = None) -> Page:
    """The printable page of a chart layout (vector marks, exact mm)."""
    pw, ph = PAGE_SIZES_MM[layout.page]
    page = Page(pw, ph)
    ox, oy = layout.origin_mm
    for mid, (x, y) in layout.markers.items():
        draw_marker(page, mid, ox + x, oy + y, layout.marker_mm)
    for rgb, (x, y) in zip(layout.swatch_rgb, layout.swatch_xy):
        page.rect(ox + x, oy + y, layout.swatch_mm, layout.swatch_mm, tuple(int(v) for v in rgb))
    fw, fh = layout.frame_mm
    page.text(ox + 24, oy + 8, f"patchkit colour chart  {layout.chart_id}  #{layout.fingerprint()}", 3.2)
    page.text(ox + 24, oy + 13.5, "Print at 100% (Actual size), with the printer, paper and settings of the patch.", 2.6)
    y = oy + fh + 6
    draw_scale_bar(page, ox, y)
    date = date or _dt.date.today().isoformat()
    lines = [
        "Check: the bar above must measure exactly 100 mm. Let the ink dry before photographing.",
        "Photograph in diffuse, even light (no direct sun), slightly off-axis to avoid glare; the chart",
        "should fill at least half of the frame. Take 2 or more shots; use the camera of the evaluation video.",
        f"Then run: patchkit calibrate PHOTO [PHOTO ...] -o printers/NAME      ({layout.page}, {date})",
    ]
    for i, line in enumerate(lines):
        page.text(ox, y + 12 + 5 * i, line, 2.8)
    return page


def chart_image(layout: ChartLayout, dpi: float = 300.0) -> np.ndarray:
    """Raster of the whole chart page at ``dpi`` (uint8 RGB)."""
    return rasterize(chart_page(layout), dpi / 25.4)
