"""Print and film a patch in simulation: PDF export, simulated printer, walking-figure videos.

The patch goes through the same path a red team's print does: :func:`patchkit.printing.export_patch`
lays it out at the size it is worn (one page with markers, or tiled over pages); the raster inside
that PDF is what the simulated printer (:mod:`patchkit.capture.printers`) prints; the print is worn
on the front of a toy-world walker, as a chest print or an apron
(:func:`patchkit.scenes.toyworld.render_walk`), seen through the simulated camera's colour
response, blur, noise and JPEG (:func:`~patchkit.scenes.toyworld.camera_filter`), and written as
MP4 with the walker's true box per frame in a JSON beside it (for ``--reference boxes`` scoring).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from patchkit.capture.presets import preset
from patchkit.demo.config import FilmConfig
from patchkit.errors import PatchkitError
from patchkit.io import atomic_write_bytes, atomic_write_json
from patchkit.printing.export import export_patch
from patchkit.printing.profile import PrinterProfile
from patchkit.scenes.placement import PlacementConfig
from patchkit.scenes.toyworld.video import camera_filter, printed_appearance, render_walk
from patchkit.video.synthetic import write_video

PRINT_SUPERSAMPLE = 4  # print raster pixels per patch pixel fed to the simulated printer
VIDEO_SIZE = (416, 320)  # walk frames, (width, height) px
PRESET_PHOTO_WIDTH = 1280  # long side (px) of the photos the capture presets' camera blur refers to


def walk_placement(width: float, aspect: float = 1.0, seed: int = 0, frames: int = 16) -> PlacementConfig:
    """The digital placement rule that matches a print ``width`` shoulder widths wide and
    ``aspect`` times as tall worn by a toy-world walker: patch width / box diagonal, aspect and
    offsets (fractions of the box size), medians over the frames of a rendered walk. Training
    with it puts the patch where the film will."""
    seq = render_walk(np.full((8, 8, 3), 128, np.uint8), seed=seed, n_frames=frames, patch_size=width,
                      patch_aspect=aspect)
    q, b = seq.quads, seq.boxes
    ok = ~np.isnan(q).any(axis=(1, 2))
    q, b = q[ok], b[ok]
    w = np.linalg.norm(q[:, 1] - q[:, 0], axis=1)
    h = np.linalg.norm(q[:, 3] - q[:, 0], axis=1)
    diag = np.hypot(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
    dy = (q[:, :, 1].mean(1) - 0.5 * (b[:, 1] + b[:, 3])) / (b[:, 3] - b[:, 1])
    dx = (q[:, :, 0].mean(1) - 0.5 * (b[:, 0] + b[:, 2])) / (b[:, 2] - b[:, 0])
    return PlacementConfig(scale=round(float(np.median(w / diag)), 3), offset_x=round(float(np.median(dx)), 3),
                           offset_y=round(float(np.median(dy)), 3), aspect=round(float(np.median(h / w)), 3))


def print_to_pdf(patch: np.ndarray, cfg: FilmConfig, profile: PrinterProfile | None, path: Path) -> np.ndarray:
    """Export ``patch`` (``(h, w, 3)`` uint8) as a print-ready PDF at ``cfg.print_size_mm()``: one
    A4 page with ArUco markers, or tiled pages when that does not fit. Returns the raster the PDF
    holds at its physical aspect, reduced to ``PRINT_SUPERSAMPLE`` pixels per patch pixel across
    (area average), for the simulated printer."""
    width_mm, height_mm = cfg.print_size_mm()
    try:
        export = export_patch(patch, width_mm, height_mm, dpi=cfg.dpi, markers=True, profile=profile,
                              source=str(path))
    except PatchkitError:  # too large for one page with its marks: tiled over several pages
        export = export_patch(patch, width_mm, height_mm, dpi=cfg.dpi, tile=True, profile=profile,
                              source=str(path))
    atomic_write_bytes(path, export.pdf)
    atomic_write_json(path.with_suffix(".json"), export.meta)
    w = patch.shape[1] * PRINT_SUPERSAMPLE
    return cv2.resize(export.image, (w, round(w * height_mm / width_mm)), interpolation=cv2.INTER_AREA)


def film(patch: np.ndarray, name: str, cfg: FilmConfig, printer: str, profile: PrinterProfile | None,
         out: Path) -> list[Path]:
    """Print ``patch`` and film ``cfg.walks`` walks wearing it (walk ``i`` uses scene seed ``i``
    for every condition, so conditions differ only in the print). Writes ``out/NAME.pdf`` (+ layout
    JSON), ``out/walkI_NAME.mp4`` and ``out/walkI_NAME.json`` (true boxes, patch corners); returns
    the MP4 paths."""
    out.mkdir(parents=True, exist_ok=True)
    raster = print_to_pdf(patch, cfg, profile, out / f"{name}.pdf")
    setup = preset(printer)
    camera = setup.camera()
    # the preset's optics at video resolution: its blur (px) was set for photos 1280 px on the long side
    camera = replace(camera, blur_sigma=camera.blur_sigma * VIDEO_SIZE[0] / PRESET_PHOTO_WIDTH)
    look = printed_appearance(setup.printer(), camera)(raster)  # the print as the camera sees it, [0, 1]
    videos = []
    for i in range(cfg.walks):
        seq = render_walk(look, seed=i, n_frames=cfg.frames, size=VIDEO_SIZE, patch_size=cfg.width,
                          patch_aspect=cfg.aspect,
                          frame_filter=camera_filter(camera, seed=i))
        video = out / f"walk{i}_{name}.mp4"
        write_video(video, seq.frames, fps=seq.fps)
        atomic_write_json(video.with_suffix(".json"), seq.to_json())
        videos.append(video)
    return videos
