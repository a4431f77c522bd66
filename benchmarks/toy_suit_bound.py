"""How far can a suit go against the toy detector? An invisible suit as the reference.

    python benchmarks/toy_suit_bound.py [--json FILE]

The demo's texture film (``patchkit demo --texture``) dresses the walker in a shirt and trousers
of the trained tile; the head, hands and shoes stay bare. This script measures, on the demo's
unseen texture scene (the toy world's test images, pedestrians in gray suits, exact suit masks):

* ``clean``: the suits as rendered;
* ``invisible_suit``: every suit pixel replaced by the background around it (OpenCV's Telea
  inpainting of the suit mask, dilated by one pixel), as if the clothing were a perfect
  invisibility cloak: what is left is a head, hands and feet over an empty background;
* ``ratio`` = invisible_suit / clean.

A texture only recolours the suit, so it can do better than invisibility only by actively
suppressing the detector; the invisible suit says how much of the detection the bare head, hands
and feet carry on their own. Prints a markdown table; ``--json`` writes the same numbers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from patchkit.demo.config import DemoConfig  # noqa: E402
from patchkit.demo.texture import texture_scenes  # noqa: E402
from patchkit.detectors import create_detector  # noqa: E402
from patchkit.evaluation.textures import gray_texture, texture_detection_rate  # noqa: E402
from patchkit.io import atomic_write_json  # noqa: E402


def invisible_suits(images: torch.Tensor, masks: list[torch.Tensor]) -> torch.Tensor:
    """``images`` ``(B, 3, S, S)`` uint8 with each image's suit pixels (any mask > 0.3, dilated
    by one pixel) inpainted from their surroundings (Telea, radius 5 px)."""
    out = []
    for image, m in zip(images, masks):
        rgb = np.ascontiguousarray(image.permute(1, 2, 0).numpy())
        hole = ((m.float() / 255.0).amax(0) > 0.3).numpy().astype(np.uint8) * 255 if m.numel() else \
            np.zeros(rgb.shape[:2], np.uint8)
        hole = cv2.dilate(hole, np.ones((3, 3), np.uint8))
        out.append(torch.from_numpy(cv2.inpaint(rgb, hole, 5, cv2.INPAINT_TELEA)).permute(2, 0, 1))
    return torch.stack(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="also write the numbers to this JSON file")
    args = ap.parse_args(argv)
    cfg = DemoConfig()
    _, test = texture_scenes(cfg)
    detector = create_detector(cfg.detector, imgsz=cfg.imgsz, letterbox="square")
    none = [torch.zeros(m.shape, dtype=torch.float32) for m in test.masks]  # nothing re-textured

    def rate(images: torch.Tensor) -> float:
        return texture_detection_rate(detector, images, test.boxes, none, gray_texture(8), cfg.texture.tile_cm,
                                      conf=cfg.conf)["detection_rate"]

    clean, invisible = rate(test.images), rate(invisible_suits(test.images, test.masks))
    row = {"images": len(test), "persons": test.n_boxes, "clean": round(clean, 4),
           "invisible_suit": round(invisible, 4), "ratio": round(invisible / clean, 4) if clean else None}
    print("| images | persons | clean | invisible suit | ratio |\n|---|---|---|---|---|")
    print(f"| {row['images']} | {row['persons']} | {row['clean']:.3f} | {row['invisible_suit']:.3f} | {row['ratio']} |")
    if args.json:
        atomic_write_json(args.json, row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
