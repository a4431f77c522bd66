"""Hidden, or cut into partial boxes? The persons a patch leaves found, loosely found and touched.

    python benchmarks/partial_boxes.py [--detectors yolov5n yolov8n] [--sizes 640] [--patches PNG ...] [--json FILE]

The zoo's detection rate (:mod:`benchmarks.patch_zoo`) counts a person found when a detection
overlaps the labelled box with IoU >= 0.5, the literature's rule. This benchmark scores the same
protocol (Penn-Fudan test, official labels, the patch on every labelled person at side 0.2 x box
diagonal, square letterbox, flat paste, detections at 0.01 and NMS 0.45 as the zoo, counted at conf
0.25) with :func:`patchkit.evaluation.coverage.person_coverage`: found at IoU >= 0.5 (the zoo's
number), at IoU >= 0.3, and touched (a person box centred inside the labelled box), plus false
boxes per image. A patch that mostly cuts people into pieces shows a low detection rate and a high
touched share. A second table splits the found share by the person's height in pixels at that
imgsz (a patch can hide small people and fail on large ones). Default patches: patchkit's published
ones, the strongest peers of the zoo, clean and the random-noise control. Needs ../shared/data.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from patch_zoo import PF, SHARED, WEIGHTS, controls, patch_name  # noqa: E402
from patchkit.eot import EOTConfig, EOTPipeline  # noqa: E402
from patchkit.evaluation.conditions import load_patch  # noqa: E402
from patchkit.evaluation.coverage import height_band_names, person_coverage  # noqa: E402
from patchkit.evaluation.digital import EvalOptions, detect_conditioned  # noqa: E402
from patchkit.evaluation.protocol import CONF, LITERATURE_PLACEMENT  # noqa: E402
from patchkit.evaluation.runner import load_image_set  # noqa: E402
from patchkit.io import atomic_write_json  # noqa: E402

PEERS = SHARED / "peer_patches"
DEFAULT_PATCHES = [REPO / "examples/patches/yolov5n.png", REPO / "examples/patches/yolov8n.png",
                   PEERS / "tsea/v5-demo.png", PEERS / "vq_yolov8n/advyolo_upper_worst.png",
                   PEERS / "advyolo_yolov2/object_score.png"]
HEIGHT_EDGES = (128, 256, 384)  # person box height bands, pixels at the scored imgsz


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detectors", nargs="+", default=["yolov5n", "yolov8n"], choices=sorted(WEIGHTS))
    ap.add_argument("--sizes", nargs="+", type=int, default=[640])
    ap.add_argument("--patches", nargs="+", default=[str(p) for p in DEFAULT_PATCHES])
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    from patchkit.detectors import create_detector

    missing = [str(p) for p in [*WEIGHTS.values(), *args.patches] if not Path(p).is_file()]
    if missing:
        print(f"{missing[0]}: not found (this benchmark needs ../shared/data)", file=sys.stderr)
        return 2
    patches: dict = {"clean": None, "control/random": controls()["control/random"]}
    patches |= {patch_name(Path(p)): load_patch(p)[0] for p in args.patches}
    opts = EvalOptions(placement=LITERATURE_PLACEMENT, batch=8)
    flat = EOTPipeline(EOTConfig.all_disabled())
    rows = []
    for name in args.detectors:
        for size in args.sizes:
            det = create_detector(str(WEIGHTS[name]), imgsz=size, letterbox="square")
            images, labels, _ = load_image_set(PF, "test", "official", size, 0)
            for pname, patch in patches.items():
                dets, _ = detect_conditioned(det, images, labels, patch, opts, flat, 0, opts.score_conf)  # as the zoo
                cov = person_coverage(dets, labels, conf=CONF, height_edges=HEIGHT_EDGES)
                rows.append({"detector": name, "imgsz": size, "patch": pname, **cov.__dict__})
                print(f"{name} {size} {pname} done", file=sys.stderr, flush=True)
    print("\nPenn-Fudan test (official labels, 142 persons), flat paste, patch 0.2 x box diagonal, conf 0.25; "
          "shares of the labelled persons (lower = more hidden)\n")
    print("| detector | imgsz | patch | found (IoU >= 0.5) | found (IoU >= 0.3) | touched (a box centred inside) "
          "| false boxes / image |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['detector']} | {r['imgsz']} | {r['patch']} | {r['found']:.3f} | {r['found_loose']:.3f} | "
              f"{r['touched']:.3f} | {r['false_per_image']:.2f} |")
    bands = height_band_names(HEIGHT_EDGES)
    print("\nFound (IoU >= 0.5) by the labelled person's height in pixels at that imgsz (persons per band in "
          "the header)\n")
    for name in args.detectors:
        for size in args.sizes:
            sel = [r for r in rows if r["detector"] == name and r["imgsz"] == size]
            counts = sel[0]["persons_by_height"]
            print("| detector | imgsz | patch | " + " | ".join(f"{b} px (n={counts.get(b, 0)})" for b in bands) + " |")
            print("|---|---|---|" + "---|" * len(bands))
            for r in sel:
                cells = [f"{r['found_by_height'][b]:.3f}" if b in r["found_by_height"] else "-" for b in bands]
                print(f"| {name} | {size} | {r['patch']} | " + " | ".join(cells) + " |")
            print()
    if args.json:
        atomic_write_json(args.json, {"rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
