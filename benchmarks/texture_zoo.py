"""Clothing textures side by side, under one protocol (issue 15).

    python benchmarks/texture_zoo.py [--detectors yolov5n yolov8n] [--sizes 416 640] [--eot-samples 2]
                                     [--tile-seeds 16] [--textures DIR_OR_PNG ...] [--json FILE]
                                     [--out runs/texture_zoo]

Scores patchkit's published textures (``examples/textures/*.png``, each with the ``tile_cm`` of its
sidecar) and two controls of the same coverage (a random-noise tile and a gray tile, 64 px at the
first texture's repeat length) on Penn-Fudan test with its official labels and official instance
masks (56 photos, 142 persons), every person wearing the texture over the garment (both: torso and
legs below the head), square letterbox at each size:

- **flat**: one seeded random toroidal offset per person, shading by the photo's luminance;
- **eot**: ``--eot-samples`` seeded draws of the texture EOT (a new offset per person, repeat
  jitter, pattern rotation, TPS cloth drag, photometric and camera ops), shared by every texture;
- **tileability**: the flat detection rate over ``--tile-seeds`` different offset draws (at the
  largest size): its spread (max - min) says whether every piece of the printed cloth works.

Per detector, size and mode: detection rate @0.25 (lower = stronger), AP50 (detections at 0.01),
hallucinated person boxes per image (@0.25, matching no label). Prints one markdown table per
detector, writes JSON, and draws each texture (2 x 2 repeats and one worn example) with its
numbers (``OUT/texture_zoo.png``). Scores are cached in ``OUT/scores.json`` after every texture.
Needs ../shared/data.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from patchkit.detectors import create_detector  # noqa: E402
from patchkit.eot import EOTConfig, EOTPipeline  # noqa: E402
from patchkit.eot.texture_pipeline import TexturePipeline  # noqa: E402
from patchkit.evaluation.conditions import read_sidecar  # noqa: E402
from patchkit.evaluation.textures import (  # noqa: E402
    DEFAULT_TILE_CM,
    gray_texture,
    load_masked_set,
    random_texture,
    render_textured,
    texture_detection_rate,
)
from patchkit.io import atomic_write_json, load_image_tensor  # noqa: E402
from patchkit.patches.parameterization import TextureConfig  # noqa: E402

from patch_zoo import SHARED, WEIGHTS  # noqa: E402  (one place for the detectors of both zoos)

CONF = 0.25


def texture_list(paths: list[str]) -> list[tuple[str, torch.Tensor, float]]:
    """``(name, tile, tile_cm)`` of every texture PNG (folders expanded), then the two controls."""
    files: list[Path] = []
    for p in map(Path, paths):
        files += sorted(p.glob("*.png")) if p.is_dir() else [p]
    out = []
    for f in files:
        side = read_sidecar(f)
        out.append((f.stem, load_image_tensor(f), float(side.get("tile_cm", DEFAULT_TILE_CM))))
    cm = out[0][2] if out else DEFAULT_TILE_CM
    out += [("random", random_texture(64, seed=0), cm), ("gray", gray_texture(64), cm)]
    return out


def key(det: str, tile: torch.Tensor, cm: float, size: int, mode: str) -> str:
    digest = hashlib.sha256((tile * 255).round().to(torch.uint8).numpy().tobytes()).hexdigest()[:16]
    return f"{det}|{digest}|{cm}|{size}|{mode}"


def score(detector, data, tile, cm, seeds, eot=None) -> dict:
    """Mean (and per-seed) detection rate, AP50 and hallucinations over ``seeds``."""
    runs = [texture_detection_rate(detector, *data, tile, cm, seed=s, conf=CONF, eot=eot, ap_conf=0.01, batch=8)
            for s in seeds]
    mean = {k: sum(r[k] for r in runs) / len(runs) for k in ("detection_rate", "ap50", "hallucinations_per_image")}
    mean["per_seed"] = [round(r["detection_rate"], 4) for r in runs]
    mean["coverage"] = runs[0]["coverage"]
    return mean


def draw(rows: list[dict], tiles: dict, data640, out: Path) -> None:
    from patchkit.plotting import pyplot

    plt = pyplot()
    names = list(tiles)
    fig, axes = plt.subplots(2, len(names), figsize=(2.6 * len(names), 6.2), squeeze=False)
    images, boxes, masks = data640
    for j, name in enumerate(names):
        tile, cm = tiles[name]
        axes[0, j].imshow(tile.repeat(1, 2, 2).permute(1, 2, 0).numpy())
        worn = render_textured(images[:1], boxes[:1], masks[:1], tile, cm, seed=0)[0]
        axes[1, j].imshow(worn.permute(1, 2, 0).numpy())
        text = [f"{r['detector']} {r['size']} {r['mode']}: DR {r['detection_rate']:.2f}"
                for r in rows if r["texture"] == name and r["mode"] in ("flat", "eot") and r["size"] == 640]
        axes[0, j].set_title(f"{name} ({cm:g} cm repeat)", fontsize=9)
        axes[1, j].set_title("\n".join(text), fontsize=7)
        for ax in axes[:, j]:
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detectors", nargs="+", default=list(WEIGHTS), choices=list(WEIGHTS))
    ap.add_argument("--sizes", nargs="+", type=int, default=[416, 640])
    ap.add_argument("--eot-samples", type=int, default=2)
    ap.add_argument("--tile-seeds", type=int, default=16, help="offset draws of the tileability check (0 = skip)")
    ap.add_argument("--textures", nargs="+", default=[str(REPO / "examples" / "textures")])
    ap.add_argument("--max-images", type=int, default=0, help="first N test images (0 = all 56)")
    ap.add_argument("--out", default=str(REPO / "runs" / "texture_zoo"))
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if not all(WEIGHTS[d].is_file() for d in args.detectors):
        print(f"texture_zoo: needs {SHARED} (weights and Penn-Fudan)", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache_path = out / "scores.json"
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    textures = texture_list(args.textures)
    eot = TexturePipeline(TextureConfig(), EOTPipeline(EOTConfig()))
    rows, t0 = [], time.time()
    for det_name in args.detectors:
        for size in args.sizes:
            detector = create_detector(str(WEIGHTS[det_name]), imgsz=size, letterbox="square")
            data = load_masked_set("test", size, args.max_images)
            modes = [("flat", [0], None), ("eot", list(range(100, 100 + args.eot_samples)), eot)]
            if args.tile_seeds and size == max(args.sizes):
                modes.append(("tileability", list(range(1000, 1000 + args.tile_seeds)), None))
            for name, tile, cm in textures:
                for mode, seeds, pipe in modes:
                    if mode == "tileability" and name in ("random", "gray"):
                        continue
                    k = key(det_name, tile, cm, size, f"{mode}{len(seeds)}n{args.max_images}")
                    if k not in cache:
                        cache[k] = score(detector, data, tile, cm, seeds, pipe)
                        atomic_write_json(cache_path, cache)
                    r = cache[k]
                    row = {"detector": det_name, "size": size, "texture": name, "tile_cm": cm, "mode": mode,
                           **{m: round(r[m], 4) for m in ("detection_rate", "ap50", "hallucinations_per_image",
                                                           "coverage")}}
                    if mode == "tileability":
                        row["spread"] = round(max(r["per_seed"]) - min(r["per_seed"]), 4)
                        row["per_seed"] = r["per_seed"]
                    rows.append(row)
                    print(f"  {det_name} {size} {name} {mode}: DR {row['detection_rate']:.3f} "
                          f"({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    for det_name in args.detectors:
        print(f"\n### {det_name} (Penn-Fudan test, official masks, DR @{CONF} / AP50 / hallucinated boxes per image)\n")
        head = " | ".join(f"{s} {m}" for s in args.sizes for m in ("flat", "eot"))
        print(f"| texture | coverage | {head} | tileability spread |")
        print("|---|---|" + "---|" * (2 * len(args.sizes)) + "---|")
        for name, _, _ in textures:
            cells = []
            for s in args.sizes:
                for m in ("flat", "eot"):
                    r = next(x for x in rows if (x["detector"], x["size"], x["texture"], x["mode"]) == (det_name, s, name, m))
                    cells.append(f"{r['detection_rate']:.3f} / {r['ap50']:.3f} / {r['hallucinations_per_image']:.2f}")
            tl = [x for x in rows if (x["detector"], x["texture"], x["mode"]) == (det_name, name, "tileability")]
            cov = next(x["coverage"] for x in rows if x["detector"] == det_name and x["texture"] == name)
            spread = f"{tl[0]['spread']:.3f} (DR {min(tl[0]['per_seed']):.2f}-{max(tl[0]['per_seed']):.2f})" if tl else "-"
            print(f"| {name} | {cov:.2f} | " + " | ".join(cells) + f" | {spread} |")
    tiles = {name: (tile, cm) for name, tile, cm in textures}
    draw(rows, tiles, load_masked_set("test", 640, 1), out / "texture_zoo.png")
    result = {"rows": rows, "protocol": {"scene": "Penn-Fudan test, official labels and masks", "garment": "both",
                                         "conf": CONF, "ap_conf": 0.01, "eot_samples": args.eot_samples,
                                         "tile_seeds": args.tile_seeds}}
    atomic_write_json(Path(args.json) if args.json else out / "texture_zoo.json", result)
    print(f"\nfigure: {out / 'texture_zoo.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
