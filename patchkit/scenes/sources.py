"""Where a scene's images and boxes come from: every layout users already have.

``scene.path`` (and ``--scene``) may be:

- a patchkit scene YAML (``scenes/*.yaml``: ``root``, ``splits``, named label sets);
- an ultralytics dataset YAML (``path``, ``train``/``val``/``test``, ``names``): the split is
  ``scene.split``; each entry is an image folder, a ``.txt`` list of images, or a list of those;
  labels are found as ultralytics finds them (``.../images/...`` -> ``.../labels/....txt``);
- a YOLO dataset folder (``images/`` with ``labels/`` beside it, flat or with split subfolders
  ``images/train``...), or its ``images`` folder itself: the sibling labels are used;
- a COCO-format annotation JSON (``instances_*.json``): boxes from ``bbox``, classes numbered
  0, 1, ... in the order of the category ids (COCO's 80 classes: person = 0), images found beside
  the JSON (``file_name`` relative to the JSON's folder, its parent, ``../images`` or ``../<split>``);
- a plain image folder (with ``scene.labels`` a YOLO label folder, or ``self``).

``scene.labels``: ``self`` (the detector's own detections), a label set named in a patchkit scene
YAML, a YOLO label folder, or ``official``: the source's own labels (dataset YAML, YOLO folder,
COCO JSON).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from patchkit.config import read_yaml
from patchkit.errors import PatchkitError
from patchkit.io import list_images, list_images_recursive
from patchkit.scenes.labels import read_yolo_labels

#: ``reader(image_path, width, height) -> (classes (M,) long, boxes (M, 4) xyxy pixels)``
LabelReader = Callable[[Path, int, int], "tuple[Tensor, Tensor]"]
DATASET_SPLITS = ("train", "val", "test")


@dataclass
class SceneSource:
    """Images of one split and how to read their boxes (``labels`` None: self-labels or none)."""

    images: list[Path]
    labels: LabelReader | None
    origin: Path


def label_path(image: Path) -> Path:
    """ultralytics' rule: the last ``images`` folder of the path becomes ``labels``, suffix ``.txt``."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")


def _yolo_reader(image: Path, w: int, h: int) -> tuple[Tensor, Tensor]:
    return read_yolo_labels(label_path(image), w, h)


def _folder_reader(folder: Path) -> LabelReader:
    return lambda image, w, h: read_yolo_labels(folder / f"{image.stem}.txt", w, h)


def is_dataset_yaml(data: object) -> bool:
    return isinstance(data, dict) and "splits" not in data and any(k in data for k in DATASET_SPLITS)


def _dataset_yaml(path: Path, data: dict, split: str, labels: str) -> SceneSource:
    available = [k for k in DATASET_SPLITS if data.get(k)]
    if not data.get(split):
        raise PatchkitError(f"no split '{split}' in this dataset YAML (available: {', '.join(available) or 'none'})", path)
    root = Path(data.get("path") or ".")
    root = root if root.is_absolute() else (path.parent / root)
    entries = data[split] if isinstance(data[split], list) else [data[split]]
    images: list[Path] = []
    for entry in entries:
        p = Path(str(entry))
        p = p if p.is_absolute() else root / p
        if p.is_dir():
            images += list_images_recursive(p)
        elif p.is_file() and p.suffix == ".txt":
            for line in p.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    q = Path(line.strip())
                    images.append(q if q.is_absolute() else (root / q).resolve())
        else:
            raise PatchkitError(f"split '{split}': {p} is neither an image folder nor a .txt list", path)
    return SceneSource(images, _own_labels(labels, _yolo_reader, path), path)


def _own_labels(labels: str, reader: LabelReader, origin: Path) -> LabelReader | None:
    if labels == "self":
        return None
    if labels in ("official", "labels"):
        return reader
    folder = Path(labels)
    if folder.is_dir():
        return _folder_reader(folder)
    raise PatchkitError(f"unknown labels '{labels}' for this source (use 'official', 'self' or a label folder)", origin)


def _yolo_folder(path: Path, split: str, labels: str) -> SceneSource | None:
    """A YOLO dataset folder (``images/`` + ``labels/``) or its ``images`` folder; None otherwise."""
    images_dir = path / "images"
    if images_dir.is_dir():
        splits = sorted(d.name for d in images_dir.iterdir() if d.is_dir())
        if splits and not list_images(images_dir):
            if split not in splits:
                raise PatchkitError(f"no split '{split}' in images/ (available: {', '.join(splits)})", path)
            images_dir = images_dir / split
        return SceneSource(list_images_recursive(images_dir), _own_labels(labels, _yolo_reader, path), path)
    if labels != "self" and _sibling_labels(path) is not None and not Path(labels).is_dir():
        return SceneSource(list_images(path), _own_labels(labels, _yolo_reader, path), path)
    return None


def _sibling_labels(folder: Path) -> Path | None:
    """``.../labels/...`` beside an ``.../images/...`` folder, when it exists."""
    if "images" not in folder.parts:
        return None
    labels = label_path(folder / "x.png").parent
    return labels if labels.is_dir() else None


def _coco_json(path: Path, split: str, labels: str) -> SceneSource:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        cats = sorted(int(c["id"]) for c in data.get("categories", []))
        index = {cid: k for k, cid in enumerate(cats)}
        by_image: dict[int, list] = {}
        for a in data.get("annotations", []):
            if a.get("iscrowd", 0):
                continue
            by_image.setdefault(int(a["image_id"]), []).append((index[int(a["category_id"])], a["bbox"]))
        records = [(int(im["id"]), str(im["file_name"])) for im in data["images"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PatchkitError(f"not a COCO annotation file ({type(exc).__name__}: {exc})", path) from exc
    stem = path.stem.split("instances_")[-1]
    roots = [path.parent, path.parent.parent, path.parent.parent / "images", path.parent.parent / stem,
             path.parent.parent / "images" / stem, path.parent / "images"]
    images, boxes_of = [], {}
    for image_id, name in records:
        found = next((r / name for r in roots if (r / name).is_file()), None)
        if found is None:
            raise PatchkitError(f"image '{name}' not found beside the JSON (looked in {', '.join(str(r) for r in roots[:4])}...)", path)
        images.append(found)
        boxes_of[found] = by_image.get(image_id, [])

    def reader(image: Path, w: int, h: int) -> tuple[Tensor, Tensor]:
        anns = boxes_of.get(image, [])
        if not anns:
            return torch.zeros(0, dtype=torch.long), torch.zeros(0, 4)
        cls = torch.tensor([c for c, _ in anns], dtype=torch.long)
        xywh = torch.tensor([b for _, b in anns], dtype=torch.float32).view(-1, 4)
        xyxy = torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dim=1)
        return cls, xyxy.clamp_(min=0).minimum(torch.tensor([w, h, w, h], dtype=torch.float32))

    return SceneSource(images, _own_labels(labels, reader, path), path)


def resolve_source(path: str | Path, split: str, labels: str,
                   scene_yaml: Callable[[Path, dict], SceneSource]) -> SceneSource:
    """The images and label reader of ``path`` for ``split`` (see the module doc).

    ``scene_yaml`` resolves patchkit's own scene YAMLs (given the path and the parsed YAML)."""
    path = Path(path)
    if path.is_dir():
        yolo = _yolo_folder(path, split, labels)
        if yolo is not None:
            return yolo
        if labels in ("official", "labels"):
            raise PatchkitError(f"labels '{labels}' asked for, but this image folder has no labels/ beside it "
                                "(pass a YOLO label folder, or 'self')", path)
        return SceneSource(list_images(path), _own_labels(labels, _folder_reader(path), path), path)
    if not path.exists():
        raise PatchkitError("scene not found (expected a scene YAML, dataset YAML, COCO JSON or image folder)", path)
    if path.suffix.lower() == ".json":
        return _coco_json(path, split, labels)
    data = read_yaml(path)
    if is_dataset_yaml(data):
        return _dataset_yaml(path, data, split, labels)
    return scene_yaml(path, data)


def has_own_labels(path: str | Path, split: str) -> bool:
    """Whether ``path`` brings its own labels (dataset YAML, YOLO dataset folder, COCO JSON)."""
    path = Path(path)
    try:
        if path.is_dir():
            return (path / "images").is_dir() or _sibling_labels(path) is not None
        if path.suffix.lower() == ".json":
            return True
        if path.suffix.lower() in (".yaml", ".yml") and path.is_file():
            return is_dataset_yaml(read_yaml(path))
    except PatchkitError:
        return False
    return False
