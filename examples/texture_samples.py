"""Draw a grid of Penn-Fudan people wearing a texture: the flat rendering and EOT draws.

    python examples/texture_samples.py [examples/textures/yolov8n.png] [--out examples/figures/texture_samples.png]

Row 1: the tile repeated 3 x 3 and the flat rendering (one toroidal offset per person, shading by
the photo's luminance) on Penn-Fudan test photos with their official instance masks; rows 2-3: the
same photos under random draws of the texture EOT used in training (a new offset per person,
repeat jitter, pattern rotation, TPS cloth drag, photometric and camera ops). Needs ../shared/data.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from patchkit.eot import EOTConfig, EOTPipeline  # noqa: E402
from patchkit.eot.texture_pipeline import TexturePipeline  # noqa: E402
from patchkit.evaluation.conditions import read_sidecar  # noqa: E402
from patchkit.evaluation.textures import DEFAULT_TILE_CM, load_masked_set, render_eot, render_textured  # noqa: E402
from patchkit.io import load_image_tensor  # noqa: E402
from patchkit.patches.parameterization import TextureConfig  # noqa: E402
from patchkit.plotting import pyplot  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("texture", nargs="?", default=str(REPO / "examples" / "textures" / "yolov8n.png"))
    ap.add_argument("--out", default=str(REPO / "examples" / "figures" / "texture_samples.png"))
    ap.add_argument("--images", type=int, nargs="+", default=[1, 9, 17, 30])
    args = ap.parse_args(argv)
    tile = load_image_tensor(args.texture)
    cm = float(read_sidecar(args.texture).get("tile_cm", DEFAULT_TILE_CM))
    images, boxes, masks = load_masked_set("test", 416)
    pick = args.images
    imgs, bxs, mks = images[pick], [boxes[i] for i in pick], [masks[i] for i in pick]
    eot = TexturePipeline(TextureConfig(), EOTPipeline(EOTConfig()))
    rows = [render_textured(imgs, bxs, mks, tile, cm, seed=0)]
    rows += [render_eot(eot, imgs, bxs, mks, tile, cm, seed=s) for s in (1, 2)]
    plt = pyplot()
    n = len(pick)
    fig, axes = plt.subplots(3, n + 1, figsize=(2.4 * (n + 1), 7.4))
    axes[0, 0].imshow(tile.repeat(1, 3, 3).permute(1, 2, 0).numpy())
    axes[0, 0].set_title(f"tile x 3 ({cm:g} cm repeat)", fontsize=8)
    for r, label in enumerate(("flat", "EOT draw 1", "EOT draw 2")):
        for j in range(n):
            axes[r, j + 1].imshow(rows[r][j].permute(1, 2, 0).clamp(0, 1).numpy())
            axes[r, j + 1].set_title(label, fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=72)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
