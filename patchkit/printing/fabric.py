"""Fabric print of a clothing texture: one seamless tile repeated to a fabric size.

A *texture* is one square, seamless tile ``NAME.png`` whose sidecar ``NAME.json`` holds
``"kind": "texture"`` and ``"tile_cm"``, the tile's physical repeat length in centimetres.
:func:`export_fabric` lays it out for a fabric printer:

* the repeat must be a whole number of printer pixels, ``tile_cm / 2.54 * dpi`` within 0.01 of an
  integer ``repeat_px`` (else the pattern would drift or carry a seam every repeat);
* the tile is resampled once to ``repeat_px`` (nearest neighbour for an integer upscale, which adds
  no colours; a block mean for an integer downscale; otherwise a periodic, antialiased bilinear
  filter that wraps around the tile's edges, so the seam stays seamless) and then repeated with
  ``numpy.tile``, the last partial repeat cropped;
* the fabric is ``round(cm / 2.54 * dpi)`` pixels per side, at most :data:`MAX_SIDE_PX`;
* the PDF page is exactly the fabric size (``width_cm x height_cm``); the image is placed at its
  exact pixel pitch ``2.54 / dpi`` cm from the top-left corner, so a repeat prints exactly
  ``repeat_px / dpi`` inches (the image may differ from the page by less than half a printer pixel
  at the right and bottom edges). Image data is lossless (Flate), as in :mod:`.export`;
* marks: cm rulers in white bands along the top and left edges (repeat boundaries in magenta), and
  a label band along the bottom edge (repeat length, pixels, DPI, fabric size, profile) with the
  QA strip of :mod:`.export` when there is room. The PNG is the same page rendered at ``dpi``
  (only the mark bands differ from the pure tiled pattern, which the PDF holds bit-exact).

The printer profile is used exactly as the patch export uses it: its name and hash go on the label
and into the record, and the QA strip records the colours it predicts. The pixels are not
colour-transformed: a texture trained through the profile is already the printer's input.

Units: sizes in cm (page geometry in mm, as in :mod:`.drawing`), resolutions in DPI (printer
pixels per inch), images ``(H, W, 3)`` RGB, uint8 or float in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from patchkit.errors import PatchkitError
from patchkit.printing.drawing import Page, rasterize
from patchkit.printing.pdf import write_pdf
from patchkit.printing.profile import PrinterProfile

CM_PER_INCH = 2.54
MAX_SIDE_PX = 20000  # fabric pixels per side
DEFAULT_FABRIC_DPI = 150.0
WHOLE_PX_TOLERANCE = 0.01  # printer pixels
DPI_RANGE = (30.0, 2400.0)  # as the patch export
RULER_MM = 8.0  # white ruler band along the top and left edges
LABEL_MM = 10.0  # label band along the bottom edge (without the QA strip)
QA_MM = 8.0  # extra bottom band for the QA strip
REPEAT_MARK = (255, 0, 255)


# --------------------------------------------------------------------------- sidecar


def is_texture(sidecar: dict[str, Any]) -> bool:
    """Whether a sidecar describes a texture tile (``"kind": "texture"``)."""
    return str(sidecar.get("kind", "patch")).lower() == "texture"


def sidecar_tile_cm(sidecar: dict[str, Any], image_path: str | Path) -> float | None:
    """The sidecar's ``tile_cm`` (repeat length, cm) or ``None``; a value that is not a positive
    number is an error naming the sidecar."""
    value = sidecar.get("tile_cm")
    if value is None:
        return None
    try:
        cm = float(value)
    except (TypeError, ValueError):
        cm = float("nan")
    if not (math.isfinite(cm) and cm > 0):
        raise PatchkitError(f"tile_cm must be a positive number of cm, got {value!r}",
                            Path(image_path).with_suffix(".json"))
    return cm


# --------------------------------------------------------------------------- geometry


def _fmt_cm(cm: float) -> str:
    """``20.0`` for whole tenths, else up to 4 decimals (``2.54``)."""
    return f"{cm:.1f}" if abs(cm * 10 - round(cm * 10)) < 1e-9 else f"{cm:.4f}".rstrip("0")


def _fmt_dpi(dpi: float) -> str:
    return f"{dpi:.3f}".rstrip("0").rstrip(".")


def working_dpis(tile_cm: float, near: float, count: int = 4) -> list[int]:
    """Integer DPIs in the allowed range at which a ``tile_cm`` repeat is a whole number of printer
    pixels (within the tolerance), the ``count`` nearest to ``near``."""
    dpis = np.arange(int(DPI_RANGE[0]), int(DPI_RANGE[1]) + 1)
    px = tile_cm / CM_PER_INCH * dpis
    ok = dpis[np.abs(px - np.round(px)) <= WHOLE_PX_TOLERANCE]
    return sorted(int(d) for d in ok[np.argsort(np.abs(ok - near), kind="stable")][:count])


def repeat_pixels(tile_cm: float, dpi: float, tile_px: int | None = None, source: str | Path | None = None) -> int:
    """Printer pixels per repeat, ``round(tile_cm / 2.54 * dpi)``; raises a one-line
    :class:`PatchkitError` (naming ``source``) when that is not within 0.01 of a whole number and
    says which DPIs would work (``tile_px``, the tile's own side, adds its native pixels per inch)."""
    exact = tile_cm / CM_PER_INCH * dpi
    n = int(round(exact))
    if abs(exact - n) <= WHOLE_PX_TOLERANCE and n >= 1:
        return n
    near = working_dpis(tile_cm, dpi)
    lo, hi = max(1, math.floor(exact)), max(1, math.ceil(exact))
    exact_dpis = f"{_fmt_dpi(lo * CM_PER_INCH / tile_cm)} dpi ({lo} px)"
    if hi != lo:
        exact_dpis += f" or {_fmt_dpi(hi * CM_PER_INCH / tile_cm)} dpi ({hi} px)"
    hint = f"use --dpi {', '.join(map(str, near))}" if near else "no whole DPI works"
    hint += f" (or exactly {exact_dpis})"
    if tile_px:
        hint += (f"; the {tile_px} px tile itself is {_fmt_dpi(tile_px * CM_PER_INCH / tile_cm)} px per inch, "
                 "and its whole multiples work too")
    raise PatchkitError(
        f"a {_fmt_cm(tile_cm)} cm repeat is {exact:.3f} printer pixels at {_fmt_dpi(dpi)} dpi, not a whole number "
        f"(the pattern would drift); {hint}",
        source,
    )


def fabric_pixels(width_cm: float, height_cm: float, dpi: float) -> tuple[int, int]:
    """``(width_px, height_px) = round(cm / 2.54 * dpi)``."""
    return max(1, int(round(width_cm / CM_PER_INCH * dpi))), max(1, int(round(height_cm / CM_PER_INCH * dpi)))


def check_fabric(width_cm: float, height_cm: float, tile_cm: float, dpi: float,
                 source: str | Path | None = None) -> tuple[int, int]:
    """Validate a fabric size (cm) against the repeat (cm) and the pixel limit at ``dpi``; returns
    :func:`fabric_pixels`. Raises one-line :class:`PatchkitError` naming ``source``."""
    for name, v in (("width", width_cm), ("height", height_cm)):
        if not (math.isfinite(v) and v > 0):
            raise PatchkitError(f"--fabric-cm: the fabric {name} must be a positive number of cm, got {v:g}", source)
    if width_cm < tile_cm - 1e-9 or height_cm < tile_cm - 1e-9:
        raise PatchkitError(
            f"a {width_cm:g} x {height_cm:g} cm fabric is smaller than one {_fmt_cm(tile_cm)} cm repeat; "
            f"give --fabric-cm of at least {_fmt_cm(tile_cm)} per side",
            source,
        )
    nx, ny = fabric_pixels(width_cm, height_cm, dpi)
    if max(nx, ny) > MAX_SIDE_PX:
        most = math.floor(MAX_SIDE_PX / dpi * CM_PER_INCH * 100) / 100
        raise PatchkitError(
            f"a {width_cm:g} x {height_cm:g} cm fabric is {nx} x {ny} px at {_fmt_dpi(dpi)} dpi, more than "
            f"{MAX_SIDE_PX} px per side; at {_fmt_dpi(dpi)} dpi the fabric can be at most {most:g} cm per side "
            "(lower --dpi or print it in pieces)",
            source,
        )
    return nx, ny


# --------------------------------------------------------------------------- pixels


def _periodic_taps(src: int, dst: int) -> tuple[np.ndarray, np.ndarray]:
    """Taps ``(dst, K)`` source indices (wrapped modulo ``src``) and weights (rows sum to 1) of an
    antialiased bilinear (triangle) filter resampling a period of ``src`` pixels to ``dst``."""
    s = max(1.0, src / dst)  # filter half-width in source pixels (widened when downscaling)
    centre = (np.arange(dst, dtype=np.float64) + 0.5) * src / dst - 0.5
    k = 2 * int(math.ceil(s)) + 2
    idx = np.floor(centre - s)[:, None].astype(np.int64) + np.arange(k)[None, :]
    w = np.clip(1.0 - np.abs(idx - centre[:, None]) / s, 0.0, None)
    w /= w.sum(axis=1, keepdims=True)
    return np.mod(idx, src), w.astype(np.float32)


def resample_tile(tile: np.ndarray, repeat_px: int) -> np.ndarray:
    """A square seamless tile ``(T, T, 3)`` (uint8, or float RGB in [0, 1]) resampled to
    ``(repeat_px, repeat_px, 3)`` of the same dtype, still seamless.

    Integer upscale: nearest neighbour (every tile pixel becomes a ``k x k`` block, no new
    colours). Integer downscale: the mean of each ``k x k`` block (area). Otherwise: a separable
    antialiased bilinear filter whose taps wrap around the tile, so the result tiles without seams.
    """
    tile = np.asarray(tile)
    t = tile.shape[0]
    if tile.ndim != 3 or tile.shape[1] != t or tile.shape[2] != 3:
        raise ValueError(f"a tile must be (T, T, 3), got {tile.shape}")
    if repeat_px < 1:
        raise ValueError("repeat_px must be >= 1")
    if repeat_px == t:
        return tile.copy()
    if repeat_px % t == 0:
        k = repeat_px // t
        return np.ascontiguousarray(np.repeat(np.repeat(tile, k, axis=0), k, axis=1))
    x = tile.astype(np.float32) / (255.0 if tile.dtype == np.uint8 else 1.0)
    if t % repeat_px == 0:
        k = t // repeat_px
        out = x.reshape(repeat_px, k, repeat_px, k, 3).mean(axis=(1, 3))
    else:
        idx, w = _periodic_taps(t, repeat_px)
        rows = np.zeros((repeat_px, t, 3), np.float32)
        for j in range(idx.shape[1]):  # a handful of taps, each one vectorised over the whole tile
            rows += w[:, j, None, None] * x[idx[:, j]]
        out = np.zeros((repeat_px, repeat_px, 3), np.float32)
        for j in range(idx.shape[1]):
            out += w[None, :, j, None] * rows[:, idx[:, j]]
    if tile.dtype == np.uint8:
        return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)
    return np.clip(out, 0.0, 1.0).astype(tile.dtype, copy=False)


def tile_pattern(repeat: np.ndarray, width_px: int, height_px: int) -> np.ndarray:
    """Repeat one ``(R, R, 3)`` tile over ``(height_px, width_px, 3)`` from the top-left corner with
    ``numpy.tile``, cropping the last partial repeat."""
    r = repeat.shape[0]
    reps = (math.ceil(height_px / r), math.ceil(width_px / r), 1)
    return np.ascontiguousarray(np.tile(repeat, reps)[:height_px, :width_px])


# --------------------------------------------------------------------------- layout


@dataclass
class FabricExport:
    """A fabric export: the PDF bytes, the PNG image (the page rendered at the DPI, marks
    included), the pure tiled pattern (what the PDF holds, bit-exact), the page and the record."""

    pdf: bytes
    image: np.ndarray  # (H, W, 3) uint8: pattern + marks, as written to the PNG
    pattern: np.ndarray  # (H, W, 3) uint8: the tiled pattern only
    page: Page
    meta: dict[str, Any] = field(default_factory=dict)


def _ruler_step(length_cm: float) -> int:
    """cm between numbered ruler ticks."""
    return 10 if length_cm >= 20 else 5 if length_cm >= 8 else 1


def _draw_marks(page: Page, w_mm: float, h_mm: float, tile_cm: float, lines: list[str],
                profile: PrinterProfile | None, qa_strip: bool) -> dict[str, Any]:
    """Rulers (top, left), repeat marks and the label band on ``page``; returns their record."""
    from patchkit.printing.export import QA_COLOURS, QA_SWATCH_MM, _qa_strip

    white = (255, 255, 255)
    qa_w = len(QA_COLOURS) * (QA_SWATCH_MM + 1.0) + 15.0
    with_qa = qa_strip and w_mm - RULER_MM - 4.0 >= qa_w and h_mm >= 3 * (RULER_MM + LABEL_MM + QA_MM)
    bottom = LABEL_MM + (QA_MM if with_qa else 0.0)
    page.rect(0, 0, w_mm, RULER_MM, white)
    page.rect(0, 0, RULER_MM, h_mm, white)
    page.rect(0, h_mm - bottom, w_mm, bottom, white)
    # cm ticks from the top-left corner: 1 cm short, 5 cm longer, numbered ones longest
    for axis, length_mm in (("x", w_mm), ("y", h_mm)):
        step = _ruler_step(length_mm / 10.0)
        end = length_mm - (bottom if axis == "y" else 0.0)
        for c in range(0, int(math.floor(length_mm / 10.0 + 1e-9)) + 1):
            p = c * 10.0
            if p > end + 1e-9 or (c == 0 and axis == "y"):
                continue
            n = 5.0 if c % step == 0 else 3.5 if c % 5 == 0 else 2.0
            p = min(p, length_mm - 0.1)  # keep the last tick on the page
            if axis == "x":
                page.line(p, 0, p, n, 0.2)
                if c % step == 0 and c > 0:
                    page.text(p + 0.6, 4.6, str(c), 2.2)
            else:
                page.line(0, p, n, p, 0.2)
                if c % step == 0:
                    page.text(0.6, p + 2.6, str(c), 2.2)
    page.text(RULER_MM + 0.6, 4.6 if _ruler_step(w_mm / 10.0) > 1 else 7.4, "cm", 2.2)
    # repeat boundaries: magenta marks at the inner edge of both ruler bands
    k = 1
    while k * tile_cm * 10.0 <= max(w_mm, h_mm) + 1e-9:
        p = k * tile_cm * 10.0
        if p <= w_mm + 1e-9:
            page.line(min(p, w_mm - 0.15), RULER_MM - 1.6, min(p, w_mm - 0.15), RULER_MM, 0.3, REPEAT_MARK)
        if p <= h_mm - bottom + 1e-9:
            page.line(RULER_MM - 1.6, p, RULER_MM, p, 0.3, REPEAT_MARK)
        k += 1
    # label lines, shrunk to fit the fabric's width
    x0 = RULER_MM + 2.0
    room = max(10.0, w_mm - x0 - 2.0)
    size = min(2.6, room / (0.56 * max(len(s) for s in lines)))
    y = h_mm - bottom + 1.0 + 1.1 * size
    for s in lines:
        page.text(x0, y, s, size)
        y += 1.35 * size
    rec: dict[str, Any] = {
        "bands_mm": {"top": RULER_MM, "left": RULER_MM, "bottom": bottom},
        "ruler": "cm ticks from the top-left corner along the top and left edges; magenta marks: repeat boundaries",
    }
    if with_qa:
        rec["qa_strip"] = _qa_strip(page, x0, h_mm - QA_MM + 0.5, profile)
    return rec


def _render_marks(page: Page, pattern: np.ndarray, dpi: float, bands_mm: dict[str, float]) -> np.ndarray:
    """The PNG: ``pattern`` with the mark bands rendered from ``page`` at ``dpi`` (only the bands
    are rasterised, so a large fabric needs no second full-size canvas)."""
    ppm = dpi / 25.4
    ny, nx = pattern.shape[:2]
    out = pattern.copy()
    top = min(ny, int(math.ceil((bands_mm["top"] + 1.0) * ppm)))
    left = min(nx, int(math.ceil((bands_mm["left"] + 1.0) * ppm)))
    bottom = min(ny, int(math.ceil((bands_mm["bottom"] + 1.0) * ppm)))
    for c0, r0, c1, r1 in ((0, 0, nx, top), (0, 0, left, ny), (0, ny - bottom, nx, ny)):
        region = (c0 / ppm, r0 / ppm, (c1 - c0) / ppm, (r1 - r0) / ppm)
        out[r0:r1, c0:c1] = rasterize(page, ppm, region)[: r1 - r0, : c1 - c0]
    return out


def export_fabric(
    tile: np.ndarray,
    tile_cm: float,
    width_cm: float,
    height_cm: float | None = None,
    dpi: float = DEFAULT_FABRIC_DPI,
    profile: PrinterProfile | None = None,
    qa_strip: bool = True,
    marks: bool = True,
    source: str = "texture",
) -> FabricExport:
    """Lay out a texture tile ``(T, T, 3)`` uint8 RGB (repeat ``tile_cm`` cm) as a
    ``width_cm x height_cm`` fabric print at ``dpi``; see the module docstring.

    ``height_cm`` defaults to ``width_cm``. Bad inputs raise a one-line :class:`PatchkitError`
    naming ``source``: a non-square tile, a DPI outside 30..2400, a repeat that is not a whole
    number of printer pixels, a fabric that is not positive, smaller than one repeat, or more than
    :data:`MAX_SIDE_PX` pixels per side.
    """
    tile = np.asarray(tile)
    if tile.dtype != np.uint8 or tile.ndim != 3 or tile.shape[2] != 3:
        raise PatchkitError("a texture tile must be an 8-bit RGB image", source)
    t_h, t_w = tile.shape[:2]
    if t_h != t_w:
        raise PatchkitError(f"a texture tile must be square, got {t_w} x {t_h} px", source)
    if not (math.isfinite(tile_cm) and tile_cm > 0):
        raise PatchkitError(f"--tile-cm must be a positive number of cm, got {tile_cm:g}", source)
    if not (math.isfinite(dpi) and DPI_RANGE[0] <= dpi <= DPI_RANGE[1]):
        raise PatchkitError(f"--dpi {dpi:g} is outside {DPI_RANGE[0]:g}..{DPI_RANGE[1]:g}", source)
    height_cm = width_cm if height_cm is None else height_cm
    repeat_px = repeat_pixels(tile_cm, dpi, t_w, source)
    nx, ny = check_fabric(width_cm, height_cm, tile_cm, dpi, source)
    upsampling = ("none" if repeat_px == t_w else "nearest" if repeat_px % t_w == 0
                  else "area" if t_w % repeat_px == 0 else "bilinear-antialiased-periodic")
    pattern = tile_pattern(resample_tile(tile, repeat_px), nx, ny)

    w_mm, h_mm = width_cm * 10.0, height_cm * 10.0
    img_w_mm, img_h_mm = nx * 25.4 / dpi, ny * 25.4 / dpi
    prof = "no profile" if profile is None else f"profile {profile.meta.get('name') or '?'} {profile.sha256[:12]}"
    across, down = nx / repeat_px, ny / repeat_px
    lines = [
        f"patchkit fabric: repeat {_fmt_cm(tile_cm)} cm = {repeat_px} px @ {_fmt_dpi(dpi)} dpi (tile {t_w} px)",
        f"{width_cm:g} x {height_cm:g} cm, {nx} x {ny} px, {across:.4g} x {down:.4g} repeats, {prof}; "
        "print at 100%, no scaling",
    ]
    label = f"{lines[0]}; {lines[1]}"
    meta: dict[str, Any] = {
        "schema": "patchkit.fabric_export",
        "source": source,
        "kind": "texture",
        "fabric_cm": [float(width_cm), float(height_cm)],
        "dpi": float(dpi),
        "pixels": [nx, ny],
        "repeat_cm": float(tile_cm),
        "repeat_px": repeat_px,
        "repeat_printed_cm": repeat_px / dpi * CM_PER_INCH,
        "tile_px": [int(t_w), int(t_h)],
        "repeats": [across, down],
        "full_repeats": [nx // repeat_px, ny // repeat_px],
        "resampling": upsampling,
        "page_mm": [w_mm, h_mm],
        "image_mm": [img_w_mm, img_h_mm],
        "placement_mm": {"x": 0.0, "y": 0.0, "width": img_w_mm, "height": img_h_mm,
                         "note": "exact pixel pitch 25.4 / dpi mm from the top-left corner; the page is the "
                                 "fabric size (they differ by under half a printer pixel)"},
        "profile": None
        if profile is None
        else {"name": profile.meta.get("name"), "sha256": profile.sha256, "chart_id": profile.meta.get("chart_id")},
        "colour": "pixels unchanged (printer input); the profile only labels the print and predicts the QA strip",
        "label": label,
    }
    page = Page(w_mm, h_mm)
    page.picture(0.0, 0.0, img_w_mm, img_h_mm, pattern)
    if marks:
        meta["marks"] = _draw_marks(page, w_mm, h_mm, tile_cm, lines, profile, qa_strip)
        if "qa_strip" in meta["marks"]:
            meta["qa_strip"] = meta["marks"].pop("qa_strip")
        image = _render_marks(page, pattern, dpi, meta["marks"]["bands_mm"])
    else:
        meta["marks"] = None
        image = pattern
    return FabricExport(write_pdf([page], title=label), image, pattern, page, meta)
