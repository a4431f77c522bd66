"""Offline quickstart: a real attack end to end, with nothing from outside.

    python examples/quickstart.py [--out runs/quickstart] [--epochs 8]

1. renders a small toy-world dataset (procedural street scenes with pedestrians),
2. trains a patch against patchkit's own toy detector (shipped in the package),
3. evaluates it on unseen toy images against a random-noise patch of the same size and
   prints the person detection rates (conf 0.25) and AP50 (conf 0.01).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from patchkit.config import from_dict  # noqa: E402
from patchkit.detectors import create_detector  # noqa: E402
from patchkit.engine.config import TrainConfig  # noqa: E402
from patchkit.engine.trainer import Trainer  # noqa: E402
from patchkit.evaluation.conditions import Condition  # noqa: E402
from patchkit.evaluation.digital import EvalOptions  # noqa: E402
from patchkit.evaluation.runner import load_image_set, run_evaluation  # noqa: E402
from patchkit.scenes.toyworld import generate_dataset  # noqa: E402

IMGSZ = 320


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/quickstart")
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--n-train", type=int, default=32)
    ap.add_argument("--n-test", type=int, default=48)
    args = ap.parse_args()
    t0 = time.perf_counter()
    out = Path(args.out)
    generate_dataset(out / "toyworld", n_train=args.n_train, n_val=0, n_test=args.n_test, seed=0)
    scene = str(out / "toyworld" / "scene.yaml")
    cfg = from_dict(
        TrainConfig,
        {
            "detector": {"weights": "toy", "imgsz": IMGSZ},
            "scene": {"path": scene, "split": "train", "labels": "official", "min_size": 16},
            "placement": {"scale": 0.35, "offset_y": -0.1},
            "patch": {"size": 128, "init": "gray"},
            "optim": {"epochs": args.epochs, "batch_size": 8, "lr": 0.08},
            "run": {"out": str(out / "run"), "log_every": 5},
        },
    )
    patch = Trainer(cfg).fit()

    detector = create_detector("toy", imgsz=IMGSZ, letterbox="square")
    images, labels, _ = load_image_set(scene, "test", "official", IMGSZ, 0)
    conditions = [
        Condition("clean"),
        Condition("random", torch.rand(patch.shape, generator=torch.Generator().manual_seed(0))),
        Condition("patch", patch),
    ]
    opts = EvalOptions(placement=cfg.placement, thresholds=(0.25,))
    result = run_evaluation([("toy", detector)], images, labels, conditions, opts, references=("self",), plots=False)
    rows = {r["condition"]: r for r in result["results"]}
    print("\n| condition | person detection rate @0.25 | AP50 |")
    print("|---|---|---|")
    for name in ("clean", "random", "patch"):
        print(f"| {name} | {rows[name]['detection_rate']['0.25']:.3f} | {rows[name]['ap50']:.3f} |")
    print(f"\nrun folder: {cfg.run.out} (patch.png, checkpoint.pt, log.jsonl, config.yaml); "
          f"{time.perf_counter() - t0:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
