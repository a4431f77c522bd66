"""Digital evaluation of adversarial clothing textures on masked persons (issue 15).

:func:`load_masked_set` loads Penn-Fudan photos letterboxed exactly as
:func:`~patchkit.evaluation.runner.load_image_set` does (square canvas), with each labelled
person's instance mask letterboxed the same way (same resize ratio and padding), matched to its
box (:func:`~patchkit.scenes.masks.match_masks_to_boxes`, ``missing="box"``) and cut to the garment
(:func:`~patchkit.scenes.masks.garment_from_mask`).

Any scene ``patchkit evaluate`` loads works the same way with a mask folder
(:func:`find_mask_file`, :func:`load_instance_masks`, :func:`garment_masks`): ultralytics polygon
label files ``{stem}.txt`` or instance-mask PNGs ``{stem}.png`` / ``{stem}_mask.png``; without a
mask folder the box-derived clothing region (:func:`~patchkit.scenes.masks.garment_region`, an
approximation) is used. :class:`TextureSetup` plugs texture rendering into
:func:`~patchkit.evaluation.runner.run_evaluation` (``patchkit evaluate`` on a texture: conditions
``clean``, ``random``, ``gray`` and each texture, scored by the patch metrics).

:func:`texture_detection_rate` renders a tiled texture on every garment
(:func:`~patchkit.eot.cloth_render.render_cloth`, one batched pass per image batch, a seeded random
toroidal offset per person, the tile scaled to a physical repeat from each box height with
:func:`~patchkit.patches.texture.texture_scale`) and scores the detector against the labelled boxes
with the protocol's matching rule (greedy VOC, IoU >= 0.5; :mod:`patchkit.metrics.ap`).

:func:`random_texture` and :func:`gray_texture` are the controls.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from patchkit.device import module_device
from patchkit.errors import PatchkitError
from patchkit.eot.cloth_render import render_cloth
from patchkit.metrics.ap import match
from patchkit.patches.texture import random_offsets, texture_scale
from patchkit.scenes.masks import Garment, MissingPolicy
from patchkit.scenes.scene_masks import (  # noqa: F401  (re-exported: evaluation's public names)
    find_mask_file,
    garment_masks,
    letterbox_masks,
    load_instance_masks,
)

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_TILE_CM",
    "PENNFUDAN_SCENE",
    "TextureSetup",
    "build_texture_conditions",
    "find_mask_file",
    "garment_masks",
    "gray_texture",
    "is_texture",
    "letterbox_masks",
    "load_instance_masks",
    "load_masked_set",
    "mask_coverage",
    "random_texture",
    "render_eot",
    "render_textured",
    "texture_detection_rate",
]

PENNFUDAN_SCENE = Path(__file__).resolve().parents[2] / "scenes" / "pennfudan.yaml"
#: Physical repeat of a texture tile when its sidecar has no ``tile_cm``.
DEFAULT_TILE_CM = 20.0


def random_texture(size: int, seed: int = 0) -> Tensor:
    """Control tile: ``(3, size, size)`` float32 uniform noise in [0, 1], seeded."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(3, size, size, generator=g)


def gray_texture(size: int, value: float = 0.5) -> Tensor:
    """Control tile: ``(3, size, size)`` float32 of constant ``value`` (in [0, 1])."""
    return torch.full((3, size, size), float(value))


def _mask_path(image: Path) -> Path:
    return image.parent.parent / "masks" / f"{image.stem}_mask.png"


def mask_coverage(boxes: Sequence[Tensor], masks: Sequence[Tensor]) -> float:
    """Mean over persons of the garment-mask mass over the box area (NaN without persons)."""
    cov = [(m.float().flatten(1).sum(1) / ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).clamp_min(1.0))
           for b, m in zip(boxes, masks) if len(b)]
    return float(torch.cat(cov).mean()) if cov else float("nan")


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
    instances, files = load_instance_masks(paths, imgsz, mask_dir)
    masks = garment_masks(instances, boxes, imgsz, garment, "box", edge, files, mask_dir, paths)
    return images, boxes, masks


def _unit_float(images: Tensor) -> Tensor:
    """uint8 images -> float in [0, 1]; float images as float."""
    return images.float() / 255.0 if images.dtype == torch.uint8 else images.float()


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
    x = _unit_float(images)
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


def render_eot(eot, images: Tensor, boxes: list[Tensor], masks: list[Tensor], tile: Tensor, tile_cm: float,
               seed: int) -> Tensor:
    """One EOT draw (a :class:`~patchkit.eot.texture_pipeline.TexturePipeline`, seeded by ``seed``)
    of ``tile`` worn by every person of an image batch; ``images`` uint8 or float in [0, 1],
    ``boxes`` / ``masks`` per image. Returns ``(B, 3, S, S)`` float in [0, 1]."""
    x = _unit_float(images)
    flat, m, idx = _flatten(boxes, masks)
    if flat.shape[0] == 0:
        return x
    dev = x.device
    with torch.no_grad():
        out, _ = eot(tile.float().to(dev), x, flat.to(dev), idx.to(dev), m.to(dev),
                     generator=torch.Generator().manual_seed(seed), tile_cm=tile_cm)
    return out


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
    eot=None,
    ap_conf: float | None = None,
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
        eot: a :class:`~patchkit.eot.texture_pipeline.TexturePipeline`: render one full EOT draw
            (seeded by ``seed`` and the batch) instead of the flat rendering.
        ap_conf: confidence of the detections AP is computed from (default ``conf``; the
            literature protocol uses 0.01).

    Returns:
        ``{"detection_rate", "ap50", "hallucinations_per_image", "coverage", "n_images", "n_boxes"}``;
        rates are fractions in [0, 1]; ``ap50`` is all-point AP over detections at ``ap_conf``;
        hallucinations are person boxes at ``conf`` matching no label, per image; ``coverage`` is
        the mean over persons of the garment-mask mass over the box area.
    """
    n_img = images.shape[0]
    if len(boxes) != n_img or len(masks) != n_img:
        raise PatchkitError(f"{n_img} images but {len(boxes)} box lists and {len(masks)} mask lists")
    n_box = sum(len(b) for b in boxes)
    offsets = random_offsets(n_box, tile.shape[-1], torch.Generator().manual_seed(seed))
    dev = module_device(detector)
    low = conf if ap_conf is None else min(ap_conf, conf)
    dets = []
    start = 0
    for i in range(0, n_img, batch):
        bb, mm = boxes[i:i + batch], masks[i:i + batch]
        k = sum(len(b) for b in bb)
        if eot is not None:
            x = render_eot(eot, images[i:i + batch].to(dev), bb, mm, tile, repeat_cm, seed * 7_919 + i)
        else:
            x = render_textured(images[i:i + batch].to(dev), bb, mm, tile, repeat_cm, seed, shading,
                                offsets[start:start + k])
        start += k
        with torch.no_grad():
            dets += [d.to("cpu") for d in detector.detect(x, conf=low, iou=iou, classes=[target_class])]
    table = match(dets, [b.reshape(-1, 4) for b in boxes], 0.5, "voc")
    coverage = mask_coverage(boxes, masks)
    return {
        "detection_rate": float(table.detection_rate(conf, 0.5)) if n_box else float("nan"),
        "ap50": float(table.average_precision(0.5)) if n_box else float("nan"),
        "hallucinations_per_image": float(table.hallucinations_per_image(conf, 0.5)),
        "coverage": coverage,
        "n_images": int(n_img),
        "n_boxes": int(n_box),
    }


# --------------------------------------------------------------------------------------------
# ``patchkit evaluate`` on textures


def is_texture(sidecar: dict) -> bool:
    """A sidecar's ``kind`` decides patch or texture (``"texture"``; anything else is a patch)."""
    return str(sidecar.get("kind", "patch")).lower() == "texture"


def tile_cm(sidecar: dict, path: str | Path | None = None) -> float:
    """The tile's physical repeat in cm from a texture sidecar (``tile_cm``; default 20)."""
    v = sidecar.get("tile_cm", DEFAULT_TILE_CM)
    try:
        v = float(v)
    except (TypeError, ValueError):
        v = float("nan")
    if not np.isfinite(v) or v <= 0:
        side = Path(path).with_suffix(".json") if path is not None else None
        raise PatchkitError(f"'tile_cm' must be a positive number of centimetres, got {sidecar.get('tile_cm')!r}",
                            side)
    return v


def build_texture_conditions(texture_paths: Sequence[str | Path], seed: int = 0):
    """``clean``, ``random`` (:func:`random_texture`, seeded), ``gray`` (:func:`gray_texture`) and
    one condition per texture (named by its stem), with warnings.

    Controls take the first texture's tile size and repeat; every texture keeps its sidecar's
    ``tile_cm``. Returns ``(conditions, warnings, repeat_cm)``, ``repeat_cm`` mapping each
    condition with a tile to its repeat in cm.
    """
    from patchkit.evaluation.conditions import Condition, load_patch, read_sidecar, trained_on, unique_name  # noqa: PLC0415

    warnings: list[str] = []
    textures = []
    repeat: dict[str, float] = {}
    used = {"clean", "random", "gray"}
    for p in texture_paths:
        tile, w = load_patch(p)
        warnings += w
        if tile.shape[-1] != tile.shape[-2]:
            raise PatchkitError(f"a texture tile must be square, got {tile.shape[-1]}x{tile.shape[-2]} pixels", p)
        side = read_sidecar(p)
        name = unique_name(p, used, warnings, "texture")
        repeat[name] = tile_cm(side, p)
        textures.append(Condition(name, tile, str(p), trained_on(side), side))
    size = textures[0].patch.shape[-1] if textures else 64
    first = repeat[textures[0].name] if textures else DEFAULT_TILE_CM
    repeat["random"] = repeat["gray"] = first
    controls = [Condition("clean"), Condition("random", random_texture(size, seed)), Condition("gray", gray_texture(size))]
    return [*controls, *textures], warnings, repeat


@dataclass
class TextureSetup:
    """Texture rendering for :func:`~patchkit.evaluation.runner.run_evaluation`: each condition's
    tile on every reference box's garment mask, instead of a pasted patch.

    Masks: ``instances`` (per image ``(K, S, S)`` bool from :func:`load_instance_masks`) matched
    to each reference's boxes (:func:`garment_masks`, policy ``missing``), or the box-derived
    region when ``instances`` is None. Sample ``k`` (``opts.samples`` renders per image) draws
    new per-person toroidal offsets from ``opts.seed + k``, shared by all conditions (paired).
    With ``eot`` (a :class:`~patchkit.eot.texture_pipeline.TexturePipeline`) every render is a
    full EOT draw instead (offset, repeat jitter, rotation, TPS, photometric and camera ops),
    seeded by ``(opts.seed, k, batch)`` and likewise shared by all conditions.

    Attributes:
        images: ``(N, 3, S, S)`` uint8 canvases.
        repeat_cm: condition name -> tile repeat in cm (:func:`build_texture_conditions`).
        opts: the :class:`~patchkit.evaluation.digital.EvalOptions` of the run.
        shading: multiply the texture by the photo's luminance under the garment.
    """

    images: Tensor
    instances: list[Tensor] | None
    repeat_cm: dict[str, float]
    opts: object
    garment: Garment = "both"
    missing: MissingPolicy = "box"
    edge: int = 5
    mask_files: list[Path | None] | None = None
    mask_dir: str | Path | None = None
    image_paths: list[Path] | None = None
    shading: bool = True
    eot: object = None
    _masks: dict = field(default_factory=dict, repr=False)
    _coverage: dict = field(default_factory=dict, repr=False)

    def _key(self, detector, ref_name: str) -> tuple:
        return (ref_name,) if ref_name == "labels" else (ref_name, id(detector))

    def masks_for(self, detector, ref_name: str, boxes: list[Tensor]) -> list[Tensor]:
        """Garment masks of a reference's boxes (computed once per reference; ``self`` per detector)."""
        key = self._key(detector, ref_name)
        if key not in self._masks:
            s = self.images.shape[-1]
            masks = garment_masks(self.instances, boxes, s, self.garment, self.missing, self.edge,
                                  self.mask_files, self.mask_dir, self.image_paths)
            self._coverage[key] = mask_coverage([b.reshape(-1, 4).float() for b in boxes], masks)
            self._masks[key] = [m.half() for m in masks]  # half the memory; rendered as float
        return self._masks[key]

    @torch.no_grad()
    def detect(self, detector, ref_name: str, boxes: list[Tensor], cond, sample: int, conf: float) -> list:
        """Detections with ``cond.patch`` (a tile) rendered on every box's garment, render ``sample``."""
        opts = self.opts
        masks = self.masks_for(detector, ref_name, boxes)
        tile = cond.patch
        n_box = sum(len(b) for b in boxes)
        offsets = random_offsets(n_box, tile.shape[-1], torch.Generator().manual_seed(int(opts.seed) + int(sample)))
        dev = module_device(detector)
        out = []
        start = 0
        for i in range(0, self.images.shape[0], opts.batch):
            bb, mm = boxes[i:i + opts.batch], masks[i:i + opts.batch]
            k = sum(len(b) for b in bb)
            repeat = self.repeat_cm.get(cond.name, DEFAULT_TILE_CM)
            if self.eot is not None:
                x = render_eot(self.eot, self.images[i:i + opts.batch].to(dev), bb, mm, tile, repeat,
                               (int(opts.seed) * 1_000_003 + int(sample)) * 7_919 + i)
            else:
                x = render_textured(self.images[i:i + opts.batch].to(dev), bb, mm, tile, repeat,
                                    shading=self.shading, offsets=offsets[start:start + k])
            start += k
            out += [d.to("cpu") for d in detector.detect(x, conf=conf, iou=opts.iou, classes=[opts.target_class])]
        return out

    def row_fields(self, detector, ref_name: str, condition: str) -> dict:
        """``kind`` and ``coverage`` (0 for clean; the garment masks' mean share of the box area
        otherwise, the same for every tile) and ``tile_cm`` of one result row."""
        key = self._key(detector, ref_name)
        cov = self._coverage.get(key, float("nan"))
        return {"kind": "texture", "coverage": 0.0 if condition == "clean" else cov,
                "tile_cm": self.repeat_cm.get(condition)}

    def meta(self) -> dict:
        return {
            "kind": "texture",
            "masks": None if self.instances is None else str(self.mask_dir),
            "mask_source": "box-derived clothing region (approximation)" if self.instances is None
            else "instance masks",
            "garment": self.garment,
            "missing_masks": self.missing,
            "tile_cm": {k: v for k, v in self.repeat_cm.items()},
            "shading": self.shading,
            "eot": None,
            "eot_samples": max(1, int(self.opts.samples)),
            "eot_mode": "per-person toroidal offsets, seed + k",
        }
