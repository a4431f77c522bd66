"""Measure a photo of a calibration chart: markers -> homography -> rectified swatch colours.

Steps (:func:`measure_chart`): detect the ArUco markers (OpenCV), identify the chart from their
ids, fit the homography from chart mm to photo pixels (at least 3 markers, RMS reprojection
error at most 1.5 px), rectify the chart at 8 px/mm, take the median and MAD of the inner 55 %
of every swatch, sample the paper-white crossings between cells, fit a smooth (cubic) flat field
to them robustly, divide the swatches by it in linear light (so paper white becomes 1), and flag
swatches outside the photo or with glare, clipping or a high spread. Photos that cannot give a trustworthy profile
(too few markers, a wrong chart, over- or under-exposure) raise :class:`PatchkitError`.

Colours: the photo's 8-bit values are taken as sRGB-encoded; measured colours are returned
sRGB-encoded and paper-white relative, in [0, 1] (values a little above 1 are possible).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from patchkit.errors import PatchkitError
from patchkit.markers import PHOTO_PARAMS, aruco_detector, detect_raw
from patchkit.printing.chart import MARKER_DICT, N_KEYS, ChartLayout, layout_for_key
from patchkit.printing.colour import linear_to_srgb_np, srgb_to_linear_np

PX_PER_MM = 8.0
INNER = 0.55  # share of the swatch side that is sampled
GAP_SAMPLE_MM = 0.75  # side of the square sampled at each paper-white crossing
MAX_REPROJECTION_PX = 1.5


_dec = srgb_to_linear_np
_enc = linear_to_srgb_np


def detect_markers(image: np.ndarray) -> dict[int, np.ndarray]:
    """ArUco ``DICT_4X4_50`` markers in an RGB uint8 image: id -> ``(4, 2)`` corners (px,
    OpenCV order TL, TR, BR, BL, sub-pixel refined; detector :data:`patchkit.markers.PHOTO_PARAMS`).
    Duplicated ids are dropped."""
    gray = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    ids, corners = detect_raw(aruco_detector(MARKER_DICT, PHOTO_PARAMS), gray)
    if len(ids) == 0:
        return {}
    ids = ids.tolist()
    lin = _dec(gray.astype(np.float64) / 255.0).astype(np.float32)
    out = {}
    for mid, c in zip(ids, corners):
        if ids.count(mid) == 1:
            out[int(mid)] = refine_marker_corners(lin, c)
    return out


def refine_marker_corners(gray_linear: np.ndarray, corners: np.ndarray, samples: int = 16) -> np.ndarray:
    """Unbiased marker corners: intersect straight lines fitted to the outer edges.

    OpenCV's corner refinement pulls the corners of a blurred square inwards (about 1 px at a
    blur sigma of 1.5 px). Here each outer edge is located at the 50 % crossing between the
    black border and the white quiet zone, in linear light, at ``samples`` points along its
    middle 70 %; a line is fitted through them and adjacent lines are intersected. Symmetric
    blur does not move a straight step edge's 50 % point. Falls back to the input corners when
    an edge cannot be measured.
    """
    c = np.asarray(corners, dtype=np.float64)
    centre = c.mean(axis=0)
    lines = []
    for i in range(4):
        a, b = c[i], c[(i + 1) % 4]
        edge = b - a
        length = np.linalg.norm(edge)
        if length < 8:
            return c
        tangent = edge / length
        normal = np.array([tangent[1], -tangent[0]])
        if np.dot((a + b) / 2 - centre, normal) < 0:
            normal = -normal  # outward
        reach = 0.5 * length / 6.0  # half a marker module
        s = np.linspace(-reach, reach, 25)
        t = np.linspace(0.15, 0.85, samples)
        base = a[None, :] + t[:, None] * edge[None, :]
        pts = base[:, None, :] + s[None, :, None] * normal[None, None, :]  # (samples, 25, 2)
        prof = cv2.remap(
            gray_linear, pts[..., 0].astype(np.float32), pts[..., 1].astype(np.float32), cv2.INTER_LINEAR
        )
        lo = prof[:, :4].mean(axis=1, keepdims=True)
        hi = prof[:, -4:].mean(axis=1, keepdims=True)
        ok = (hi - lo)[:, 0] > 0.1
        level = (prof - (lo + hi) / 2.0) / np.maximum(hi - lo, 1e-6)
        found = []
        for k in np.flatnonzero(ok):
            cross = np.flatnonzero((level[k, :-1] < 0) & (level[k, 1:] >= 0))
            if len(cross) != 1:
                continue
            j = cross[0]
            frac = -level[k, j] / (level[k, j + 1] - level[k, j])
            found.append(base[k] + (s[j] + frac * (s[j + 1] - s[j])) * normal)
        if len(found) < samples // 2:
            return c
        vx, vy, x0, y0 = cv2.fitLine(np.array(found, dtype=np.float32), cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
        lines.append((np.array([x0, y0], dtype=np.float64), np.array([vx, vy], dtype=np.float64)))
    out = np.empty_like(c)
    for i in range(4):  # corner i is the intersection of edges i-1 and i
        (p1, d1), (p2, d2) = lines[i - 1], lines[i]
        m = np.array([d1, -d2]).T
        if abs(np.linalg.det(m)) < 1e-6:
            return c
        u = np.linalg.solve(m, p2 - p1)
        out[i] = p1 + u[0] * d1
    if np.abs(out - c).max() > 3.0:  # implausible: keep OpenCV's corners
        return c
    return out


def identify_chart(found: dict[int, np.ndarray], layout: ChartLayout | None, source: str) -> ChartLayout:
    """The chart layout a photo shows, from its marker ids (checked against ``layout`` if given)."""
    chart_ids = [m for m in found if m < 4 * N_KEYS]
    if not chart_ids:
        if found:
            raise PatchkitError(
                f"no calibration-chart markers found (saw ArUco ids {sorted(found)}, which are not "
                f"chart ids 0..{4 * N_KEYS - 1}: is this a patch export or another chart?)",
                source,
            )
        raise PatchkitError("no ArUco markers found: is the whole chart in the photo, sharp and lit?", source)
    keys = sorted({m // 4 for m in chart_ids})
    if len(keys) > 1:
        raise PatchkitError(f"markers of several charts in one photo (keys {keys})", source)
    key = keys[0]
    if layout is not None:
        if key != layout.key:
            raise PatchkitError(
                f"photo shows chart k{key} (marker ids {4 * key}-{4 * key + 3}) but the layout given is "
                f"{layout.chart_id}: wrong chart or wrong --chart file",
                source,
            )
        return layout
    return layout_for_key(key)


def chart_homography(
    found: dict[int, np.ndarray], layout: ChartLayout, source: str = "photo", check: bool = True
) -> tuple[np.ndarray, float, int]:
    """Homography chart-frame mm -> photo px from the layout's visible markers.

    Returns ``(H, rms_px, n_markers)``; fewer than 3 markers or an RMS reprojection error above
    1.5 px raise :class:`PatchkitError`."""
    ref = layout.marker_corners_mm()
    ids = [m for m in sorted(found) if m in ref]
    if len(ids) < 3:
        raise PatchkitError(
            f"only {len(ids)} of 4 chart markers found (ids {ids}); at least 3 are needed: keep all four "
            "corners in the frame, sharp and free of glare",
            source,
        )
    src = np.concatenate([ref[m] for m in ids])
    dst = np.concatenate([found[m] for m in ids])
    H, _ = cv2.findHomography(src, dst, 0)
    if H is None:
        raise PatchkitError("cannot fit a homography to the chart markers", source)
    proj = cv2.perspectiveTransform(src.reshape(-1, 1, 2), H).reshape(-1, 2)
    rms = float(np.sqrt(np.mean(np.sum((proj - dst) ** 2, axis=1))))
    if check:
        check_reprojection(rms, source)
    return H, rms, len(ids)


def check_reprojection(rms: float, source: str) -> None:
    """Raise when the markers' RMS reprojection error exceeds 1.5 px."""
    if rms > MAX_REPROJECTION_PX:
        raise PatchkitError(
            f"chart markers do not fit one flat sheet (reprojection error {rms:.2f} px > {MAX_REPROJECTION_PX} px): "
            "is the chart bent or curled, or a marker damaged?",
            source,
        )


def rectify(image: np.ndarray, H_mm_to_px: np.ndarray, size_mm: tuple[float, float], ppm: float = PX_PER_MM) -> np.ndarray:
    """Warp the chart frame to a canonical float32 raster in [0, 1]: pixel ``(i, j)`` has its
    centre at frame mm ``((j + 0.5) / ppm, (i + 0.5) / ppm)``."""
    t = np.array([[1.0 / ppm, 0, 0.5 / ppm], [0, 1.0 / ppm, 0.5 / ppm], [0, 0, 1]])  # raster px -> mm
    m = H_mm_to_px @ t  # raster px -> photo px
    w, h = int(round(size_mm[0] * ppm)), int(round(size_mm[1] * ppm))
    img = np.ascontiguousarray(image).astype(np.float32) / 255.0
    return cv2.warpPerspective(img, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)


def _square_stats(raster: np.ndarray, centres_mm: np.ndarray, side_mm: float, ppm: float) -> tuple[np.ndarray, np.ndarray]:
    """Median and MAD (x1.4826) ``(N, 3)`` of squares of ``side_mm`` centred on ``centres_mm``."""
    n = max(2, int(round(side_mm * ppm)))
    h, w = raster.shape[:2]
    c0 = np.clip(np.round(centres_mm[:, 0] * ppm - n / 2.0).astype(int), 0, w - n)
    r0 = np.clip(np.round(centres_mm[:, 1] * ppm - n / 2.0).astype(int), 0, h - n)
    off = np.arange(n)
    rows = (r0[:, None] + off[None, :])[:, :, None]
    cols = (c0[:, None] + off[None, :])[:, None, :]
    patch = raster[rows, cols].reshape(len(centres_mm), n * n, 3)
    med = np.median(patch, axis=1)
    mad = 1.4826 * np.median(np.abs(patch - med[:, None, :]), axis=1)
    return med.astype(np.float64), mad.astype(np.float64)


def _poly_design(xy: np.ndarray, size_mm: tuple[float, float]) -> np.ndarray:
    u = xy[:, 0] / size_mm[0] * 2 - 1
    v = xy[:, 1] / size_mm[1] * 2 - 1
    return np.stack([np.ones_like(u), u, v, u * u, v * v, u * v, u**3, v**3, u * u * v, u * v * v], 1)


CLIP_LEVEL = 254.5 / 255
#: above this share of clipped paper-white gaps the light field is fitted with clipping modelled
CLIPPED_WHITE_MAX = 0.2
#: a chart with more of its swatches at the clip level than this is unusable
SWATCHES_AT_CLIP_MAX = 0.35


def clipped_flat_field(gaps: np.ndarray, white_lin: np.ndarray, white_clip: np.ndarray, gap_ok: np.ndarray,
                       centres: np.ndarray, size_mm: tuple[float, float]):
    """The light field when paper white is clipped in part of the chart.

    The field's shape over the chart is fitted on the gaps where no channel is clipped (cubic,
    or a lower order when few are), averaged over channels and scaled to mean 1 over the chart
    (the light the profile describes). Each channel's paper-white level is then the median of its
    unclipped gaps over that shape. A channel whose level reaches the clip (or that is clipped in
    almost every gap) is a *clipped channel*: the camera records its paper white at the clip level,
    so swatches are measured relative to the clip level and saturate there, as the camera that
    films the patch will record them.

    Returns ``(field at gaps (M, 3), field at swatches (N, 3), inlier mask (M,), clipped channels (3,),
    note)``; fields are linear.
    """
    ok = gap_ok & ~white_clip.any(axis=1)
    order = 10 if ok.sum() >= 40 else 6 if ok.sum() >= 15 else 3 if ok.sum() >= 6 else 0
    note = ""
    if order:
        a = _poly_design(gaps, size_mm)[:, :order]
        coef, *_ = np.linalg.lstsq(a[ok], white_lin[ok], rcond=None)
        shape_gaps = a @ coef
        shape_gaps = (shape_gaps / shape_gaps[gap_ok].mean(axis=0)).mean(axis=1)
        shape_sw = _poly_design(centres, size_mm)[:, :order] @ coef
        shape_sw = (shape_sw / (a @ coef)[gap_ok].mean(axis=0)).mean(axis=1)
        if order < 10:
            note = f"light falloff fitted with {order} terms from {int(ok.sum())} unclipped gaps; "
    else:
        shape_gaps, shape_sw = np.ones(len(gaps)), np.ones(len(centres))
        note = "too few unclipped gaps to correct the light falloff; "
    shape_gaps, shape_sw = np.maximum(shape_gaps, 1e-6), np.maximum(shape_sw, 1e-6)
    level = np.ones(3)
    clipped = np.zeros(3, dtype=bool)
    for c in range(3):
        free = gap_ok & ~white_clip[:, c]
        if free.mean() < 0.05 * max(gap_ok.mean(), 1e-6):
            clipped[c] = True
            continue
        level[c] = float(np.median(white_lin[free, c] / shape_gaps[free]))
        if level[c] >= 1.0 or white_clip[gap_ok, c].mean() > 0.5:
            clipped[c], level[c] = True, 1.0
    field_gaps = shape_gaps[:, None] * level[None, :]
    field_sw = shape_sw[:, None] * level[None, :]
    return field_gaps, field_sw, np.ones(len(gaps), dtype=bool), clipped, note


def fit_flat_field(
    xy: np.ndarray, white_lin: np.ndarray, size_mm: tuple[float, float], iters: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Robust cubic fit of paper white (linear, ``(M, 3)``) over the chart.

    Returns ``(coef (10, 3), inlier mask (M,))``; samples more than 3 robust sigmas (and at
    least 1 %) away from the fit (glare, dust, ink bleed) are excluded."""
    a = _poly_design(xy, size_mm)
    keep = np.ones(len(xy), dtype=bool)
    coef = np.zeros((a.shape[1], 3))
    for _ in range(iters):
        coef, *_ = np.linalg.lstsq(a[keep], white_lin[keep], rcond=None)
        ratio = white_lin / np.maximum(a @ coef, 1e-6) - 1.0
        r = np.abs(ratio).max(axis=1)
        scale = 1.4826 * np.median(r[keep])
        keep = r <= max(3.0 * scale, 0.01)
    return coef, keep


@dataclass
class ChartMeasurement:
    """One photo's measurement of a chart (arrays over the layout's swatches)."""

    layout: ChartLayout
    source: str
    raw: np.ndarray  # (N, 3) swatch medians, encoded, as photographed
    mad: np.ndarray  # (N, 3) robust spread inside each swatch (encoded units)
    normalised: np.ndarray  # (N, 3) flat-fielded, paper-white relative, encoded
    kept: np.ndarray  # (N,) bool: usable for the fit
    reasons: dict[str, int]  # dropped swatches by reason
    paper_white_raw: np.ndarray  # (3,) median paper white, encoded
    homography: np.ndarray  # chart mm -> photo px
    reprojection_px: float
    n_markers: int
    marker_corners: dict[int, np.ndarray] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "source": self.source,
            "markers": self.n_markers,
            "reprojection_px": round(self.reprojection_px, 3),
            "paper_white_raw": [round(float(v), 4) for v in self.paper_white_raw],
            "swatches_kept": int(self.kept.sum()),
            "dropped": {k: int(v) for k, v in self.reasons.items() if v},
            "warnings": list(self.warnings),
        }


def measure_chart(
    image: np.ndarray,
    layout: ChartLayout | None = None,
    source: str = "photo",
    glare_tol: float = 0.03,
) -> ChartMeasurement:
    """Measure one photo (``(H, W, 3)`` uint8 RGB) of a chart. See the module docstring."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise PatchkitError("expected an 8-bit RGB photo", source)
    found = detect_markers(image)
    layout = identify_chart(found, layout, source)
    H, rms, n_markers = chart_homography(found, layout, source, check=False)
    raster = rectify(image, H, layout.frame_mm)
    warnings: list[str] = []
    white = _paper_white(raster, layout, H, image.shape, source, warnings)
    centres = layout.swatch_centres()
    raw, mad = _square_stats(raster, centres, layout.swatch_mm * INNER, PX_PER_MM)
    outside = ~_in_photo(centres, layout.swatch_mm / 2.0, H, image.shape)
    _check_overexposure(raw, outside, white, source)
    check_reprojection(rms, source)  # after the exposure checks: clipping also shifts marker edges
    normalised, gap_dev, inlier, clip_channels = _flat_field(raw, centres, white, layout.frame_mm, warnings)
    kept, reasons = _quality_flags(layout, white, gap_dev, raw, mad, outside, clip_channels, glare_tol)
    _check_usable(kept, reasons, inlier, source, warnings)
    _check_follows_layout(layout, normalised, kept, source)
    return ChartMeasurement(
        layout=layout,
        source=source,
        raw=raw,
        mad=mad,
        normalised=normalised,
        kept=kept,
        reasons=reasons,
        paper_white_raw=white.median_raw,
        homography=H,
        reprojection_px=rms,
        n_markers=n_markers,
        marker_corners={m: found[m] for m in found if m in layout.markers},
        warnings=warnings,
    )


def _in_photo(points_mm: np.ndarray, margin_mm: float, H: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``(N,)`` bool: the square of half-side ``margin_mm`` around each chart point (mm) lies inside
    the photo of ``shape`` (parts of the chart outside the photo, a corner cut off, hold no data)."""
    h_img, w_img = shape[:2]
    corners = points_mm[:, None, :] + margin_mm * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]])
    px = cv2.perspectiveTransform(corners.reshape(-1, 1, 2), H).reshape(-1, 4, 2)
    return ((px[..., 0] >= 1) & (px[..., 0] <= w_img - 2) & (px[..., 1] >= 1) & (px[..., 1] <= h_img - 2)).all(axis=1)


@dataclass
class _PaperWhite:
    """Paper white sampled at the ``M`` crossings between the chart's cells."""

    gaps: np.ndarray  # (M, 2) chart mm
    ok: np.ndarray  # (M,) bool: inside the photo
    raw: np.ndarray  # (M, 3) medians, encoded
    clip: np.ndarray  # (M, 3) bool: at the clip level
    clipped_share: np.ndarray  # (3,) per channel, share of the in-photo gaps clipped
    clipped: float  # share of the in-photo gaps with any channel clipped
    median_raw: np.ndarray  # (3,) median paper white, encoded


def _paper_white(raster: np.ndarray, layout: ChartLayout, H: np.ndarray, shape: tuple[int, ...], source: str,
                 warnings: list[str]) -> _PaperWhite:
    """Sample paper white at the crossings; raise when the chart is mostly out of the photo or
    underexposed, warn when it is slightly overexposed or dark."""
    gaps = layout.gap_points_mm()
    gap_ok = _in_photo(gaps, GAP_SAMPLE_MM, H, shape)
    if gap_ok.mean() < 0.5:
        raise PatchkitError(f"only {gap_ok.mean():.0%} of the chart is inside the photo; frame the whole chart", source)
    white_raw, _ = _square_stats(raster, gaps, GAP_SAMPLE_MM, PX_PER_MM)
    white_clip = white_raw >= CLIP_LEVEL  # (M, 3)
    clipped_white = white_clip[gap_ok].any(axis=1).mean()
    paper_raw = np.median(white_raw[gap_ok], axis=0)
    if 0.02 < clipped_white <= CLIPPED_WHITE_MAX:
        warnings.append(f"paper white clipped in {clipped_white:.0%} of the white gaps (slightly overexposed)")
    if paper_raw.max() < 0.2:
        raise PatchkitError(
            f"underexposed: paper white is only {paper_raw.max() * 255:.0f}/255; retake the photo in more light",
            source,
        )
    if paper_raw.max() < 0.35:
        warnings.append(f"dark photo: paper white is {paper_raw.max() * 255:.0f}/255 (noise will limit accuracy)")
    return _PaperWhite(gaps, gap_ok, white_raw, white_clip, white_clip[gap_ok].mean(axis=0), clipped_white, paper_raw)


def _check_overexposure(raw: np.ndarray, outside: np.ndarray, white: _PaperWhite, source: str) -> None:
    """Raise when both the paper white and too many swatches are clipped at 255."""
    swatch_clip = (raw[~outside] >= CLIP_LEVEL).any(axis=1).mean()
    if white.clipped > CLIPPED_WHITE_MAX and swatch_clip > SWATCHES_AT_CLIP_MAX:
        raise PatchkitError(f"overexposed: {swatch_clip:.0%} of the swatches and {white.clipped:.0%} of the white gaps "
                            "are clipped at 255; retake the photo with lower exposure", source)


def _flat_field(raw: np.ndarray, centres: np.ndarray, white: _PaperWhite, size: tuple[float, float],
                warnings: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Divide the swatches by the light field in linear light (paper white becomes 1).

    Returns ``(normalised (N, 3) encoded, paper-white deviation from the field at the gaps (M, 3),
    inlier gaps (M,), clipped channels (3,))``."""
    white_lin = _dec(white.raw)
    clip_channels = np.zeros(3, dtype=bool)
    if white.clipped <= CLIPPED_WHITE_MAX:  # the usual case: paper white measured everywhere
        coef, inlier = fit_flat_field(white.gaps[white.ok], white_lin[white.ok], size)
        field_at_gaps = _poly_design(white.gaps, size) @ coef
        field_at = np.maximum(_poly_design(centres, size) @ coef, 1e-6)
        normalised = _enc(_dec(raw) / field_at)
    else:  # overexposed paper white: model the clipping instead of refusing the photo
        field_at_gaps, field_at, inlier, clip_channels, note = clipped_flat_field(
            white.gaps, white_lin, white.clip, white.ok, centres, size)
        normalised = _dec(raw) / field_at
        normalised[:, clip_channels] = np.minimum(normalised[:, clip_channels], 1.0)
        normalised = _enc(normalised)
        warnings.append(_clipped_white_warning(normalised, white.clipped_share, clip_channels, note))
    gap_dev = white_lin / np.maximum(field_at_gaps, 1e-6) - 1.0
    return normalised, gap_dev, inlier, clip_channels


def _clipped_white_warning(normalised: np.ndarray, clipped_share: np.ndarray, clip_channels: np.ndarray,
                           note: str) -> str:
    """The warning of a photo whose paper white is clipped (measured by :func:`clipped_flat_field`)."""
    names = ", ".join(f"{'RGB'[c]} {clipped_share[c]:.0%}" for c in range(3) if clipped_share[c] > 0.02)
    at_clip = (normalised[:, clip_channels] >= 0.999).any(axis=1) if clip_channels.any() else np.zeros(len(normalised), bool)
    chans = "".join("RGB"[c] for c in np.flatnonzero(clip_channels))
    how = (f"channel{'s' if len(chans) > 1 else ''} {chans} measured relative to the clip level, and the "
           f"{int(at_clip.sum())} of {len(normalised)} swatches that reach it predicted clipped, as the camera records "
           "them" if chans else "the light field fitted on the unclipped gaps")
    return (f"overexposed: paper white is clipped at 255 in {names} of the white gaps; {how}; {note}"
            "lower the exposure for a full-range profile")


def _quality_flags(layout: ChartLayout, white: _PaperWhite, gap_dev: np.ndarray, raw: np.ndarray, mad: np.ndarray,
                   outside: np.ndarray, clip_channels: np.ndarray, glare_tol: float) -> tuple[np.ndarray, dict[str, int]]:
    """Which swatches are usable: ``(kept (N,), dropped swatches by reason)``."""
    cols, rows = layout.grid_shape
    cell = layout.swatch_cell
    corner_idx = np.stack(
        [cell[:, 1] * (cols + 1) + cell[:, 0] + d for d in (0, 1, cols + 1, cols + 2)], axis=1
    )  # the 4 crossings around each cell, in gap_points_mm order
    # glare or shadow: the paper white around a swatch departs from the smooth light field
    dev = np.where(white.ok, gap_dev.mean(axis=1), 0.0)  # signed, mean over channels
    noise = 1.4826 * float(np.median(np.abs(dev[white.ok] - np.median(dev[white.ok]))))
    local = dev[corner_idx].mean(axis=1)
    glare = np.abs(local) > max(glare_tol, 3.0 * noise)
    if clip_channels.any():  # clipped gaps carry no glare information
        glare &= ~white.clip[corner_idx].any(axis=(1, 2))
    glare &= ~outside
    spread = mad.max(axis=1)
    high_spread = spread > max(0.02, 4.0 * float(np.median(spread)))
    # a channel at 255 hides the true value; a single channel at 0 is an ordinary capture of a
    # saturated colour (the camera's floor), so only all-channel black clipping is dropped
    # (in a channel whose paper white is itself clipped, a clipped swatch is a measurement: it is at
    # the clip level, as the camera that films the patch records it)
    clipped = (raw[:, ~clip_channels] >= CLIP_LEVEL).any(axis=1) | (raw <= 0.5 / 255).all(axis=1)
    high_spread &= ~outside
    clipped &= ~outside
    kept = ~(outside | glare | high_spread | clipped)
    reasons = {
        "outside_photo": int(outside.sum()),
        "glare_or_shadow": int(glare.sum()),
        "high_spread": int((high_spread & ~glare).sum()),
        "clipped": int((clipped & ~glare & ~high_spread).sum()),
    }
    return kept, reasons


def _check_usable(kept: np.ndarray, reasons: dict[str, int], inlier: np.ndarray, source: str,
                  warnings: list[str]) -> None:
    """Raise when fewer than 70 % of the swatches are usable; warn about dropped swatches and
    paper-white outliers."""
    n = len(kept)
    if kept.sum() < 0.7 * n:
        raise PatchkitError(
            f"only {kept.sum()} of {n} swatches are usable ({reasons}); glare, clipping or blur: retake the photo",
            source,
        )
    if kept.sum() < n:
        warnings.append(f"dropped {n - kept.sum()} of {n} swatches: " + ", ".join(f"{k} {v}" for k, v in reasons.items() if v))
    if (~inlier).mean() > 0.1:
        warnings.append(f"{(~inlier).mean():.0%} of the paper-white samples deviate from a smooth light field (glare or shadow)")


def _check_follows_layout(layout: ChartLayout, normalised: np.ndarray, kept: np.ndarray, source: str) -> None:
    """Raise unless the measured colours follow the layout: lightness ranks agree on any real printer."""
    digital_y = _dec(layout.digital()) @ np.array([0.2126, 0.7152, 0.0722])
    meas_y = _dec(np.clip(normalised, 0, None)) @ np.array([0.2126, 0.7152, 0.0722])
    rho = _spearman(digital_y[kept], meas_y[kept])
    if rho < 0.8:
        raise PatchkitError(
            f"swatch colours do not follow the layout of {layout.chart_id} (rank correlation {rho:.2f}): "
            "another chart, or a chart printed from a different layout file?",
            source,
        )


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra = np.argsort(np.argsort(a)).astype(np.float64)
    rb = np.argsort(np.argsort(b)).astype(np.float64)
    ra -= ra.mean()
    rb -= rb.mean()
    den = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / den) if den > 0 else 0.0
