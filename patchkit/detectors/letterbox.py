"""Differentiable letterboxing in torch, with the exact geometry of yolov5 / ultralytics.

``letterbox`` resizes a float RGB batch ``(B, 3, H, W)`` in [0, 1] so that its long side is
``imgsz`` and pads it with gray 114/255, like the yolov5 repository's ``letterbox(auto=True)`` and
ultralytics' ``LetterBox`` (mode ``"rect"``: minimum rectangle, padding to a stride multiple), or
to a full ``imgsz x imgsz`` square (mode ``"square"``). The resize is bilinear with
``align_corners=False`` and no antialiasing, which is what ``cv2.INTER_LINEAR`` computes.

All images of a batch share one size, so one :class:`LetterboxParams` describes the batch;
:func:`boxes_to_input` maps boxes from letterboxed pixels back to input pixels the way
ultralytics' ``scale_boxes`` does.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from patchkit.errors import PatchkitError

if TYPE_CHECKING:
    import numpy as np

PAD_VALUE = 114.0 / 255.0
LETTERBOX_MODES = ("rect", "square")
log = logging.getLogger(__name__)


def check_imgsz(imgsz: int, stride: int = 32) -> int:
    """A positive image size, rounded up to a multiple of ``stride`` (as ultralytics' ``check_imgsz``)."""
    if isinstance(imgsz, bool) or not isinstance(imgsz, int) or imgsz <= 0:
        raise PatchkitError(f"imgsz must be a positive integer number of pixels, got {imgsz!r}")
    size = max(math.ceil(imgsz / stride), 1) * stride
    if size != imgsz:
        log.warning("imgsz %d is not a multiple of the stride %d; using %d", imgsz, stride, size)
    return size


def check_letterbox_mode(mode: str) -> str:
    if mode not in LETTERBOX_MODES:
        raise PatchkitError(f"letterbox mode {mode!r} is not one of {', '.join(LETTERBOX_MODES)}")
    return mode


@dataclass(frozen=True)
class LetterboxParams:
    """Geometry of one letterbox operation (all sizes in pixels).

    Attributes:
        in_hw: ``(H, W)`` of the input images.
        out_hw: ``(H, W)`` of the letterboxed images.
        new_wh: ``(w, h)`` of the resized content before padding.
        scale: the resize ratio ``r = min(imgsz / H, imgsz / W)``.
        pad_x: gray columns added on the left.
        pad_y: gray rows added on the top.
    """

    in_hw: tuple[int, int]
    out_hw: tuple[int, int]
    new_wh: tuple[int, int]
    scale: float
    pad_x: int
    pad_y: int

    @property
    def scale_x(self) -> float:
        """Exact horizontal ratio, resized width / input width."""
        return self.new_wh[0] / self.in_hw[1]

    @property
    def scale_y(self) -> float:
        """Exact vertical ratio, resized height / input height."""
        return self.new_wh[1] / self.in_hw[0]

    @property
    def resizes(self) -> bool:
        return (self.new_wh[1], self.new_wh[0]) != tuple(self.in_hw)

    @property
    def pads(self) -> bool:
        return (self.new_wh[1], self.new_wh[0]) != tuple(self.out_hw)

    @property
    def is_identity(self) -> bool:
        """True when the input already has the letterboxed size (no resize, no padding)."""
        return tuple(self.in_hw) == tuple(self.out_hw)


def letterbox_params(
    height: int, width: int, imgsz: int = 640, stride: int = 32, mode: str = "rect", scaleup: bool = True
) -> LetterboxParams:
    """Letterbox geometry of an ``height x width`` image, rounding exactly as ultralytics' ``LetterBox``.

    Args:
        height, width: input size in pixels.
        imgsz: target long side in pixels.
        stride: the detector's largest stride; ``"rect"`` pads each side to a multiple of it.
        mode: ``"rect"`` (minimum rectangle) or ``"square"`` (``imgsz x imgsz``).
        scaleup: allow enlarging small images (the default of predict()).
    """
    check_letterbox_mode(mode)
    if height < 1 or width < 1:
        raise PatchkitError(f"cannot letterbox an image of size {width}x{height}")
    r = min(imgsz / height, imgsz / width)
    if not scaleup:
        r = min(r, 1.0)
    new_w, new_h = max(round(width * r), 1), max(round(height * r), 1)
    dw, dh = imgsz - new_w, imgsz - new_h
    if mode == "rect":
        dw, dh = dw % stride, dh % stride
    dw, dh = dw / 2, dh / 2
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    return LetterboxParams(
        in_hw=(height, width),
        out_hw=(new_h + top + bottom, new_w + left + right),
        new_wh=(new_w, new_h),
        scale=r,
        pad_x=left,
        pad_y=top,
    )


def apply_letterbox(images: Tensor, params: LetterboxParams) -> Tensor:
    """Resize and pad ``images (B, 3, H, W)`` (float, [0, 1]) with ``params``; differentiable.

    Returns the input itself when ``params`` is the identity (pre-letterboxed batches).
    """
    if params.is_identity:
        return images
    x = images
    if params.resizes:
        x = F.interpolate(
            x, size=(params.new_wh[1], params.new_wh[0]), mode="bilinear", align_corners=False, antialias=False
        )
    if params.pads:
        h, w = params.out_hw
        left, top = params.pad_x, params.pad_y
        right, bottom = w - params.new_wh[0] - left, h - params.new_wh[1] - top
        x = F.pad(x, (left, right, top, bottom), mode="constant", value=PAD_VALUE)
    return x


def letterbox(
    images: Tensor, imgsz: int = 640, stride: int = 32, mode: str = "rect"
) -> tuple[Tensor, LetterboxParams]:
    """Letterbox a batch ``(B, 3, H, W)`` (or one image ``(3, H, W)``) of floats in [0, 1].

    Returns:
        ``(letterboxed (B, 3, H', W'), params)``. When the input already has the target size the
        same tensor is returned untouched (fast path for pre-letterboxed training batches).
    """
    if images.ndim == 3:
        images = images.unsqueeze(0)
    if images.ndim != 4:
        raise PatchkitError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
    params = letterbox_params(images.shape[-2], images.shape[-1], imgsz, stride, mode)
    return apply_letterbox(images, params), params


def boxes_to_input(boxes: Tensor, params: LetterboxParams, clip: bool = False) -> Tensor:
    """Map xyxy boxes ``(..., 4)`` from letterboxed pixels back to input pixels; differentiable.

    Like ultralytics' ``scale_boxes``: subtract the padding, divide by the per-axis resize ratio.
    ``clip=True`` clamps to the input image (as done for final detections).
    """
    if not params.is_identity:
        offset = boxes.new_tensor([params.pad_x, params.pad_y, params.pad_x, params.pad_y])
        gain = boxes.new_tensor([params.scale_x, params.scale_y, params.scale_x, params.scale_y])
        boxes = (boxes - offset) / gain
    if clip:
        h, w = params.in_hw
        boxes = torch.stack(
            (boxes[..., 0].clamp(0, w), boxes[..., 1].clamp(0, h), boxes[..., 2].clamp(0, w), boxes[..., 3].clamp(0, h)),
            dim=-1,
        )
    return boxes


def boxes_to_letterbox(boxes: Tensor, params: LetterboxParams) -> Tensor:
    """Inverse of :func:`boxes_to_input`: xyxy boxes from input pixels to letterboxed pixels."""
    if params.is_identity:
        return boxes
    offset = boxes.new_tensor([params.pad_x, params.pad_y, params.pad_x, params.pad_y])
    gain = boxes.new_tensor([params.scale_x, params.scale_y, params.scale_x, params.scale_y])
    return boxes * gain + offset


def letterbox_uint8(image: "np.ndarray", params: LetterboxParams) -> "np.ndarray":
    """Letterbox an ``(H, W, 3)`` uint8 image with OpenCV exactly as ultralytics' ``LetterBox`` and
    yolov5's ``letterbox`` do (``cv2.INTER_LINEAR`` in uint8, gray 114 borders). Not differentiable:
    the file/video path, bit-identical to their predict()."""
    import cv2

    if (image.shape[0], image.shape[1]) != tuple(params.in_hw):
        raise PatchkitError(f"image of size {image.shape[1]}x{image.shape[0]} does not match the letterbox parameters")
    if params.resizes:
        image = cv2.resize(image, params.new_wh, interpolation=cv2.INTER_LINEAR)
    if params.pads:
        h, w = params.out_hw
        top, left = params.pad_y, params.pad_x
        bottom, right = h - params.new_wh[1] - top, w - params.new_wh[0] - left
        image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    return image
