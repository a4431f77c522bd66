"""Write toy-world datasets in YOLO format.

Layout (ultralytics' own): ``OUT/images/{train,val,test}/NNNNNN.jpg`` and
``OUT/labels/{split}/NNNNNN.txt`` (``class cx cy w h``, normalised), plus

- ``OUT/data.yaml``: the ultralytics dataset YAML (``train``/``val``/``test`` folders, ``names``);
  written last, so its presence marks a complete dataset;
- ``OUT/scene.yaml``: the same splits as a patchkit scene YAML (label set ``official``), usable
  as ``scene.path`` in training and evaluation configs;
- ``OUT/toyworld.json``: the seed, counts, generator settings and generation wall time (s).

Image ``i`` of split ``s`` is drawn from ``numpy.random.default_rng([seed, s, i])``, so every
image depends only on (seed, split, index): the same seed gives the same bytes, in any order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np
import yaml

from patchkit.config import to_dict
from patchkit.io import atomic_write_json, atomic_write_text
from patchkit.scenes.labels import format_yolo_labels
from patchkit.toyworld.compose import ToyImage, render_scene
from patchkit.toyworld.config import ToyWorldConfig, class_names

SPLITS = ("train", "val", "test")
_SPLIT_IDS = {"train": 0, "val": 1, "test": 2}


def split_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of image ``index`` of ``split``."""
    return np.random.default_rng([int(seed), _SPLIT_IDS[split], int(index)])


def render_split(split: str, n: int, seed: int = 0, cfg: ToyWorldConfig | None = None,
                 start: int = 0) -> Iterable[ToyImage]:
    """Images ``start .. start + n - 1`` of ``split``, rendered lazily (no files)."""
    cfg = cfg or ToyWorldConfig()
    for i in range(start, start + n):
        yield render_scene(split_rng(seed, split, i), cfg)


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """RGB uint8 -> JPEG bytes (OpenCV, deterministic)."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def fingerprint(split: str = "train", n: int = 4, seed: int = 0, cfg: ToyWorldConfig | None = None) -> str:
    """sha256 over the JPEG bytes and label text of the first ``n`` images of ``split``, as
    :func:`generate_dataset` writes them: a cheap check that the generator still reproduces a
    dataset (e.g. the toy detector's training data) byte for byte."""
    import hashlib

    h = hashlib.sha256()
    for item in render_split(split, n, seed, cfg):
        hh, ww = item.image.shape[:2]
        h.update(encode_jpeg(item.image, item.jpeg_quality))
        h.update(format_yolo_labels(item.classes, item.boxes, ww, hh).encode("utf-8"))
    return h.hexdigest()


@dataclass
class DatasetInfo:
    """What :func:`generate_dataset` wrote: ``root``, ``data_yaml`` (ultralytics), ``scene_yaml``
    (patchkit), image and box counts per split."""

    root: Path
    data_yaml: Path
    scene_yaml: Path
    images: dict[str, int]
    boxes: dict[str, int]


def same_dataset(root: str | Path, n_train: int, n_val: int, n_test: int, seed: int,
                 cfg: ToyWorldConfig | None = None) -> bool:
    """Whether ``root`` holds a complete dataset that :func:`generate_dataset` wrote with these
    counts, seed and settings (generation is deterministic, so it can be reused as is)."""
    import json

    info = Path(root) / "toyworld.json"
    if not (Path(root) / "data.yaml").is_file() or not info.is_file():
        return False
    try:
        have = json.loads(info.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    wanted = {"seed": seed, "images": {"train": n_train, "val": n_val, "test": n_test},
              "generator": to_dict(cfg or ToyWorldConfig())}
    return all(have.get(k) == v for k, v in wanted.items())


def generate_dataset(
    out: str | Path,
    n_train: int = 1000,
    n_val: int = 100,
    n_test: int = 200,
    seed: int = 0,
    cfg: ToyWorldConfig | None = None,
    progress: bool = False,
) -> DatasetInfo:
    """Render and write a YOLO-format toy-world dataset into ``out`` (see the module docstring).

    Existing files of the same names are overwritten; ``data.yaml`` is written last.
    """
    import time

    t0 = time.perf_counter()
    cfg = cfg or ToyWorldConfig()
    root = Path(out)
    counts = {"train": n_train, "val": n_val, "test": n_test}
    boxes: dict[str, int] = {}
    total = sum(counts.values())
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="toyworld", unit="img")
    for split, n in counts.items():
        img_dir, lbl_dir = root / "images" / split, root / "labels" / split
        img_dir.mkdir(parents=True, exist_ok=True)
        lbl_dir.mkdir(parents=True, exist_ok=True)
        boxes[split] = 0
        for i, item in enumerate(render_split(split, n, seed, cfg)):
            stem = f"{i:06d}"
            h, w = item.image.shape[:2]
            (img_dir / f"{stem}.jpg").write_bytes(encode_jpeg(item.image, item.jpeg_quality))
            (lbl_dir / f"{stem}.txt").write_text(format_yolo_labels(item.classes, item.boxes, w, h), encoding="utf-8")
            boxes[split] += len(item.boxes)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    names = class_names(cfg.label_distractors)
    scene = {
        "name": "toyworld",
        "root": ".",
        "names": names,
        "splits": {s: {"images": f"images/{s}", "labels": {"official": f"labels/{s}"}} for s in SPLITS if counts[s]},
    }
    atomic_write_text(root / "scene.yaml", "# patchkit scene: toy world (patchkit toyworld generate)\n" + yaml.safe_dump(scene, sort_keys=False))
    atomic_write_json(root / "toyworld.json", {"seed": seed, "images": counts, "boxes": boxes, "generator": to_dict(cfg),
                                               "seconds": round(time.perf_counter() - t0, 1)})
    data = {s: f"images/{s}" for s in SPLITS if counts[s]}
    data.setdefault("val", data.get("test", "images/train"))
    data["names"] = names
    atomic_write_text(root / "data.yaml", "# ultralytics dataset: toy world (patchkit toyworld generate)\n" + yaml.safe_dump(data, sort_keys=False))
    return DatasetInfo(root, root / "data.yaml", root / "scene.yaml", counts, boxes)
