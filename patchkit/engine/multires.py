"""Multi-resolution training: each batch is shown to the detector at a random input size.

A patch trained at one input size overfits the detector's receptive fields at that scale: the
Penn-Fudan patch trained at 320 px hid 0.6 of the people at 320 but did almost nothing at 640,
the default inference size. Here the scene is letterboxed once at ``detector.imgsz`` (the largest
size), the patch is pasted there, and the composited batch is resized (antialiased bilinear) to a
size drawn uniformly from the multiples of the stride in ``detector.imgsz_range``: the camera
sees the same scene at another resolution, and the patch placement scales with it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def sizes_in_range(lo: int, hi: int, stride: int = 32) -> list[int]:
    """The multiples of ``stride`` in ``[lo, hi]`` (pixels), ascending."""
    first = -(-lo // stride) * stride
    return list(range(first, hi + 1, stride))


class ResolutionSampler:
    """Draws a training input size per batch and resizes the batch to it.

    Args:
        imgsz: the canvas side the scene is letterboxed at (pixels).
        size_range: ``[lo, hi]`` in pixels with ``hi <= imgsz``; empty: always ``imgsz``.
        stride: sizes are multiples of this.
    """

    def __init__(self, imgsz: int, size_range: list[int] | tuple[int, ...] = (), stride: int = 32):
        self.sizes = sizes_in_range(size_range[0], size_range[1], stride) if size_range else [imgsz]
        if not self.sizes:
            raise ValueError(f"no multiple of {stride} in the size range {list(size_range)}")

    def draw(self, generator: torch.Generator | None = None) -> int:
        """One size (pixels), uniform over :attr:`sizes`."""
        if len(self.sizes) == 1:
            return self.sizes[0]
        return self.sizes[int(torch.randint(len(self.sizes), (1,), generator=generator))]

    def resize(self, images: Tensor, size: int) -> Tensor:
        """``(B, 3, S, S)`` -> ``(B, 3, size, size)``, antialiased when shrinking; differentiable."""
        if size == images.shape[-1] and size == images.shape[-2]:
            return images
        out = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False,
                            antialias=size < images.shape[-1])
        return out.contiguous(memory_format=torch.channels_last) if images.is_contiguous(
            memory_format=torch.channels_last) else out
