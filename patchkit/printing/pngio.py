"""PNG writing with a physical resolution (pHYs) and the sRGB chunk."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from patchkit.io import atomic_write_bytes


def png_bytes(image: np.ndarray, dpi: float) -> bytes:
    """Lossless PNG of an ``(H, W, 3)`` uint8 RGB image with ``dpi`` recorded (pHYs) and the
    sRGB rendering-intent chunk (perceptual)."""
    info = PngImagePlugin.PngInfo()
    info.add(b"sRGB", b"\x00")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image), mode="RGB").save(buf, format="PNG", dpi=(dpi, dpi), pnginfo=info)
    return buf.getvalue()


def save_png(path: str | Path, image: np.ndarray, dpi: float) -> None:
    """Write :func:`png_bytes` atomically."""
    atomic_write_bytes(path, png_bytes(image, dpi))
