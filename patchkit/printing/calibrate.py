"""Calibration: photos of a printed chart -> a fitted :class:`PrinterProfile` and a report.

``calibrate(images)`` measures every photo (:func:`patchkit.printing.measure.measure_chart`),
combines them (per-swatch median over the photos in which the swatch is usable), fits the
default model (9x9x9 lattice regression, smoothness by 5-fold CV in dE2000, replicates kept in
one fold) and a cubic polynomial baseline, and reports cross-validated mean / p95 / max dE2000,
replicate consistency and cross-photo consistency. Several photos (poses, lights) or the frames
of a short video are combined. Problems that would silently give a bad profile raise
:class:`PatchkitError`; softer ones become warnings in the report and the profile.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

import patchkit
from patchkit.errors import PatchkitError
from patchkit.io import read_image
from patchkit.printing._threads import single_thread
from patchkit.printing.chart import ChartLayout
from patchkit.printing.fit import (
    LatticeFit,
    delta_e_rgb,
    error_stats,
    fit_lattice_cv,
    fit_polynomial,
    kfold_indices,
)
from patchkit.printing.lut import lattice_points
from patchkit.printing.measure import ChartMeasurement, measure_chart
from patchkit.printing.profile import PrinterProfile

VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v"}
WARN_MEAN = 1.5
WARN_P95 = 4.0


@dataclass
class CalibrationReport:
    """Numbers describing one calibration (all colour differences in dE2000)."""

    chart_id: str
    n_photos: int
    n_swatches: int
    n_used: int
    cv: dict[str, float]  # of the model the profile holds (``model``)
    lam: float
    lut_size: int
    replicate: dict[str, float]
    cross_photo: dict[str, float] | None
    baseline_poly3_cv: dict[str, float]
    photos: list[dict[str, Any]]
    model: str = "lattice"
    model_choice: str = ""
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def format(self) -> str:
        """Human-readable multi-line summary (what ``patchkit calibrate`` prints)."""
        lines = [
            f"chart {self.chart_id}: {self.n_photos} photo(s), {self.n_used}/{self.n_swatches} swatches used",
            f"profile ({self.model}), cross-validated dE2000: "
            f"mean {self.cv['mean']:.2f}  p95 {self.cv['p95']:.2f}  max {self.cv['max']:.2f}",
            f"cubic polynomial CV dE2000: mean {self.baseline_poly3_cv['mean']:.2f}  p95 {self.baseline_poly3_cv['p95']:.2f}; "
            f"{self.lut_size}^3 lattice (lambda {self.lam:.2g})",
        ]
        if self.model_choice:
            lines.append(f"profile model: {self.model_choice}")
        if self.replicate:
            lines.append(f"replicate consistency dE2000: mean {self.replicate['mean']:.2f}  max {self.replicate['max']:.2f}")
        if self.cross_photo:
            lines.append(f"cross-photo consistency dE2000: mean {self.cross_photo['mean']:.2f}  p95 {self.cross_photo['p95']:.2f}")
        for p in self.photos:
            lines.append(
                f"  {p['source']}: {p['markers']} markers, reprojection {p['reprojection_px']:.2f} px, "
                f"{p['swatches_kept']} swatches kept"
            )
        lines += [f"warning: {w}" for w in self.warnings]
        lines.append(f"took {self.seconds:.1f} s")
        return "\n".join(lines)


def load_calibration_images(paths: Sequence[str | Path], max_video_frames: int = 12) -> list[tuple[str, np.ndarray]]:
    """Read photos (any image format Pillow reads) and videos (frames sampled evenly) as
    ``(name, uint8 RGB)`` pairs; unreadable files raise PatchkitError naming the file."""
    out = []
    for p in paths:
        path = Path(p)
        if path.suffix.lower() in VIDEO_SUFFIXES:
            out += _video_frames(path, max_video_frames)
        else:
            out.append((str(path), read_image(path)))
    if not out:
        raise PatchkitError("no photos given")
    return out


def _video_frames(path: Path, max_frames: int) -> list[tuple[str, np.ndarray]]:
    if not path.is_file():
        raise PatchkitError("video file not found", path)
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise PatchkitError("cannot open video", path)
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        wanted = set(np.unique(np.linspace(0, max(n - 1, 0), min(max_frames, max(n, 1))).round().astype(int)).tolist())
        frames, i = [], 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if i in wanted or n <= 0:
                frames.append((f"{path}#frame{i}", cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)))
                if n <= 0 and len(frames) >= max_frames:
                    break
            i += 1
    finally:
        cap.release()
    if not frames:
        raise PatchkitError("video has no readable frames", path)
    return frames


def _groups(rgb: np.ndarray) -> np.ndarray:
    return np.unique(rgb, axis=0, return_inverse=True)[1].ravel()


def _replicate_consistency(layout: ChartLayout, y: np.ndarray, used: np.ndarray) -> dict[str, float]:
    g = _groups(layout.swatch_rgb)
    des = []
    for k in np.unique(g[used]):
        idx = np.flatnonzero((g == k) & used)
        if len(idx) < 2:
            continue
        ref = np.median(y[idx], axis=0, keepdims=True)
        des.append(delta_e_rgb(y[idx], np.repeat(ref, len(idx), axis=0)))
    if not des:
        return {}
    return error_stats(np.concatenate(des))


#: the cubic is kept only when its cross-validated mean dE2000 is below the lattice's by this much
POLY_MARGIN = 0.02
#: lattice size the cubic is baked into (trilinear error of a cubic at 17^3 is about 0.01 dE2000)
BAKE_SIZE = 17


def _choose_model(fit, poly: dict[str, float], x: np.ndarray, y: np.ndarray, lut_size: int
                  ) -> tuple[np.ndarray, str, str]:
    """The profile's LUT, model name and why: the lattice, unless the cubic polynomial predicts
    held-out swatches better (lower cross-validated mean dE2000); then the cubic, fitted on every
    swatch, baked into a ``BAKE_SIZE``^3 lattice so the profile keeps one format."""
    lat, cub = fit.cv["mean"], poly["mean"]
    if cub < lat - POLY_MARGIN:
        size = max(BAKE_SIZE, lut_size)
        model = fit_polynomial(x, y, degree=3, ridge=1e-6)
        lut = np.clip(model.predict(lattice_points(size)), 0.0, 1.0).reshape(size, size, size, 3)
        return lut, "poly3", (f"cubic polynomial (baked into a {size}^3 LUT): its cross-validated mean dE2000 "
                              f"{cub:.2f} beats the {lut_size}^3 lattice's {lat:.2f}")
    return fit.lut, "lattice", (f"{lut_size}^3 lattice: its cross-validated mean dE2000 {lat:.2f} is not "
                                f"beaten by the cubic polynomial's {cub:.2f}")


def _poly_cv(x: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int = 5) -> dict[str, float]:
    uniq, inv = np.unique(groups, return_inverse=True)
    fold_of = np.empty(len(uniq), dtype=np.int64)
    for f, g in enumerate(kfold_indices(len(uniq), folds)):
        fold_of[g] = f
    pred = np.zeros_like(y)
    for f in range(folds):
        test = fold_of[inv] == f
        pred[test] = fit_polynomial(x[~test], y[~test], degree=3, ridge=1e-6).predict(x[test])
    pred = np.clip(pred, 0, 1)
    return {**error_stats(delta_e_rgb(pred, y)), "rgb_rmse": float(np.sqrt(np.mean((pred - y) ** 2)))}


def calibrate(
    images: Sequence[tuple[str, np.ndarray]],
    layout: ChartLayout | None = None,
    lut_size: int = 9,
    folds: int = 5,
    name: str | None = None,
    notes: dict[str, str] | None = None,
) -> tuple[PrinterProfile, CalibrationReport]:
    """Fit a printer profile from ``(name, uint8 RGB photo)`` pairs of one chart.

    Photos and video frames that fail (no chart found, blur, chart out of view) are skipped with
    a warning naming each, as long as one is usable; with none usable the first error is raised."""
    t0 = time.perf_counter()
    with single_thread():
        measurements: list[ChartMeasurement] = []
        used_images = []
        skipped: list[tuple[str, str]] = []  # (source, why)
        first_error: PatchkitError | None = None
        for source, img in images:
            try:
                m = measure_chart(img, layout, source)
            except PatchkitError as exc:  # one bad photo does not sink the others
                first_error = first_error or exc
                skipped.append((source, str(exc)))
                continue
            layout = m.layout  # all photos must show the same chart
            measurements.append(m)
            used_images.append((source, img))
        if not measurements:
            assert first_error is not None
            raise first_error
        assert layout is not None
        profile, report = _fit(measurements, layout, lut_size, folds, name, notes, used_images)
        frames = [f"{src}: {why}" for src, why in skipped if "#frame" in src]
        msgs = [f"skipped {len(frames)} video frame(s) without a usable chart (first: {frames[0]})"] if frames else []
        msgs += [f"skipped photo without a usable chart: {src}: {why}" for src, why in skipped if "#frame" not in src]
        report.warnings += msgs
        profile.meta["warnings"] += msgs
    report.seconds = time.perf_counter() - t0
    profile.meta["fit"]["seconds"] = round(report.seconds, 3)
    return profile, report


@dataclass
class _Combined:
    """The photos' measurements combined per swatch (``P`` photos, ``N`` swatches)."""

    norm: np.ndarray  # (P, N, 3) each photo's normalised colours
    kept: np.ndarray  # (P, N) usable in each photo
    used: np.ndarray  # (N,) usable in at least one photo
    y_all: np.ndarray  # (N, 3) median over the photos in which the swatch is usable (0 where unused)


def _combine(measurements: list[ChartMeasurement]) -> _Combined:
    """Per-swatch median over the photos in which the swatch is usable."""
    norm = np.stack([m.normalised for m in measurements])  # (P, N, 3)
    kept = np.stack([m.kept for m in measurements])  # (P, N)
    used = kept.any(axis=0)
    masked = np.where(kept[..., None], norm, np.nan)
    y_all = np.nanmedian(np.where(used[None, :, None], masked, 0.0), axis=0)
    return _Combined(norm, kept, used, y_all)


@dataclass
class _ModelFit:
    """The lattice and cubic fits and the model the profile holds."""

    lattice: LatticeFit
    poly: dict[str, float]  # the cubic's cross-validated errors
    lut: np.ndarray
    model: str  # "lattice" or "poly3"
    choice: str  # why

    @property
    def cv(self) -> dict[str, float]:
        """Cross-validated errors of the model the profile holds."""
        return self.poly if self.model == "poly3" else self.lattice.cv


def _fit_models(x: np.ndarray, y: np.ndarray, groups: np.ndarray, lut_size: int, folds: int) -> _ModelFit:
    """Fit the lattice and the cubic (both cross-validated) and choose the profile's model."""
    fit = fit_lattice_cv(x, y, size=lut_size, folds=folds, groups=groups)
    poly = _poly_cv(x, y, groups, folds)
    lut, model, choice = _choose_model(fit, poly, x, y, lut_size)
    return _ModelFit(fit, poly, lut, model, choice)


def _cross_photo(c: _Combined) -> dict[str, float] | None:
    """dE2000 between every pair of photos on the swatches both keep; ``None`` for one photo."""
    if len(c.norm) < 2:
        return None
    des = []
    for a, b in itertools.combinations(range(len(c.norm)), 2):
        both = c.kept[a] & c.kept[b]
        des.append(delta_e_rgb(c.norm[a][both], c.norm[b][both]))
    return error_stats(np.concatenate(des))


def _fit_warnings(measurements: list[ChartMeasurement], cv: dict[str, float], replicate: dict[str, float],
                  cross: dict[str, float] | None) -> list[str]:
    """The photos' warnings, then high fit error, replicate and cross-photo disagreement."""
    warnings = [w for m in measurements for w in (f"{m.source}: {x}" for x in m.warnings)]
    if cv["mean"] > WARN_MEAN or cv["p95"] > WARN_P95:
        warnings.append(
            f"cross-validated error is high (mean {cv['mean']:.2f}, p95 {cv['p95']:.2f} dE2000; "
            f"expected <= {WARN_MEAN} / {WARN_P95}): check focus, glare and even lighting"
        )
    if replicate and replicate["mean"] > WARN_MEAN:
        warnings.append(f"replicate swatches disagree (mean {replicate['mean']:.2f} dE2000): uneven print or light")
    if cross and cross["mean"] > WARN_MEAN:
        warnings.append(f"photos disagree (mean {cross['mean']:.2f} dE2000): different light or camera settings?")
    return warnings


def _photo_sources(measurements: list[ChartMeasurement], images: Sequence[tuple[str, np.ndarray]]) -> list[dict[str, Any]]:
    """Each photo's summary with its hash and size (the profile's ``sources``)."""
    sources = []
    for (source, img), m in zip(images, measurements):
        s = m.summary()
        s["sha256"] = hashlib.sha256(np.ascontiguousarray(img).tobytes()).hexdigest()
        s["size"] = [int(img.shape[1]), int(img.shape[0])]
        sources.append(s)
    return sources


def _fit_stats(fits: _ModelFit, replicate: dict[str, float], cross: dict[str, float] | None, layout: ChartLayout,
               c: _Combined, folds: int) -> dict[str, Any]:
    """The profile's ``fit`` record."""
    kept_cv = fits.cv
    return {
        "cv_mean": kept_cv["mean"],
        "cv_p95": kept_cv["p95"],
        "cv_max": kept_cv["max"],
        "cv_rgb_rmse": kept_cv["rgb_rmse"],
        "lattice_cv_mean": fits.lattice.cv["mean"],
        "cv_by_lambda": fits.lattice.cv_by_lambda,
        "folds": folds,
        "poly3_cv_mean": fits.poly["mean"],
        "poly3_cv_p95": fits.poly["p95"],
        "replicate_mean": replicate.get("mean") if replicate else None,
        "replicate_max": replicate.get("max") if replicate else None,
        "cross_photo_mean": cross["mean"] if cross else None,
        "n_swatches": int(layout.n_swatches),
        "n_used": int(c.used.sum()),
        "n_photos": len(c.norm),
    }


def _paper_black(measurements: list[ChartMeasurement], layout: ChartLayout, c: _Combined
                 ) -> tuple[list[float] | None, list[float] | None]:
    """Median of the usable black swatches: ``(normalised, raw)``, ``None`` without any."""
    black = np.flatnonzero((layout.swatch_rgb == 0).all(axis=1) & c.used)
    if not len(black):
        return None, None
    raw = np.stack([m.raw for m in measurements])[:, black].reshape(-1, 3)
    return [float(v) for v in np.median(c.y_all[black], axis=0)], [float(v) for v in np.median(raw, axis=0)]


def _measurements_npz(layout: ChartLayout, c: _Combined, measurements: list[ChartMeasurement]) -> dict[str, np.ndarray]:
    """The arrays saved beside the profile (``profile.npz``)."""
    return {
        "digital": layout.digital().astype(np.float32),
        "captured": c.y_all.astype(np.float32),
        "used": c.used,
        "position_mm": layout.swatch_centres().astype(np.float32),
        "photo_raw": np.stack([m.raw for m in measurements]).astype(np.float32),
        "photo_normalised": c.norm.astype(np.float32),
        "photo_mad": np.stack([m.mad for m in measurements]).astype(np.float32),
        "photo_kept": c.kept,
    }


def _fit(
    measurements: list[ChartMeasurement],
    layout: ChartLayout,
    lut_size: int,
    folds: int,
    name: str | None,
    notes: dict[str, str] | None,
    images: Sequence[tuple[str, np.ndarray]],
) -> tuple[PrinterProfile, CalibrationReport]:
    """Combine the photos, fit, and assemble the profile and its report."""
    c = _combine(measurements)
    x = layout.digital()[c.used]
    fits = _fit_models(x, c.y_all[c.used], _groups(layout.swatch_rgb)[c.used], lut_size, folds)
    replicate = _replicate_consistency(layout, c.y_all, c.used)
    cross = _cross_photo(c)
    warnings = _fit_warnings(measurements, fits.cv, replicate, cross)
    paper_black, paper_black_raw = _paper_black(measurements, layout, c)
    meta = {
        "name": name,
        "chart_id": layout.chart_id,
        "chart_fingerprint": layout.fingerprint(),
        "model": fits.model,
        "model_choice": fits.choice,
        "lambda": fits.lattice.lam,
        "notes": dict(notes or {}),
        "paper_white": [1.0, 1.0, 1.0],
        "paper_white_raw": [float(v) for v in np.mean([m.paper_white_raw for m in measurements], axis=0)],
        "paper_black": paper_black,
        "paper_black_raw": paper_black_raw,
        "fit": _fit_stats(fits, replicate, cross, layout, c, folds),
        "warnings": warnings,
        "sources": _photo_sources(measurements, images),
        "patchkit_version": patchkit.__version__,
    }
    profile = PrinterProfile(fits.lut.astype(np.float32), meta, _measurements_npz(layout, c, measurements))
    report = CalibrationReport(
        chart_id=layout.chart_id,
        n_photos=len(measurements),
        n_swatches=int(layout.n_swatches),
        n_used=int(c.used.sum()),
        cv={k: float(v) for k, v in fits.cv.items()},
        lam=float(fits.lattice.lam),
        lut_size=lut_size,
        replicate=replicate,
        cross_photo=cross,
        baseline_poly3_cv=fits.poly,
        model=fits.model,
        model_choice=fits.choice,
        photos=[m.summary() for m in measurements],
        warnings=warnings,
    )
    return profile, report


def calibrate_files(
    paths: Sequence[str | Path],
    chart: str | Path | None = None,
    **kwargs: Any,
) -> tuple[PrinterProfile, CalibrationReport]:
    """:func:`calibrate` on photo/video files, with an optional ``chart.json`` to check against."""
    layout = ChartLayout.load(chart) if chart is not None else None
    return calibrate(load_calibration_images(paths), layout, **kwargs)
