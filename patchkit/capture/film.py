"""Print and film a patch in simulation: PDF export, simulated printer, walking-figure videos.

The patch goes through the same path a red team's print does: :func:`patchkit.printing.export_patch`
lays it out at the size it is worn (one page with markers, or tiled over pages); the raster inside
that PDF is what the simulated printer (:mod:`patchkit.capture.printers`) prints; the print is worn
on the front of a toy-world walker, as a chest print or an apron
(:func:`patchkit.toyworld.render_walk`), seen through the simulated camera's colour
response, blur, noise and JPEG (:func:`camera_filter`), and written as
MP4 with the walker's true box per frame in a JSON beside it (for ``--reference boxes`` scoring).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from patchkit.capture.camera import SimulatedCamera, jpeg_round_trip
from patchkit.capture.presets import preset
from patchkit.capture.printers import print_reflectance
from patchkit.errors import PatchkitError
from patchkit.io import atomic_write_bytes, atomic_write_json, write_video
from patchkit.printing.colour import linear_to_srgb_np, srgb_to_linear_np
from patchkit.printing.export import export_patch
from patchkit.printing.profile import PrinterProfile
from patchkit.scenes.placement import PlacementConfig
from patchkit.toyworld.video import Appearance, FrameFilter, render_walk

SHOULDER_MM = 340.0  # shoulder width of the toy world's 1.7 m walker (0.2 x its height)
PRINT_SUPERSAMPLE = 4  # print raster pixels per patch pixel fed to the simulated printer
VIDEO_SIZE = (416, 320)  # walk frames, (width, height) px
PRESET_PHOTO_WIDTH = 1280  # long side (px) of the photos the capture presets' camera blur refers to


@dataclass
class FilmConfig:
    """The simulated print and film.

    The print is worn on the walker's front. A square one (``aspect`` 1) is a chest print; a
    taller one hangs from the collar like an apron, in front of the legs and behind the arms. The
    default, 1.8 shoulder widths wide and 2.2 times as tall, reaches the ankles: about 61 x 135 cm
    on a 1.7 m walker, the toy world's analogue of adversarial clothing (peers print whole suits).
    A square chest print lowers the toy detector's confidence but barely its detection rate (see
    the README).

    Attributes:
        walks: walking sequences per condition (trained patch, random control), one seed each.
        frames: frames per walk (12 frames/s).
        width: printed width as a fraction of the walker's shoulder width (1.2 covers the chest).
        aspect: printed height / width (1 = square chest print; above 1 an apron from the collar).
        print_width_mm: printed width of the PDF; 0 = the size it is worn at, ``width`` x the
            340 mm shoulders of a 1.7 m walker. Prints larger than a page are tiled over pages.
        dpi: print resolution of the PDF (the 96 px patch needs little: at 100 dpi each patch
            pixel is 25 dots across at 61 cm).
    """

    walks: int = 3
    frames: int = 48
    width: float = 1.8
    aspect: float = 2.2
    print_width_mm: float = 0.0
    dpi: float = 100.0

    def print_size_mm(self) -> tuple[float, float]:
        """(width, height) of the printed patch in millimetres."""
        w = self.print_width_mm or self.width * SHOULDER_MM
        return w, w * self.aspect


def printed_appearance(printer, camera=None) -> Appearance:
    """What a patch printed by ``printer`` (:mod:`patchkit.capture.printers`) looks like to
    ``camera`` (:class:`patchkit.capture.SimulatedCamera`; default a neutral camera exposing paper
    white at about 0.9) under the nominal light: uint8 patch -> float32 sRGB in [0, 1]."""
    cam = camera or SimulatedCamera(exposure=0.9 / 0.88)

    def appearance(patch: np.ndarray) -> np.ndarray:
        refl = print_reflectance(printer, patch).astype(np.float64)
        return cam.respond(refl * cam.illuminant).astype(np.float32)

    return appearance


def camera_filter(camera, seed: int = 0) -> FrameFilter:
    """Apply a :class:`patchkit.capture.SimulatedCamera`'s blur, shot/read noise and JPEG to each
    uint8 frame (in linear light); frame ``i`` draws its noise from ``default_rng([seed, i])``."""
    decode = srgb_to_linear_np(np.arange(256) / 255.0).astype(np.float32)  # uint8 -> linear LUT
    levels = 1 << 14
    encode = np.clip(np.round(linear_to_srgb_np(np.arange(levels) / (levels - 1.0)) * 255.0), 0, 255).astype(np.uint8)

    def apply(frame: np.ndarray, index: int) -> np.ndarray:
        rng = np.random.default_rng([int(seed), int(index)])
        lin = decode[frame]
        if camera.blur_sigma > 0:
            lin = cv2.GaussianBlur(lin, (0, 0), camera.blur_sigma)
        if camera.shot_noise > 0 or camera.read_noise > 0:
            std = np.sqrt(np.clip(lin, 0, None) * np.float32(camera.shot_noise) + np.float32(camera.read_noise**2))
            lin = lin + rng.standard_normal(lin.shape, dtype=np.float32) * std
        idx = np.clip(lin * np.float32(levels - 1) + np.float32(0.5), 0, levels - 1).astype(np.int32)
        out = encode[idx]
        return jpeg_round_trip(out, camera.jpeg_quality) if camera.jpeg_quality is not None else out

    return apply


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
