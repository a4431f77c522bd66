"""The literature protocol for person-hiding patches, in one place, so every patch (ours, the
peers', a user's collection) is scored the same way.

Protocol (adversarial-yolo, T-SEA, VQ): each labelled person gets the patch, side 0.2 x the box
diagonal, centred; square letterbox at ``imgsz``; NMS IoU 0.45; the detection rate is the share of
labelled persons still matched (IoU >= 0.5) by a person box at conf 0.25; AP50 from detections
at conf 0.01 against the same labels; hallucinations are person boxes at conf 0.25 matching no
label, per image. Flat paste, or test-time EOT (``eot_samples`` seeded physical draws, shared by
every patch so comparisons are paired).

Results are cached per (detector file, patch bytes, size, samples, seed) in a JSON file, written
after each patch, so a long zoo run that is stopped keeps what it scored and a re-run scores only
what is new.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from patchkit.eot import EOTConfig
from patchkit.errors import PatchkitError
from patchkit.evaluation.conditions import Condition
from patchkit.evaluation.digital import EvalOptions, clean_detections, evaluate_detector
from patchkit.io import atomic_write_json, list_images_recursive
from patchkit.scenes.placement import PlacementConfig

#: Patch side = 0.2 x box diagonal, centred on the box.
LITERATURE_PLACEMENT = PlacementConfig(scale=0.2)
CONF = 0.25


def expand_patch_paths(paths: Sequence[str | Path]) -> list[Path]:
    """Patch files, with each folder replaced by the images inside it and its subfolders (sorted by path)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = list_images_recursive(p)
            if not found:
                raise PatchkitError("no patch images in this folder", p)
            out += found
        else:
            out.append(p)
    return out


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass
class ProtocolScore:
    """One patch under one detector, size and mode: the protocol's three numbers."""

    detection_rate: float
    ap50: float
    hallucinations: float

    @classmethod
    def from_row(cls, row: dict) -> "ProtocolScore":
        return cls(row["detection_rate"]["0.25"], row["ap50"], row["hallucinations_per_image"]["0.25"])


class ProtocolCache:
    """Protocol scores keyed by detector, patch content, size, EOT samples and seed (a JSON file)."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self.data: dict = {}
        if self.path and self.path.is_file():
            try:
                self.data = json.loads(self.path.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise PatchkitError(f"cannot read the score cache ({exc}); delete it to start over", self.path) from exc

    @staticmethod
    def key(detector_sha: str, patch_sha: str, imgsz: int, samples: int, seed: int) -> str:
        return f"{detector_sha[:16]}|{patch_sha[:16]}|{imgsz}|{samples}|{seed}"

    def get(self, key: str) -> ProtocolScore | None:
        v = self.data.get(key)
        return ProtocolScore(**v) if v else None

    def put(self, key: str, score: ProtocolScore) -> None:
        self.data[key] = score.__dict__
        if self.path:
            atomic_write_json(self.path, self.data)


def score_patches(
    detector,
    detector_sha: str,
    images: torch.Tensor,
    labels: list[torch.Tensor],
    patches: dict[str, torch.Tensor],
    imgsz: int,
    eot_samples: int = 0,
    seed: int = 0,
    cache: ProtocolCache | None = None,
    eot: EOTConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, ProtocolScore]:
    """Score each patch (name -> ``(3, H, W)`` RGB in [0, 1]; ``None`` = clean) on ``images``
    (uint8 ``(N, 3, imgsz, imgsz)``) against ``labels`` (per-image ``(M, 4)`` canvas pixels).

    ``eot_samples`` 0 = flat paste; else that many test-time EOT draws (``eot`` or the default
    EOT), averaged."""
    opts = EvalOptions(thresholds=(CONF,), score_conf=0.01, iou=0.45, placement=LITERATURE_PLACEMENT,
                       eot=(eot or EOTConfig()) if eot_samples > 0 else None, samples=max(1, eot_samples),
                       seed=seed, batch=8)
    out: dict[str, ProtocolScore] = {}
    clean = None
    for name, patch in patches.items():
        psha = "clean" if patch is None else hashlib.sha256(
            patch.mul(255).round().to(torch.uint8).numpy().tobytes() + str(tuple(patch.shape)).encode()).hexdigest()
        key = ProtocolCache.key(detector_sha, psha, imgsz, eot_samples if patch is not None else 0, seed)
        hit = cache.get(key) if cache else None
        if hit is not None:
            out[name] = hit
            continue
        if progress:
            progress(name)
        if clean is None:
            clean = clean_detections(detector, images, opts)
        ev = evaluate_detector(detector, "d", images, {"labels": labels}, [Condition(name, patch)], opts,
                               clean_detections=clean)
        score = ProtocolScore.from_row(ev.rows[0])
        out[name] = score
        if cache:
            cache.put(key, score)
    return out
