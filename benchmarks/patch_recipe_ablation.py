"""Ablation of the patch recipe: which training change makes the patch strong at every size.

    python benchmarks/patch_recipe_ablation.py [--steps 100] [--detector yolov5n] [--only NAME ...] [--json FILE]

Each row is a short run (``--steps`` Adam steps, batch 8, cosine schedule) of
``examples/train_<detector>.yaml`` with the row's overrides, starting from the old recipe (one
input size, 416 px; the most confident box per image; Penn-Fudan train only) and adding one change
at a time (rows 1-4); rows 5-9 each add one change to row 4. Every patch is then scored under the literature protocol
(:mod:`patchkit.evaluation.protocol`) on Penn-Fudan test with its official labels, flat paste, at
416 and 640 px: detection rate @0.25 and AP50 (lower = stronger patch), and the person boxes per
image that match no label (FP; a patch can trade hidden people for hallucinated ones). Short runs show the
direction of each change, not the final strength (the published patches train 20x longer).
Runs and scores are kept under ``runs/ablation`` (a re-run skips finished rows). Needs ../shared.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from patchkit.config import load_config  # noqa: E402
from patchkit.engine.config import TrainConfig  # noqa: E402
from patchkit.engine.trainer import Trainer  # noqa: E402
from patchkit.evaluation.conditions import load_patch  # noqa: E402
from patchkit.evaluation.protocol import ProtocolCache, file_sha256, score_patches  # noqa: E402
from patchkit.evaluation.runner import load_image_set  # noqa: E402
from patchkit.io import atomic_write_json  # noqa: E402

PF = "scenes/pennfudan.yaml"
OLD = ["detector.imgsz=416", "detector.imgsz_range=[]", "loss.reduction=max", f"scene.path={PF}",
       "scene.split=train", "extra_scenes=[]"]
#: name -> overrides on examples/train_<detector>.yaml (rows 1-4 cumulative, 5-9 one change each on row 4).
VARIANTS: dict[str, list[str]] = {
    "old recipe: 416 px, max box, Penn-Fudan": OLD,
    "+ multi-resolution 320-640": [o for o in OLD if not o.startswith("detector.")],
    "+ per-person loss": [o for o in OLD if not o.startswith(("detector.", "loss."))],
    "+ INRIA train (the final recipe)": [],
    "+ T-SEA cutout (p 0.5, 40 % area)": ["self_ensemble.cutout_p=0.5"],
    "+ T-SEA ShakeDrop (p 0.5, alpha 0.5)": ["self_ensemble.shakedrop_p=0.5"],
    "+ top-10 candidates per person (loss.reduction=per_box_topk)": ["loss.reduction=per_box_topk", "loss.topk=10"],
    "+ IoU-matched candidates per person (loss.match=iou)": ["loss.match=iou", "loss.match_iou=0.5"],
    "+ soft IoU matching, box moves too (loss.match=soft_iou)": ["loss.match=soft_iou", "loss.match_iou=0.5"],
}
SIZES = (416, 640)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--detector", default="yolov5n", choices=("yolov5n", "yolov8n"))
    ap.add_argument("--only", nargs="*", default=None, help="row numbers (1-based) to run")
    ap.add_argument("--out", default=str(REPO / "runs" / "ablation"))
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    config = REPO / "examples" / f"train_{args.detector}.yaml"
    out = Path(args.out) / f"{args.detector}_{args.steps}"
    cache = ProtocolCache(out / "scores.json")
    base = load_config(TrainConfig, str(config), [])
    weights = Path(base.detector.weights)
    if not weights.is_file():
        print(f"{weights}: not found (this benchmark needs ../shared/data)", file=sys.stderr)
        return 2
    from patchkit.detectors import create_detector

    det_sha = file_sha256(weights)
    rows = []
    for i, (name, overrides) in enumerate(VARIANTS.items(), 1):
        if args.only and str(i) not in args.only:
            continue
        run = out / f"row{i}"
        patch_png = run / "patch.png"
        seconds = None
        if not (run / "done").is_file():
            cfg = load_config(TrainConfig, str(config), [*overrides, f"optim.max_steps={args.steps}",
                                                        f"run.out={run}", "run.progress=false",
                                                        "run.snapshot_every=0"])
            t0 = time.perf_counter()
            trainer = Trainer(cfg)
            if (run / "checkpoint.pt").is_file():
                trainer.load_checkpoint(run / "checkpoint.pt")
            trainer.fit()
            seconds = time.perf_counter() - t0
            (run / "done").write_text(f"{seconds:.1f}\n")
        else:
            seconds = float((run / "done").read_text())
        patch, _ = load_patch(patch_png)
        row = {"row": i, "variant": name, "overrides": overrides, "train_seconds": round(seconds, 1)}
        for size in SIZES:
            det = create_detector(str(weights), imgsz=size, letterbox="square")
            images, labels, _ = load_image_set(PF, "test", "official", size, 0)
            s = score_patches(det, det_sha, images, labels, {"patch": patch}, size, cache=cache)["patch"]
            row[str(size)] = s.__dict__
        rows.append(row)
        print(f"row {i} done: {name}", file=sys.stderr, flush=True)

    print(f"\n{args.detector}, {args.steps} steps each; Penn-Fudan test (official labels), flat paste, "
          "patch 0.2 x box diagonal; detection rate @0.25 / AP50 (lower = stronger)\n")
    print("| # | recipe | det. rate 416 | AP50 416 | FP 416 | det. rate 640 | AP50 640 | FP 640 | train s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        a, b = r["416"], r["640"]
        print(f"| {r['row']} | {r['variant']} | {a['detection_rate']:.3f} | {a['ap50']:.3f} | {a['hallucinations']:.2f} | "
              f"{b['detection_rate']:.3f} | {b['ap50']:.3f} | {b['hallucinations']:.2f} | {r['train_seconds']:.0f} |")
    if args.json:
        atomic_write_json(args.json, {"detector": args.detector, "steps": args.steps, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
