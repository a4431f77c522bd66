"""Garment masks for a loaded scene (clothing textures, issue 15).

:func:`attach_masks` finds each image's instance-mask file in a folder (by image stem:
``{stem}.txt`` ultralytics polygon labels, ``{stem}.png`` or Penn-Fudan's ``{stem}_mask.png``
instance PNGs), letterboxes the masks exactly as the scene's images were, gives each target box
the mask that overlaps it best (:func:`~patchkit.scenes.masks.match_masks_to_boxes`), cuts it to
the garment and stores it as ``Scene.masks`` (per image ``(M_i, S, S)`` uint8 alpha, box order).

Where a person or an image has no mask, the ``missing`` policy decides: ``box`` (warn with the
count and use the box-derived clothing region, an approximation), ``warn`` (warn; the person
wears no texture) or ``error`` (a one-line error naming the file).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from PIL import Image
from torch import Tensor

from patchkit.config import read_yaml
from patchkit.detectors.letterbox import letterbox_params
from patchkit.errors import PatchkitError
from patchkit.scenes.masks import (MISSING_POLICIES, Garment, MissingPolicy, garment_from_mask, garment_region,
                                   match_masks_to_boxes, read_masks)

log = logging.getLogger(__name__)

__all__ = ["MASK_NAMES", "attach_masks", "find_mask_file", "garment_masks", "letterbox_masks",
           "load_instance_masks", "resolve_mask_folder"]

#: Mask file names looked for, per image stem, in this order.
MASK_NAMES: tuple[str, ...] = ("{stem}.txt", "{stem}.png", "{stem}_mask.png")


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



def find_mask_file(mask_dir: str | Path, stem: str) -> Path | None:
    """The mask file of the image ``stem`` in ``mask_dir``: ``{stem}.txt`` (ultralytics polygon
    labels), ``{stem}.png`` or ``{stem}_mask.png`` (instance-mask PNG, Penn-Fudan's name), the
    first that exists; None when there is none."""
    for name in MASK_NAMES:
        path = Path(mask_dir) / name.format(stem=stem)
        if path.is_file():
            return path
    return None


def _image_hw(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            w, h = im.size
    except (OSError, ValueError) as exc:
        raise PatchkitError(f"cannot read image ({exc})", path) from exc
    return h, w


def load_instance_masks(
    image_paths: Sequence[str | Path],
    imgsz: int,
    mask_dir: str | Path,
    classes: Sequence[int] | None = (0,),
) -> tuple[list[Tensor], list[Path | None]]:
    """Every image's instance masks, letterboxed exactly as the images are (square ``imgsz``).

    Each image's mask file is found by stem (:func:`find_mask_file`) and read at the original
    image size with :func:`~patchkit.scenes.masks.read_masks` (polygon ``.txt`` files keep
    ``classes``; a polygon point outside the image is clipped with a warning naming the file; a
    mask PNG whose size is not its image's is a :class:`PatchkitError` naming the file).

    Returns:
        per image ``(K, imgsz, imgsz)`` bool (``(0, S, S)`` without a mask file), and the mask
        file of each image (None when there is none).
    """
    mask_dir = Path(mask_dir)
    if not mask_dir.is_dir():
        raise PatchkitError("mask folder not found", mask_dir)
    out: list[Tensor] = []
    files: list[Path | None] = []
    for path in map(Path, image_paths):
        mpath = find_mask_file(mask_dir, path.stem)
        files.append(mpath)
        if mpath is None:
            out.append(torch.zeros(0, imgsz, imgsz, dtype=torch.bool))
            continue
        out.append(letterbox_masks(read_masks(mpath, _image_hw(path), classes), imgsz))
    if image_paths and all(f is None for f in files):
        names = ", ".join(n.format(stem=Path(image_paths[0]).stem) for n in MASK_NAMES)
        raise PatchkitError(f"no mask file for any image (looked for e.g. {names})", mask_dir)
    return out, files


def garment_masks(
    instances: Sequence[Tensor] | None,
    boxes: Sequence[Tensor],
    imgsz: int,
    garment: Garment = "both",
    missing: MissingPolicy = "box",
    edge: int = 5,
    mask_files: Sequence[Path | None] | None = None,
    mask_dir: str | Path | None = None,
    image_paths: Sequence[str | Path] | None = None,
) -> list[Tensor]:
    """One garment mask per box, per image: ``(M, S, S)`` float in [0, 1], box order.

    With ``instances`` (from :func:`load_instance_masks`) each box gets its instance mask
    (:func:`~patchkit.scenes.masks.match_masks_to_boxes` with the ``missing`` policy; an image
    without a mask file counts all its boxes as missing) cut to the garment
    (:func:`~patchkit.scenes.masks.garment_from_mask`); boxes left without a mask are counted in
    one summary warning. Without ``instances`` (``None``) every box gets the box-derived clothing
    region (:func:`~patchkit.scenes.masks.garment_region`, an approximation).
    """
    if instances is None:
        return [garment_region(b.reshape(-1, 4).float(), (imgsz, imgsz), garment) for b in boxes]
    if len(instances) != len(boxes):
        raise PatchkitError(f"{len(instances)} mask sets but {len(boxes)} box lists")
    files = list(mask_files) if mask_files is not None else [None] * len(boxes)
    out: list[Tensor] = []
    lost = total = 0
    for i, (inst, b) in enumerate(zip(instances, boxes)):
        b = b.reshape(-1, 4).float()
        total += len(b)
        mpath = files[i]
        if mpath is None and len(b):
            if missing == "error":
                stem = Path(image_paths[i]).stem if image_paths is not None else f"image {i}"
                raise PatchkitError(f"no mask file for image '{stem}' with {len(b)} persons "
                                    f"(looked for {', '.join(n.format(stem=stem) for n in MASK_NAMES)})", mask_dir)
            lost += len(b)
            if missing == "box":
                matched = garment_region(b, (imgsz, imgsz), "both", softness=0.0) > 0
            else:
                matched = torch.zeros(len(b), imgsz, imgsz, dtype=torch.bool)
        else:
            matched, gone = match_masks_to_boxes(inst, b, missing=missing, path=mpath)
            lost += int(gone.numel())
        out.append(garment_from_mask(matched, b, garment, edge=edge))
    if lost:
        how = ("the box-derived clothing region is used for them (an approximation)" if missing == "box"
               else "they get no texture")
        where = f" in {mask_dir}" if mask_dir is not None else ""
        log.warning("%d of %d persons have no instance mask%s; %s", lost, total, where, how)
    return out


def resolve_mask_folder(masks: str, scene_path: str | Path, split: str) -> Path | None:
    """``scene.masks`` -> a folder: ``""`` none; ``auto`` the ``masks`` entry of the split in a
    patchkit scene YAML (else a ``masks`` folder beside the images' folder); else a folder path."""
    if not masks:
        return None
    if masks != "auto":
        folder = Path(masks)
        if not folder.is_dir():
            raise PatchkitError("mask folder not found (scene.masks)", folder)
        return folder
    path = Path(scene_path)
    if path.suffix.lower() in (".yaml", ".yml"):
        data = read_yaml(path)
        entry = ((data.get("splits") or {}).get(split) or {}).get("masks") if isinstance(data, dict) else None
        if entry:
            folder = (path.parent / str(data.get("root", ".")) / entry).resolve()
            if not folder.is_dir():
                raise PatchkitError(f"mask folder {folder} of split '{split}' not found", path)
            return folder
    raise PatchkitError(f"scene.masks=auto: split '{split}' names no 'masks' folder", path)


def attach_masks(scene, folder: Path, garment: str = "both", edge: int = 5, missing: str = "box",
                 classes: list[int] | None = None) -> None:
    """Set ``scene.masks`` (per image ``(M_i, S, S)`` uint8 garment alpha, box order) from the
    mask files in ``folder`` (:func:`load_instance_masks` then :func:`garment_masks`).

    Args:
        scene: a :class:`~patchkit.scenes.scene.Scene` (square canvases, boxes in canvas pixels).
        folder: instance masks: polygon ``.txt`` or instance-mask PNGs, one file per image stem.
        garment: ``upper`` | ``lower`` | ``both``. edge: soft-edge width in canvas pixels (odd).
        missing: ``box`` | ``warn`` | ``error`` for persons and images without a mask.
        classes: polygon classes kept from ``.txt`` files (default ``[0]``, persons).
    """
    if missing not in MISSING_POLICIES:
        raise PatchkitError(f"missing-mask policy must be one of {', '.join(MISSING_POLICIES)}, got {missing!r}")
    size = int(scene.images.shape[-1])
    instances, files = load_instance_masks(scene.paths, size, folder, classes or [0])
    alphas = garment_masks(instances, scene.boxes, size, garment, missing, edge, files, folder, scene.paths)
    scene.masks = [(a * 255).round().to(torch.uint8) for a in alphas]
