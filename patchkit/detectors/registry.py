"""Detector registry and the single factory, timm style.

``@register_detector("name")`` records a factory ``fn(weights, *, imgsz, letterbox, device, **kw)``;
:func:`create_detector` is the only way in. It dispatches:

- a registered name (``"toy"``) -> that factory, with ``weights=None``;
- ``"family:PATH"`` (e.g. ``"yolov5:my.pt"``) -> that family's factory, no sniffing;
- a ``.yaml`` / ``.yml`` -> the ultralytics family (random weights);
- any other path -> sniffed without executing anything: pickle globals of the yolov5 repository
  (``models.yolo``...) -> ``yolov5``; ultralytics globals -> ``ultralytics``; a tensors-only file
  -> the YOLOv5 state-dict copy (``meta.yaml`` with anchors) -> ``yolov5``, or a dict with a
  top-level ``"family"`` naming a registered detector -> that factory, called with the path.

Missing or wrong files raise a one-line :class:`PatchkitError`; nothing is ever downloaded.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any, Callable

import torch

from patchkit.detectors.base import Detector
from patchkit.detectors.letterbox import check_letterbox_mode
from patchkit.device import resolve_device
from patchkit.errors import PatchkitError, suggest

log = logging.getLogger(__name__)

DetectorFactory = Callable[..., Detector]
_REGISTRY: dict[str, DetectorFactory] = {}
# Modules whose import registers detectors; a module that does not exist yet is skipped.
_BUILTIN_MODULES = (
    "patchkit.detectors.yolov5",
    "patchkit.detectors.ultralytics",
    "patchkit.detectors.rtdetr",
    "patchkit.detectors.toy",
)
YAML_SUFFIXES = (".yaml", ".yml")


def register_detector(name: str) -> Callable[[DetectorFactory], DetectorFactory]:
    """Decorator registering ``fn(weights: str | Path | None, *, imgsz, letterbox, device, **kwargs)``
    under ``name``. Re-registering a name replaces it with a warning (as timm)."""

    def decorator(fn: DetectorFactory) -> DetectorFactory:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            log.warning("detector %r registered again; replacing %s", name, _REGISTRY[name])
        _REGISTRY[name] = fn
        return fn

    return decorator


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def list_detectors() -> list[str]:
    """Names of the registered detectors and families, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def _unknown(name: str) -> PatchkitError:
    known = list_detectors()
    if name == "toy":
        return PatchkitError(f"toy detector not available yet (registered detectors: {', '.join(known)})")
    return PatchkitError(
        f"unknown detector {name!r}{suggest(name, known)}: give a weights file (.pt), a model YAML, "
        f"or a registered name ({', '.join(known)}); patchkit never downloads weights"
    )


def sniff_family(path: Path) -> str:
    """The family of a checkpoint file, decided without executing pickled code."""
    from patchkit.detectors.safe_load import checkpoint_globals, load_weights_only, resolve_global, safe_torch_load

    if path.suffix.lower() in YAML_SUFFIXES:
        return "ultralytics"
    names = checkpoint_globals(path)  # static listing; bad files raise one-line errors here
    if any(n.startswith(("models.yolo.", "models.common.", "models.experimental.")) for n in names):
        return "yolov5"
    if any(n.startswith("ultralytics.") for n in names):
        return "ultralytics"
    for n in names:
        if resolve_global(n) is None:
            raise PatchkitError(f"refused to load: the checkpoint references the disallowed global '{n}'", path)
    if names:
        raise PatchkitError("is not a detector checkpoint (no YOLOv5 or ultralytics model inside)", path)
    try:
        obj = load_weights_only(path)
    except PatchkitError:
        obj = safe_torch_load(path)  # legacy (pre-zip) pickles: listed only while loading
    return _family_of_object(obj, path)


def _family_of_object(obj: Any, path: Path) -> str:
    from patchkit.detectors.safe_load import YOLOv5Stub
    from patchkit.detectors.yolov5 import is_yolov5_state_dict_copy

    if is_yolov5_state_dict_copy(obj):
        return "yolov5"
    if isinstance(obj, dict):
        meta = obj.get("meta")
        family = obj.get("family")
        if family is None and isinstance(meta, dict):
            family = meta.get("family")
        if isinstance(family, str):
            if family in list_detectors():
                return family
            raise _unknown(family)
        model = obj.get("ema") if obj.get("ema") is not None else obj.get("model")
        if isinstance(model, YOLOv5Stub):
            return "yolov5"
        if model is not None and type(model).__module__.startswith("ultralytics."):
            return "ultralytics"
    raise PatchkitError("is not a recognised detector checkpoint (YOLOv5, ultralytics or patchkit format)", path)


def create_detector(
    weights: str | Path,
    imgsz: int = 640,
    letterbox: str = "rect",
    device: str | torch.device = "cpu",
    **kwargs: Any,
) -> Detector:
    """Build a frozen, eval-mode detector: the single entry point.

    Args:
        weights: a checkpoint (original YOLOv5 release, its state-dict copy, ultralytics), an
            ultralytics model YAML (random weights; bare names resolve from the installed
            ultralytics cfg folder), a registered name (``"toy"``), or ``"family:PATH"``.
        imgsz: long side of the letterboxed input in pixels (rounded up to a stride multiple).
        letterbox: ``"rect"`` (minimum rectangle, as predict()) or ``"square"`` (imgsz x imgsz).
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        **kwargs: family options (``end2end``, ``nc``, ``seed`` for ultralytics); ``None`` values
            are dropped so the family default applies.

    Raises:
        PatchkitError: one line naming the file or name.
    """
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    check_letterbox_mode(letterbox)
    dev = resolve_device(device)
    _load_builtins()
    text = str(weights)
    common = dict(imgsz=imgsz, letterbox=letterbox, device=dev, **kwargs)
    family, _, rest = text.partition(":")
    if rest and len(family) > 1 and family in _REGISTRY:
        return _REGISTRY[family](rest, **common)
    path = Path(text)
    if text in _REGISTRY and not path.exists():
        return _REGISTRY[text](None, **common)
    if path.suffix.lower() in YAML_SUFFIXES:
        return _REGISTRY["ultralytics"](path, **common)
    if not path.exists():
        if not path.suffix and str(path) == path.name:
            raise _unknown(text)
        raise PatchkitError("detector weights not found (patchkit never downloads weights; give a local file)", path)
    family = sniff_family(path)
    if family not in _REGISTRY:
        raise _unknown(family)
    return _REGISTRY[family](path, **common)
