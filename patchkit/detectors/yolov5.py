"""The yolov5 family: original YOLOv5-repository checkpoints (ultralytics/yolov5 v6.x / v7.0, any
size or class count).

The architecture is read from the checkpoint's own ``yaml`` (depth/width multiples, backbone and
head rows, ``nc``, anchors). Layers ``0..N-2`` are built with ultralytics' ``parse_model`` (its
``Conv``, ``C3``, ``SPPF``, ``SPP``, ``Focus``, ``Concat``... reproduce the yolov5 layers), the
anchor-based head is :class:`YOLOv5Head`. No yolov5 code is needed: the pickled model is unpickled
into placeholder modules (:mod:`patchkit.detectors.safe_load`) only to read its tensors.

Two file formats:

- the release checkpoint (``yolov5n.pt``: a dict whose ``model``/``ema`` is a pickled ``models.yolo.Model``);
- a tensors-only copy (``{"state_dict": ..., "meta": {"yaml", "names", "stride", "anchors_pixels"}}``),
  loaded with ``torch.load(weights_only=True)``.

Its ``sniff`` claims checkpoints that pickle yolov5-repository classes (``models.yolo.*``...) and
the tensors-only copy. There is no YAML form: the family needs a weights file.
"""

from __future__ import annotations

import copy
from itertools import islice
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from patchkit.detectors._isolation import import_ultralytics_tasks, preserve_process_state
from patchkit.detectors._ultralytics_build import (
    check_layers,
    checkpoint_model,
    default_activation,
    head_inputs,
    layer_rows,
    names_dict,
    run_layers,
)
from patchkit.detectors.base import Detector, DetectorInfo, RawOutput
from patchkit.detectors.letterbox import check_imgsz, check_letterbox_mode
from patchkit.detectors.registry import DetectorFamily, FileView, register_family
from patchkit.detectors.safe_load import YOLOV5_MODULES, YOLOv5Stub, file_sha256, safe_torch_load
from patchkit.errors import PatchkitError


class YOLOv5Head(nn.Module):
    """Anchor-based YOLOv5 ``Detect`` head: one 1x1 conv per level, decoded as yolov5 v6/v7.

    Decode per level: ``s = sigmoid(p)``; ``xy = (2 s - 0.5 + grid) * stride``;
    ``wh = (2 s)^2 * anchor_px``; objectness ``s[..., 4]``; class probabilities ``s[..., 5:]``.

    Args:
        ch: input channels per level.
        nc: number of classes.
        anchors: ``(nl, na, 2)`` anchors in grid units of each level (yolov5's ``Detect.anchors``).
        strides: pixels per grid cell of each level.
    """

    def __init__(self, ch: list[int], nc: int, anchors: Tensor, strides: list[float]) -> None:
        super().__init__()
        self.nc, self.nl, self.na = nc, len(ch), anchors.shape[1]
        self.no = nc + 5
        self.m = nn.ModuleList(nn.Conv2d(c, self.na * self.no, 1) for c in ch)
        self.register_buffer("anchors", anchors.float().clone())
        self.register_buffer("stride", torch.tensor(strides, dtype=torch.float32), persistent=False)
        self._grids: dict[tuple, tuple[Tensor, Tensor]] = {}

    def _grid(self, i: int, ny: int, nx: int, ref: Tensor) -> tuple[Tensor, Tensor]:
        """``(grid - 0.5)`` of shape ``(1, 1, ny, nx, 2)`` (grid units) and the anchors in pixels
        ``(1, na, 1, 1, 2)``; cached per shape as plain tensors (never inference tensors)."""
        key = (i, ny, nx, ref.device, ref.dtype)
        hit = self._grids.get(key)
        if hit is None:
            with torch.inference_mode(False), torch.no_grad():
                y, x = torch.meshgrid(
                    torch.arange(ny, device=ref.device, dtype=ref.dtype),
                    torch.arange(nx, device=ref.device, dtype=ref.dtype),
                    indexing="ij",
                )
                grid = (torch.stack((x, y), 2) - 0.5).view(1, 1, ny, nx, 2)
                anchor = (self.anchors[i] * self.stride[i]).to(ref.dtype).view(1, self.na, 1, 1, 2).clone()
            hit = self._grids[key] = (grid, anchor)
        return hit

    def forward(self, feats: list[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """Returns ``boxes (B, A, 4)`` xyxy pixels, ``objectness (B, A)``, ``scores (B, A, nc)``."""
        out = []
        for i, x in enumerate(feats):
            p = self.m[i](x)
            b, _, ny, nx = p.shape
            s = p.view(b, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).sigmoid()
            grid, anchor = self._grid(i, ny, nx, s)
            xy = (s[..., :2] * 2 + grid) * self.stride[i]
            wh = (s[..., 2:4] * 2) ** 2 * anchor
            out.append(torch.cat((xy - wh / 2, xy + wh / 2, s[..., 4:]), -1).reshape(b, -1, self.no))
        y = torch.cat(out, 1) if len(out) > 1 else out[0]
        return y[..., :4], y[..., 4], y[..., 5:]


class YOLOv5Detector(Detector):
    """An original YOLOv5 model: ultralytics-module layers ``0..N-2`` + :class:`YOLOv5Head`.

    Frozen, eval mode; state-dict keys equal the yolov5 repository's (``model.0...``, ``model.24.m.0``).
    """

    def __init__(self, layers: nn.Sequential, save: list[int], head: YOLOv5Head, head_from: list[int], info: DetectorInfo) -> None:
        super().__init__()
        self.model = nn.Sequential(*layers, head)
        self.info = info
        self._n_layers = len(layers)
        self._head_from = list(head_from)
        self._save = frozenset(save) | frozenset(head_from)

    def forward_letterboxed(self, x: Tensor) -> RawOutput:
        x = self.prepare_input(x)
        feats = run_layers(islice(self.model, self._n_layers), self._save, x, self._head_from)
        boxes, obj, scores = self.model[-1](feats)
        return RawOutput(boxes, scores, obj)


def _set_yolov5_bn(target: nn.Module, pickled: nn.Module | None) -> None:
    """BatchNorm eps/momentum as yolov5 uses them (1e-3 / 0.03), or exactly as pickled."""
    for m in target.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps, m.momentum = 1e-3, 0.03
    if pickled is None:
        return
    for name, mod in pickled.named_modules():
        if isinstance(mod, nn.BatchNorm2d):
            try:
                mine = target.get_submodule(name)
            except AttributeError:
                continue
            if isinstance(mine, nn.BatchNorm2d):
                mine.eps = float(mod.eps)


def _sync_activations(target: nn.Module, pickled: nn.Module) -> None:
    """Use the activation modules of the pickled tree (SiLU, LeakyReLU, Hardswish...) wherever the
    built tree differs (old yolov5 releases used other activations than ultralytics' defaults)."""
    for name, mod in pickled.named_modules():
        if not name or type(mod).__module__ != "torch.nn.modules.activation":
            continue
        parent_name, _, attr = name.rpartition(".")
        try:
            parent = target.get_submodule(parent_name) if parent_name else target
        except AttributeError:
            continue
        current = getattr(parent, attr, None)
        if isinstance(current, nn.Module) and type(current) is not type(mod):
            setattr(parent, attr, copy.deepcopy(mod))


def _read_checkpoint(path: Path) -> dict:
    """yaml, names, strides, state_dict (and the pickled tree, if any) of either file format."""
    ckpt = safe_torch_load(path)  # placeholder classes for the pickled model; weights_only for the copy
    if not is_yolov5_state_dict_copy(ckpt):
        model = checkpoint_model(ckpt)
        if not isinstance(model, YOLOv5Stub) or not isinstance(getattr(model, "yaml", None), dict):
            raise PatchkitError("is not a YOLOv5-repository checkpoint (no models.yolo model with a yaml)", path)
        stride = getattr(model, "stride", None)
        return {
            "format": "yolov5-checkpoint",
            "yaml": model.yaml,
            "names": getattr(model, "names", None),
            "strides": [float(s) for s in stride] if stride is not None else None,
            "state_dict": model.state_dict(),
            "tree": getattr(model, "model", None),
        }
    meta = ckpt["meta"]
    return {
        "format": "yolov5-state-dict",
        "yaml": meta["yaml"],
        "names": meta.get("names"),
        "strides": [float(s) for s in meta["stride"]] if meta.get("stride") is not None else None,
        "state_dict": ckpt["state_dict"],
        "tree": None,
    }


def is_yolov5_state_dict_copy(obj: Any) -> bool:
    """True for ``{"state_dict": ..., "meta": {"yaml": {... "anchors" ...}}}`` dicts."""
    meta = obj.get("meta") if isinstance(obj, dict) else None
    return isinstance(meta, dict) and isinstance(meta.get("yaml"), dict) and "anchors" in meta["yaml"] and "state_dict" in obj


def load_yolov5(
    weights: str | Path, imgsz: int = 640, letterbox: str = "rect", device: str | torch.device = "cpu"
) -> YOLOv5Detector:
    """Build a frozen :class:`YOLOv5Detector` from a YOLOv5-repository checkpoint or its state-dict copy.

    Raises:
        PatchkitError: one line naming the file when it is missing, unreadable, unsafe or not YOLOv5.
    """
    path = Path(weights)
    src = _read_checkpoint(path)
    yaml_d, sd = copy.deepcopy(src["yaml"]), src["state_dict"]
    rows = layer_rows(yaml_d)
    if not rows or not isinstance(rows[-1], (list, tuple)) or len(rows[-1]) != 4:
        raise PatchkitError("the checkpoint's yaml has no layer rows", path)
    head_index = len(rows) - 1
    if rows[-1][2] != "Detect":
        raise PatchkitError(f"YOLOv5 head {rows[-1][2]!r} is not supported (only Detect)", path)
    head_from = head_inputs(rows[-1][0], head_index)
    prefix = f"model.{head_index}."
    if f"{prefix}anchors" not in sd:
        raise PatchkitError(f"the weights have no {prefix}anchors (not a YOLOv5 detection model)", path)
    anchors = sd[f"{prefix}anchors"].float()  # (nl, na, 2), grid units
    na = anchors.shape[1]
    convs = [sd.get(f"{prefix}m.{i}.weight") for i in range(len(head_from))]
    if any(w is None for w in convs):
        raise PatchkitError("the weights do not match the head described by the yaml", path)
    ch = [int(w.shape[1]) for w in convs]
    nc = int(convs[0].shape[0]) // na - 5
    strides = src["strides"]
    if not strides or len(strides) != len(head_from):
        raise PatchkitError("the checkpoint has no strides for its detection levels", path)

    yaml_d["head"] = list(yaml_d["head"])[:-1]
    tasks = import_ultralytics_tasks()
    check_layers(yaml_d, tasks, str(path))
    with preserve_process_state(), default_activation(yaml_d, tasks, str(path)) as d:
        try:
            layers, save = tasks.parse_model(d, ch=int(d.get("ch", 3) or 3), verbose=False)
        except Exception as exc:  # a malformed yaml row surfaces as any exception inside parse_model
            raise PatchkitError(f"cannot build the architecture from the checkpoint's yaml ({type(exc).__name__}: {exc})", path) from exc
    head = YOLOv5Head(ch, nc, anchors, strides)
    names = names_dict(src["names"], nc)
    info = DetectorInfo(
        family="yolov5",
        source=str(path),
        names=names,
        stride=int(max(strides)),
        imgsz=check_imgsz(imgsz, int(max(strides))),
        letterbox=check_letterbox_mode(letterbox),
        sha256=file_sha256(path),
        extra={
            "format": src["format"],
            "nc": nc,
            "strides": strides,
            "anchors_px": (anchors * torch.tensor(strides).view(-1, 1, 1)).tolist(),
        },
    )
    det = YOLOv5Detector(layers, save, head, head_from, info)
    _set_yolov5_bn(det.model, src["tree"])
    if src["tree"] is not None:
        _sync_activations(det.model, src["tree"])
    derived = {f"{prefix}anchor_grid", f"{prefix}grid"}  # buffers of yolov5 <= v5.0, recomputed here
    try:
        det.load_state_dict({k: v for k, v in sd.items() if k not in derived}, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise PatchkitError(f"weights do not match the architecture of the checkpoint's yaml ({' '.join(first[:2])[:300]})", path) from exc
    return det.to(torch.device(device)).freeze()


def sniff_yolov5(view: FileView) -> bool:
    """A checkpoint pickling yolov5-repository classes, its tensors-only copy, or a legacy pickle
    holding a yolov5 model."""
    if view.kind == "globals":
        return any(n.startswith(tuple(m + "." for m in YOLOV5_MODULES)) for n in view.content)
    if view.kind == "object":
        obj = view.content
        return is_yolov5_state_dict_copy(obj) or (isinstance(obj, dict) and isinstance(checkpoint_model(obj), YOLOv5Stub))
    return False


FAMILY = register_family(
    DetectorFamily(name="yolov5", sniff=sniff_yolov5, from_checkpoint=load_yolov5, example="yolov5:path/to/yolov5n.pt")
)
yolov5 = FAMILY  # the registry entry under its former name
