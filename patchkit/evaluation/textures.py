"""Digital evaluation of adversarial clothing textures on masked persons (issue 15).

:func:`load_masked_set` loads Penn-Fudan photos letterboxed exactly as
:func:`~patchkit.evaluation.runner.load_image_set` does (square canvas), with each labelled
person's instance mask letterboxed the same way (same resize ratio and padding), matched to its
box (:func:`~patchkit.scenes.masks.match_masks_to_boxes`, ``missing="box"``) and cut to the garment
(:func:`~patchkit.scenes.masks.garment_from_mask`).

:func:`texture_detection_rate` renders a tiled texture on every garment
(:func:`~patchkit.eot.cloth_render.render_cloth`, one batched pass per image batch, a seeded random
toroidal offset per person, the tile scaled to a physical repeat from each box height with
:func:`~patchkit.patches.texture.texture_scale`) and scores the detector against the labelled boxes
with the protocol's matching rule (greedy VOC, IoU >= 0.5; :mod:`patchkit.metrics.ap`).

:func:`random_texture` and :func:`gray_texture` are the controls.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torch import Tensor

from patchkit.detectors.letterbox import letterbox_params
from patchkit.device import module_device
from patchkit.errors import PatchkitError
from patchkit.eot.cloth_render import render_cloth
from patchkit.metrics.ap import match
from patchkit.patches.texture import random_offsets, texture_scale
from patchkit.scenes.masks import Garment, garment_from_mask, match_masks_to_boxes, read_instance_mask

__all__ = [
    "PENNFUDAN_SCENE",
    "gray_texture",
    "letterbox_masks",
    "load_masked_set",
    "random_texture",
    "render_textured",
    "texture_detection_rate",
]

PENNFUDAN_SCENE = Path(__file__).resolve().parents[2] / "scenes" / "pennfudan.yaml"


def random_texture(size: int, seed: int = 0) -> Tensor:
    """Control tile: ``(3, size, size)`` float32 uniform noise in [0, 1], seeded."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(3, size, size, generator=g)


def gray_texture(size: int, value: float = 0.5) -> Tensor:
    """Control tile: ``(3, size, size)`` float32 of constant ``value`` (in [0, 1])."""
    return torch.full((3, size, size), float(value))


def letterbox_masks(masks: Tensor, imgsz: int) -> Tensor:
    """Letterbox ``(K, H, W)`` bool masks to a square ``imgsz`` canvas with the geometry of
    :func:`~patchkit.detectors.letterbox.letterbox_params` (``mode="square"``, the scene loader's):
    nearest-neighbour resize to the same size, zero padding. Returns ``(K, imgsz, imgsz)`` bool."""
    k, h, w = masks.shape
    p = letterbox_params(h, w, imgsz, mode="square")
    oh, ow = p.out_hw
    out = torch.zeros(k, oh, ow, dtype=torch.bool)
    if k == 0:
        return out
    arr = masks.permute(1, 2, 0).numpy().astype(np.uint8)  # (H, W, K)
    if p.resizes:
        arr = cv2.resize(arr, p.new_wh, interpolation=cv2.INTER_NEAREST)
    arr = arr.reshape(p.new_wh[1], p.new_wh[0], k)
    out[:, p.pad_y:p.pad_y + p.new_wh[1], p.pad_x:p.pad_x + p.new_wh[0]] = torch.from_numpy(arr > 0).permute(2, 0, 1)
    return out


def _mask_path(image: Path) -> Path:
    return image.parent.parent / "masks" / f"{image.stem}_mask.png"


def load_masked_set(
    split: str = "test",
    imgsz: int = 640,
    limit: int = 0,
    garment: Garment = "both",
    scene: str | Path = PENNFUDAN_SCENE,
    edge: int = 5,
) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """Penn-Fudan photos with each labelled person's garment mask, on square letterboxed canvases.

    Args:
        split: scene split (``"train"`` or ``"test"``).
        imgsz: canvas side in pixels.
        limit: keep the first ``limit`` images (0 = all).
        garment: ``"upper"``, ``"lower"`` or ``"both"``.
        scene: scene YAML whose split has official labels and a ``masks`` folder beside ``images``.
        edge: soft-edge width in canvas pixels (odd), see :func:`garment_from_mask`.

    Returns:
        ``images`` ``(N, 3, S, S)`` uint8, ``boxes`` N x ``(M, 4)`` float xyxy canvas pixels,
        ``masks`` N x ``(M, S, S)`` float in [0, 1] (one garment mask per box, box order).
    """
    from patchkit.evaluation.runner import load_image_set  # noqa: PLC0415 (heavy import)

    scene = Path(scene)
    if not scene.is_file():
        raise PatchkitError("scene YAML not found", scene)
    try:
        images, boxes, paths = load_image_set(scene, split, "official", imgsz, 0, limit)
    except (PatchkitError, FileNotFoundError, OSError) as exc:
        raise PatchkitError(f"cannot load the Penn-Fudan '{split}' split ({str(exc).splitlines()[0]})", scene) from exc
    if boxes is None:
        raise PatchkitError(f"split '{split}' has no official labels", scene)
    mask_dir = _mask_path(Path(paths[0])).parent if paths else None
    if mask_dir is None or not mask_dir.is_dir():
        raise PatchkitError("instance mask folder not found", mask_dir)
    masks: list[Tensor] = []
    for path, b in zip(paths, boxes):
        path = Path(path)
        mpath = _mask_path(path)
        with Image.open(path) as im:
            w, h = im.size
        inst = letterbox_masks(read_instance_mask(mpath, (h, w)), imgsz)
        matched, _ = match_masks_to_boxes(inst, b, missing="box", path=mpath)
        masks.append(garment_from_mask(matched, b, garment, edge=edge))
    return images, boxes, masks


def _flatten(boxes: list[Tensor], masks: list[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """Concatenate per-image boxes and masks -> ``(P, 4)``, ``(P, S, S)``, batch index ``(P,)``."""
    if not boxes:
        return torch.zeros(0, 4), torch.zeros(0, 0, 0), torch.zeros(0, dtype=torch.long)
    idx = torch.cat([torch.full((len(b),), i, dtype=torch.long) for i, b in enumerate(boxes)])
    return torch.cat([b.reshape(-1, 4).float() for b in boxes]), torch.cat(masks).float(), idx


def render_textured(
    images: Tensor,
    boxes: list[Tensor],
    masks: list[Tensor],
    tile: Tensor,
    repeat_cm: float = 20.0,
    seed: int = 0,
    shading: bool = True,
    offsets: Tensor | None = None,
) -> Tensor:
    """Render ``tile`` on every person's garment of an image batch, one vectorised pass.

    Args:
        images: ``(B, 3, S, S)`` uint8 or float in [0, 1].
        boxes, masks: per image ``(M, 4)`` canvas px and ``(M, S, S)`` garment masks.
        tile: ``(3, T, T)`` in [0, 1].
        repeat_cm: printed repeat of the tile in cm (persons assumed 170 cm tall).
        seed: seeds the per-person toroidal offsets (ignored when ``offsets`` is given).
        shading: multiply by the photo's luminance ratio under each garment.
        offsets: ``(P, 2)`` tile-pixel offsets, one per person in image-then-box order.

    Returns:
        ``(B, 3, S, S)`` float in [0, 1].
    """
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    b, m, idx = _flatten(boxes, masks)
    n, t = b.shape[0], tile.shape[-1]
    if offsets is None:
        offsets = random_offsets(n, t, torch.Generator().manual_seed(seed))
    if n == 0:
        return x
    heights = (b[:, 3] - b[:, 1]).clamp_min(1.0)
    scale = texture_scale(heights, repeat_cm, t)
    dev = x.device
    with torch.no_grad():
        return render_cloth(x, tile.float().to(dev), m.to(dev), idx.to(dev), b.to(dev), offsets.to(dev),
                            scale.to(dev), shading=shading)


def texture_detection_rate(
    detector: torch.nn.Module,
    images: Tensor,
    boxes: list[Tensor],
    masks: list[Tensor],
    tile: Tensor,
    repeat_cm: float = 20.0,
    seed: int = 0,
    shading: bool = True,
    conf: float = 0.25,
    batch: int = 8,
    target_class: int = 0,
    iou: float = 0.45,
) -> dict:
    """Detection rate of the labelled persons wearing ``tile`` on their garments.

    Each person gets a random toroidal offset (one generator seeded by ``seed``, persons in
    image-then-box order, so a result does not depend on ``batch``); the tile is scaled so one
    repeat spans ``repeat_cm`` cm of a 170 cm person. Detections are matched to the labelled boxes
    greedily by confidence at IoU >= 0.5 (the protocol's VOC rule).

    Args:
        detector: a :class:`~patchkit.detectors.base.Detector` (``detect(images, conf, iou, classes)``).
        images: ``(N, 3, S, S)`` uint8 canvases. boxes, masks: from :func:`load_masked_set`.
        tile: ``(3, T, T)`` texture in [0, 1].
        repeat_cm: printed repeat in cm. seed: offset seed. shading: luminance shading.
        conf: confidence threshold of the detection rate. batch: images per forward pass.
        target_class: class id of persons. iou: NMS IoU.

    Returns:
        ``{"detection_rate", "ap50", "coverage", "n_images", "n_boxes"}``; rates are fractions in
        [0, 1]; ``ap50`` is all-point AP over detections at ``conf``; ``coverage`` is the mean over
        persons of the garment-mask mass over the box area.
    """
    n_img = images.shape[0]
    if len(boxes) != n_img or len(masks) != n_img:
        raise PatchkitError(f"{n_img} images but {len(boxes)} box lists and {len(masks)} mask lists")
    n_box = sum(len(b) for b in boxes)
    offsets = random_offsets(n_box, tile.shape[-1], torch.Generator().manual_seed(seed))
    dev = module_device(detector)
    dets = []
    start = 0
    for i in range(0, n_img, batch):
        bb, mm = boxes[i:i + batch], masks[i:i + batch]
        k = sum(len(b) for b in bb)
        x = render_textured(images[i:i + batch].to(dev), bb, mm, tile, repeat_cm, seed, shading,
                            offsets[start:start + k])
        start += k
        with torch.no_grad():
            dets += [d.to("cpu") for d in detector.detect(x, conf=conf, iou=iou, classes=[target_class])]
    table = match(dets, [b.reshape(-1, 4) for b in boxes], 0.5, "voc")
    cov = [(m.flatten(1).sum(1) / ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).clamp_min(1.0))
           for b, m in zip(boxes, masks) if len(b)]
    coverage = float(torch.cat(cov).mean()) if cov else float("nan")
    return {
        "detection_rate": float(table.detection_rate(conf, 0.5)) if n_box else float("nan"),
        "ap50": float(table.average_precision(0.5)) if n_box else float("nan"),
        "coverage": coverage,
        "n_images": int(n_img),
        "n_boxes": int(n_box),
    }
