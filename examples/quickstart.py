"""Offline quickstart: train a patch end to end on a synthetic scene, with no files from outside.

    python examples/quickstart.py [--out runs/quickstart] [--steps 30]

The detector is yolov8n built from its ultralytics YAML (random weights: this shows the
mechanics, not a real attack; see the README for the real-weights path). It prints the target
score before and after training on EOT draws the training never saw.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from patchkit.config import from_dict  # noqa: E402
from patchkit.detectors import create_detector  # noqa: E402
from patchkit.engine.config import TrainConfig  # noqa: E402
from patchkit.engine.trainer import Trainer  # noqa: E402
from patchkit.scenes.placement import place_patches  # noqa: E402
from patchkit.scenes.scene import Scene  # noqa: E402


def synthetic_scene(n: int = 8, imgsz: int = 256) -> Scene:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(60, 200, (n, 3, imgsz, imgsz), generator=g, dtype=torch.uint8)
    boxes = [torch.tensor([[40.0, 30.0, 120.0, 230.0], [140.0, 50.0, 210.0, 220.0]]) for _ in range(n)]
    return Scene.from_canvases(images, boxes, name="synthetic")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/quickstart")
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    cfg = from_dict(
        TrainConfig,
        {
            "detector": {"weights": "yolov8n.yaml", "imgsz": 256},
            "patch": {"size": 64, "init": "gray"},
            "loss": {"tv_weight": 0.5},
            "optim": {"epochs": 1000, "max_steps": args.steps, "batch_size": 4, "lr": 0.05},
            "run": {"out": args.out, "log_every": 5, "checkpoint_every": 10},
        },
    )
    torch.manual_seed(0)
    detector = create_detector("yolov8n.yaml", imgsz=256, letterbox="square")
    scene = synthetic_scene()
    trainer = Trainer(cfg, detector=detector, scene=scene)

    def held_out(patch: torch.Tensor) -> float:
        images, boxes, idx = scene.batch(torch.arange(len(scene)))
        centers, sizes = place_patches(boxes, cfg.placement)
        with torch.no_grad():
            adv, _ = trainer.eot(patch, images, centers, sizes, idx, generator=torch.Generator().manual_seed(99))
            return trainer.objective.detection(trainer.detector.forward_letterboxed(adv)).mean().item()

    before = held_out(trainer.current_patch())
    after = held_out(trainer.fit())
    print(f"max person score on unseen EOT draws: gray patch {before:.3f} -> trained patch {after:.3f}")
    print(f"run folder: {trainer.run_dir} (patch.png, checkpoint.pt, log.jsonl, config.yaml)")
    return 0 if after < before else 1


if __name__ == "__main__":
    sys.exit(main())
