"""Train, export and measure the toy detector.

:func:`train_detector` runs ultralytics' own ``DetectionTrainer`` on a toy-world dataset from a
model YAML (random initialisation, ``pretrained=False``, ``amp=False``, inside
:func:`~patchkit.toyworld.offline.offline_ultralytics`), seeded and deterministic.
:func:`export_toy_weights` turns the resulting ultralytics checkpoint into patchkit's
tensors-only toy format (loadable with ``torch.load(weights_only=True)``; fp16 weights, the model
YAML as text, class names), which :mod:`patchkit.detectors.toy` loads. :func:`evaluate_detector`
measures person AP50 on a dataset split with :mod:`patchkit.metrics`.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from patchkit.errors import PatchkitError
from patchkit.io import atomic_torch_save, list_images, read_image
from patchkit.scenes.labels import read_yolo_labels
from patchkit.toyworld.offline import offline_ultralytics

TOY_FORMAT = "patchkit-toy-detector-v1"
REPO_MODEL_YAML = Path(__file__).resolve().parents[2] / "scenes" / "toyworld" / "toy_detector.yaml"


@dataclass
class TrainSettings:
    """ultralytics training settings of the toy detector (passed as its ``train()`` keywords).

    ``nbs`` equal to ``batch`` means one optimiser step per batch (ultralytics accumulates
    gradients up to ``nbs`` images otherwise). ``cache="ram"`` keeps decoded images in memory
    (about 0.5 GB for 1000 images), which saves the JPEG decoding of every mosaic.
    """

    epochs: int = 60
    imgsz: int = 320
    batch: int = 16
    seed: int = 0
    workers: int = 0
    warmup_epochs: float = 0.5
    close_mosaic: int = 2
    cache: str = "ram"
    optimizer: str = "AdamW"
    lr0: float = 0.002
    cos_lr: bool = False

    def train_kwargs(self) -> dict[str, Any]:
        return dict(
            epochs=self.epochs, imgsz=self.imgsz, batch=self.batch, seed=self.seed, workers=self.workers,
            warmup_epochs=self.warmup_epochs, close_mosaic=self.close_mosaic, optimizer=self.optimizer,
            lr0=self.lr0, cos_lr=self.cos_lr, nbs=self.batch, deterministic=True, pretrained=False, amp=False,
            plots=False, val=True, cache=self.cache, verbose=False, exist_ok=True, patience=0,
        )


def train_detector(data_yaml: str | Path, model_yaml: str | Path, run_dir: str | Path, settings: TrainSettings,
                   device: str = "cpu") -> Path:
    """Train from ``model_yaml`` on ``data_yaml``; returns the final ultralytics checkpoint
    (``run_dir/weights/last.pt``, EMA weights)."""
    run_dir = Path(run_dir).resolve()
    model_yaml = Path(model_yaml)
    if not model_yaml.is_file():
        raise PatchkitError("model YAML not found", model_yaml)
    if not Path(data_yaml).is_file():
        raise PatchkitError("dataset YAML not found (run patchkit toyworld generate first)", data_yaml)
    with offline_ultralytics():
        from ultralytics import YOLO

        model = YOLO(str(model_yaml), task="detect")
        model.train(data=str(Path(data_yaml).resolve()), device=device, project=str(run_dir.parent), name=run_dir.name,
                    **settings.train_kwargs())
    last = run_dir / "weights" / "last.pt"
    if not last.is_file():
        raise PatchkitError("training finished without a checkpoint", last)
    return last


def finished_training(run_dir: str | Path, settings: TrainSettings, data_yaml: str | Path | None = None) -> Path | None:
    """The final checkpoint of an earlier, complete run in ``run_dir`` with the same settings
    (and dataset YAML, when given), so an interrupted export or evaluation need not retrain;
    else ``None``."""
    run_dir = Path(run_dir)
    last, args_file = run_dir / "weights" / "last.pt", run_dir / "args.yaml"
    if not last.is_file() or not args_file.is_file():
        return None
    try:
        done = yaml.safe_load(args_file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(done, dict) or any(done.get(k) != v for k, v in settings.train_kwargs().items() if k != "exist_ok"):
        return None
    if data_yaml is not None and done.get("data") != str(Path(data_yaml).resolve()):
        return None
    return last if _epochs_logged(run_dir) >= settings.epochs else None


def _epochs_logged(run_dir: Path) -> int:
    rows = _results(run_dir)
    return int(float(rows[-1]["epoch"])) if rows else 0


def _results(run_dir: Path) -> list[dict[str, str]]:
    import csv

    f = Path(run_dir) / "results.csv"
    if not f.is_file():
        return []
    with open(f, newline="", encoding="utf-8") as fh:
        return [{k.strip(): v.strip() for k, v in row.items()} for row in csv.DictReader(fh)]


def training_seconds(run_dir: str | Path) -> float:
    """Training wall time in seconds as ultralytics logged it (``time`` of the last epoch in
    ``results.csv``: from the start of the first epoch to the end of the last, validation
    included); 0 when there is no log."""
    rows = _results(Path(run_dir))
    return round(float(rows[-1]["time"]), 1) if rows and "time" in rows[-1] else 0.0


def export_toy_weights(ultralytics_ckpt: str | Path, model_yaml: str | Path, out: str | Path,
                       imgsz: int = 320, meta: dict | None = None) -> str:
    """Write patchkit's toy-detector file from an ultralytics training checkpoint.

    The file is a plain dict (``family``, ``format``, ``model_yaml`` text, ``nc``, ``names``,
    ``imgsz``, ``state_dict`` in fp16, ``meta``): no pickled classes. Returns its sha256.
    """
    from patchkit.detectors.safe_load import safe_torch_load

    ckpt = safe_torch_load(ultralytics_ckpt)
    model = ckpt.get("ema") if ckpt.get("ema") is not None else ckpt.get("model")
    if model is None:
        raise PatchkitError("no model in the ultralytics checkpoint", ultralytics_ckpt)
    names = getattr(model, "names", {0: "person"})
    names = dict(enumerate(names)) if isinstance(names, (list, tuple)) else dict(names)
    state = {k: (v.half() if v.is_floating_point() else v).clone() for k, v in model.state_dict().items()}
    obj = {
        "family": "toy",
        "format": TOY_FORMAT,
        "model_yaml": Path(model_yaml).read_text(encoding="utf-8"),
        "nc": int(model.model[-1].nc),
        "names": {int(k): str(v) for k, v in names.items()},
        "imgsz": int(imgsz),
        "state_dict": state,
        "meta": dict(meta or {}),
    }
    atomic_torch_save(obj, out)
    return hashlib.sha256(Path(out).read_bytes()).hexdigest()


def load_split(root: str | Path, split: str = "test", limit: int = 0) -> tuple[list[np.ndarray], list[torch.Tensor]]:
    """Images (uint8 RGB) and person boxes (xyxy px) of a written toy-world split."""
    root = Path(root)
    paths = list_images(root / "images" / split)
    if limit:
        paths = paths[:limit]
    if not paths:
        raise PatchkitError(f"no images in split '{split}'", root / "images" / split)
    images, boxes = [], []
    for p in paths:
        img = read_image(p)
        cls, b = read_yolo_labels(root / "labels" / split / f"{p.stem}.txt", img.shape[1], img.shape[0])
        images.append(img)
        boxes.append(b[cls == 0])
    return images, boxes


def evaluate_detector(detector, images: list[np.ndarray], boxes: list[torch.Tensor], conf: float = 0.001,
                      iou: float = 0.6, batch: int = 16) -> dict[str, float]:
    """Person AP50 and AP50-95 (VOC all-point, :mod:`patchkit.metrics`) of ``detector`` on
    images with reference boxes; NMS at ``iou``, detections down to ``conf``."""
    from patchkit.metrics import ap50_95, average_precision

    dets = []
    for i in range(0, len(images), batch):
        dets += detector.detect(images[i : i + batch], conf=conf, iou=iou, classes=[0])
    return {
        "ap50": float(average_precision(dets, boxes, 0.5, classes=[0])),
        "ap50_95": float(ap50_95(dets, boxes, classes=[0])),
        "n_images": len(images),
        "n_boxes": int(sum(len(b) for b in boxes)),
    }


def model_yaml_text(path: str | Path) -> str:
    """The model YAML's text, checked to parse."""
    text = Path(path).read_text(encoding="utf-8")
    if not isinstance(yaml.safe_load(text), dict):
        raise PatchkitError("is not a model YAML", path)
    return text


class Stopwatch:
    """Wall-clock seconds since creation (``time.perf_counter``)."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.t0
