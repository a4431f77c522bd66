"""Print-ready export of a digital patch at an exact physical size.

The patch is upsampled by nearest neighbour to ``round(mm / 25.4 * dpi)`` pixels per side
(every trained pixel becomes an exact block; no new colours) and placed in the PDF with its
exact physical size in points, so the printed size is exact even when ``dpi`` does not divide
the size. Image data is stored losslessly (Flate): the pixels inside the PDF equal the exported
image bit for bit. Around the patch: crop marks (3 mm offset, 7 mm long), optional ArUco markers
(ids 40..43, ``DICT_4X4_50``, physical size recorded) for finding the patch in video, a 100 mm
scale bar, a label with the size and the profile hash, and a QA strip (grey ramp + 8 swatches)
outside the trim box. Large patches are tiled over A4/Letter pages with 10 mm overlaps,
registration crosses and a stitching guide page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from patchkit.errors import PatchkitError
from patchkit.printing.chart import MARKER_DICT, draw_marker, draw_scale_bar
from patchkit.printing.drawing import PAGE_SIZES_MM, Page
from patchkit.printing.pdf import write_pdf
from patchkit.printing.profile import PrinterProfile

EXPORT_MARKER_IDS = (40, 41, 42, 43)  # TL, TR, BR, BL
MARGIN_MM = 6.35  # unprintable border assumed on every printer (1/4 inch)
CROP_OFFSET_MM = 3.0
CROP_LENGTH_MM = 7.0
QA_SWATCH_MM = 5.0
QA_COLOURS = [(round(255 * i / 10),) * 3 for i in range(11)] + [
    (255, 0, 0), (0, 255, 0), (0, 0, 255), (0, 255, 255), (255, 0, 255), (255, 255, 0), (200, 150, 120), (70, 110, 60),
]


def nearest_resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest-neighbour resize of ``(H, W, 3)`` uint8 to ``(height, width, 3)``: output pixel
    ``j`` takes source pixel ``floor((j + 0.5) * W / width)``."""
    h, w = image.shape[:2]
    cols = np.minimum(((np.arange(width) + 0.5) * w / width).astype(np.int64), w - 1)
    rows = np.minimum(((np.arange(height) + 0.5) * h / height).astype(np.int64), h - 1)
    return np.ascontiguousarray(image[rows[:, None], cols[None, :]])


def export_pixels(width_mm: float, height_mm: float, dpi: float) -> tuple[int, int]:
    """``(width_px, height_px) = round(mm / 25.4 * dpi)``."""
    return max(1, int(round(width_mm / 25.4 * dpi))), max(1, int(round(height_mm / 25.4 * dpi)))


@dataclass
class Export:
    """An export: the PDF bytes, the exact image placed in it, and the layout record."""

    pdf: bytes
    image: np.ndarray  # (H, W, 3) uint8, the upsampled patch (what the PDF holds, bit-exact)
    pages: list[Page]
    meta: dict[str, Any] = field(default_factory=dict)


def _label(width_mm: float, height_mm: float, image: np.ndarray, dpi: float, profile: PrinterProfile | None) -> str:
    h, w = image.shape[:2]
    prof = "no profile" if profile is None else f"profile {profile.meta.get('name') or '?'} {profile.sha256[:12]}"
    return f"patchkit patch {width_mm:g} x {height_mm:g} mm, {w} x {h} px @ {dpi:g} dpi, {prof}"


def _crop_marks(page: Page, x: float, y: float, w: float, h: float) -> None:
    o, n = CROP_OFFSET_MM, CROP_LENGTH_MM
    for cx, sx in ((x, -1), (x + w, 1)):
        for cy, sy in ((y, -1), (y + h, 1)):
            page.line(cx + sx * o, cy, cx + sx * (o + n), cy, 0.2)
            page.line(cx, cy + sy * o, cx, cy + sy * (o + n), 0.2)


def _qa_strip(page: Page, x: float, y: float, profile: PrinterProfile | None) -> list[dict[str, Any]]:
    out = []
    for i, rgb in enumerate(QA_COLOURS):
        sx = x + i * (QA_SWATCH_MM + 1.0)
        page.rect(sx, y, QA_SWATCH_MM, QA_SWATCH_MM, rgb)
        rec: dict[str, Any] = {"rgb": list(rgb), "xy_mm": [round(sx, 4), round(y, 4)], "size_mm": QA_SWATCH_MM}
        if profile is not None:
            pred = profile.predict(np.array(rgb, dtype=np.float32) / 255.0).tolist()
            rec["predicted_capture"] = [round(v, 5) for v in pred]
        out.append(rec)
    page.text(x + len(QA_COLOURS) * (QA_SWATCH_MM + 1.0) + 1.0, y + 4.0, "QA strip", 2.5)
    return out


def default_marker_mm(width_mm: float, height_mm: float) -> float:
    """Marker side: 15 % of the patch's shorter side, clamped to 10..40 mm (shrunk to fit the
    page when needed)."""
    return float(min(40.0, max(10.0, 0.15 * min(width_mm, height_mm))))


def export_patch(
    patch: np.ndarray,
    width_mm: float,
    height_mm: float | None = None,
    dpi: float = 300.0,
    page: str = "a4",
    markers: bool = False,
    marker_mm: float | None = None,
    tile: bool = False,
    overlap_mm: float = 10.0,
    profile: PrinterProfile | None = None,
    qa_strip: bool = True,
    source: str = "patch",
) -> Export:
    """Lay out ``patch`` (``(H, W, 3)`` uint8 RGB) for printing; see the module docstring.

    ``height_mm`` defaults to keeping the patch's aspect ratio. Raises :class:`PatchkitError`
    when the patch does not fit on one page (use ``tile``) or an argument is out of range.
    """
    patch = np.asarray(patch)
    if patch.dtype != np.uint8 or patch.ndim != 3 or patch.shape[2] != 3:
        raise PatchkitError("the patch must be an 8-bit RGB image", source)
    if page not in PAGE_SIZES_MM:
        raise PatchkitError(f"unknown page size {page!r} (use a4 or letter)")
    if not (width_mm > 0 and math.isfinite(width_mm)):
        raise PatchkitError(f"--width-mm must be a positive number, got {width_mm}")
    if height_mm is None:
        height_mm = width_mm * patch.shape[0] / patch.shape[1]
    if not (height_mm > 0 and math.isfinite(height_mm)):
        raise PatchkitError(f"--height-mm must be a positive number, got {height_mm}")
    if not 30 <= dpi <= 2400:
        raise PatchkitError(f"--dpi {dpi} is outside 30..2400")
    nx, ny = export_pixels(width_mm, height_mm, dpi)
    if nx * ny > 400_000_000:
        raise PatchkitError(f"{nx} x {ny} px is too large; lower --dpi")
    image = nearest_resize(patch, nx, ny)
    label = _label(width_mm, height_mm, image, dpi, profile)
    meta: dict[str, Any] = {
        "schema": "patchkit.export",
        "source": source,
        "patch_px": [int(patch.shape[1]), int(patch.shape[0])],
        "size_mm": [float(width_mm), float(height_mm)],
        "dpi": float(dpi),
        "pixels": [nx, ny],
        "pixel_pitch_mm": [width_mm / nx, height_mm / ny],
        "upsampling": "nearest",
        "page": page,
        "profile": None
        if profile is None
        else {"name": profile.meta.get("name"), "sha256": profile.sha256, "chart_id": profile.meta.get("chart_id")},
        "label": label,
    }
    sheet = _Sheet(image, width_mm, height_mm, page, label, profile, qa_strip, meta)
    pages = _tiled(sheet, overlap_mm) if tile else [_single(sheet, markers, marker_mm)]
    return Export(write_pdf(pages, title=label), image, pages, meta)


@dataclass
class _Sheet:
    """What every page of one export shares."""

    image: np.ndarray  # (H, W, 3) uint8, the upsampled patch
    w: float  # printed size, mm
    h: float
    page_name: str
    label: str
    profile: PrinterProfile | None
    qa_strip: bool
    meta: dict[str, Any]  # the layout record, completed page by page

    def scale_bar_and_qa_strip(self, page: Page, x: float, y_bar: float, y_qa: float, bar_mm: float) -> None:
        """A ``bar_mm`` scale bar at ``(x, y_bar)`` and, when asked for, the QA strip at ``(x, y_qa)``."""
        draw_scale_bar(page, x, y_bar, bar_mm)
        if self.qa_strip:
            self.meta["qa_strip"] = _qa_strip(page, x, y_qa, self.profile)


def _single(sheet: _Sheet, markers: bool, marker_mm: float | None) -> Page:
    """One page: the patch, crop marks, optional markers, label, scale bar and QA strip."""
    image, w, h, page_name, meta = sheet.image, sheet.w, sheet.h, sheet.page_name, sheet.meta
    pw, ph = PAGE_SIZES_MM[page_name]
    below = 8.0 + 8.0 + (QA_SWATCH_MM + 4.0 if sheet.qa_strip else 0.0)  # label, scale bar, QA strip
    avail_w, avail_h = pw - 2 * MARGIN_MM, ph - 2 * MARGIN_MM
    s = 0.0
    if markers:
        s = marker_mm or default_marker_mm(w, h)
        if marker_mm is None:  # shrink the default marker to fit the page, down to 8 mm
            room = min(avail_w - w, avail_h - below - h) / 2.0
            s = max(8.0, min(s, room - CROP_OFFSET_MM - 1.0, (room - 1.0) * 6.0 / 7.0))
    gap = max(CROP_OFFSET_MM + 1.0, s / 6.0 + 1.0) if markers else 0.0
    ring = max(CROP_OFFSET_MM + CROP_LENGTH_MM, gap + s)  # space used around the patch
    need_w, need_h = w + 2 * ring, h + 2 * ring + below
    if need_w > avail_w + 1e-9 or need_h > avail_h + 1e-9:
        raise PatchkitError(
            f"a {w:g} x {h:g} mm patch with its marks needs {need_w:.0f} x {need_h:.0f} mm, more than the "
            f"{avail_w:.0f} x {avail_h:.0f} mm printable on {page_name}; use --tile (or a smaller size)"
        )
    page = Page(pw, ph)
    x = (pw - w) / 2.0
    y = MARGIN_MM + ring
    page.picture(x, y, w, h, image)
    _crop_marks(page, x, y, w, h)
    meta["placement_mm"] = {"page": 1, "x": x, "y": y, "width": w, "height": h}
    if markers:
        pos = [(x - gap - s, y - gap - s), (x + w + gap, y - gap - s), (x + w + gap, y + h + gap), (x - gap - s, y + h + gap)]
        recs = []
        for mid, (mx, my) in zip(EXPORT_MARKER_IDS, pos):
            draw_marker(page, mid, mx, my, s)
            corners = [[mx, my], [mx + s, my], [mx + s, my + s], [mx, my + s]]
            recs.append({"id": mid, "corners_patch_mm": [[round(cx - x, 4), round(cy - y, 4)] for cx, cy in corners]})
        meta["markers"] = {
            "dictionary": MARKER_DICT,
            "size_mm": s,
            "gap_mm": gap,
            "order": "top-left, top-right, bottom-right, bottom-left",
            "coordinates": "patch mm: origin at the patch's top-left corner, y down",
            "markers": recs,
        }
    ty = y + h + ring + 4.0
    page.text(MARGIN_MM + 2, ty, sheet.label, 2.6)
    hint = "Print at 100% (Actual size), no scaling. Cut along the crop marks"
    page.text(MARGIN_MM + 2, ty + 4.0, hint + ("; keep the markers for video scoring." if markers else "."), 2.6)
    bar = 100.0 if pw - 2 * MARGIN_MM - 20 >= 100 else 50.0
    sheet.scale_bar_and_qa_strip(page, MARGIN_MM + 2, ty + 7.0, ty + 14.0, bar)
    meta["pages"] = 1
    return page


def _tiled(sheet: _Sheet, overlap: float) -> list[Page]:
    """A stitching guide page, then the patch in overlapping tiles with registration crosses."""
    image, w, h, label = sheet.image, sheet.w, sheet.h, sheet.label
    pw, ph = PAGE_SIZES_MM[sheet.page_name]
    ny, nx = image.shape[:2]
    pitch_x, pitch_y = w / nx, h / ny
    border = 12.0  # around each tile: registration crosses and labels
    cw = pw - 2 * MARGIN_MM - 2 * border
    ch = ph - 2 * MARGIN_MM - 2 * border - 8.0
    if not 0 <= overlap < min(cw, ch) / 2:
        raise PatchkitError(f"--overlap {overlap} mm is out of range")
    cols = max(1, math.ceil((w - overlap) / (cw - overlap) - 1e-9))
    rows = max(1, math.ceil((h - overlap) / (ch - overlap) - 1e-9))

    def cuts(n_tiles: int, content: float, total_px: int, pitch: float) -> list[tuple[int, int]]:
        out = []
        for i in range(n_tiles):
            a = int(round(i * (content - overlap) / pitch))
            b = min(total_px, int(round((i * (content - overlap) + content) / pitch)))
            out.append((a, b))
        out[-1] = (out[-1][0], total_px)
        return out

    xs = cuts(cols, cw, nx, pitch_x)
    ys = cuts(rows, ch, ny, pitch_y)
    pages = [_guide_page(sheet, xs, ys, pitch_x, pitch_y)]
    tiles = []
    for r, (y0, y1) in enumerate(ys):
        for c, (x0, x1) in enumerate(xs):
            page = Page(pw, ph)
            left, top = MARGIN_MM + border, MARGIN_MM + border
            tw, th = (x1 - x0) * pitch_x, (y1 - y0) * pitch_y
            page.picture(left, top, tw, th, image[y0:y1, x0:x1])
            # registration crosses at the overlap centre lines, shared with the neighbours
            for k in (c - 1, c):
                if 0 <= k < cols - 1:
                    ox = (xs[k + 1][0] + xs[k][1]) / 2.0 * pitch_x - x0 * pitch_x + left
                    page.cross(ox, top - 6.0, 3.0)
                    page.cross(ox, top + th + 6.0, 3.0)
            for k in (r - 1, r):
                if 0 <= k < rows - 1:
                    oy = (ys[k + 1][0] + ys[k][1]) / 2.0 * pitch_y - y0 * pitch_y + top
                    page.cross(left - 6.0, oy, 3.0)
                    page.cross(left + tw + 6.0, oy, 3.0)
            _crop_marks(page, left, top, tw, th)
            page.text(left, top + th + 14.0, f"tile row {r + 1}/{rows}, column {c + 1}/{cols} | {label}", 2.4)
            page.text(left, top + th + 18.0, f"overlap {overlap:g} mm: align the crosses; print at 100% (Actual size)", 2.4)
            tiles.append(
                {
                    "page": len(pages) + 1,
                    "row": r,
                    "col": c,
                    "pixels": [x0, y0, x1, y1],
                    "patch_mm": [x0 * pitch_x, y0 * pitch_y, x1 * pitch_x, y1 * pitch_y],
                    "placement_mm": {"x": left, "y": top, "width": tw, "height": th},
                }
            )
            pages.append(page)
    sheet.meta["tiles"] = {"rows": rows, "cols": cols, "overlap_mm": overlap, "tiles": tiles}
    sheet.meta["pages"] = len(pages)
    return pages


def _guide_page(sheet: _Sheet, xs: list[tuple[int, int]], ys: list[tuple[int, int]], pitch_x: float,
                pitch_y: float) -> Page:
    """The tiled print's first page: instructions, a thumbnail with the tile grid, scale bar, QA strip."""
    image, w, h, label = sheet.image, sheet.w, sheet.h, sheet.label
    pw, ph = PAGE_SIZES_MM[sheet.page_name]
    page = Page(pw, ph)
    x0, y0 = MARGIN_MM + 4, MARGIN_MM + 10
    page.text(x0, y0, "patchkit tiled print: stitching guide", 4.0)
    page.text(x0, y0 + 6, label, 2.6)
    page.text(x0, y0 + 10.5, f"{len(ys)} rows x {len(xs)} columns of tiles; print every page at 100% (Actual size).", 2.6)
    page.text(x0, y0 + 15, "Trim each tile at its crop marks on the sides that overlap, align the registration crosses, tape.", 2.6)
    # thumbnail with the tile grid
    box_w, box_h = pw - 2 * MARGIN_MM - 8, ph - 2 * MARGIN_MM - 70
    scale = min(box_w / w, box_h / h)
    tw, th = w * scale, h * scale
    step = max(1, int(math.ceil(max(image.shape[0] / 600.0, image.shape[1] / 600.0))))
    thumb = np.ascontiguousarray(image[::step, ::step])
    ty = y0 + 22
    page.picture(x0, ty, tw, th, thumb)
    for i, (a, b) in enumerate(xs):
        for j, (c, d) in enumerate(ys):
            rx, ry = x0 + a * pitch_x * scale, ty + c * pitch_y * scale
            rw, rh = (b - a) * pitch_x * scale, (d - c) * pitch_y * scale
            for lx0, ly0, lx1, ly1 in ((rx, ry, rx + rw, ry), (rx, ry + rh, rx + rw, ry + rh), (rx, ry, rx, ry + rh), (rx + rw, ry, rx + rw, ry + rh)):
                page.line(lx0, ly0, lx1, ly1, 0.3, (255, 0, 255))
            page.text(rx + 1.5, ry + 4.0, f"{j + 1},{i + 1}", 3.0, (255, 0, 255))
    y = ty + th + 8
    sheet.scale_bar_and_qa_strip(page, x0, y, y + 8, 100.0 if pw >= 130 else 50.0)
    if sheet.qa_strip:
        sheet.meta["qa_strip_page"] = 1
    return page
