"""The ultralytics family: model YAMLs (random weights) and ultralytics checkpoints of YOLO models.

Supported heads: the anchor-free ``Detect`` without objectness (YOLOv3u/v5u/v6/v8/v9/11/12, and
YOLO26 / YOLOv10's one-to-many branch) and the end-to-end one-to-one branch of YOLOv10
(``v10Detect``) and YOLO26 (``Detect`` with ``one2one_*``). This family is the registry's
catch-all for ultralytics files (``priority=-1``): RT-DETR YAMLs and checkpoints are claimed
first by :mod:`patchkit.detectors.rtdetr`'s own ``sniff``.

The forward pass runs ultralytics' own layers; the head's outputs are decoded here (DFL,
anchor points cached per shape as plain tensors), so ``raw()`` is differentiable and never
touches ultralytics' inference-tensor caches. ``detect()`` reproduces ultralytics' own
post-processing: class-aware NMS, or, for end-to-end heads, top-k without NMS.

Nothing here downloads anything: a YAML is a local file or a bare name found in the installed
``ultralytics/cfg/models`` folder (``yolov8n.yaml``, ``yolo11n.yaml``, ``yolo26n.yaml``,
``yolov10n.yaml``, ``yolov5nu.yaml``...; see :mod:`patchkit.detectors._ultralytics_build`, which
holds the helpers shared with the other families built on ultralytics' layers); a checkpoint is
a local file loaded through :func:`patchkit.detectors.safe_load.safe_torch_load`.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from patchkit.detectors._isolation import import_ultralytics_tasks
from patchkit.detectors._ultralytics_build import (
    build_seeded,
    check_layers,
    checkpoint_model,
    head_inputs,
    last_layer_type,
    load_model_dict,
    names_dict,
    resolve_yaml,
    run_layers,
    upsample_compat,
    yaml_extra,
)
from patchkit.detectors.base import Detector, DetectorInfo, RawOutput
from patchkit.detectors.letterbox import check_imgsz, check_letterbox_mode
from patchkit.detectors.registry import DetectorFamily, FileView, register_family
from patchkit.detectors.safe_load import file_sha256, safe_torch_load
from patchkit.errors import PatchkitError

__all__ = [
    "FAMILY",
    "SUPPORTED_HEADS",
    "UltralyticsDetector",
    "check_model_dict",
    "detector_info",
    "load_model_dict",
    "load_ultralytics",
    "load_ultralytics_checkpoint",
    "load_ultralytics_yaml",
    "resolve_yaml",
    "sniff_ultralytics",
    "ultralytics_model_from_checkpoint",
]

SUPPORTED_HEADS = ("Detect", "v10Detect")


class UltralyticsDetector(Detector):
    """A frozen ultralytics ``DetectionModel`` behind patchkit's :class:`Detector` interface.

    Args:
        model: the ultralytics ``DetectionModel`` (eval, frozen by the factory).
        info: metadata.
        end2end: use the one-to-one branch (NMS-free top-k post-processing, :attr:`topk` 300 as
            ultralytics); ``None`` follows the model's own ``end2end`` setting, as its predict() does.
    """

    def __init__(self, model: nn.Module, info: DetectorInfo, end2end: bool | None = None) -> None:
        super().__init__()
        head = model.model[-1]
        if type(head).__name__ not in SUPPORTED_HEADS:
            raise PatchkitError(
                f"{info.source}: head {type(head).__name__} is not supported "
                f"(only detection heads: {', '.join(SUPPORTED_HEADS)}; RT-DETR models load as RTDETRDetector)"
            )
        has_one2one = getattr(head, "one2one_cv2", None) is not None
        e2e = bool(getattr(model, "end2end", False)) if end2end is None else bool(end2end)
        if e2e and not has_one2one:
            raise PatchkitError(f"{info.source}: end2end=True but this model has no one-to-one head")
        if not e2e and getattr(head, "cv2", None) is None:
            raise PatchkitError(f"{info.source}: the one-to-many head was removed by fusion; use end2end=True")
        self.model = model
        self.info = info
        self.end2end = e2e
        self.topk = 300 if e2e else None  # ultralytics' NMS-free top-k of the one-to-one head
        self.info.extra["end2end"] = e2e
        self._n_layers = len(model.model) - 1
        self._head_from = head_inputs(head.f, self._n_layers)
        self._save = frozenset(model.save) | frozenset(self._head_from)
        self._strides = [float(s) for s in head.stride]
        self._anchors: dict[tuple, tuple[Tensor, Tensor]] = {}

    def _anchor_points(self, feats: list[Tensor]) -> tuple[Tensor, Tensor]:
        """Cell centres ``(1, 2, A)`` in grid units and strides ``(1, 1, A)``; cached per shape as
        plain tensors (never inference tensors)."""
        ref = feats[0]
        key = (tuple(f.shape[2:] for f in feats), ref.device, ref.dtype)
        hit = self._anchors.get(key)
        if hit is None:
            points, strides = [], []
            with torch.inference_mode(False), torch.no_grad():
                for f, s in zip(feats, self._strides):
                    h, w = f.shape[2:]
                    sy, sx = torch.meshgrid(
                        torch.arange(h, device=ref.device, dtype=ref.dtype) + 0.5,
                        torch.arange(w, device=ref.device, dtype=ref.dtype) + 0.5,
                        indexing="ij",
                    )
                    points.append(torch.stack((sx, sy), -1).view(-1, 2))
                    strides.append(torch.full((h * w, 1), s, device=ref.device, dtype=ref.dtype))
                hit = (torch.cat(points).T.unsqueeze(0), torch.cat(strides).T.unsqueeze(0))
            self._anchors[key] = hit
        return hit

    def forward_letterboxed(self, x: Tensor) -> RawOutput:
        x = self.prepare_input(x)
        feats = run_layers(islice(self.model.model, self._n_layers), self._save, x, self._head_from)
        head = self.model.model[-1]
        preds = head.forward_head(feats, **(head.one2one if self.end2end else head.one2many))
        points, strides = self._anchor_points(feats)
        lt, rb = head.dfl(preds["boxes"]).chunk(2, 1)  # (B, 2, A) each, grid units
        boxes = torch.cat((points - lt, points + rb), 1) * strides  # (B, 4, A) xyxy pixels
        return RawOutput(boxes.transpose(1, 2), preds["scores"].sigmoid().transpose(1, 2), None)


def detector_info(
    model: nn.Module, family: str, source: str, extra: dict, imgsz: int, letterbox: str, sha256: str | None
) -> DetectorInfo:
    """Metadata of a YOLO ``DetectionModel`` (names, strides and head read from the model)."""
    head = model.model[-1]
    strides = [float(s) for s in head.stride]
    return DetectorInfo(
        family=family,
        source=source,
        names=names_dict(getattr(model, "names", None), int(head.nc)),
        stride=int(max(strides)),
        imgsz=check_imgsz(imgsz, int(max(strides))),
        letterbox=check_letterbox_mode(letterbox),
        sha256=sha256,
        extra={"head": type(head).__name__, "nc": int(head.nc), "strides": strides, **extra},
    )


def check_model_dict(d: dict, tasks: Any, source: str) -> None:
    """A YOLO detection model dict: known layer classes and a supported head in the last row."""
    check_layers(d, tasks, source)
    last = last_layer_type(d)
    if last == "RTDETRDecoder":
        raise PatchkitError(f"{source}: an RT-DETR model is not a YOLO detection model (load it with create_detector)")
    if last not in SUPPORTED_HEADS:
        raise PatchkitError(f"{source}: head {last!r} is not supported (only detection heads: {', '.join(SUPPORTED_HEADS)})")


def load_ultralytics_yaml(
    cfg: str | Path, imgsz: int = 640, letterbox: str = "rect", device: str | torch.device = "cpu",
    nc: int | None = None, seed: int = 0, end2end: bool | None = None,
) -> UltralyticsDetector:
    """A detector with random weights built from an ultralytics model YAML (mechanics, speed).

    ``seed`` makes the random weights reproducible without touching the global RNG.
    """
    tasks = import_ultralytics_tasks()
    d = load_model_dict(cfg, tasks)
    source = str(cfg)
    check_model_dict(d, tasks, source)
    model = build_seeded(tasks.DetectionModel, d, tasks, source, nc, seed)
    info = detector_info(model, "ultralytics", source, yaml_extra(d, seed), imgsz, letterbox, None)
    return UltralyticsDetector(model.float(), info, end2end=end2end).to(torch.device(device)).freeze()


def ultralytics_model_from_checkpoint(ckpt: Any, path: Path) -> nn.Module:
    """The detection model held by a loaded ultralytics checkpoint (``ema`` first, as ultralytics)."""
    model = checkpoint_model(ckpt)
    if not isinstance(model, nn.Module) or not type(model).__module__.startswith("ultralytics."):
        raise PatchkitError("is not an ultralytics checkpoint (no ultralytics model under 'model'/'ema')", path)
    if type(model).__name__.startswith("RTDETR"):
        raise PatchkitError("is an RT-DETR checkpoint, not a YOLO detection model (load it with create_detector)", path)
    if not hasattr(model, "model") or not isinstance(model.model, nn.Sequential):
        raise PatchkitError(f"is an ultralytics {type(model).__name__}, not a detection model", path)
    return model


def load_ultralytics_checkpoint(
    weights: str | Path, imgsz: int = 640, letterbox: str = "rect", device: str | torch.device = "cpu",
    end2end: bool | None = None, ckpt: Any = None,
) -> UltralyticsDetector:
    """A frozen detector from an ultralytics checkpoint (``yolov8n.pt``-style dict, fp16 model).

    ``ckpt`` may pass the already (safely) loaded checkpoint to avoid a second read.
    """
    path = Path(weights)
    if ckpt is None:
        ckpt = safe_torch_load(path)
    model = upsample_compat(ultralytics_model_from_checkpoint(ckpt, path).float())
    info = detector_info(model, "ultralytics", str(path), {"format": "ultralytics-checkpoint"}, imgsz, letterbox, file_sha256(path))
    return UltralyticsDetector(model, info, end2end=end2end).to(torch.device(device)).freeze()


def sniff_ultralytics(view: FileView) -> bool:
    """Any model YAML, or a checkpoint holding an ultralytics model (the catch-all for ultralytics files)."""
    if view.kind == "yaml":
        return True
    if view.kind == "globals":
        return any(n.startswith("ultralytics.") for n in view.content)
    if view.kind == "object":
        return isinstance(view.content, dict) and type(checkpoint_model(view.content)).__module__.startswith("ultralytics.")
    return False


FAMILY = register_family(
    DetectorFamily(
        name="ultralytics",
        sniff=sniff_ultralytics,
        from_checkpoint=load_ultralytics_checkpoint,
        from_yaml=load_ultralytics_yaml,
        example="yolov8n.yaml",
        priority=-1,  # after the more specific families built on ultralytics models (rtdetr)
    )
)
load_ultralytics = FAMILY  # the registry entry under its former name
