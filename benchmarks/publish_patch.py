"""Publish a trained patch as ``examples/patches/NAME.png`` with its sidecar ``NAME.json``.

    python benchmarks/publish_patch.py RUN_DIR --name yolov8n [--machine "2-core AMD EPYC CPU, 1 thread"]

The sidecar (docs: interfaces.md, "Shipped patches") holds the detector (file and sha256), the
scene, the placement rule, the resolved training config, the training steps and wall time, the
machine that trained it, and the patch's scores under the literature protocol
(:mod:`patchkit.evaluation.protocol`: Penn-Fudan test, official labels, flat paste) on yolov5n and
yolov8n at 416 and 640 px, with the command. Scores share the cache of ``benchmarks/patch_zoo.py``.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from patchkit.config import to_dict  # noqa: E402
from patchkit.engine.trainer import resume_config  # noqa: E402
from patchkit.evaluation.conditions import load_patch  # noqa: E402
from patchkit.evaluation.protocol import ProtocolCache, file_sha256, score_patches  # noqa: E402
from patchkit.io import atomic_write_json  # noqa: E402
from patchkit.video.sinks import read_jsonl  # noqa: E402

from patch_zoo import PF, WEIGHTS  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="a finished (or stopped) training run folder")
    ap.add_argument("--name", required=True, help="published as examples/patches/NAME.png")
    ap.add_argument("--machine", default="2-core AMD EPYC CPU (no GPU), 1 torch thread")
    ap.add_argument("--cache", default=str(REPO / "runs" / "patch_zoo" / "scores.json"))
    args = ap.parse_args(argv)
    run = Path(args.run)
    cfg = resume_config(run)
    ckpt = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    weights = Path(cfg.detector.weights)
    patch, _ = load_patch(run / "patch.png")
    from patchkit.detectors import create_detector
    from patchkit.evaluation.runner import load_image_set

    cache = ProtocolCache(args.cache)
    metrics: dict = {}
    for d, w in WEIGHTS.items():
        for size in (416, 640):
            det = create_detector(str(w), imgsz=size, letterbox="square")
            images, labels, _ = load_image_set(PF, "test", "official", size, 0)
            s = score_patches(det, file_sha256(w), images, labels, {"patch": patch}, size, cache=cache)["patch"]
            metrics[f"{d}@{size}"] = {"detection_rate_0.25": s.detection_rate, "ap50": s.ap50,
                                      "hallucinations_per_image_0.25": s.hallucinations}
    log = list(read_jsonl(run / "log.jsonl"))
    started, ended = (run / "config.yaml").stat().st_mtime, (run / "checkpoint.pt").stat().st_mtime
    dest = REPO / "examples" / "patches" / f"{args.name}.png"
    shutil.copyfile(run / "patch.png", dest)
    sidecar = {
        "detector": {"file": weights.name, "sha256": file_sha256(weights)},
        "scene": {"path": cfg.scene.path, "split": cfg.scene.split, "labels": cfg.scene.labels,
                  "extra": [{"path": s.path, "split": s.split, "labels": s.labels} for s in cfg.extra_scenes]},
        "placement": to_dict(cfg.placement),
        "config": to_dict(cfg),
        "training": {"steps": ckpt["state"]["step"], "epochs_done": ckpt["state"]["epoch"],
                     "wall_seconds_approx": round(ended - started), "machine": args.machine,
                     "final_log": log[-1] if log else None},
        "metrics": {"protocol": "Penn-Fudan test, official labels (142 persons), patch 0.2 x box diagonal centred, "
                                "square letterbox, flat paste, conf 0.25, NMS 0.45",
                    "scores": metrics,
                    "command": "python benchmarks/publish_patch.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))},
    }
    atomic_write_json(dest.with_suffix(".json"), sidecar)
    print(f"published {dest} (+ .json)")
    for k, v in metrics.items():
        print(f"  {k}: detection rate {v['detection_rate_0.25']:.3f}, AP50 {v['ap50']:.3f}, "
              f"FP/img {v['hallucinations_per_image_0.25']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
