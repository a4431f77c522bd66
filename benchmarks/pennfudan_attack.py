"""Train a person-hiding patch against the official yolov5n on Penn-Fudan train; score it on test.

    python benchmarks/pennfudan_attack.py [--config examples/train_pennfudan.yaml] [key=value ...]
                                          [--json FILE] [--publish]

Reports, on Penn-Fudan test (56 photos), AP50 (conf 0.01, all-point VOC, IoU 0.5, the literature's
protocol) and the person detection rate at conf 0.25 for the clean images, a random-noise patch,
a gray patch and the trained patch (same size and placement), against two references: the
detector's own clean detections (``self``, clean AP = 1 by construction) and the yolov5n
self-label files shipped with the data (``labels``; made at 640 px). ``--publish`` writes the
patch to ``examples/patches/yolov5n_pennfudan.png`` with its JSON sidecar. Needs ../shared/data.
Target: trained-patch AP50 <= 0.30 while the random patch stays >= 0.80.
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from patchkit.config import load_config, to_dict  # noqa: E402
from patchkit.engine.config import TrainConfig  # noqa: E402
from patchkit.engine.trainer import Trainer  # noqa: E402
from patchkit.evaluation.conditions import Condition  # noqa: E402
from patchkit.evaluation.digital import EvalOptions  # noqa: E402
from patchkit.evaluation.runner import load_image_set, run_evaluation  # noqa: E402
from patchkit.io import atomic_write_json, save_image  # noqa: E402

CONDITIONS = ("clean", "random", "gray", "patch")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("overrides", nargs="*", help="training config overrides, e.g. optim.epochs=5")
    ap.add_argument("--config", default=str(REPO / "examples" / "train_pennfudan.yaml"))
    ap.add_argument("--json", help="write the metrics here")
    ap.add_argument("--publish", action="store_true", help="write examples/patches/yolov5n_pennfudan.{png,json}")
    args = ap.parse_args(argv)
    command = "python benchmarks/pennfudan_attack.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))

    cfg = load_config(TrainConfig, args.config, args.overrides)
    weights = Path(cfg.detector.weights)
    if not weights.is_file():
        print(f"{weights}: not found (this benchmark needs ../shared/data)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    trainer = Trainer(cfg)
    patch = trainer.fit()
    train_seconds = time.perf_counter() - t0

    # Evaluate a fresh, unfused copy: the scores are those of the detector as released.
    from patchkit.detectors import create_detector

    detector = create_detector(str(weights), imgsz=cfg.detector.imgsz, letterbox="square")
    images, label_boxes, _ = load_image_set(cfg.scene.path, "test", "yolov5n", cfg.detector.imgsz, cfg.loss.class_id)
    g = torch.Generator().manual_seed(cfg.run.seed)
    conditions = [
        Condition("clean"),
        Condition("random", torch.rand(patch.shape, generator=g)),
        Condition("gray", torch.full_like(patch, 0.5)),
        Condition("patch", patch),
    ]
    opts = EvalOptions(placement=cfg.placement, score_conf=0.01, thresholds=(0.1, 0.25, 0.5))
    result = run_evaluation([("yolov5n", detector)], images, label_boxes, conditions, opts, plots=False)
    rows = {(r["reference"], r["condition"]): r for r in result["results"]}

    print(f"\nPenn-Fudan test, yolov5n, imgsz {cfg.detector.imgsz}, patch {cfg.placement.scale} x box diagonal, "
          f"{cfg.optim.epochs} epochs ({train_seconds / 60:.1f} min training)\n")
    print("| reference | metric | " + " | ".join(CONDITIONS) + " |")
    print("|---|---|" + "---|" * len(CONDITIONS))
    metrics: dict = {}
    for ref in ("self", "labels"):
        ap50 = [rows[(ref, c)]["ap50"] for c in CONDITIONS]
        rate = [rows[(ref, c)]["detection_rate"]["0.25"] for c in CONDITIONS]
        print(f"| {ref} | AP50 | " + " | ".join(f"{v:.3f}" for v in ap50) + " |")
        print(f"| {ref} | det. rate @0.25 | " + " | ".join(f"{v:.3f}" for v in rate) + " |")
        metrics[ref] = {c: {"ap50": a, "detection_rate_0.25": r} for c, a, r in zip(CONDITIONS, ap50, rate)}
    verdict = metrics["labels"]["patch"]["ap50"] <= 0.30 and metrics["labels"]["random"]["ap50"] >= 0.80
    print("\nreferences: self = the detector's own clean detections at this imgsz (conf 0.4); labels = the "
          "yolov5n self-label files of ../shared (640 px, conf 0.4)")
    print(f"target (yolov5n self-label files): patch AP50 <= 0.30 and random >= 0.80: {'met' if verdict else 'NOT met'}")

    out = {"metrics": metrics, "train_seconds": round(train_seconds, 1), "command": command,
           "imgsz": cfg.detector.imgsz, "epochs": cfg.optim.epochs}
    if args.json:
        atomic_write_json(args.json, out)
    if args.publish:
        dest = REPO / "examples" / "patches" / "yolov5n_pennfudan.png"
        save_image(dest, patch)
        sidecar = {
            "detector": {"file": weights.name, "sha256": hashlib.sha256(weights.read_bytes()).hexdigest()},
            "scene": {"path": cfg.scene.path, "split": cfg.scene.split, "labels": cfg.scene.labels},
            "placement": to_dict(cfg.placement),
            "config": to_dict(cfg),
            "metrics": out,
        }
        atomic_write_json(dest.with_suffix(".json"), sidecar)
        print(f"published {dest} (+ .json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
