"""Check a photo of an exported print (with markers) against the printer profile.

:func:`measure_print_photo` finds the export's ArUco markers (ids 40..43), fits the homography
from page mm to photo pixels, estimates the paper white around the patch (a smooth linear light
field, fitted robustly in linear light), and returns the patch rectified at ``ppm`` px/mm and
normalised to paper white (the profile's output space), plus the QA-strip swatches measured and,
with a profile, their dE2000 against the profile's prediction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from patchkit.errors import PatchkitError
from patchkit.printing.colour import linear_to_srgb_np, srgb_to_linear_np
from patchkit.printing.export import EXPORT_MARKER_IDS
from patchkit.printing.fit import delta_e_rgb
from patchkit.printing.measure import MAX_REPROJECTION_PX, detect_markers, rectify
from patchkit.printing.profile import PrinterProfile


@dataclass
class PrintCheck:
    """A photo of an exported print, measured."""

    patch: np.ndarray  # (h, w, 3) float64: the patch area, rectified, paper-white relative (encoded)
    ppm: float  # px per mm of ``patch``
    homography: np.ndarray  # page mm -> photo px
    reprojection_px: float
    markers: list[int]
    qa_measured: np.ndarray | None = None  # (K, 3) QA swatches, paper-white relative (encoded)
    qa_delta_e: np.ndarray | None = None  # (K,) dE2000 vs the profile's prediction
    extra: dict[str, Any] = field(default_factory=dict)

    def sample(self, centres_mm: np.ndarray, side_mm: float) -> np.ndarray:
        """Median colours ``(N, 3)`` of squares of ``side_mm`` centred at patch mm ``centres_mm``."""
        n = max(1, int(round(side_mm * self.ppm)))
        h, w = self.patch.shape[:2]
        out = np.empty((len(centres_mm), 3))
        for i, (cx, cy) in enumerate(np.asarray(centres_mm, dtype=np.float64)):
            c0 = int(np.clip(round(cx * self.ppm - n / 2), 0, w - n))
            r0 = int(np.clip(round(cy * self.ppm - n / 2), 0, h - n))
            out[i] = np.median(self.patch[r0 : r0 + n, c0 : c0 + n].reshape(-1, 3), axis=0)
        return out


def _paper_points(x: float, y: float, w: float, h: float, offset: float, step: float = 4.0) -> np.ndarray:
    """Points on a rectangle ``offset`` mm outside the patch (away from the crop-mark lines)."""
    pts = []
    for t in np.arange(x + 5.0, x + w - 4.0, step):
        pts += [(t, y - offset), (t, y + h + offset)]
    for t in np.arange(y + 5.0, y + h - 4.0, step):
        pts += [(x - offset, t), (x + w + offset, t)]
    return np.array(pts, dtype=np.float64)


def measure_print_photo(
    photo: np.ndarray,
    meta: dict[str, Any],
    profile: PrinterProfile | None = None,
    ppm: float = 8.0,
    source: str = "photo",
) -> PrintCheck:
    """Measure a photo (uint8 RGB) of a print made by ``patchkit export --markers``.

    ``meta`` is the export's JSON record. Raises :class:`PatchkitError` when the export has no
    markers, fewer than 3 are visible, or they do not fit a flat sheet.
    """
    if "markers" not in meta or "placement_mm" not in meta:
        raise PatchkitError("this export has no markers (export with --markers to check prints from photos)", source)
    place = meta["placement_mm"]
    px, py, pw, ph = place["x"], place["y"], place["width"], place["height"]
    ref = {m["id"]: np.array(m["corners_patch_mm"], dtype=np.float64) + [px, py] for m in meta["markers"]["markers"]}
    found = {k: v for k, v in detect_markers(photo).items() if k in EXPORT_MARKER_IDS}
    ids = sorted(set(found) & set(ref))
    if len(ids) < 3:
        raise PatchkitError(f"only {len(ids)} of 4 export markers found (ids {ids}); at least 3 are needed", source)
    src = np.concatenate([ref[m] for m in ids])
    dst = np.concatenate([found[m] for m in ids])
    H, _ = cv2.findHomography(src, dst, 0)
    proj = cv2.perspectiveTransform(src.reshape(-1, 1, 2), H).reshape(-1, 2)
    rms = float(np.sqrt(np.mean(np.sum((proj - dst) ** 2, axis=1))))
    if rms > MAX_REPROJECTION_PX:
        raise PatchkitError(f"export markers do not fit a flat sheet (reprojection error {rms:.2f} px)", source)

    # paper white around the patch: a robust linear field in linear light
    gap = float(meta["markers"]["gap_mm"])
    pts = _paper_points(px, py, pw, ph, offset=gap / 2.0)
    page_raster = rectify(photo, H, (px + pw + gap + 1.0, py + ph + gap + 1.0), ppm)
    n = max(2, int(round(0.75 * ppm)))
    cols = np.clip(np.round(pts[:, 0] * ppm - n / 2).astype(int), 0, page_raster.shape[1] - n)
    rows = np.clip(np.round(pts[:, 1] * ppm - n / 2).astype(int), 0, page_raster.shape[0] - n)
    white = np.stack([np.median(page_raster[r : r + n, c : c + n].reshape(-1, 3), axis=0) for r, c in zip(rows, cols)])
    white_lin = srgb_to_linear_np(white.astype(np.float64))
    design = np.c_[np.ones(len(pts)), pts]
    keep = np.ones(len(pts), bool)
    for _ in range(3):
        coef, *_ = np.linalg.lstsq(design[keep], white_lin[keep], rcond=None)
        r = np.abs(white_lin / np.maximum(design @ coef, 1e-6) - 1).max(axis=1)
        keep = r <= max(3 * 1.4826 * np.median(r[keep]), 0.01)

    def normalise(img: np.ndarray, x0: float, y0: float) -> np.ndarray:
        hh, ww = img.shape[:2]
        yy, xx = np.mgrid[0:hh, 0:ww]
        mm = np.stack([np.ones(hh * ww), x0 + (xx.ravel() + 0.5) / ppm, y0 + (yy.ravel() + 0.5) / ppm], 1)
        field_lin = (mm @ coef).reshape(hh, ww, 3)
        return linear_to_srgb_np(srgb_to_linear_np(img.astype(np.float64)) / np.maximum(field_lin, 1e-6))

    r0, c0 = int(round(py * ppm)), int(round(px * ppm))
    patch = page_raster[r0 : r0 + int(round(ph * ppm)), c0 : c0 + int(round(pw * ppm))]
    check = PrintCheck(normalise(patch, c0 / ppm, r0 / ppm), ppm, H, rms, ids)

    qa = meta.get("qa_strip")
    if qa and meta.get("pages", 1) == 1:
        size = qa[0]["size_mm"]
        centres = np.array([[s["xy_mm"][0] + size / 2, s["xy_mm"][1] + size / 2] for s in qa])
        full = rectify(photo, H, (centres[:, 0].max() + size, centres[:, 1].max() + size), ppm)
        m = max(2, int(round(size * 0.5 * ppm)))
        vals = []
        for cx, cy in centres:
            rr, cc = int(round(cy * ppm - m / 2)), int(round(cx * ppm - m / 2))
            vals.append(np.median(full[rr : rr + m, cc : cc + m].reshape(-1, 3), axis=0))
        vals = np.array(vals, dtype=np.float64)
        lin_field = np.c_[np.ones(len(centres)), centres] @ coef  # extrapolated light field
        check.qa_measured = linear_to_srgb_np(srgb_to_linear_np(vals) / np.maximum(lin_field, 1e-6))
        if profile is not None:
            pred = profile.predict(np.array([s["rgb"] for s in qa], dtype=np.float32) / 255.0).double().numpy()
            check.qa_delta_e = delta_e_rgb(check.qa_measured, pred)
    return check
