"""Digital evaluation: conditions x references x test-time EOT samples for one detector.

For each reference (``self``: the detector's own clean detections at ``ref_conf``, the literature's
convention, clean AP = 1 by construction; ``labels``: the official boxes) the patches are placed
on the reference boxes (:func:`patchkit.scenes.placement.place_patches`), pasted through the
:class:`patchkit.eot.EOTPipeline` (flat when there is no test-time EOT), detected at a low
confidence (``score_conf``, 0.01 as adversarial-yolo), and matched to the reference boxes once
at IoU 0.50:0.95 (:func:`patchkit.metrics.match`), which gives every metric.

Test-time EOT: ``samples`` physical draws, sample ``k`` seeded with ``seed + k`` and shared by all
conditions (paired comparison). Each metric is reported as the mean over samples, with its
standard deviation (``*_std``) and the per-sample values of AP50.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from patchkit.detections import Detections
from patchkit.eot import EOTConfig, EOTParams, EOTPipeline
from patchkit.evaluation.conditions import Condition
from patchkit.metrics.ap import IOU_50_95, MatchTable, PRCurve, match
from patchkit.scenes.placement import PlacementConfig, place_patches

DEFAULT_SWEEP: tuple[float, ...] = (0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass
class EvalOptions:
    """How to evaluate.

    Attributes:
        thresholds: confidence sweep for detection rate, ASR, precision, hallucinations, in [0, 1].
        score_conf: detection threshold for AP (low, so the PR curve is complete).
        ref_conf: confidence of the clean detections used as the ``self`` reference.
        iou: NMS IoU threshold.
        target_class: class id of the target (person = 0).
        placement: patch placement rule on each reference box.
        eot: test-time EOT config (``None``: flat paste).
        samples: number of EOT draws (ignored without ``eot``; at least 1).
        seed: seed of draw 0.
        batch: images per detector call.
        rule: box matching rule (``"voc"``).
    """

    thresholds: tuple[float, ...] = DEFAULT_SWEEP
    score_conf: float = 0.01
    ref_conf: float = 0.4
    iou: float = 0.45
    target_class: int = 0
    placement: PlacementConfig = field(default_factory=PlacementConfig)
    eot: EOTConfig | None = None
    samples: int = 1
    seed: int = 0
    batch: int = 8
    rule: str = "voc"


def tkey(t: float) -> str:
    return f"{float(t):g}"


def _batches(n: int, size: int):
    for s in range(0, n, size):
        yield slice(s, min(n, s + size))


@torch.no_grad()
def detect_conditioned(
    detector,
    images: Tensor,
    boxes: Sequence[Tensor],
    patch: Tensor | None,
    opts: EvalOptions,
    eot: EOTPipeline,
    generator_seed: int | None,
    conf: float,
) -> tuple[list[Detections], list[EOTParams]]:
    """Detections on ``images`` (uint8 ``(N, 3, S, S)``) with ``patch`` placed on ``boxes``.

    Draws come from one generator seeded with ``generator_seed`` and consumed batch by batch, so
    the same seed gives the same draws for every patch of the same size. Returns the detections
    and the EOT parameters of each batch (for replay)."""
    device = next(detector.parameters()).device
    g = torch.Generator().manual_seed(int(generator_seed or 0))
    out: list[Detections] = []
    drawn: list[EOTParams] = []
    for sl in _batches(images.shape[0], opts.batch):
        x = images[sl].to(device).float().div_(255.0)
        if patch is not None:
            bx = [b.to(device).float() for b in boxes[sl]]
            counts = torch.tensor([b.shape[0] for b in bx], device=device)
            batch_idx = torch.repeat_interleave(torch.arange(len(bx), device=device), counts)
            flat = torch.cat(bx) if bx else torch.zeros(0, 4, device=device)
            centers, sizes = place_patches(flat, opts.placement)
            x, params = eot(patch.to(device), x, centers, sizes, batch_idx, generator=g, inplace=True)
            drawn.append(params)
        out += [d.to("cpu") for d in detector.detect(x, conf=conf, iou=opts.iou, classes=[opts.target_class])]
    return out, drawn


def clean_detections(detector, images: Tensor, opts: EvalOptions) -> list[Detections]:
    """Detections on the clean images at the scoring confidence (no patch)."""
    conf = min(opts.score_conf, min(opts.thresholds))
    return detect_conditioned(detector, images, [], None, opts, EOTPipeline(EOTConfig.all_disabled()), None, conf)[0]


def self_references(clean: list[Detections], ref_conf: float) -> list[Tensor]:
    """The ``self`` reference: the clean detections with confidence ``>= ref_conf``.

    Greedy NMS keeps a box only because of higher-scoring boxes, so these equal the detections
    of a separate run at ``ref_conf``."""
    return [d.xyxy[d.conf >= ref_conf] for d in clean]


def table_metrics(table: MatchTable, thresholds: Sequence[float], rule: str) -> dict:
    """AP50, AP50:95 and the sweep metrics of one match table."""
    keys = [tkey(t) for t in thresholds]
    dr = np.atleast_1d(table.detection_rate(list(thresholds), 0.5))
    tp = table.tp[:, table.column(0.5)]
    prec = {}
    for k, t in zip(keys, thresholds):
        sel = table.conf >= np.float32(t)
        prec[k] = float(tp[sel].mean()) if sel.any() else None
    return {
        "ap50": table.average_precision(0.5),
        "ap50_95": table.ap50_95(),
        "detection_rate": {k: float(v) for k, v in zip(keys, dr)},
        "asr_at": {k: float(1 - v) for k, v in zip(keys, dr)},
        "precision": prec,
        "hallucinations_per_image": {k: table.hallucinations_per_image(t, 0.5) for k, t in zip(keys, thresholds)},
    }


def _mean_std(samples: list[dict]) -> dict:
    """Mean of per-sample metric dicts, with ``*_std`` siblings (NaN-aware, None kept None)."""
    out: dict = {}
    for key, v0 in samples[0].items():
        if isinstance(v0, dict):
            sub = {k: [s[key][k] for s in samples] for k in v0}
            out[key] = {k: _m(v) for k, v in sub.items()}
            out[key + "_std"] = {k: _sd(v) for k, v in sub.items()}
        else:
            vals = [s[key] for s in samples]
            out[key] = _m(vals)
            out[key + "_std"] = _sd(vals)
    return out


def _m(vals):
    v = np.array([np.nan if x is None else x for x in vals], dtype=float)
    return None if np.all(np.isnan(v)) else float(np.nanmean(v))


def _sd(vals):
    v = np.array([np.nan if x is None else x for x in vals], dtype=float)
    return None if np.all(np.isnan(v)) else float(np.nanstd(v))


@dataclass
class DetectorEvaluation:
    """All rows of one detector, plus the PR curves (sample 0) for plotting."""

    rows: list[dict]
    curves: dict[tuple[str, str], PRCurve]


def evaluate_detector(
    detector,
    detector_name: str,
    images: Tensor,
    references: dict[str, list[Tensor]],
    conditions: Sequence[Condition],
    opts: EvalOptions,
    progress: Callable[[str], None] | None = None,
    clean_detections: list[Detections] | None = None,
    detect: Callable[[str, list[Tensor], Condition, int, float], list[Detections]] | None = None,
) -> DetectorEvaluation:
    """Metrics of one detector for every reference and condition.

    Args:
        detector: a :class:`patchkit.detectors.base.Detector`.
        images: ``(N, 3, S, S)`` uint8 canvases (already letterboxed).
        references: reference name (``self``, ``labels``) -> per-image ``(M, 4)`` boxes in canvas
            pixels; patches are placed on these boxes.
        conditions: from :func:`patchkit.evaluation.conditions.build_conditions`.
        clean_detections: the detector's detections on the clean images at a confidence
            ``<= min(score_conf, thresholds)`` when already computed (see :func:`clean_detections`).
        detect: replaces the patch paste for conditions with a patch: ``detect(reference name,
            reference boxes, condition, sample k, conf)`` -> detections per image (textures:
            :class:`patchkit.evaluation.textures.TextureSetup`); ``opts.samples`` renders per image.
    """
    conf = min(opts.score_conf, min(opts.thresholds))
    eot = EOTPipeline(opts.eot if opts.eot is not None else EOTConfig.all_disabled())
    samples = max(1, opts.samples) if (opts.eot is not None or detect is not None) else 1
    rows: list[dict] = []
    curves: dict[tuple[str, str], PRCurve] = {}
    clean_dets = clean_detections
    for ref_name, ref_boxes in references.items():
        n_boxes = int(sum(b.shape[0] for b in ref_boxes))
        clean_ap = None
        for cond in conditions:
            if progress:
                progress(f"{detector_name} / {ref_name} / {cond.name}")
            per_sample = []
            for k in range(samples if cond.patch is not None else 1):
                if cond.patch is None:
                    if clean_dets is None:
                        clean_dets, _ = detect_conditioned(detector, images, ref_boxes, None, opts, eot, None, conf)
                    dets = clean_dets
                elif detect is not None:
                    dets = detect(ref_name, ref_boxes, cond, k, conf)
                else:
                    dets, _ = detect_conditioned(detector, images, ref_boxes, cond.patch, opts, eot, opts.seed + k, conf)
                table = match(dets, ref_boxes, IOU_50_95, rule=opts.rule)
                if k == 0:
                    curves[(ref_name, cond.name)] = table.pr_curve(0.5)
                per_sample.append(table_metrics(table, opts.thresholds, opts.rule))
            stats = _mean_std(per_sample)
            if cond.name == "clean":
                clean_ap = stats["ap50"]
            asr = [None if (clean_ap is None or s["ap50"] is None or not clean_ap) else 1 - s["ap50"] / clean_ap
                   for s in per_sample]
            row = {
                "detector": detector_name,
                "condition": cond.name,
                "reference": ref_name,
                "ap50": stats["ap50"],
                "ap50_95": stats["ap50_95"],
                "asr": _m(asr),
                "detection_rate": stats["detection_rate"],
                "n_images": int(images.shape[0]),
                "n_boxes": n_boxes,
                "asr_at": stats["asr_at"],
                "precision": stats["precision"],
                "hallucinations_per_image": stats["hallucinations_per_image"],
                "eot_samples": len(per_sample),
                "ap50_std": stats["ap50_std"],
                "ap50_95_std": stats["ap50_95_std"],
                "asr_std": _sd(asr),
                "detection_rate_std": stats["detection_rate_std"],
                "ap50_samples": [s["ap50"] for s in per_sample],
                "patch": cond.path,
                "trained_on": cond.trained_on,
            }
            rows.append(row)
    return DetectorEvaluation(rows, curves)
