"""``patchkit toyworld``: the procedural toy world and the detector patchkit trains on it.

- ``patchkit toyworld generate --out DIR [--n-train N --n-val N --n-test N --seed S --config YAML]``
  writes a YOLO-format dataset (``DIR/data.yaml`` for ultralytics, ``DIR/scene.yaml`` for patchkit).
- ``patchkit toyworld train-detector --out DIR [...]`` generates a dataset (unless ``--data`` names
  one), trains the toy detector with ultralytics from ``scenes/toyworld/toy_detector.yaml``
  (random init, offline), exports ``DIR/toy_detector.pt`` (+ ``.json`` sidecar with the seed,
  command, timings and the measured person AP50 on the test split) and, with ``--export PATH``,
  copies both there (``--export patchkit/data/toy_detector.pt`` refreshes the shipped detector).
- ``patchkit toyworld video --out DIR [--patch PNG] [--width W --aspect A]`` renders a
  walking-figure sequence wearing the patch, a chest print or (``--aspect`` > 1) an apron (MP4 +
  per-frame boxes and patch corners as JSON).
"""

from __future__ import annotations

import argparse
import platform
import shutil
from pathlib import Path

from patchkit.cli.common import add_device_option, add_json_option, add_quiet_option, resolve_device, write_json_option
from patchkit.errors import PatchkitError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "toyworld",
        help="generate the toy world, train the toy detector, render walking videos",
        description="The procedural toy world (seeded, offline) and the detector patchkit trains on it.",
    )
    sub = p.add_subparsers(dest="toyworld_command", metavar="ACTION")
    sub.required = True

    g = sub.add_parser("generate", help="write a YOLO-format toy-world dataset")
    _dataset_options(g, n_train=1000, n_val=100, n_test=200)
    g.add_argument("-o", "--out", required=True, type=Path, help="output folder")
    add_json_option(g, "the dataset summary")
    add_quiet_option(g)
    g.set_defaults(func=run_generate)

    t = sub.add_parser("train-detector", help="train the toy detector on a generated toy world")
    t.add_argument("-o", "--out", required=True, type=Path, help="work folder (dataset, ultralytics run, weights)")
    t.add_argument("--data", type=Path, help="an existing toy-world dataset folder (default: generate OUT/data)")
    _dataset_options(t, n_train=1000, n_val=32, n_test=300)
    t.add_argument("--model", type=Path, help="model YAML (default scenes/toyworld/toy_detector.yaml)")
    t.add_argument("--epochs", type=int, default=60, help="training epochs (default 60, as the shipped detector)")
    t.add_argument("--imgsz", type=int, default=320, help="training image size in pixels (default 320)")
    t.add_argument("--batch", type=int, default=16, help="images per training batch (default 16)")
    t.add_argument("--export", type=Path, help="also copy the weights (and .json) here, e.g. patchkit/data/toy_detector.pt")
    add_json_option(t, "the detector's test metrics")
    add_quiet_option(t)
    add_device_option(t)
    t.set_defaults(func=run_train)

    v = sub.add_parser("video", help="render a walking figure wearing a patch")
    v.add_argument("-o", "--out", required=True, type=Path, help="output folder (walk.mp4, walk.json)")
    v.add_argument("--patch", type=Path, help="patch image (default: a random-noise patch)")
    v.add_argument("--frames", type=int, default=48, help="frames to render (default 48)")
    v.add_argument("--seed", type=int, default=0, help="seed of the walk and the default noise patch (default 0)")
    v.add_argument("--width", type=float, default=0.85,
                   help="printed width as a fraction of the walker's shoulder width (default 0.85)")
    v.add_argument("--aspect", type=float, default=1.0,
                   help="printed height / width: 1 a square chest print, above 1 an apron from the collar "
                        "(the demo's is --width 1.8 --aspect 2.2)")
    add_json_option(v, "the frames' boxes and patch corners (as OUT/walk.json)")
    add_quiet_option(v)
    v.set_defaults(func=run_video)


def _dataset_options(p: argparse.ArgumentParser, n_train: int, n_val: int, n_test: int) -> None:
    p.add_argument("--n-train", type=int, default=n_train, help=f"training images (default {n_train})")
    p.add_argument("--n-val", type=int, default=n_val, help=f"validation images (default {n_val})")
    p.add_argument("--n-test", type=int, default=n_test, help=f"test images (default {n_test})")
    p.add_argument("--seed", type=int, default=0, help="seed: the same seed gives the same bytes (default 0)")
    p.add_argument("--config", type=Path, help="generator YAML (default: built-in, as scenes/toyworld/default.yaml)")


def _config(args: argparse.Namespace):
    from patchkit.scenes.toyworld.config import ToyWorldConfig

    return ToyWorldConfig.load(args.config) if args.config else ToyWorldConfig()


def _check_counts(args: argparse.Namespace) -> None:
    for key in ("n_train", "n_val", "n_test"):
        if getattr(args, key) < 0:
            raise PatchkitError(f"--{key.replace('_', '-')} must be >= 0")


def run_generate(args: argparse.Namespace) -> int:
    from patchkit.scenes.toyworld.dataset import generate_dataset

    _check_counts(args)
    info = generate_dataset(args.out, args.n_train, args.n_val, args.n_test, args.seed, _config(args),
                            progress=not args.quiet)
    write_json_option(args, {"out": str(args.out), "images": info.images, "boxes": info.boxes,
                             "data_yaml": str(info.data_yaml), "scene_yaml": str(info.scene_yaml)})
    print(f"wrote {sum(info.images.values())} images ({', '.join(f'{k} {v}' for k, v in info.images.items())}), "
          f"{sum(info.boxes.values())} boxes; ultralytics: {info.data_yaml}; patchkit scene: {info.scene_yaml}")
    return 0


def _command(args: argparse.Namespace) -> str:
    parts = ["patchkit toyworld train-detector", f"--out {args.out}"]
    if args.data:
        parts.append(f"--data {args.data}")
    else:
        parts += [f"--n-train {args.n_train}", f"--n-val {args.n_val}", f"--n-test {args.n_test}"]
        if args.config:
            parts.append(f"--config {args.config}")
    parts += [f"--seed {args.seed}", f"--epochs {args.epochs}", f"--imgsz {args.imgsz}", f"--batch {args.batch}"]
    if args.model:
        parts.append(f"--model {args.model}")
    if args.export:
        parts.append(f"--export {args.export}")
    return " ".join(parts)


def run_train(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np
    import torch

    from patchkit.config import to_dict
    import json

    from patchkit.io import atomic_write_json
    from patchkit.scenes.toyworld.dataset import generate_dataset, same_dataset
    from patchkit.scenes.toyworld.detector_training import (
        REPO_MODEL_YAML, Stopwatch, TrainSettings, evaluate_detector, export_toy_weights, finished_training,
        load_split, model_yaml_text, train_detector, training_seconds,
    )

    _check_counts(args)
    device = resolve_device(args.device)
    model_yaml = args.model or REPO_MODEL_YAML
    text = model_yaml_text(model_yaml) if Path(model_yaml).is_file() else None
    if text is None:
        raise PatchkitError("model YAML not found (give --model)", model_yaml)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    if args.data:
        data_root = args.data
        if not (data_root / "data.yaml").is_file():
            raise PatchkitError("no data.yaml: not a toy-world dataset (patchkit toyworld generate)", data_root)
    else:
        data_root = out / "data"
        cfg = _config(args)
        if same_dataset(data_root, args.n_train, args.n_val, args.n_test, args.seed, cfg):
            # deterministic: an identical earlier generation is reused
            seconds["generate_reused"] = True
        else:
            clock = Stopwatch()
            generate_dataset(data_root, args.n_train, args.n_val, args.n_test, args.seed, cfg, progress=True)
            seconds["generate"] = round(clock(), 1)
    info_file = data_root / "toyworld.json"
    dataset = json.loads(info_file.read_text(encoding="utf-8")) if info_file.is_file() else None
    if seconds.get("generate_reused") and dataset is not None:
        seconds["generate"] = dataset.get("seconds")
    if dataset is not None:  # lets tests check that the generator still reproduces this data
        from patchkit.scenes.toyworld.config import ToyWorldConfig
        from patchkit.scenes.toyworld.dataset import fingerprint

        from patchkit.config import from_dict

        cfg = from_dict(ToyWorldConfig, dataset.get("generator", {}), source=str(info_file))
        dataset["fingerprint"] = {"split": "train", "n": 4, "sha256": fingerprint("train", 4, dataset["seed"], cfg)}
    settings = TrainSettings(epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, seed=args.seed)
    last = finished_training(out / "run", settings, data_root / "data.yaml")
    if last is None:
        clock = Stopwatch()
        last = train_detector(data_root / "data.yaml", model_yaml, out / "run", settings, device=str(device))
        seconds["train_wall"] = round(clock(), 1)
    seconds["train"] = training_seconds(out / "run")  # ultralytics' own measure, over all epochs

    weights = out / "toy_detector.pt"
    meta = {"seed": args.seed, "command": _command(args), "train": to_dict(settings)}
    export_toy_weights(last, model_yaml, weights, imgsz=args.imgsz, meta=meta)
    from patchkit.detectors import create_detector

    clock = Stopwatch()
    det = create_detector(str(weights), imgsz=args.imgsz, device=device)
    images, boxes = load_split(data_root, "test")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny network: one thread is as fast and immune to oversubscribed cores
    try:
        metrics = evaluate_detector(det, images, boxes)
    finally:
        torch.set_num_threads(threads)
    seconds["evaluate"] = round(clock(), 1)
    n_params = sum(p.numel() for p in det.parameters())
    sidecar = {
        "name": "toy",
        "file": weights.name,
        "sha256": det.info.sha256,
        "size_bytes": weights.stat().st_size,
        "architecture": f"YOLOv8-style, {n_params} parameters, 1 class (person), from {Path(model_yaml).name}",
        "model_yaml": text,
        "seed": args.seed,
        "command": _command(args),
        "train": to_dict(settings) | {"ultralytics_train_kwargs": settings.train_kwargs()},
        "dataset": dataset,
        "metrics": {"test": metrics | {"imgsz": args.imgsz, "conf": 0.001, "nms_iou": 0.6,
                                        "ap": "person AP50, VOC all-point (patchkit.metrics.average_precision)"}},
        "seconds": seconds,
        "machine": {"device": str(device), "train_threads": _ultralytics_threads(), "cpu": platform.processor() or platform.machine(),
                    "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                    "opencv": cv2.__version__, "ultralytics": _ultralytics_version()},
    }
    atomic_write_json(weights.with_suffix(".json"), sidecar)
    write_json_option(args, sidecar)
    if args.export:
        args.export.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(weights, args.export)
        shutil.copyfile(weights.with_suffix(".json"), args.export.with_suffix(".json"))
    print(f"toy detector: person AP50 {metrics['ap50']:.3f} (AP50-95 {metrics['ap50_95']:.3f}) on {metrics['n_images']} test "
          f"images at imgsz {args.imgsz}; trained in {seconds['train']:.0f} s; weights {weights}"
          + (f" (copied to {args.export})" if args.export else ""))
    return 0


def _ultralytics_threads() -> int:
    """The torch threads ultralytics' trainer uses on CPU (its ``NUM_THREADS``)."""
    from patchkit.scenes.toyworld.offline import offline_ultralytics

    with offline_ultralytics():
        from ultralytics.utils import NUM_THREADS

    return int(NUM_THREADS)


def _ultralytics_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ultralytics")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


def run_video(args: argparse.Namespace) -> int:
    import numpy as np

    from patchkit.io import atomic_write_json, read_image
    from patchkit.scenes.toyworld.video import render_walk
    from patchkit.video.synthetic import write_video

    if args.frames < 2:
        raise PatchkitError("--frames must be >= 2")
    for name in ("width", "aspect"):
        if not getattr(args, name) > 0:
            raise PatchkitError(f"--{name} must be > 0, got {getattr(args, name)}")
    patch = read_image(args.patch) if args.patch else np.random.default_rng(args.seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    seq = render_walk(patch, seed=args.seed, n_frames=args.frames, patch_size=args.width, patch_aspect=args.aspect)
    args.out.mkdir(parents=True, exist_ok=True)
    write_video(args.out / "walk.mp4", seq.frames, fps=seq.fps)
    atomic_write_json(args.out / "walk.json", seq.to_json())
    write_json_option(args, seq.to_json())
    print(f"wrote {len(seq.frames)} frames to {args.out / 'walk.mp4'} and boxes/patch corners to {args.out / 'walk.json'}")
    return 0
