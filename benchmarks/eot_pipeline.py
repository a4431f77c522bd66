"""EOT pipeline forward+backward time (sampling, all ops, warp, compositing), per image size.

    python benchmarks/eot_pipeline.py [--json FILE] [--sizes 416 640] [--batch 8] [--repeats 30]
                                      [--ablation] [--detector yolov8n.yaml]

Scene: ``--batch`` random images, 3 person-sized boxes each (width 0.12-0.25 of the image,
height 2.4 x width, as ``benchmarks/train_step.py``), patch 300 x 300, default ``EOTConfig``,
placement 0.2 x box diagonal; a fresh draw every repetition (as in training) and a random upstream
gradient for the backward. Reports the median and the 25-75 % range in ms. On a machine shared
with other jobs, ``--threads 1 --clock cpu`` (process CPU time) gives stable numbers.

Rows: ``default`` returns a new tensor (one full-size copy of the batch); ``default, inplace``
pastes into the caller's batch (``inplace=True``, what a trainer that loads a fresh batch per step
should use). ``--ablation`` adds one row per op with that op switched off (inplace): ``saved`` =
its marginal cost.
``--detector W`` also times the bare detector forward+backward w.r.t. its input on the same batch
(interleaved with the pipeline, so machine noise hits both alike) and reports the pipeline's cost
as a fraction of it; building the detector may import ultralytics.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from patchkit.eot import EOTConfig, EOTPipeline  # noqa: E402
from patchkit.eot.pipeline import OP_ORDER  # noqa: E402
from patchkit.scenes.placement import PlacementConfig, place_patches  # noqa: E402


def make_scene(batch: int, imgsz: int, boxes_per_image: int = 3, patch_size: int = 300, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 3, imgsz, imgsz, generator=g)
    w = torch.empty(batch * boxes_per_image).uniform_(0.12, 0.25, generator=g) * imgsz
    h = 2.4 * w
    x1 = torch.rand(w.shape, generator=g) * (imgsz - w)
    y1 = torch.rand(w.shape, generator=g) * (imgsz - h)
    boxes = torch.stack((x1, y1, x1 + w, y1 + h), dim=1)
    batch_idx = torch.arange(batch).repeat_interleave(boxes_per_image)
    centers, sizes = place_patches(boxes, PlacementConfig())
    patch = torch.rand(3, patch_size, patch_size, generator=g, requires_grad=True)
    grad = torch.rand(images.shape, generator=g)
    return patch, images, centers, sizes, batch_idx, grad


def _quantiles(ts: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(ts, n=4) if len(ts) > 1 else [ts[0]] * 3
    return 1000 * statistics.median(ts), 1000 * q[0], 1000 * q[2]


def time_pipeline(cfg: EOTConfig, scene, repeats: int, other=None, clock=time.perf_counter,
                  inplace: bool = False) -> tuple[list[float], list[float]]:
    """Per-repetition seconds of the pipeline (and of ``other()``, interleaved, when given).
    With ``inplace`` the pipeline pastes into a fresh copy of the images made outside the timing
    (as a trainer does with the batch it just loaded)."""
    patch, images, centers, sizes, batch_idx, grad = scene
    eot = EOTPipeline(cfg)
    gen = torch.Generator().manual_seed(0)
    fresh = [images]

    def step():
        target = fresh[0] if inplace else images
        fresh[0] = images
        out, _ = eot(patch, target, centers, sizes, batch_idx, generator=gen, inplace=inplace)
        out.backward(grad)
        patch.grad = None

    for _ in range(3):
        fresh[0] = images.clone()
        step()
        if other is not None:
            other()
    t_eot, t_other = [], []
    for _ in range(repeats):
        if inplace:
            fresh[0] = images.clone()
        t0 = clock()
        step()
        t_eot.append(clock() - t0)
        if other is not None:
            t0 = clock()
            other()
            t_other.append(clock() - t0)
    return t_eot, t_other


def detector_step(weights: str, images: torch.Tensor):
    from patchkit.detectors import create_detector

    n = torch.get_num_threads()
    det = create_detector(weights, imgsz=images.shape[-1], letterbox="square")
    det.optimize_for_attack()
    torch.set_num_threads(n)

    def bare():
        x = images.contiguous(memory_format=torch.channels_last).requires_grad_(True)
        raw = det.forward_letterboxed(x)
        raw.confidence()[..., 0].amax(dim=1).mean().backward()

    return bare


def without(cfg: EOTConfig, name: str) -> EOTConfig:
    cfg = dataclasses.replace(cfg, **{name: dataclasses.replace(getattr(cfg, name), enabled=False)})
    return cfg


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="also write the numbers to this JSON file")
    ap.add_argument("--sizes", type=int, nargs="+", default=[416, 640])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--boxes", type=int, default=3, help="boxes per image")
    ap.add_argument("--patch", type=int, default=300, help="patch side in pixels")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall: elapsed time; cpu: process CPU time, robust on a machine shared with other jobs "
                         "(use with --threads 1)")
    ap.add_argument("--ablation", action="store_true", help="time the pipeline without each op")
    ap.add_argument("--detector", help="also time this detector's bare forward+backward (weights or YAML)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    rows = []
    print("| imgsz | batch | instances | config | EOT fwd+bwd ms (median) | 25-75 % | min | saved vs inplace (median) "
          "| detector fwd+bwd ms | EOT / detector |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for imgsz in args.sizes:
        scene = make_scene(args.batch, imgsz, args.boxes, args.patch)
        n = scene[2].shape[0]
        base = EOTConfig()
        configs = [("default", base, False), ("default, inplace", base, True)]
        if args.ablation:
            configs += [(f"no {name}", without(base, name), True)
                        for name in OP_ORDER if getattr(base, name).enabled]
            configs.append(("all ops off", EOTConfig.all_disabled(), True))
        default_ms = det_ms = None
        for label, cfg, inplace in configs:
            other = detector_step(args.detector, scene[1]) if (args.detector and label == "default") else None
            clock = time.perf_counter if args.clock == "wall" else time.process_time
            t_eot, t_det = time_pipeline(cfg, scene, args.repeats, other, clock, inplace)
            med, q1, q3 = _quantiles(t_eot)
            row = {"imgsz": imgsz, "batch": args.batch, "instances": n, "config": label,
                   "eot_ms": round(med, 2), "eot_q25_ms": round(q1, 2), "eot_q75_ms": round(q3, 2),
                   "eot_min_ms": round(1000 * min(t_eot), 2)}
            if label == "default, inplace":
                default_ms = med
            elif default_ms is not None:
                row["saved_ms"] = round(default_ms - med, 2)
            if t_det:
                det_ms = 1000 * statistics.median(t_det)
                row["detector_ms"] = round(det_ms, 1)
            if det_ms and label.startswith("default"):
                row["eot_over_detector"] = round(med / det_ms, 4)
            rows.append(row)
            print(f"| {imgsz} | {args.batch} | {n} | {label} | {row['eot_ms']} "
                  f"| {row['eot_q25_ms']}-{row['eot_q75_ms']} "
                  f"| {row['eot_min_ms']} "
                  f"| {row.get('saved_ms', '')} | {row.get('detector_ms', '')} | {row.get('eot_over_detector', '')} |",
                  flush=True)
    if args.json:
        from patchkit.io import atomic_write_json

        atomic_write_json(args.json, {"rows": rows, "threads": args.threads, "clock": args.clock,
                                      "torch": torch.__version__})
    return 0


if __name__ == "__main__":
    sys.exit(main())
