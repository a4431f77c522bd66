"""The one interface every detector family implements.

A detector is a frozen, eval-mode ``torch.nn.Module`` whose input is always a float RGB batch
``(B, 3, H, W)`` in [0, 1] at any size. Letterboxing (resize + gray-114 padding to stride
multiples, or to a square ``imgsz``) happens inside, in torch, so gradients reach the input.
All boxes are returned in pixels of the input given by the caller.

Subclasses implement :meth:`Detector.forward_letterboxed` only; it should start with
``x = self.prepare_input(x)`` so that :meth:`Detector.optimize_for_attack`'s channels_last layout
applies, and cache any per-shape grids as plain tensors created under
``torch.inference_mode(False)`` (never inference tensors). Post-processing is class-aware NMS, or,
for NMS-free heads that set :attr:`Detector.topk`, ultralytics' top-k; :attr:`Detector.clip_boxes`
says whether ``detect()`` clips boxes to the image (RT-DETR's predict() does not).

Two paths:

- training (differentiable): ``raw(images)`` letterboxes in torch; a batch already at the
  letterboxed size (e.g. ``imgsz x imgsz``) goes straight to ``forward_letterboxed``, which adds
  nothing to the network's own cost. Speed knobs: ``optimize_for_attack()`` (Conv+BN fusion and
  channels_last, outputs unchanged within float tolerance; ../shared/docs/performance.md measured about
  1.4x on CPU) and bf16 autocast (``torch.autocast("cpu", dtype=torch.bfloat16)``), left to the
  caller until an attack is shown to converge the same.
- scoring: ``detect(uint8 arrays)`` letterboxes with OpenCV exactly like ultralytics' / yolov5's
  predict (bit-identical inputs, so the same boxes); ``detect(float tensors)`` uses the torch
  letterbox of ``raw``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from patchkit.detections import Detections
from patchkit.detectors.letterbox import (
    LetterboxParams,
    apply_letterbox,
    boxes_to_input,
    letterbox_params,
    letterbox_uint8,
)
from patchkit.errors import PatchkitError


@dataclass
class RawOutput:
    """Differentiable per-candidate predictions of a batch.

    Attributes:
        boxes: ``(B, A, 4)`` xyxy boxes in pixels of the caller's input images.
        scores: ``(B, A, C)`` per-class probabilities in [0, 1]. For families with objectness
            (original YOLOv5) these are the class probabilities *given* an object.
        objectness: ``(B, A)`` objectness in [0, 1], or ``None`` for anchor-free families.
    """

    boxes: Tensor
    scores: Tensor
    objectness: Tensor | None = None

    def confidence(self) -> Tensor:
        """``(B, A, C)`` final per-class confidence: objectness x class where there is objectness."""
        if self.objectness is None:
            return self.scores
        return self.scores * self.objectness.unsqueeze(-1)


@dataclass
class DetectorInfo:
    """Metadata that travels with a detector (timm ``PretrainedCfg`` style).

    Attributes:
        family: e.g. ``"yolov5"``, ``"ultralytics"``.
        source: the weights file, YAML or registered name it was built from.
        names: class id -> class name.
        stride: the largest stride; letterboxed sizes are multiples of it.
        imgsz: the long side the input is resized to (pixels).
        letterbox: ``"rect"`` (minimum rectangle, stride-multiple padding) or ``"square"``.
        sha256: of the weights file, when built from a file.
        extra: family-specific details (strides, anchors, architecture name, ...).
    """

    family: str
    source: str
    names: dict[int, str]
    stride: int = 32
    imgsz: int = 640
    letterbox: str = "rect"
    sha256: str | None = None
    extra: dict = field(default_factory=dict)


class Detector(nn.Module):
    """Base class: subclasses implement :meth:`forward_letterboxed` only.

    ``raw`` and ``detect`` handle letterboxing and mapping boxes back to input pixels. A detector
    is always in eval mode (``train()`` keeps it in eval) with frozen weights.
    """

    info: DetectorInfo
    channels_last: bool = False  # set by optimize_for_attack(); inputs are converted to match
    topk: int | None = None  # NMS-free heads: (candidate, class) pairs kept by top-k; None: NMS
    clip_boxes: bool = True  # detect() clips boxes to the image

    @property
    def names(self) -> dict[int, str]:
        return self.info.names

    @property
    def device(self) -> torch.device:
        for t in self.parameters():
            return t.device
        for t in self.buffers():
            return t.device
        return torch.device("cpu")

    # -- the family-specific part -------------------------------------------------------------
    def forward_letterboxed(self, x: Tensor) -> RawOutput:
        """Raw predictions for an already letterboxed batch ``(B, 3, H, W)`` in [0, 1] whose
        H and W are multiples of the stride; boxes in pixels of ``x``."""
        raise NotImplementedError

    def postprocess(
        self,
        out: RawOutput,
        conf: float = 0.25,
        iou: float = 0.45,
        classes: list[int] | None = None,
        max_det: int = 300,
    ) -> list[Detections]:
        """Final detections from raw outputs (boxes kept in the frame of ``out``): class-aware NMS,
        or ultralytics' NMS-free top-k (``iou`` unused) when :attr:`topk` is set."""
        from patchkit.detectors.nms import non_max_suppression, topk_detections

        if self.topk is not None:
            return topk_detections(out.boxes, out.scores, conf, classes, max_det, topk=self.topk)
        return non_max_suppression(out.boxes, out.scores, out.objectness, conf, iou, classes, max_det)

    # -- shared machinery -----------------------------------------------------------------------
    def letterbox_params(self, height: int, width: int) -> LetterboxParams:
        """Letterbox geometry this detector applies to an ``height x width`` input."""
        return letterbox_params(height, width, self.info.imgsz, self.info.stride, self.info.letterbox)

    def letterbox(self, images: Tensor) -> tuple[Tensor, LetterboxParams]:
        """Letterbox ``images (B, 3, H, W)`` in [0, 1] with this detector's size, stride and mode."""
        if images.ndim == 3:
            images = images.unsqueeze(0)
        if images.ndim != 4 or images.shape[1] != 3:
            raise PatchkitError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
        params = self.letterbox_params(images.shape[-2], images.shape[-1])
        return apply_letterbox(images, params), params

    def raw(self, images: Tensor) -> RawOutput:
        """Differentiable per-candidate boxes (input pixels), class scores, objectness.

        ``images``: ``(B, 3, H, W)`` float RGB in [0, 1], any size, on the detector's device. A
        batch that already has the letterboxed size (e.g. ``imgsz x imgsz`` in square mode) goes
        straight to the network.
        """
        x, params = self.letterbox(images)
        out = self.forward_letterboxed(x)
        if not params.is_identity:
            out = RawOutput(boxes_to_input(out.boxes, params), out.scores, out.objectness)
        return out

    @torch.no_grad()
    def detect(
        self,
        images: Tensor | np.ndarray | list[Tensor] | list[np.ndarray],
        conf: float = 0.25,
        iou: float = 0.45,
        classes: list[int] | None = None,
        max_det: int = 300,
    ) -> list[Detections]:
        """Final boxes after :meth:`postprocess`, one :class:`Detections` per image, in input pixels
        (clipped to the image when :attr:`clip_boxes`), sorted by descending confidence.

        ``images``: a float RGB batch ``(B, 3, H, W)`` or image ``(3, H, W)`` in [0, 1] (letterboxed
        in torch, as :meth:`raw`), or ``(H, W, 3)`` uint8 RGB arrays (letterboxed with OpenCV in
        uint8 exactly like ultralytics' / yolov5's predict, so the results are bit-identical to
        theirs), or a list of either with any sizes.
        """
        if isinstance(images, np.ndarray):
            images = [images]
        if isinstance(images, (list, tuple)):
            return self._detect_list(list(images), conf, iou, classes, max_det)
        if not isinstance(images, Tensor):
            raise PatchkitError(f"detect() takes tensors or uint8 arrays, not {type(images).__name__}")
        images = images.to(self.device, torch.float32)
        x, params = self.letterbox(images)
        return self._detect_letterboxed(x, params, conf, iou, classes, max_det)

    def _detect_list(
        self, images: list, conf: float, iou: float, classes: list[int] | None, max_det: int
    ) -> list[Detections]:
        """Images of equal size and kind run as one batch; results keep the input order."""
        groups: dict[tuple, list[int]] = {}
        for i, im in enumerate(images):
            if isinstance(im, np.ndarray):
                if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
                    raise PatchkitError(f"expected (H, W, 3) uint8 RGB arrays, got {im.dtype} {tuple(im.shape)}")
                groups.setdefault(("array", im.shape), []).append(i)
            elif isinstance(im, Tensor) and im.ndim == 3:
                groups.setdefault(("tensor", tuple(im.shape)), []).append(i)
            else:
                raise PatchkitError(f"detect() takes (3, H, W) tensors or (H, W, 3) uint8 arrays, got {type(im).__name__}")
        out: list[Detections | None] = [None] * len(images)
        for (kind, shape), idx in groups.items():
            if kind == "array":
                params = self.letterbox_params(shape[0], shape[1])
                batch = np.stack([letterbox_uint8(images[i], params) for i in idx])
                x = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
                dets = self._detect_letterboxed(x, params, conf, iou, classes, max_det)
            else:
                dets = self.detect(torch.stack([images[i] for i in idx]), conf, iou, classes, max_det)
            for i, d in zip(idx, dets):
                out[i] = d
        return out  # type: ignore[return-value]

    def _detect_letterboxed(
        self, x: Tensor, params: LetterboxParams, conf: float, iou: float, classes: list[int] | None, max_det: int
    ) -> list[Detections]:
        dets = self.postprocess(self.forward_letterboxed(x), conf, iou, classes, max_det)
        return [Detections(boxes_to_input(d.xyxy, params, clip=self.clip_boxes), d.conf, d.cls) for d in dets]

    def forward(self, images: Tensor) -> RawOutput:  # nn.Module protocol
        return self.raw(images)

    # -- frozen, eval-only, speed knobs ---------------------------------------------------------
    def freeze(self) -> "Detector":
        """Eval mode and ``requires_grad=False`` on every parameter (done by every factory)."""
        super().train(False)
        for p in self.parameters():
            p.requires_grad_(False)
        return self

    def train(self, mode: bool = True) -> "Detector":
        """Detectors stay in eval mode: batch-norm statistics and dropout never change."""
        return super().train(False)

    def fuse(self) -> "Detector":
        """Fold Conv+BatchNorm pairs in place (outputs equal within float tolerance)."""
        from patchkit.detectors.fuse import fuse_conv_bn

        fuse_conv_bn(self)
        return self.freeze()

    def optimize_for_attack(self, channels_last: bool = True, fuse: bool = True) -> "Detector":
        """Speed up forward+backward for patch training: Conv+BN fusion and channels_last weights
        (inputs are converted on entry). Outputs stay equal within float tolerance; returns self.
        Measured gains are in ../shared/docs/performance.md (fused + channels_last: about 1.4x on CPU)."""
        if fuse:
            self.fuse()
        if channels_last:
            with torch.inference_mode(False), torch.no_grad():
                self.to(memory_format=torch.channels_last)
            self.channels_last = True
        return self.freeze()

    def prepare_input(self, x: Tensor) -> Tensor:
        """Input layout matching the weights (channels_last after :meth:`optimize_for_attack`);
        the first line of every :meth:`forward_letterboxed`."""
        if self.channels_last:
            return x.contiguous(memory_format=torch.channels_last)
        return x
