"""Ultralytics-package detectors: model YAMLs (random weights) and ultralytics checkpoints.

Supported heads: the anchor-free ``Detect`` without objectness (YOLOv3u/v5u/v6/v8/v9/11/12, and
YOLO26 / YOLOv10's one-to-many branch) and the end-to-end one-to-one branch of YOLOv10
(``v10Detect``) and YOLO26 (``Detect`` with ``one2one_*``). RT-DETR YAMLs and checkpoints are
handed to :mod:`patchkit.detectors.rtdetr`.

The forward pass runs ultralytics' own layers; the head's outputs are decoded here (DFL,
anchor points cached per shape as plain tensors), so ``raw()`` is differentiable and never
touches ultralytics' inference-tensor caches. ``detect()`` reproduces ultralytics' own
post-processing: class-aware NMS, or, for end-to-end heads, top-k without NMS.

Nothing here downloads anything: a YAML is a local file or a bare name found in the installed
``ultralytics/cfg/models`` folder (``yolov8n.yaml``, ``yolo11n.yaml``, ``yolo26n.yaml``,
``yolov10n.yaml``, ``yolov5nu.yaml``...); a checkpoint is a local file loaded through
:func:`patchkit.detectors.safe_load.safe_torch_load`.
"""

from __future__ import annotations

import importlib.util
import re
from itertools import islice
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor, nn

from patchkit.detections import Detections
from patchkit.detectors._layers import head_inputs, run_layers
from patchkit.detectors._isolation import import_ultralytics_tasks
from patchkit.detectors._ultralytics_build import build_seeded, check_layers, checkpoint_model, upsample_compat
from patchkit.detectors.base import Detector, DetectorInfo, RawOutput
from patchkit.detectors.letterbox import check_imgsz, check_letterbox_mode
from patchkit.detectors.nms import topk_detections
from patchkit.detectors.registry import register_detector
from patchkit.detectors.safe_load import file_sha256, safe_torch_load
from patchkit.errors import PatchkitError

SUPPORTED_HEADS = ("Detect", "v10Detect")
_sha256 = file_sha256  # kept: patchkit.detectors.toy imports this name


def ultralytics_cfg_dir() -> Path | None:
    """``<site-packages>/ultralytics/cfg/models`` located without importing ultralytics."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "cfg" / "models"


def _unified_stem(stem: str) -> str:
    """``yolov8n`` -> ``yolov8``, ``yolov5n6`` -> ``yolov5-p6``, ``yolov5nu`` -> ``yolov5``,
    ``yolov3-tinyu`` -> ``yolov3-tiny`` (ultralytics' scale and "u" naming)."""
    if stem.endswith("u") and re.match(r"yolov\d", stem):
        stem = stem[:-1]
    if re.fullmatch(r"yolov[58][nslmx]6", stem):
        stem = re.sub(r"(\d+)([nslmx])6(.+)?$", r"\1\2-p6\3", stem)
    return re.sub(r"(\d+)([nslmx])(.+)?$", r"\1\3", stem)


def resolve_yaml(name: str | Path) -> tuple[Path, Path]:
    """``(file to read, path whose name carries the scale)`` for a model YAML.

    A path that exists is used as is. A bare name (``yolov8n.yaml``) is looked up in the installed
    ultralytics ``cfg/models`` folder, scale letter stripped as ultralytics does; never downloaded.
    """
    path = Path(name)
    if path.is_file():
        return path, path
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise PatchkitError("model YAML not found", path)
    root = ultralytics_cfg_dir()
    if str(path) == path.name and root is not None and root.is_dir():
        for candidate in (path.name, _unified_stem(path.stem) + path.suffix):
            found = sorted(root.rglob(candidate))
            if found:
                return found[0], found[0].with_name(path.name)
    raise PatchkitError(
        "model YAML not found (give a file path, or a bare name of the installed ultralytics "
        "cfg/models such as yolov8n.yaml, yolo11n.yaml, yolo26n.yaml, yolov10n.yaml)",
        path,
    )


def load_model_dict(name: str | Path, tasks: Any) -> dict:
    """The model dict of a YAML, with ``scale`` guessed from the name like ultralytics does."""
    file, named = resolve_yaml(name)
    try:
        d = yaml.safe_load(file.read_text(encoding="utf-8", errors="ignore"))
    except (OSError, yaml.YAMLError) as exc:
        raise PatchkitError(f"cannot read model YAML ({type(exc).__name__}: {exc})", file) from exc
    if not isinstance(d, dict):
        raise PatchkitError("is not a model YAML (expected a mapping with backbone/head)", file)
    d["scale"] = tasks.guess_model_scale(named)
    d["yaml_file"] = str(named)
    return d


class UltralyticsDetector(Detector):
    """A frozen ultralytics ``DetectionModel`` behind patchkit's :class:`Detector` interface.

    Args:
        model: the ultralytics ``DetectionModel`` (eval, frozen by the factory).
        info: metadata.
        end2end: use the one-to-one branch (NMS-free top-k post-processing); ``None`` follows the
            model's own ``end2end`` setting, as ultralytics' predict() does.
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

    def postprocess(
        self,
        out: RawOutput,
        conf: float = 0.25,
        iou: float = 0.45,
        classes: list[int] | None = None,
        max_det: int = 300,
    ) -> list[Detections]:
        """NMS (one-to-many head) or ultralytics' NMS-free top-k (one-to-one head)."""
        if self.end2end:
            return topk_detections(out.boxes, out.scores, conf, classes, max_det, topk=300)
        return super().postprocess(out, conf, iou, classes, max_det)


def _names(model: nn.Module, nc: int) -> dict[int, str]:
    names = getattr(model, "names", None)
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    names = {int(k): str(v) for k, v in (names or {}).items()}
    return {i: names.get(i, str(i)) for i in range(nc)}


def _info(model: nn.Module, source: str, family_extra: dict, imgsz: int, letterbox: str, sha256: str | None) -> DetectorInfo:
    head = model.model[-1]
    strides = [float(s) for s in head.stride]
    return DetectorInfo(
        family="ultralytics",
        source=source,
        names=_names(model, int(head.nc)),
        stride=int(max(strides)),
        imgsz=check_imgsz(imgsz, int(max(strides))),
        letterbox=check_letterbox_mode(letterbox),
        sha256=sha256,
        extra={"head": type(head).__name__, "nc": int(head.nc), "strides": strides, **family_extra},
    )


def _check_head_row(d: dict, source: str) -> None:
    rows = list(d.get("backbone") or []) + list(d.get("head") or [])
    last = rows[-1][2] if rows and isinstance(rows[-1], (list, tuple)) and len(rows[-1]) == 4 else None
    if last == "RTDETRDecoder":
        raise PatchkitError(f"{source}: an RT-DETR model is not a YOLO detection model (load it with create_detector)")
    if last not in SUPPORTED_HEADS:
        raise PatchkitError(f"{source}: head {last!r} is not supported (only detection heads: {', '.join(SUPPORTED_HEADS)})")


def load_ultralytics_yaml(
    cfg: str | Path,
    imgsz: int = 640,
    letterbox: str = "rect",
    device: str | torch.device = "cpu",
    nc: int | None = None,
    seed: int = 0,
    end2end: bool | None = None,
) -> Detector:
    """A detector with random weights built from an ultralytics model YAML (mechanics, speed).

    ``seed`` makes the random weights reproducible without touching the global RNG.
    """
    tasks = import_ultralytics_tasks()
    d = load_model_dict(cfg, tasks)
    source = str(cfg)
    from patchkit.detectors.rtdetr import build_rtdetr_from_dict, is_rtdetr_model_dict

    if is_rtdetr_model_dict(d):
        if end2end is False:
            raise PatchkitError(f"{source}: RT-DETR is end-to-end only (no NMS branch); leave end2end unset")
        return build_rtdetr_from_dict(d, tasks, source, imgsz=imgsz, device=device, nc=nc, seed=seed)
    check_layers(d, tasks, source)
    _check_head_row(d, source)
    model = build_seeded(tasks.DetectionModel, d, tasks, source, nc, seed)
    info = _info(model, source, {"format": "ultralytics-yaml", "yaml": Path(d["yaml_file"]).name, "seed": seed}, imgsz, letterbox, None)
    return UltralyticsDetector(model.float(), info, end2end=end2end).to(torch.device(device)).freeze()


def ultralytics_model_from_checkpoint(ckpt: Any, path: Path) -> nn.Module:
    """The detection model held by a loaded ultralytics checkpoint (``ema`` first, as ultralytics)."""
    model = checkpoint_model(ckpt)
    if not isinstance(model, nn.Module) or not type(model).__module__.startswith("ultralytics."):
        raise PatchkitError("is not an ultralytics checkpoint (no ultralytics model under 'model'/'ema')", path)
    if type(model).__name__.startswith("RTDETR"):
        raise PatchkitError("is an RT-DETR checkpoint: load it with patchkit.detectors.rtdetr.load_rtdetr_checkpoint", path)
    if not hasattr(model, "model") or not isinstance(model.model, nn.Sequential):
        raise PatchkitError(f"is an ultralytics {type(model).__name__}, not a detection model", path)
    return model


def load_ultralytics_checkpoint(
    weights: str | Path,
    imgsz: int = 640,
    letterbox: str = "rect",
    device: str | torch.device = "cpu",
    end2end: bool | None = None,
    ckpt: Any = None,
) -> Detector:
    """A frozen detector from an ultralytics checkpoint (``yolov8n.pt``-style dict, fp16 model).

    ``ckpt`` may pass the already (safely) loaded checkpoint to avoid a second read.
    """
    path = Path(weights)
    if ckpt is None:
        ckpt = safe_torch_load(path)
    from patchkit.detectors.rtdetr import is_rtdetr_model, load_rtdetr_checkpoint

    if isinstance(ckpt, dict) and is_rtdetr_model(checkpoint_model(ckpt)):
        return load_rtdetr_checkpoint(path, imgsz=imgsz, letterbox=letterbox, device=device, end2end=end2end, ckpt=ckpt)
    model = upsample_compat(ultralytics_model_from_checkpoint(ckpt, path).float())
    info = _info(model, str(path), {"format": "ultralytics-checkpoint"}, imgsz, letterbox, file_sha256(path))
    return UltralyticsDetector(model, info, end2end=end2end).to(torch.device(device)).freeze()


@register_detector("ultralytics")
def load_ultralytics(
    weights: str | Path | None = None,
    *,
    imgsz: int = 640,
    letterbox: str = "rect",
    device: str | torch.device = "cpu",
    **kwargs: Any,
) -> Detector:
    """Registry entry of the ultralytics family: a YAML (random weights) or a checkpoint, by suffix."""
    if weights is None:
        raise PatchkitError("detector family 'ultralytics' needs a model YAML or checkpoint, e.g. yolov8n.yaml")
    if Path(weights).suffix.lower() in (".yaml", ".yml"):
        return load_ultralytics_yaml(weights, imgsz=imgsz, letterbox=letterbox, device=device, **kwargs)
    return load_ultralytics_checkpoint(weights, imgsz=imgsz, letterbox=letterbox, device=device, **kwargs)
