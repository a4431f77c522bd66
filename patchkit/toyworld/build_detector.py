"""The toy detector from scratch, in one call: dataset -> ultralytics training -> export -> test AP.

:func:`build_toy_detector` is what ``patchkit toyworld train-detector`` runs (the CLI only parses
arguments). Each step reuses what an earlier, identical run left in the work folder: the same
dataset is not generated again and a finished ultralytics run is not trained again.

Work folder layout: ``data/`` (the generated dataset, unless one is given), ``run/`` (the
ultralytics run), ``toy_detector.pt`` + ``toy_detector.json`` (weights and sidecar).
"""

from __future__ import annotations

import json
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from patchkit.config import from_dict, to_dict
from patchkit.errors import PatchkitError
from patchkit.io import atomic_write_json
from patchkit.toyworld.config import ToyWorldConfig
from patchkit.toyworld.dataset import fingerprint, generate_dataset, same_dataset
from patchkit.toyworld.detector_training import (REPO_MODEL_YAML, Stopwatch, TrainSettings, evaluate_detector,
                                                 export_toy_weights, finished_training, load_split, model_yaml_text,
                                                 train_detector, training_seconds)
from patchkit.toyworld.offline import offline_ultralytics


@dataclass
class ToyDetectorJob:
    """What to build and where.

    Attributes:
        out: work folder (see the module docstring).
        data: an existing toy-world dataset folder; ``None`` generates ``out/data``.
        n_train, n_val, n_test: images per split to generate.
        seed: generator and training seed.
        world: the generator settings.
        settings: ultralytics training settings.
        model_yaml: the architecture (default ``scenes/toyworld/toy_detector.yaml``).
        device: torch device for training and evaluation.
        command: the command line recorded in the sidecar.
        export: also copy the weights and sidecar to this path.
    """

    out: Path
    data: Path | None = None
    n_train: int = 1000
    n_val: int = 32
    n_test: int = 300
    seed: int = 0
    world: ToyWorldConfig | None = None
    settings: TrainSettings | None = None
    model_yaml: Path | None = None
    device: torch.device = torch.device("cpu")
    command: str = ""
    export: Path | None = None


def build_toy_detector(job: ToyDetectorJob) -> dict[str, Any]:
    """Run every step; returns the sidecar written beside the weights (metrics, timings, machine)."""
    model_yaml = job.model_yaml or REPO_MODEL_YAML
    if not Path(model_yaml).is_file():
        raise PatchkitError("model YAML not found (give --model)", model_yaml)
    text = model_yaml_text(model_yaml)
    settings = job.settings or TrainSettings(seed=job.seed)
    job.out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, Any] = {}
    data_root = _dataset(job, seconds)
    dataset = _dataset_record(data_root, seconds)
    last = finished_training(job.out / "run", settings, data_root / "data.yaml")
    if last is None:
        clock = Stopwatch()
        last = train_detector(data_root / "data.yaml", model_yaml, job.out / "run", settings, device=str(job.device))
        seconds["train_wall"] = round(clock(), 1)
    seconds["train"] = training_seconds(job.out / "run")  # ultralytics' own measure, over all epochs

    weights = job.out / "toy_detector.pt"
    export_toy_weights(last, model_yaml, weights, imgsz=settings.imgsz,
                       meta={"seed": job.seed, "command": job.command, "train": to_dict(settings)})
    clock = Stopwatch()
    metrics, det = _evaluate(weights, data_root, settings.imgsz, job.device)
    seconds["evaluate"] = round(clock(), 1)
    n_params = sum(p.numel() for p in det.parameters())
    sidecar = {
        "name": "toy",
        "file": weights.name,
        "sha256": det.info.sha256,
        "size_bytes": weights.stat().st_size,
        "architecture": f"YOLOv8-style, {n_params} parameters, 1 class (person), from {Path(model_yaml).name}",
        "model_yaml": text,
        "seed": job.seed,
        "command": job.command,
        "train": to_dict(settings) | {"ultralytics_train_kwargs": settings.train_kwargs()},
        "dataset": dataset,
        "metrics": {"test": metrics | {"imgsz": settings.imgsz, "conf": 0.001, "nms_iou": 0.6,
                                        "ap": "person AP50, VOC all-point (patchkit.metrics.average_precision)"}},
        "seconds": seconds,
        "machine": _machine(job.device),
    }
    atomic_write_json(weights.with_suffix(".json"), sidecar)
    if job.export:
        job.export.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(weights, job.export)
        shutil.copyfile(weights.with_suffix(".json"), job.export.with_suffix(".json"))
    return sidecar


def _dataset(job: ToyDetectorJob, seconds: dict[str, Any]) -> Path:
    """The dataset folder: the given one (checked), or ``out/data`` generated unless identical."""
    if job.data:
        if not (job.data / "data.yaml").is_file():
            raise PatchkitError("no data.yaml: not a toy-world dataset (patchkit toyworld generate)", job.data)
        return job.data
    data_root = job.out / "data"
    world = job.world or ToyWorldConfig()
    if same_dataset(data_root, job.n_train, job.n_val, job.n_test, job.seed, world):
        seconds["generate_reused"] = True  # deterministic: an identical earlier generation is reused
    else:
        clock = Stopwatch()
        generate_dataset(data_root, job.n_train, job.n_val, job.n_test, job.seed, world, progress=True)
        seconds["generate"] = round(clock(), 1)
    return data_root


def _dataset_record(data_root: Path, seconds: dict[str, Any]) -> dict[str, Any] | None:
    """The dataset's ``toyworld.json`` plus a fingerprint of 4 training images, so tests can check
    that the generator still reproduces this data."""
    info_file = data_root / "toyworld.json"
    if not info_file.is_file():
        return None
    dataset = json.loads(info_file.read_text(encoding="utf-8"))
    if seconds.get("generate_reused"):
        seconds["generate"] = dataset.get("seconds")
    world = from_dict(ToyWorldConfig, dataset.get("generator", {}), source=str(info_file))
    dataset["fingerprint"] = {"split": "train", "n": 4, "sha256": fingerprint("train", 4, dataset["seed"], world)}
    return dataset


def _evaluate(weights: Path, data_root: Path, imgsz: int, device: torch.device):
    """Person AP on the test split with patchkit's own loader -> (metrics, detector)."""
    from patchkit.detectors import create_detector

    det = create_detector(str(weights), imgsz=imgsz, device=device)
    images, boxes = load_split(data_root, "test")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny network: one thread is as fast and immune to oversubscribed cores
    try:
        return evaluate_detector(det, images, boxes), det
    finally:
        torch.set_num_threads(threads)


def _machine(device: torch.device) -> dict[str, Any]:
    import cv2
    import numpy as np

    return {"device": str(device), "train_threads": _ultralytics_threads(), "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "opencv": cv2.__version__, "ultralytics": _ultralytics_version()}


def _ultralytics_threads() -> int:
    """The torch threads ultralytics' trainer uses on CPU (its ``NUM_THREADS``)."""
    with offline_ultralytics():
        from ultralytics.utils import NUM_THREADS

    return int(NUM_THREADS)


def _ultralytics_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ultralytics")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"
