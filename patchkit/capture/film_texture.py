"""Print and film a clothing texture in simulation: a walker in a suit of the printed tile.

The texture path mirrors the patch's (:mod:`patchkit.capture.film`): the tile is exported as a
print-ready PDF at its physical repeat (``tile_cm`` x ``tile_cm``, what a fabric printer repeats);
the raster inside that PDF is printed by the simulated printer and seen through the simulated
camera's colour response (:func:`~patchkit.capture.film.printed_appearance`); a toy-world walker
wears a long-sleeved shirt and trousers of that printed tile, tiled at its physical repeat on a
1.7 m walker (:class:`patchkit.toyworld.suit.TextureSuit`), and is filmed with the camera's blur,
noise and JPEG (:func:`~patchkit.capture.film.camera_filter`). Walk ``i`` uses scene seed ``i`` for
every condition (same street, walker, path, light and suit offset), so a trained suit and its
control differ only in the suit's pixels.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch

from patchkit.capture.film import (
    PRESET_PHOTO_WIDTH,
    PRINT_SUPERSAMPLE,
    VIDEO_SIZE,
    camera_filter,
    printed_appearance,
)
from patchkit.capture.presets import preset
from patchkit.errors import PatchkitError
from patchkit.io import atomic_write_bytes, atomic_write_json, write_video
from patchkit.printing.export import export_patch
from patchkit.printing.profile import PrinterProfile
from patchkit.toyworld.suit import TextureSuit
from patchkit.toyworld.video import WalkSequence, render_walk

__all__ = ["film_texture", "print_tile_to_pdf", "printed_tile", "texture_walk", "tile_to_uint8"]


def tile_to_uint8(tile) -> np.ndarray:
    """A tile ``(3, T, T)`` float in [0, 1] (torch or numpy) or ``(T, T, 3)`` uint8 -> ``(T, T, 3)`` uint8."""
    if isinstance(tile, torch.Tensor):
        tile = tile.detach().cpu().numpy()
    arr = np.asarray(tile)
    if arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3:
        return np.ascontiguousarray(arr)
    if arr.ndim != 3 or arr.shape[0] != 3:
        raise ValueError(f"a tile must be (3, T, T) in [0, 1] or (T, T, 3) uint8, got shape {arr.shape}")
    return np.ascontiguousarray(np.clip(np.round(arr.transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8))


def print_tile_to_pdf(tile: np.ndarray, tile_cm: float, profile: PrinterProfile | None, path: Path,
                      dpi: float = 100.0) -> np.ndarray:
    """Export one repeat of ``tile`` (``(T, T, 3)`` uint8) as a print-ready PDF, ``tile_cm`` on a
    side (one A4 page with ArUco markers, or tiled pages when it does not fit), with its layout JSON
    beside it. Returns the raster the PDF holds, reduced to ``PRINT_SUPERSAMPLE`` pixels per tile
    pixel (area average), for the simulated printer."""
    side_mm = float(tile_cm) * 10.0
    try:
        export = export_patch(tile, side_mm, side_mm, dpi=dpi, markers=True, profile=profile, source=str(path))
    except PatchkitError:  # too large for one page with its marks
        export = export_patch(tile, side_mm, side_mm, dpi=dpi, tile=True, profile=profile, source=str(path))
    atomic_write_bytes(path, export.pdf)
    atomic_write_json(path.with_suffix(".json"), export.meta)
    n = tile.shape[1] * PRINT_SUPERSAMPLE
    return cv2.resize(export.image, (n, n), interpolation=cv2.INTER_AREA)


def _camera(printer: str):
    setup = preset(printer)
    camera = setup.camera()
    # the preset's optics at video resolution: its blur (px) was set for photos 1280 px on the long side
    return setup, replace(camera, blur_sigma=camera.blur_sigma * VIDEO_SIZE[0] / PRESET_PHOTO_WIDTH)


def printed_tile(raster: np.ndarray, printer: str) -> torch.Tensor:
    """The printed tile ``raster`` (``(n, n, 3)`` uint8) as the simulated camera of ``printer``'s
    set-up sees it: ``(3, n, n)`` float32 in [0, 1]."""
    setup, camera = _camera(printer)
    look = printed_appearance(setup.printer(), camera)(raster)
    return torch.from_numpy(np.ascontiguousarray(look.transpose(2, 0, 1), dtype=np.float32)).clamp(0.0, 1.0)


def texture_walk(look: torch.Tensor, tile_cm: float, seed: int, frames: int, printer: str,
                 size: tuple[int, int] = VIDEO_SIZE) -> WalkSequence:
    """Walk ``seed`` (``frames`` frames) of a walker in a suit of the printed tile ``look``
    (``(3, n, n)`` in [0, 1], one repeat = ``tile_cm``), filmed by ``printer``'s simulated camera.
    Deterministic: same arguments, same frames."""
    _, camera = _camera(printer)
    return render_walk(None, seed=seed, n_frames=frames, size=size, frame_filter=camera_filter(camera, seed=seed),
                       suit=TextureSuit(look, tile_cm))


def film_texture(tile, name: str, tile_cm: float, printer: str, profile: PrinterProfile | None, out: Path,
                 walks: int = 3, frames: int = 48, dpi: float = 100.0) -> list[Path]:
    """Print ``tile`` (``(3, T, T)`` in [0, 1]) at a ``tile_cm`` repeat and film ``walks`` walks of a
    walker wearing a suit of it (walk ``i`` uses scene seed ``i``). Writes ``out/NAME.pdf`` (+ layout
    JSON), ``out/walkI_NAME.mp4`` and ``out/walkI_NAME.json`` (the walker's true box per frame);
    returns the MP4 paths."""
    out.mkdir(parents=True, exist_ok=True)
    raster = print_tile_to_pdf(tile_to_uint8(tile), tile_cm, profile, out / f"{name}.pdf", dpi)
    look = printed_tile(raster, printer)
    videos = []
    for i in range(walks):
        seq = texture_walk(look, tile_cm, i, frames, printer)
        video = out / f"walk{i}_{name}.mp4"
        write_video(video, seq.frames, fps=seq.fps)
        atomic_write_json(video.with_suffix(".json"), seq.to_json())
        videos.append(video)
    return videos
