"""File input/output with clear errors and atomic writes.

Every writer here writes to a temporary file in the same folder and renames it into place, so a
crash never leaves a half-written result. Every reader raises :class:`PatchkitError` naming the
file on bad input.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from patchkit.errors import PatchkitError

_UMASK = os.umask(0)
os.umask(_UMASK)  # read once at import (no change), since umask has no getter

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give results the usual mode
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as ``(H, W, 3)`` uint8 RGB; unreadable or truncated files raise
    :class:`PatchkitError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise PatchkitError("image file not found", path)
    try:
        with Image.open(path) as im:
            im.load()  # forces a full decode: truncated files fail here
            if im.mode not in ("RGB", "L", "RGBA", "P", "I;16", "I", "LA"):
                raise PatchkitError(f"unsupported image mode {im.mode}", path)
            arr = np.array(im.convert("RGB"))  # writable copy
    except PatchkitError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise PatchkitError(f"cannot read image ({exc})", path) from exc
    return arr


def image_to_tensor(arr: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 -> ``(3, H, W)`` float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float().div_(255.0)


def load_image_tensor(path: str | Path) -> torch.Tensor:
    """Read an image file as a ``(3, H, W)`` float32 RGB tensor in [0, 1]."""
    return image_to_tensor(read_image(path))


def tensor_to_uint8(image: torch.Tensor) -> np.ndarray:
    """``(3, H, W)`` float in [0, 1] -> ``(H, W, 3)`` uint8 (rounded, clamped)."""
    arr = image.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return np.ascontiguousarray(arr)


def save_image(path: str | Path, image: torch.Tensor | np.ndarray) -> None:
    """Save an RGB image atomically as PNG (lossless). Accepts ``(3, H, W)`` float in [0, 1]
    or ``(H, W, 3)`` uint8."""
    arr = tensor_to_uint8(image) if isinstance(image, torch.Tensor) else image
    buf = io.BytesIO()
    Image.fromarray(arr, mode="RGB").save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def list_images_recursive(folder: str | Path) -> list[Path]:
    """Image files of a folder and all its subfolders (by suffix), sorted by path."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def list_images(folder: str | Path) -> list[Path]:
    """Sorted image files of a folder (by suffix); a missing folder is a clear error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PatchkitError("image folder not found", folder)
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


class VideoWriter:
    """The one video writer: RGB ``(H, W, 3)`` uint8 frames -> a video file (OpenCV, ``fourcc``).

    The file opens on the first frame, whose size it keeps (later frames of another size are
    resized to it). Use as a context manager, or call :meth:`close`. ``count`` frames written.
    """

    def __init__(self, path: str | Path, fps: float = 30.0, fourcc: str = "mp4v") -> None:
        self.path = Path(path)
        self.fps = fps if fps and fps > 0 else 30.0
        self.fourcc = fourcc
        self.count = 0
        self._writer = None
        self._size: tuple[int, int] | None = None

    def write(self, frame_rgb: np.ndarray) -> None:
        import cv2

        size = (frame_rgb.shape[1], frame_rgb.shape[0])
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, size)
            self._size = size
            if not self._writer.isOpened():
                raise PatchkitError(f"cannot write video with codec {self.fourcc!r}", self.path)
        if size != self._size:
            frame_rgb = cv2.resize(frame_rgb, self._size)
        self._writer.write(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))
        self.count += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float = 30.0, fourcc: str = "mp4v") -> int:
    """Write RGB uint8 frames to a video file with :class:`VideoWriter`; returns how many."""
    with VideoWriter(path, fps, fourcc) as writer:
        for frame in frames:
            writer.write(frame)
    return writer.count
