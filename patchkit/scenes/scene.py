"""Scenes: images + target boxes, letterboxed once into square training canvases.

A scene comes from a scene YAML (``scenes/*.yaml``: a root folder, splits, named label sets), an
ultralytics dataset YAML, a YOLO dataset folder, a COCO JSON or a plain image folder (see
:mod:`patchkit.scenes.sources`). Target boxes come from YOLO-format labels (e.g. the official ones) or from the
clean detector itself ("self-labels", as adversarial-yolo does). Boxes are filtered by class,
minimum size and maximum count per image; images left without target boxes are dropped from the
attack set (they otherwise collapse the patch to the printability term).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from patchkit.config import from_dict
from patchkit.detectors.letterbox import boxes_to_letterbox, letterbox
from patchkit.errors import PatchkitError
from patchkit.io import list_images, read_image
from patchkit.scenes.labels import read_yolo_labels
from patchkit.scenes.sources import SceneSource, resolve_source


@dataclass
class SceneConfig:
    """Where the training images and target boxes come from.

    Attributes:
        path: a scene YAML (``scenes/pennfudan.yaml``) or an image folder.
        split: split name inside a scene YAML (ignored for a folder).
        labels: ``"self"`` (the clean detector's own detections at ``self_label_conf``), a label
            set named in the scene YAML (``"official"``, ``"yolov5n"``), or a folder of YOLO labels.
        self_label_conf: confidence threshold for self-labels, in [0, 1].
        classes: target class ids; other boxes are ignored.
        min_size: minimum box side in pixels of the letterboxed canvas.
        max_boxes: keep at most this many target boxes per image (largest first).
        max_images: use at most this many images (0 = all), in sorted order.
        masks: person instance masks for clothing textures: ``""`` none (box-derived clothing
            regions), ``auto`` (the split's ``masks`` folder in a scene YAML) or a folder of
            ultralytics polygon labels / instance-mask PNGs (see :mod:`patchkit.scenes.scene_masks`).
        missing_masks: ``box`` | ``warn`` | ``error``: a person or image without a mask.
    """

    path: str = "scenes/pennfudan.yaml"
    split: str = "train"
    labels: str = "self"
    self_label_conf: float = 0.4
    classes: list[int] = field(default_factory=lambda: [0])
    min_size: float = 8.0
    max_boxes: int = 16
    max_images: int = 0
    masks: str = ""
    missing_masks: str = "box"

    def validate(self) -> None:
        if not 0.0 <= self.self_label_conf <= 1.0:
            raise ValueError("scene.self_label_conf must be in [0, 1]")
        if self.max_boxes < 1:
            raise ValueError("scene.max_boxes must be >= 1")
        if self.missing_masks not in ("box", "warn", "error"):
            raise ValueError(f"scene.missing_masks must be box, warn or error, got {self.missing_masks!r}")


@dataclass
class SceneSpec:
    """A scene YAML file, parsed: ``root``, ``names`` and ``splits`` (each with ``images`` and
    named ``labels`` folders). Paths are resolved relative to the YAML file."""

    name: str = ""
    root: str = "."
    names: dict = field(default_factory=dict)
    splits: dict = field(default_factory=dict)


@dataclass
class Scene:
    """Letterboxed images with their target boxes.

    Attributes:
        images: ``(N, 3, S, S)`` uint8 square canvases (gray-114 padding), S = ``imgsz``.
        boxes: N tensors ``(M_i, 4)`` float xyxy target boxes in canvas pixels.
        paths: source image paths.
        scales: ``(N, 2)`` per-axis resize ratios (x, y); canvas = original * scale + pad.
        pads: ``(N, 2)`` gray padding (x, y) in canvas pixels.
        masks: for clothing textures, N tensors ``(M_i, S, S)`` uint8: the garment alpha of each
            target box (0 = none, 255 = full, soft edges in between), in box order; ``None`` when
            the scene has no masks (textures then use the box-derived clothing region); an entry
            may be ``None`` (that image's persons use the box-derived region).
    """

    images: Tensor
    boxes: list[Tensor]
    paths: list[Path]
    scales: Tensor
    pads: Tensor
    masks: list[Tensor] | None = None

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def n_boxes(self) -> int:
        return int(sum(b.shape[0] for b in self.boxes))

    @classmethod
    def from_canvases(cls, images: Tensor, boxes: list[Tensor], name: str = "canvas",
                      masks: list[Tensor] | None = None) -> "Scene":
        """A scene from already square uint8 canvases ``(N, 3, S, S)`` and per-image boxes in
        canvas pixels (identity letterbox), e.g. synthetic or rendered images; ``masks`` as the
        attribute (per image ``(M_i, S, S)`` uint8 garment alpha, box order)."""
        n = images.shape[0]
        paths = [Path(f"{name}_{i}") for i in range(n)]
        return cls(images, list(boxes), paths, torch.ones(n, 2), torch.zeros(n, 2),
                   list(masks) if masks is not None else None)

    @classmethod
    def concat(cls, scenes: list["Scene"]) -> "Scene":
        """One scene from several letterboxed at the same canvas size (images in order)."""
        sizes = {tuple(s.images.shape[-2:]) for s in scenes}
        if len(sizes) != 1:
            raise PatchkitError(f"scenes to join have different canvas sizes: {sorted(sizes)}")
        masks = None
        if any(s.masks is not None for s in scenes):  # a scene without masks gets empty ones (box regions)
            masks = [m for s in scenes for m in (s.masks if s.masks is not None else [None] * len(s))]
        return cls(
            torch.cat([s.images for s in scenes]),
            [b for s in scenes for b in s.boxes],
            [p for s in scenes for p in s.paths],
            torch.cat([s.scales for s in scenes]),
            torch.cat([s.pads for s in scenes]),
            masks,
        )

    def subset(self, indices: list[int]) -> "Scene":
        return Scene(
            self.images[indices],
            [self.boxes[i] for i in indices],
            [self.paths[i] for i in indices],
            self.scales[indices],
            self.pads[indices],
            [self.masks[i] for i in indices] if self.masks is not None else None,
        )

    def batch_boxes(self, indices: Tensor) -> tuple[Tensor, Tensor]:
        """Boxes ``(N, 4)`` of the images ``indices`` and ``batch_idx (N,)`` (position in ``indices``)."""
        boxes = [self.boxes[i] for i in indices.tolist()]
        counts = torch.tensor([b.shape[0] for b in boxes], dtype=torch.long)
        batch_idx = torch.repeat_interleave(torch.arange(len(boxes)), counts)
        flat = torch.cat(boxes) if boxes else torch.zeros(0, 4)
        return flat, batch_idx

    def batch_masks(self, indices: Tensor, garment: str = "both", softness: float = 0.05) -> Tensor | None:
        """Garment alpha ``(N, S, S)`` uint8 (255 = full) of the boxes of ``indices`` (the order
        of :meth:`batch_boxes`), or None when the scene has no masks; an image without masks gets
        the box-derived clothing region of ``garment`` with ``softness`` (see
        :func:`~patchkit.scenes.masks.garment_region`), as a scene without any masks would."""
        if self.masks is None:
            return None
        from patchkit.scenes.masks import garment_region  # noqa: PLC0415 (cv2 import only for textures)

        size = tuple(self.images.shape[-2:])
        parts = [self.masks[i] if self.masks[i] is not None
                 else (garment_region(self.boxes[i], size, garment, softness) * 255).round().to(torch.uint8)
                 for i in indices.tolist()]
        return torch.cat(parts) if parts else torch.zeros(0, *size, dtype=torch.uint8)

    def batch(self, indices: Tensor, memory_format: torch.memory_format = torch.contiguous_format
              ) -> tuple[Tensor, Tensor, Tensor]:
        """Images ``(B, 3, S, S)`` float in [0, 1] in ``memory_format`` (the layout is changed on
        the uint8 pixels, a quarter of the float copy), boxes ``(N, 4)`` and ``batch_idx (N,)``."""
        images = self.images[indices].contiguous(memory_format=memory_format).float().div_(255.0)
        return (images, *self.batch_boxes(indices))


def _scene_yaml_source(cfg: SceneConfig, path: Path, data: dict) -> SceneSource:
    """A patchkit scene YAML's split -> its images and label reader."""
    spec = from_dict(SceneSpec, data, source=str(path))
    root = (path.parent / spec.root).resolve()
    if cfg.split not in spec.splits:
        raise PatchkitError(
            f"no split '{cfg.split}' (available: {', '.join(spec.splits) or 'none'})", path
        )
    split = spec.splits[cfg.split]
    if not isinstance(split, dict) or "images" not in split:
        raise PatchkitError(f"split '{cfg.split}' must have an 'images' folder", path)
    images = root / split["images"]
    if not images.is_dir():
        raise PatchkitError(f"image folder {images} of split '{cfg.split}' not found", path)
    if cfg.labels == "self":
        return SceneSource(list_images(images), None, path)
    label_sets = split.get("labels", {}) or {}
    if cfg.labels in label_sets:
        folder = root / label_sets[cfg.labels]
    elif Path(cfg.labels).is_dir():
        folder = Path(cfg.labels)
    else:
        raise PatchkitError(
            f"unknown label set '{cfg.labels}' (split '{cfg.split}' has: "
            f"{', '.join(label_sets) or 'none'}; or use 'self' or a folder)",
            path,
        )
    if not folder.is_dir():
        raise PatchkitError("label folder not found", folder)
    return SceneSource(list_images(images), lambda p, w, h: read_yolo_labels(folder / f"{p.stem}.txt", w, h), path)


def scene_source(cfg: SceneConfig) -> SceneSource:
    """Images and label reader of a scene config, from any supported layout
    (:mod:`patchkit.scenes.sources`)."""
    return resolve_source(cfg.path, cfg.split, cfg.labels, lambda p, data: _scene_yaml_source(cfg, p, data))


def _filter_boxes(boxes: Tensor, cfg: SceneConfig) -> Tensor:
    wh = boxes[:, 2:] - boxes[:, :2]
    boxes = boxes[(wh >= cfg.min_size).all(dim=1)]
    if boxes.shape[0] > cfg.max_boxes:
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        boxes = boxes[area.argsort(descending=True)[: cfg.max_boxes]]
    return boxes


def load_scene(cfg: SceneConfig, imgsz: int, detector=None, keep_empty: bool = False) -> Scene:
    """Load, letterbox (square ``imgsz``) and label a scene.

    Args:
        cfg: the scene config.
        imgsz: canvas side in pixels.
        detector: a :class:`~patchkit.detectors.base.Detector`, needed for self-labels.
        keep_empty: keep images without target boxes (evaluation wants them; training doesn't).
    """
    source = scene_source(cfg)
    paths = source.images[: cfg.max_images] if cfg.max_images else source.images
    if not paths:
        raise PatchkitError(f"scene has no images (split '{cfg.split}')", source.origin)
    self_label = source.labels is None
    canvases, boxes, scales, pads = [], [], [], []
    targets = set(cfg.classes)
    for p in paths:
        arr = read_image(p)
        h, w = arr.shape[:2]
        img = torch.from_numpy(arr).permute(2, 0, 1).float().div_(255.0).unsqueeze(0)
        canvas, params = letterbox(img, imgsz, mode="square")
        canvases.append(canvas[0].mul(255).round_().clamp_(0, 255).to(torch.uint8))
        scales.append([params.scale_x, params.scale_y])
        pads.append([params.pad_x, params.pad_y])
        if source.labels is not None:
            cls, b = source.labels(p, w, h)
            keep = torch.tensor([int(c) in targets for c in cls.tolist()], dtype=torch.bool)
            boxes.append(boxes_to_letterbox(b[keep], params))
    images = torch.stack(canvases)
    if self_label:
        if detector is None:
            raise PatchkitError("self-labels need a detector (scene.labels=self)")
        boxes = self_labels(detector, images, cfg.self_label_conf, cfg.classes)
    boxes = [_filter_boxes(b, cfg) for b in boxes]
    scene = Scene(images, boxes, paths, torch.tensor(scales), torch.tensor(pads, dtype=torch.float32))
    if not keep_empty:
        keep = [i for i, b in enumerate(boxes) if b.shape[0] > 0]
        if not keep:
            raise PatchkitError(f"scene has no target boxes of classes {cfg.classes}", source.origin)
        scene = scene.subset(keep)
    return scene


@torch.no_grad()
def self_labels(
    detector, images: Tensor, conf: float, classes: list[int], batch_size: int = 8
) -> list[Tensor]:
    """The clean detector's own boxes on uint8 canvases ``(N, 3, S, S)``: a list of ``(M_i, 4)``."""
    out: list[Tensor] = []
    device = next(detector.parameters()).device
    for start in range(0, images.shape[0], batch_size):
        batch = images[start : start + batch_size].to(device).float().div_(255.0)
        for det in detector.detect(batch, conf=conf, iou=0.45, classes=list(classes)):
            out.append(det.xyxy.cpu())
    return out
