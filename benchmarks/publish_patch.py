"""Publish a trained patch as ``examples/patches/NAME.png`` with its sidecar ``NAME.json`` (a
texture, ``patch.kind: texture``, as ``examples/textures/NAME.png``).

    python benchmarks/publish_patch.py RUN_DIR --name yolov8n [--machine "2-core AMD EPYC CPU, 1 thread"]

A texture's sidecar (interfaces.md, "Published textures") has ``"kind": "texture"``, ``tile_cm`` and
``tile_px``, and its scores come from ``benchmarks/texture_zoo.py``'s protocol (Penn-Fudan test,
official masks, flat and test-time EOT; cached in ``runs/texture_zoo/scores.json``).

The sidecar (docs: interfaces.md, "Shipped patches") holds the detector (file and sha256), the
scene, the placement rule, the resolved training config, the training steps and wall time, the
machine that trained it, and the patch's scores under the literature protocol
(:mod:`patchkit.evaluation.protocol`: Penn-Fudan test, official labels, flat paste) on yolov5n and
yolov8n at 416 and 640 px, with the command. Scores share the cache of ``benchmarks/patch_zoo.py``.
"""

from __future__ import annotations

import argparse
import json
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


def write_published(run: Path, dest: Path, sidecar: dict, metrics: dict) -> int:
    """Copy the run's image to ``dest``, write its sidecar beside it, print the scores."""
    shutil.copyfile(run / "patch.png", dest)
    atomic_write_json(dest.with_suffix(".json"), sidecar)
    print(f"published {dest} (+ .json)")
    for k, v in metrics.items():
        print(f"  {k}: detection rate {v['detection_rate_0.25']:.3f}, AP50 {v['ap50']:.3f}, "
              f"FP/img {v['hallucinations_per_image_0.25']:.2f}")
    return 0


def command(argv: list[str] | None) -> str:
    return "python benchmarks/publish_patch.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))


def base_sidecar(run: Path, cfg, ckpt: dict, args) -> dict:
    """The sidecar fields patches and textures share: detector, scene, config, training."""
    weights = Path(cfg.detector.weights)
    log = list(read_jsonl(run / "log.jsonl"))
    started, ended = (run / "config.yaml").stat().st_mtime, (run / "checkpoint.pt").stat().st_mtime
    return {
        "detector": {"file": weights.name, "sha256": file_sha256(weights)},
        "scene": {"path": cfg.scene.path, "split": cfg.scene.split, "labels": cfg.scene.labels, "masks": cfg.scene.masks,
                  "extra": [{"path": s.path, "split": s.split, "labels": s.labels, "masks": s.masks}
                            for s in cfg.extra_scenes]},
        "config": to_dict(cfg),
        "training": {"steps": ckpt["state"]["step"], "epochs_done": ckpt["state"]["epoch"],
                     "wall_seconds_approx": round(ended - started), "machine": args.machine,
                     "final_log": log[-1] if log else None, **_started_from(cfg.patch.init, args.started_from)},
    }


def _started_from(init: str, note: str | None) -> dict:
    """The starting image of a fine-tune (``patch.init`` is a file): its path, sha256 and ``note``."""
    path = Path(init)
    if not path.is_file():
        return {}
    return {"started_from": {"patch": init, "sha256": file_sha256(path), **({"note": note} if note else {})}}


def publish_texture(run: Path, cfg, ckpt: dict, args, argv: list[str] | None) -> int:
    """``examples/textures/NAME.png`` + sidecar, scored with texture_zoo's protocol and cache."""
    from patchkit.detectors import create_detector

    import texture_zoo as tz

    tile, _ = load_patch(run / "patch.png")
    cm = cfg.patch.texture.tile_cm
    cache_path = REPO / "runs" / "texture_zoo" / "scores.json"
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    eot = tz.TexturePipeline(tz.TextureConfig(), tz.EOTPipeline(tz.EOTConfig()))
    metrics: dict = {}
    for d, w in WEIGHTS.items():
        for size in (416, 640):
            det = create_detector(str(w), imgsz=size, letterbox="square")
            data = tz.load_masked_set("test", size)
            for mode, seeds, pipe in (("flat", [0], None), ("eot", [100, 101], eot)):
                k = tz.key(d, tile, cm, size, f"{mode}{len(seeds)}n0")
                if k not in cache:
                    cache[k] = tz.score(det, data, tile, cm, seeds, pipe)
                    cache_path.parent.mkdir(parents=True, exist_ok=True)
                    atomic_write_json(cache_path, cache)
                r = cache[k]
                metrics[f"{d}@{size} {mode}"] = {"detection_rate_0.25": r["detection_rate"], "ap50": r["ap50"],
                                                 "hallucinations_per_image_0.25": r["hallucinations_per_image"],
                                                 "coverage": r["coverage"]}
    dest = REPO / "examples" / "textures" / f"{args.name}.png"
    dest.parent.mkdir(parents=True, exist_ok=True)
    sidecar = {"kind": "texture", "tile_cm": cm, "tile_px": int(tile.shape[-1]), **base_sidecar(run, cfg, ckpt, args)}
    sidecar["metrics"] = {"protocol": "Penn-Fudan test, official labels and instance masks (142 persons), garment "
                                      "both (below the head), square letterbox, conf 0.25 (AP50 from conf 0.01), "
                                      "NMS 0.45; flat = one seeded offset per person, eot = 2 draws of the texture "
                                      "EOT (benchmarks/texture_zoo.py)",
                          "scores": metrics, "command": command(argv)}
    return write_published(run, dest, sidecar, metrics)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="a finished (or stopped) training run folder")
    ap.add_argument("--name", required=True, help="published as examples/patches/NAME.png")
    ap.add_argument("--machine", default="2-core AMD EPYC CPU (no GPU), 1 torch thread")
    ap.add_argument("--cache", default=str(REPO / "runs" / "patch_zoo" / "scores.json"))
    ap.add_argument("--started-from", default=None,
                    help="for a fine-tune (patch.init is an image): where that image came from, kept in the sidecar")
    args = ap.parse_args(argv)
    run = Path(args.run)
    cfg = resume_config(run)
    ckpt = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    patch, _ = load_patch(run / "patch.png")
    from patchkit.detectors import create_detector
    from patchkit.evaluation.runner import load_image_set

    if cfg.patch.kind == "texture":
        return publish_texture(run, cfg, ckpt, args, argv)
    cache = ProtocolCache(args.cache)
    metrics: dict = {}
    for d, w in WEIGHTS.items():
        for size in (416, 640):
            det = create_detector(str(w), imgsz=size, letterbox="square")
            images, labels, _ = load_image_set(PF, "test", "official", size, 0)
            s = score_patches(det, file_sha256(w), images, labels, {"patch": patch}, size, cache=cache)["patch"]
            metrics[f"{d}@{size}"] = {"detection_rate_0.25": s.detection_rate, "ap50": s.ap50,
                                      "hallucinations_per_image_0.25": s.hallucinations}
    dest = REPO / "examples" / "patches" / f"{args.name}.png"
    sidecar = base_sidecar(run, cfg, ckpt, args)
    sidecar["placement"] = to_dict(cfg.placement)
    sidecar["metrics"] = {"protocol": "Penn-Fudan test, official labels (142 persons), patch 0.2 x box diagonal "
                                      "centred, square letterbox, flat paste, conf 0.25, NMS 0.45",
                          "scores": metrics, "command": command(argv)}
    return write_published(run, dest, sidecar, metrics)


if __name__ == "__main__":
    sys.exit(main())
