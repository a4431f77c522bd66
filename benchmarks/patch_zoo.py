"""Every published person-hiding patch, side by side, under one protocol.

    python benchmarks/patch_zoo.py [--detectors yolov5n yolov8n] [--sizes 416 640] [--eot-samples 2]
                                   [--patches DIR_OR_PNG ...] [--json FILE] [--out runs/patch_zoo]

Scores the peers' released patches (``../shared/data/peer_patches``: adversarial-yolo, T-SEA, NAP,
CAP, VQ, AdvLogo), patchkit's published ones (``examples/patches/*.png``) and two controls (random
noise and gray, 300 px) under the literature protocol of :mod:`patchkit.evaluation.protocol`:
Penn-Fudan test with its official labels (56 photos, 142 persons), the patch on every labelled
person (side 0.2 x box diagonal, centred), square letterbox at each size, flat paste and test-time
EOT (the default EOT, ``--eot-samples`` seeded draws shared by every patch). Per detector, size
and mode: detection rate @0.25 (lower = stronger), AP50 and hallucinated person boxes per image
(@0.25, matching no label). Prints one markdown table per detector (sorted by the flat detection
rate at the largest size), writes JSON, and draws every patch as a thumbnail with its numbers
(``OUT/patch_zoo.png``). Scores are cached in ``OUT/scores.json`` after every patch: a stopped
run keeps what it scored, and a re-run scores only new patches. Needs ../shared/data.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from patchkit.evaluation.conditions import load_patch  # noqa: E402
from patchkit.evaluation.protocol import (  # noqa: E402
    ProtocolCache,
    expand_patch_paths,
    file_sha256,
    score_patches,
)
from patchkit.io import atomic_write_json  # noqa: E402

SHARED = Path(__import__("os").environ.get("PATCHKIT_SHARED", REPO.parent / "shared")) / "data"
WEIGHTS = {"yolov5n": SHARED / "weights" / "yolov5n-v7.0.pt", "yolov8n": SHARED / "weights" / "yolov8n.pt"}
#: what each peer folder's patches were trained against (PROVENANCE.md)
TRAINED_FOR = {
    "advyolo_yolov2": "YOLOv2", "tsea": "T-SEA", "nap": "NAP (BigGAN)", "cap_yolov5s_inria": "YOLOv5s (CAP)",
    "vq_yolov8n": "yolov8n (VQ)", "advlogo": "AdvLogo (diffusion)", "patches": "patchkit",
}
PF = "scenes/pennfudan.yaml"


def patch_name(path: Path) -> str:
    """``folder/stem``: peers reuse stems across folders (``v5``...)."""
    return f"{path.parent.name}/{path.stem}"


def controls() -> dict:
    """The two control patches (300 px): seeded uniform noise and mid-gray."""
    import torch

    return {"control/random": torch.rand(3, 300, 300, generator=torch.Generator().manual_seed(0)),
            "control/gray": torch.full((3, 300, 300), 0.5)}


def collect_patches(sources: list[str]) -> dict:
    patches = controls()
    for p in expand_patch_paths(sources):
        if p.name.endswith("_mask.png"):
            continue
        tensor, warnings = load_patch(p)
        for w in warnings:
            print(f"patch_zoo: warning: {w}", file=sys.stderr)
        patches[patch_name(p)] = tensor
    return patches


def plot_zoo(path: Path, patches: dict, table: dict, keys: list[tuple[str, str]]) -> None:
    """Thumbnails sorted by the first key's detection rate, each with its numbers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = keys[0]
    names = sorted(patches, key=lambda n: table[n][first]["detection_rate"])
    cols = 6
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 2.3, rows * 2.9))
    for ax in axes.flat:
        ax.axis("off")
    for ax, name in zip(axes.flat, names):
        ax.imshow(patches[name].permute(1, 2, 0).numpy())
        lines = [name if len(name) <= 26 else name[:25] + "…"]
        lines += [f"{d} {m}: DR {table[name][(d, m)]['detection_rate']:.2f}" for d, m in keys]
        ax.set_title("\n".join(lines), fontsize=7)
    fig.suptitle("Penn-Fudan test, official labels, patch 0.2 x box diagonal; detection rate @0.25 "
                 "(lower = stronger), sorted", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detectors", nargs="+", default=list(WEIGHTS), choices=list(WEIGHTS))
    ap.add_argument("--sizes", nargs="+", type=int, default=[416, 640])
    ap.add_argument("--eot-samples", type=int, default=2, help="test-time EOT draws (0: flat only)")
    ap.add_argument("--patches", nargs="+", default=[str(SHARED / "peer_patches"), str(REPO / "examples" / "patches")],
                    help="patch files or folders (default: the peers' and patchkit's)")
    ap.add_argument("--out", default=str(REPO / "runs" / "patch_zoo"))
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    missing = [str(WEIGHTS[d]) for d in args.detectors if not WEIGHTS[d].is_file()]
    if missing or not (SHARED / "pennfudan").is_dir():
        print(f"{missing[0] if missing else SHARED / 'pennfudan'}: not found (this benchmark needs ../shared/data)",
              file=sys.stderr)
        return 2
    from patchkit.detectors import create_detector
    from patchkit.evaluation.runner import load_image_set

    out = Path(args.out)
    cache = ProtocolCache(out / "scores.json")
    patches = collect_patches(args.patches)
    patches = {"clean": None, **patches}
    modes = ["flat"] + (["eot"] if args.eot_samples > 0 else [])
    table: dict = {n: {} for n in patches}
    t0 = time.perf_counter()
    for d in args.detectors:
        sha = file_sha256(WEIGHTS[d])
        for size in args.sizes:
            det = create_detector(str(WEIGHTS[d]), imgsz=size, letterbox="square")
            images, labels, _ = load_image_set(PF, "test", "official", size, 0)
            for mode in modes:
                samples = args.eot_samples if mode == "eot" else 0
                scores = score_patches(det, sha, images, labels, patches, size, samples, cache=cache,
                                       progress=lambda n: print(f"  {d} {size} {mode}: {n}", file=sys.stderr, flush=True))
                for name, s in scores.items():
                    table[name][(d, f"{size} {mode}")] = s.__dict__
    seconds = time.perf_counter() - t0

    cols = [f"{s} {m}" for s in args.sizes for m in modes]
    print(f"\nPenn-Fudan test, official labels ({images.shape[0]} photos), patch 0.2 x box diagonal centred, "
          f"conf 0.25, NMS 0.45; EOT = {args.eot_samples} test-time draws. DR = detection rate (lower = stronger), "
          "FP = hallucinated person boxes per image\n")
    for d in args.detectors:
        key = (d, cols[-2] if len(modes) == 2 else cols[-1])
        print(f"### {d}\n")
        print("| patch | trained for | " + " | ".join(f"DR {c} | AP50 {c} | FP {c}" for c in cols) + " |")
        print("|---|---|" + "---|---|---|" * len(cols))
        for name in sorted(patches, key=lambda n: table[n][key]["detection_rate"]):
            cells = []
            for c in cols:
                v = table[name][(d, c)]
                cells.append(f"{v['detection_rate']:.3f} | {v['ap50']:.3f} | {v['hallucinations']:.2f}")
            folder = name.split("/")[0]
            print(f"| {name} | {TRAINED_FOR.get(folder, folder)} | " + " | ".join(cells) + " |")
        print()
    print(f"({seconds:.0f} s)")
    result = {"protocol": {"scene": "pennfudan test, official labels", "placement_scale": 0.2, "conf": 0.25,
                           "nms_iou": 0.45, "eot_samples": args.eot_samples, "sizes": args.sizes},
              "scores": [{"patch": n, "detector": d, "setting": c, **v}
                         for n, per in table.items() for (d, c), v in per.items()],
              "seconds": round(seconds, 1)}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "patch_zoo.json", result)
    if args.json:
        atomic_write_json(args.json, result)
    big = f"{max(args.sizes)} flat"
    plot_zoo(out / "patch_zoo.png", {n: p for n, p in patches.items() if p is not None}, table,
             [(d, big) for d in args.detectors])
    print(f"wrote {out / 'patch_zoo.json'} and {out / 'patch_zoo.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
