"""An independent minimal PDF image reader for the export tests."""

import re
import zlib

import numpy as np


def pdf_images(pdf: bytes) -> list[np.ndarray]:
    """Every /Image XObject's Flate data as (H, W, 3) uint8 (8-bit DeviceRGB only)."""
    out = []
    for m in re.finditer(rb"<< (/Type /XObject /Subtype /Image[^>]*) /Length (\d+) >>\nstream\n", pdf):
        head, length = m.group(1), int(m.group(2))
        w = int(re.search(rb"/Width (\d+)", head).group(1))
        h = int(re.search(rb"/Height (\d+)", head).group(1))
        assert b"/FlateDecode" in head and b"/BitsPerComponent 8" in head and b"/DeviceRGB" in head
        data = zlib.decompress(pdf[m.end() : m.end() + length])
        out.append(np.frombuffer(data, np.uint8).reshape(h, w, 3))
    return out
