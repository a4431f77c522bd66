"""Texture training scenes: toy-world images of pedestrians in a neutral suit, with garment masks.

The patch demo trains on a toy-world dataset (:func:`patchkit.toyworld.generate_dataset`: JPEG
images with YOLO labels) that :func:`patchkit.scenes.scene.load_scene` letterboxes to square
canvases. :func:`build_texture_scene` mirrors that path in memory for clothing textures: image
``i`` of ``split`` is drawn from the same generator (:func:`~patchkit.toyworld.dataset.split_rng`),
so it is the same scene, but every pedestrian wears a uniform gray suit (shirt and trousers,
:func:`~patchkit.toyworld.suit.gray_suit`); it goes through the same JPEG round trip and square
letterbox (gray 114 padding), and each labelled person gets the mask of his visible suit,
letterboxed with the image's very geometry (zero padding). Training renders a texture on the masks
with the photo's luminance as shading (:func:`patchkit.eot.cloth_render.render_cloth`), so the gray
suit's shading (side light, darker legs, scene light) carries over to the texture.

Result: :meth:`patchkit.scenes.scene.Scene.from_canvases` with ``masks`` (uint8 garment alpha,
0 = none, 255 = full, one per box, in box order).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from patchkit.detectors.letterbox import boxes_to_letterbox, letterbox
from patchkit.scenes.scene import Scene
from patchkit.toyworld.compose import render_scene
from patchkit.toyworld.config import ToyWorldConfig
from patchkit.toyworld.dataset import encode_jpeg, split_rng
from patchkit.toyworld.suit import TextureSuit, gray_suit

__all__ = ["SuitImages", "build_texture_scene", "letterbox_suit_image", "render_suit_images"]


@dataclass
class SuitImages:
    """Square canvases of suited pedestrians: ``images`` ``(N, 3, S, S)`` uint8, ``boxes`` N x
    ``(M_i, 4)`` float32 xyxy canvas pixels, ``masks`` N x ``(M_i, S, S)`` uint8 suit alpha."""

    images: Tensor
    boxes: list[Tensor]
    masks: list[Tensor]

    def scene(self, name: str = "toyworld-suit") -> Scene:
        return Scene.from_canvases(self.images, self.boxes, name, masks=self.masks)


def letterbox_suit_image(image: np.ndarray, boxes: np.ndarray, masks: np.ndarray,
                         imgsz: int) -> tuple[Tensor, Tensor, Tensor]:
    """Letterbox one image ``(H, W, 3)`` uint8 to a square ``imgsz`` canvas exactly as
    :func:`~patchkit.scenes.scene.load_scene` does (bilinear, gray 114), its boxes ``(M, 4)`` and
    suit masks ``(M, H, W)`` float in [0, 1] with the same geometry (zero padding).

    Returns the canvas ``(3, S, S)`` uint8, boxes ``(M, 4)`` float32, masks ``(M, S, S)`` uint8."""
    img = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)[None]
    canvas, params = letterbox(img, imgsz, mode="square")
    canvas = canvas[0].mul(255).round_().clamp_(0, 255).to(torch.uint8)
    b = boxes_to_letterbox(torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4), params)
    m = torch.as_tensor(masks, dtype=torch.float32).reshape(-1, *image.shape[:2])
    if params.resizes:
        m = F.interpolate(m[None], size=(params.new_wh[1], params.new_wh[0]), mode="bilinear",
                          align_corners=False, antialias=False)[0] if m.shape[0] else m.new_zeros(
            0, params.new_wh[1], params.new_wh[0])
    h, w = params.out_hw
    out = torch.zeros(m.shape[0], h, w)
    out[:, params.pad_y:params.pad_y + params.new_wh[1], params.pad_x:params.pad_x + params.new_wh[0]] = m
    return canvas, b, out.mul(255).round_().clamp_(0, 255).to(torch.uint8)


def render_suit_images(
    n: int,
    seed: int = 1,
    imgsz: int = 320,
    cfg: ToyWorldConfig | None = None,
    split: str = "train",
    suit: TextureSuit | None = None,
    jpeg: bool = True,
    min_size: float = 8.0,
    max_boxes: int = 16,
    keep_empty: bool = False,
    start: int = 0,
) -> SuitImages:
    """Render images ``start .. start + n - 1`` of ``split`` with every pedestrian in ``suit``
    (default: a uniform gray suit) and letterbox them; see the module docstring.

    Args:
        n, seed, split, start: which images (image ``i`` from ``split_rng(seed, split, i)``).
        imgsz: canvas side in pixels.
        cfg: the generator settings (the demo's world: few, near pedestrians).
        suit: what the pedestrians wear; a uniform suit for training, a tile to look at.
        jpeg: encode and decode each image at its sampled JPEG quality, as the dataset files are.
        min_size, max_boxes: person boxes smaller than ``min_size`` canvas pixels on a side are
            dropped, at most ``max_boxes`` kept (largest first), as :class:`SceneConfig` does.
        keep_empty: keep images left without a person box (training drops them).
    """
    cfg = cfg or ToyWorldConfig()
    suit = suit or gray_suit()
    images, boxes, masks = [], [], []
    for i in range(start, start + n):
        item = render_scene(split_rng(seed, split, i), cfg, suit=suit)
        image = item.image
        if jpeg:
            buf = np.frombuffer(encode_jpeg(image, item.jpeg_quality), np.uint8)
            image = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        person = item.classes == 0
        canvas, b, m = letterbox_suit_image(image, item.boxes[person], item.masks[person], imgsz)
        wh = b[:, 2:] - b[:, :2]
        keep = (wh >= min_size).all(dim=1)
        b, m = b[keep], m[keep]
        if b.shape[0] > max_boxes:
            area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
            top = area.argsort(descending=True)[:max_boxes]
            b, m = b[top], m[top]
        if b.shape[0] == 0 and not keep_empty:
            continue
        images.append(canvas)
        boxes.append(b)
        masks.append(m)
    stacked = torch.stack(images) if images else torch.zeros(0, 3, imgsz, imgsz, dtype=torch.uint8)
    return SuitImages(stacked, boxes, masks)


def build_texture_scene(
    n: int,
    seed: int = 1,
    imgsz: int = 320,
    cfg: ToyWorldConfig | None = None,
    split: str = "train",
    tile_cm: float = 20.0,
    gray: float = 0.5,
    name: str = "toyworld-suit",
    **kwargs,
) -> Scene:
    """The texture training scene: ``n`` toy-world images (``split``, ``seed``) of pedestrians in a
    uniform ``gray`` suit, letterboxed to ``imgsz``, with one uint8 suit mask per person box
    (``Scene.masks``); images without a person box are dropped. ``tile_cm`` is recorded on the suit
    only (a uniform suit looks the same at any repeat). Other keywords go to
    :func:`render_suit_images`."""
    return render_suit_images(n, seed, imgsz, cfg, split, gray_suit(gray, tile_cm), **kwargs).scene(name)
