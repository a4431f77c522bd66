"""The toy detector: a small YOLOv8 trained by patchkit on its own toy world, shipped in the package.

``create_detector("toy")`` loads ``patchkit/data/toy_detector.pt`` (see
``patchkit/data/toy_detector.json`` for how it was trained and its measured AP50); any other file
in the same format loads by path (the registry routes it here through its top-level
``"family": "toy"``). The format is a plain dict of tensors and strings, loaded with
``torch.load(weights_only=True)`` and no extra allowed globals: the network is rebuilt from the
model YAML text it carries (ultralytics' layers, checked by patchkit before building) and the fp16
weights are loaded into it as float32. Its native input size is 320 (``imgsz=320``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from patchkit.detectors._isolation import import_ultralytics_tasks, preserve_process_state
from patchkit.detectors._ultralytics_build import check_layers, default_activation
from patchkit.detectors.base import DetectorInfo
from patchkit.detectors.letterbox import check_imgsz, check_letterbox_mode
from patchkit.detectors.registry import register_detector
from patchkit.detectors.safe_load import load_weights_only
from patchkit.detectors.ultralytics import UltralyticsDetector, _check_head_row, _sha256
from patchkit.errors import PatchkitError

TOY_WEIGHTS = Path(__file__).resolve().parents[1] / "data" / "toy_detector.pt"
TOY_IMGSZ = 320
_KEYS = ("family", "model_yaml", "nc", "names", "state_dict")


def load_toy_checkpoint(path: str | Path) -> dict:
    """The toy checkpoint dict, checked (one-line errors naming the file)."""
    path = Path(path)
    if not path.exists():
        raise PatchkitError("toy detector weights not found (reinstall patchkit, or rerun patchkit toyworld train-detector)", path)
    obj = load_weights_only(path)
    if not isinstance(obj, dict) or obj.get("family") != "toy" or any(k not in obj for k in _KEYS):
        raise PatchkitError(f"is not a toy-detector file (expected a dict with {', '.join(_KEYS)})", path)
    return obj


@register_detector("toy")
def load_toy(
    weights: str | Path | None = None,
    *,
    imgsz: int = TOY_IMGSZ,
    letterbox: str = "rect",
    device: str | torch.device = "cpu",
    end2end: bool | None = None,
    **kwargs: Any,
) -> UltralyticsDetector:
    """Registry entry ``toy``: the shipped toy detector (``weights=None``) or a file in its format.

    Args:
        imgsz: letterbox long side in pixels; the detector was trained at 320.
    """
    if kwargs:
        raise PatchkitError(f"toy detector: unknown options {', '.join(sorted(kwargs))}")
    path = Path(weights) if weights is not None else TOY_WEIGHTS
    ckpt = load_toy_checkpoint(path)
    source = str(path)
    try:
        d = yaml.safe_load(ckpt["model_yaml"])
    except yaml.YAMLError as exc:
        raise PatchkitError(f"{source}: the embedded model YAML does not parse ({exc})") from exc
    if not isinstance(d, dict):
        raise PatchkitError(f"{source}: the embedded model YAML is not a mapping")
    tasks = import_ultralytics_tasks()
    check_layers(d, tasks, source)
    _check_head_row(d, source)
    nc = int(ckpt["nc"])
    with preserve_process_state(), torch.random.fork_rng(devices=[]), default_activation(d, tasks, source) as d2:
        try:
            model = tasks.DetectionModel(d2, nc=nc, verbose=False)
        except Exception as exc:  # a malformed YAML row surfaces as any exception inside parse_model
            raise PatchkitError(f"{source}: cannot build the model ({type(exc).__name__}: {exc})") from exc
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise PatchkitError(f"{source}: weights do not fit the embedded model YAML ({str(exc).splitlines()[0]})") from exc
    names = {int(k): str(v) for k, v in ckpt["names"].items()}
    model.names = names
    head = model.model[-1]
    strides = [float(s) for s in head.stride]
    info = DetectorInfo(
        family="toy",
        source=source,
        names={i: names.get(i, str(i)) for i in range(nc)},
        stride=int(max(strides)),
        imgsz=check_imgsz(imgsz, int(max(strides))),
        letterbox=check_letterbox_mode(letterbox),
        sha256=_sha256(path),
        extra={"head": type(head).__name__, "nc": nc, "strides": strides, "format": ckpt.get("format"),
               "trained_imgsz": int(ckpt.get("imgsz", TOY_IMGSZ)), "meta": ckpt.get("meta", {})},
    )
    return UltralyticsDetector(model.float(), info, end2end=end2end).to(torch.device(device)).freeze()
