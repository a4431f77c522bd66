"""A whole ``patchkit evaluate`` run: image set, references, every detector, outputs."""

from __future__ import annotations

import functools
import logging
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import Tensor

from patchkit.config import read_yaml
from patchkit.errors import PatchkitError
from patchkit.evaluation.conditions import Condition
from patchkit.evaluation.digital import (
    EvalOptions,
    clean_detections,
    evaluate_detector,
    self_references,
    tkey,
)
from patchkit.evaluation.report import transfer_matrix, write_outputs
from patchkit.scenes.scene import SceneConfig, load_scene
from patchkit.scenes.sources import has_own_labels

log = logging.getLogger(__name__)


def labels_available(scene: str | Path, split: str, labels: str | None) -> str | None:
    """The label set to use as the ``labels`` reference: ``labels`` when given (``"none"``
    disables), else ``"official"`` when the scene brings its own labels (a scene YAML's split
    with an ``official`` set, a dataset YAML, a YOLO dataset folder, a COCO JSON), else None."""
    if labels is not None:
        return None if labels.lower() in ("none", "self") else labels
    path = Path(scene)
    if has_own_labels(path, split):  # a dataset YAML, YOLO dataset folder or COCO JSON
        return "official"
    if path.is_file() and path.suffix.lower() in (".yaml", ".yml"):
        spec = read_yaml(path) or {}
        split_spec = (spec.get("splits") or {}).get(split) or {}
        if "official" in (split_spec.get("labels") or {}):
            return "official"
    return None


def load_image_set(scene: str | Path, split: str, labels: str | None, imgsz: int, target_class: int,
                   max_images: int = 0) -> tuple[Tensor, list[Tensor] | None, list[Path]]:
    """Square-letterboxed uint8 canvases ``(N, 3, S, S)``, label boxes (canvas pixels, every box
    of the target class) or None, and the image paths."""
    label_set = labels_available(scene, split, labels)
    common = dict(path=str(scene), split=split, classes=[target_class], min_size=0.0, max_boxes=10**6,
                  max_images=max_images)
    if label_set is not None:
        s = load_scene(SceneConfig(labels=label_set, **common), imgsz, keep_empty=True)
        return s.images, [b.float() for b in s.boxes], s.paths
    with tempfile.TemporaryDirectory() as empty:  # a label folder without files: images only
        s = load_scene(SceneConfig(labels=empty, **common), imgsz, keep_empty=True)
    return s.images, None, s.paths


def run_evaluation(
    detectors: Sequence[tuple[str, torch.nn.Module]],
    images: Tensor,
    label_boxes: list[Tensor] | None,
    conditions: Sequence[Condition],
    opts: EvalOptions,
    references: Sequence[str] = ("self", "labels"),
    meta: dict | None = None,
    out_dir: str | Path | None = None,
    json_path: str | Path | None = None,
    csv_path: str | Path | None = None,
    plots: bool = True,
    progress: Callable[[str], None] | None = None,
    texture=None,
) -> dict:
    """Evaluate every detector; write outputs; return the JSON dict (``results`` per
    detector x reference x condition, ``transfer`` matrices, ``meta``).

    ``texture`` (a :class:`patchkit.evaluation.textures.TextureSetup`): the conditions' images are
    tiles rendered on the persons' garments instead of pasted patches; rows get ``kind``,
    ``coverage`` and ``tile_cm``, and ``meta`` the texture settings."""
    refs_wanted = [r for r in references if r != "labels" or label_boxes is not None]
    if not refs_wanted:
        raise PatchkitError("no reference to score against: the scene has no labels and 'self' was not asked for")
    t0 = time.perf_counter()
    rows: list[dict] = []
    curves: dict = {}
    for name, det in detectors:
        clean = clean_detections(det, images, opts)
        refs = {}
        if "self" in refs_wanted:
            refs["self"] = self_references(clean, opts.ref_conf)
        if "labels" in refs_wanted:
            refs["labels"] = label_boxes
        hook = None if texture is None else functools.partial(texture.detect, det)
        ev = evaluate_detector(det, name, images, refs, conditions, opts, progress, clean_detections=clean,
                               detect=hook)
        if texture is not None:
            for r in ev.rows:
                r.update(texture.row_fields(det, r["reference"], r["condition"]))
        rows += ev.rows
        for (ref, cond), c in ev.curves.items():
            curves.setdefault((name, ref), {})[cond] = c
    thresholds = [tkey(t) for t in opts.thresholds]
    result = {
        "results": rows,
        "transfer": [transfer_matrix(rows, ref, metric) for ref in refs_wanted for metric in ("asr", "ap50")],
        "meta": {
            **(meta or {}),
            "thresholds": thresholds,
            "score_conf": opts.score_conf,
            "ref_conf": opts.ref_conf,
            "nms_iou": opts.iou,
            "match": {"rule": opts.rule, "iou": 0.5, "ap": "all-point VOC interpolation"},
            "placement": asdict(opts.placement),
            "eot": None if opts.eot is None else asdict(opts.eot),
            "eot_samples": opts.samples if opts.eot is not None else 0,
            "seed": opts.seed,
            "n_images": int(images.shape[0]),
            "seconds": round(time.perf_counter() - t0, 3),
        },
    }
    if texture is not None:
        result["meta"].update(texture.meta())
        result["meta"].pop("placement", None)
    result["files"] = write_outputs(out_dir, result, curves, thresholds, json_path, csv_path, plots)
    return result
