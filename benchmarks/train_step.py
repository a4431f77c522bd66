"""Training-step speed vs the bare detector, measured in the same run.

    python benchmarks/train_step.py [--json FILE] [--repeats 5] [--sizes 416 640] [--batch 8]
    python benchmarks/train_step.py --device cuda --models yolov8n.yaml yolo11n.yaml --sizes 640 --batch 32 --amp off bf16

For each model and size: images/s of a full training step (EOT + compositing + detector
forward + backward + Adam) and of the bare detector forward+backward w.r.t. the input on the same
batch, with the same knobs (Conv+BN fused, channels-last), and their ratio (target >= 0.85).
Medians over repeats; the two are interleaved so machine noise hits both alike. Models: the
official yolov5n (from ../shared, skipped when absent) and yolov8n built from its YAML (random
weights: speed does not depend on the weights). 3 boxes per image, patch 300 x 300; the texture
row (``--kinds``) wears a 64 px tile over each person's garment mask (stored with the scene).
A model written ``a.yaml+b.yaml`` is an ensemble: one step attacks both, and the bare baseline
is both detectors' forward+backward on the same batch. ``--amp`` gives one row per autocast mode
(the bare baseline runs under the same autocast); on CUDA each timing ends with a synchronize.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from patchkit.config import from_dict  # noqa: E402
from patchkit.detectors import create_detector  # noqa: E402
from patchkit.engine.config import TrainConfig  # noqa: E402
from patchkit.engine.trainer import Trainer  # noqa: E402
from patchkit.scenes.masks import garment_region  # noqa: E402
from patchkit.scenes.scene import Scene  # noqa: E402

YOLOV5N = REPO.parent / "shared" / "data" / "weights" / "yolov5n-v7.0.pt"
# the published textures' tile (examples/train_texture_yolov8n.yaml), TPS and photometric EOT on
TEXTURE = {"kind": "texture", "size": 64, "parameterization": "lowres", "lowres_factor": 2}


def synthetic_scene(n: int, imgsz: int, boxes_per_image: int = 3, seed: int = 0) -> Scene:
    """Random canvases with ``boxes_per_image`` person-sized boxes each."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, imgsz, imgsz), generator=g, dtype=torch.uint8)
    boxes = []
    for _ in range(n):
        w = torch.empty(boxes_per_image).uniform_(0.12, 0.25, generator=g) * imgsz
        h = w * 2.4
        x1 = torch.rand(boxes_per_image, generator=g) * (imgsz - w)
        y1 = torch.rand(boxes_per_image, generator=g) * (imgsz - h)
        boxes.append(torch.stack([x1, y1, x1 + w, y1 + h], dim=1))
    return Scene.from_canvases(images, boxes)


def bench(weights: str, imgsz: int, batch: int, repeats: int, threads: int, device: str = "cpu",
          amp: str = "off", kind: str = "patch") -> dict:
    torch.set_num_threads(threads)
    members = weights.split("+")
    patch = {"size": 300} if kind == "patch" else TEXTURE
    cfg = from_dict(
        TrainConfig,
        {
            "detector": {"weights": members[0], "imgsz": imgsz},
            "ensemble": [{"weights": w, "imgsz": imgsz} for w in members[1:]],
            "optim": {"batch_size": batch, "epochs": 1},
            "run": {"progress": False, "out": "/tmp/patchkit_bench", "device": device, "amp": amp},
            "patch": patch,
        },
    )
    detector = create_detector(members[0], imgsz=imgsz, letterbox="square", device=device)
    torch.set_num_threads(threads)  # ultralytics may have changed it
    scene = synthetic_scene(batch, imgsz)
    if kind == "texture":  # garment masks stored with the scene, as Penn-Fudan's are
        scene.masks = [(garment_region(b, (imgsz, imgsz)) * 255).round().to(torch.uint8) for b in scene.boxes]
    trainer = Trainer(cfg, detector=detector, scene=scene)
    torch.set_num_threads(threads)
    indices = torch.arange(batch)
    dev = trainer.device
    images, boxes, batch_idx = (t.to(dev) for t in scene.batch(indices, trainer.batch_layout))
    gen = torch.Generator(device=dev).manual_seed(0)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def step():  # the loop's whole step: uint8 batch -> float, EOT, paste (or cloth), detector, loss, Adam
        masks = scene.batch_masks(indices)
        trainer.train_step(*(t.to(dev) for t in scene.batch(indices, trainer.batch_layout)), gen,
                           masks=masks.to(dev) if masks is not None else None)
        sync()

    def bare():  # the detector alone, under the same autocast as the step
        x = images.contiguous(memory_format=torch.channels_last).requires_grad_(True)
        loss = sum(trainer.objective.detection(trainer._raw(k, x)).mean() for k in range(len(trainer.detectors)))
        loss.backward()
        sync()

    for fn in (step, bare, step, bare):  # warm-up (allocator, caches)
        fn()
    t_step, t_bare = [], []
    for _ in range(repeats):
        for fn, acc in ((step, t_step), (bare, t_bare)):
            t0 = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t0)
    step_ips = batch / statistics.median(t_step)
    bare_ips = batch / statistics.median(t_bare)
    return {
        "model": "+".join(Path(w).name for w in members),
        "kind": kind,
        "imgsz": imgsz,
        "batch": batch,
        "device": str(dev),
        "amp": amp,
        "step_img_s": round(step_ips, 2),
        "bare_img_s": round(bare_ips, 2),
        "ratio": round(step_ips / bare_ips, 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="also write the numbers to this JSON file")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--sizes", type=int, nargs="+", default=[416, 640])
    ap.add_argument("--models", nargs="+", default=None, help="weights/YAMLs (default: yolov5n, yolov8n.yaml)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
    ap.add_argument("--amp", nargs="+", default=["off"], help="off | bf16 | fp16 (CUDA), one row each, e.g. --amp off bf16")
    ap.add_argument("--kinds", nargs="+", default=["patch", "texture"], choices=["patch", "texture"],
                    help="patch (300 px, EOT paste) and/or texture (64 px tile worn over garment masks)")
    args = ap.parse_args(argv)
    models = args.models or ([str(YOLOV5N)] if YOLOV5N.is_file() else []) + ["yolov8n.yaml"]
    rows = []
    print("| model | kind | imgsz | batch | device | amp | step img/s | bare fwd+bwd img/s | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for weights in models:
        for imgsz in args.sizes:
            for amp in args.amp:
                for kind in args.kinds:
                    r = bench(weights, imgsz, args.batch, args.repeats, args.threads, args.device, amp, kind)
                    rows.append(r)
                    print(f"| {r['model']} | {kind} | {r['imgsz']} | {r['batch']} | {r['device']} | {r['amp']} | "
                          f"{r['step_img_s']} | {r['bare_img_s']} | {r['ratio']} |", flush=True)
    if args.json:
        from patchkit.io import atomic_write_json

        atomic_write_json(args.json, {"rows": rows, "threads": args.threads, "torch": torch.__version__})
    return 0


if __name__ == "__main__":
    sys.exit(main())
