"""Object detectors behind one interface (see :mod:`patchkit.detectors.base`).

``create_detector(weights, imgsz=640, letterbox="rect", device="cpu")`` is the single entry point;
``list_detectors()`` names the registered detectors and families; ``register_detector(name)`` adds
a factory and ``register_family(DetectorFamily(...))`` a family plug-in that recognises its own
files (see :mod:`patchkit.detectors.registry`). Importing this package does not import
ultralytics (families import it when building).
"""

from patchkit.detectors.base import Detector, DetectorInfo, RawOutput
from patchkit.detectors.letterbox import LetterboxParams, boxes_to_input, letterbox
from patchkit.detectors.registry import (
    DetectorFamily,
    FileView,
    create_detector,
    list_detectors,
    list_families,
    register_detector,
    register_family,
)
from patchkit.detectors.safe_load import load_weights_only, safe_torch_load

__all__ = [
    "Detector",
    "DetectorFamily",
    "DetectorInfo",
    "FileView",
    "LetterboxParams",
    "RawOutput",
    "boxes_to_input",
    "create_detector",
    "letterbox",
    "list_detectors",
    "list_families",
    "load_weights_only",
    "register_detector",
    "register_family",
    "safe_torch_load",
]
