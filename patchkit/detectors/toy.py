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

from patchkit.detectors._isolation import import_ultralytics_tasks
from patchkit.detectors._ultralytics_build import build_seeded
from patchkit.detectors.registry import register_detector
from patchkit.detectors.safe_load import file_sha256, load_weights_only
from patchkit.detectors.ultralytics import UltralyticsDetector, check_model_dict, detector_info
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
    check_model_dict(d, tasks, source)
    model = build_seeded(tasks.DetectionModel, d, tasks, source, int(ckpt["nc"]), seed=0)  # weights loaded below
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise PatchkitError(f"{source}: weights do not fit the embedded model YAML ({str(exc).splitlines()[0]})") from exc
    model.names = {int(k): str(v) for k, v in ckpt["names"].items()}
    extra = {"format": ckpt.get("format"), "trained_imgsz": int(ckpt.get("imgsz", TOY_IMGSZ)), "meta": ckpt.get("meta", {})}
    info = detector_info(model, "toy", source, extra, imgsz, letterbox, file_sha256(path))
    return UltralyticsDetector(model.float(), info, end2end=end2end).to(torch.device(device)).freeze()
