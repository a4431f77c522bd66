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
    from patchkit.toyworld.config import ToyWorldConfig

    return ToyWorldConfig.load(args.config) if args.config else ToyWorldConfig()


def _check_counts(args: argparse.Namespace) -> None:
    for key in ("n_train", "n_val", "n_test"):
        if getattr(args, key) < 0:
            raise PatchkitError(f"--{key.replace('_', '-')} must be >= 0")


def run_generate(args: argparse.Namespace) -> int:
    from patchkit.toyworld.dataset import generate_dataset

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
    from patchkit.toyworld.build_detector import ToyDetectorJob, build_toy_detector
    from patchkit.toyworld.detector_training import TrainSettings

    _check_counts(args)
    job = ToyDetectorJob(
        out=args.out, data=args.data, n_train=args.n_train, n_val=args.n_val, n_test=args.n_test, seed=args.seed,
        world=None if args.data else _config(args), model_yaml=args.model, device=resolve_device(args.device),
        settings=TrainSettings(epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, seed=args.seed),
        command=_command(args), export=args.export,
    )
    sidecar = build_toy_detector(job)
    write_json_option(args, sidecar)
    metrics, seconds = sidecar["metrics"]["test"], sidecar["seconds"]
    print(f"toy detector: person AP50 {metrics['ap50']:.3f} (AP50-95 {metrics['ap50_95']:.3f}) on {metrics['n_images']} test "
          f"images at imgsz {args.imgsz}; trained in {seconds['train']:.0f} s; weights {args.out / 'toy_detector.pt'}"
          + (f" (copied to {args.export})" if args.export else ""))
    return 0


def run_video(args: argparse.Namespace) -> int:
    import numpy as np

    from patchkit.io import atomic_write_json, read_image, write_video
    from patchkit.toyworld.video import render_walk

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
