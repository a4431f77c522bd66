"""Digital evaluation of patches (``patchkit evaluate``): conditions, references, metrics, reports.

:mod:`~patchkit.evaluation.conditions` (clean / random / gray / patches, sidecars),
:mod:`~patchkit.evaluation.digital` (metrics per detector x reference x condition, test-time EOT),
:mod:`~patchkit.evaluation.report` (JSON, CSV, transfer matrix, plots, markdown),
:mod:`~patchkit.evaluation.runner` (a whole run).
"""

from patchkit.evaluation.conditions import Condition, build_conditions, load_patch, read_sidecar
from patchkit.evaluation.digital import (
    DEFAULT_SWEEP,
    DetectorEvaluation,
    EvalOptions,
    clean_detections,
    evaluate_detector,
    self_references,
)
from patchkit.evaluation.runner import load_image_set, run_evaluation

__all__ = [
    "Condition", "DEFAULT_SWEEP", "DetectorEvaluation", "EvalOptions", "build_conditions", "clean_detections",
    "evaluate_detector", "load_image_set", "load_patch", "read_sidecar", "run_evaluation", "self_references",
]
