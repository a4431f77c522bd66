"""Scenes from the layouts users already have: YOLO dataset folders, ultralytics dataset YAMLs and
COCO JSON, each on a small fixture made here; bad inputs are one line naming the file."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from patchkit.errors import PatchkitError
from patchkit.evaluation.runner import labels_available
from patchkit.scenes.scene import SceneConfig, load_scene

W, H = 200, 100  # image size; canvas 64 -> scale 0.32, vertical pad 16


def _image(path, shade=100):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (W, H), (shade, 80, 60)).save(path)


def _yolo_dataset(root):
    """root/images/{train,val}/*.png with root/labels/{train,val}/*.txt."""
    for split, n in (("train", 2), ("val", 1)):
        for i in range(n):
            _image(root / "images" / split / f"{split}{i}.png")
            (root / "labels" / split).mkdir(parents=True, exist_ok=True)
            (root / "labels" / split / f"{split}{i}.txt").write_text("0 0.5 0.5 0.5 0.8\n2 0.2 0.2 0.1 0.1\n")
    return root


def _expected_person():
    # cx 0.5, cy 0.5, w 0.5, h 0.8 of 200x100 -> (50, 10, 150, 90) px -> canvas (x 0.32, pad 16 in y)
    return torch.tensor([[50, 10, 150, 90]]) * 0.32 + torch.tensor([0, 16, 0, 16])


def test_a_yolo_dataset_folder_with_splits(tmp_path):
    root = _yolo_dataset(tmp_path / "ds")
    scene = load_scene(SceneConfig(path=str(root), split="val", labels="official", min_size=1), 64)
    assert [p.name for p in scene.paths] == ["val0.png"]
    torch.testing.assert_close(scene.boxes[0], _expected_person(), atol=0.5, rtol=0)
    assert labels_available(root, "val", None) == "official"
    # its images/ folder itself: the sibling labels/ are used
    direct = load_scene(SceneConfig(path=str(root / "images" / "train"), labels="official", min_size=1), 64)
    assert len(direct) == 2 and direct.n_boxes == 2
    assert labels_available(root / "images" / "train", "test", None) == "official"
    with pytest.raises(PatchkitError, match=r"no split 'test' in images/ \(available: train, val\)"):
        load_scene(SceneConfig(path=str(root), split="test", labels="official"), 64)


def test_an_ultralytics_dataset_yaml(tmp_path):
    root = _yolo_dataset(tmp_path / "ds")
    (root / "train.txt").write_text("images/train/train1.png\n")
    data = root / "data.yaml"
    data.write_text("path: .\ntrain: [train.txt]\nval: images/val\nnames: {0: person, 1: bicycle, 2: car}\n")
    val = load_scene(SceneConfig(path=str(data), split="val", labels="official", min_size=1), 64)
    torch.testing.assert_close(val.boxes[0], _expected_person(), atol=0.5, rtol=0)
    train = load_scene(SceneConfig(path=str(data), split="train", labels="official", min_size=1), 64)
    assert [p.name for p in train.paths] == ["train1.png"]
    assert labels_available(data, "val", None) == "official"
    with pytest.raises(PatchkitError, match=r"data\.yaml.*no split 'test'.*available: train, val"):
        load_scene(SceneConfig(path=str(data), split="test", labels="official"), 64)


def test_a_coco_json(tmp_path):
    for name in ("a.jpg", "b.jpg"):
        _image(tmp_path / "val2017" / name)
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": W, "height": H},
                   {"id": 2, "file_name": "b.jpg", "width": W, "height": H}],
        "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [50, 10, 100, 80], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 18, "bbox": [0, 0, 20, 20], "iscrowd": 0},
            {"id": 3, "image_id": 2, "category_id": 1, "bbox": [0, 0, 200, 100], "iscrowd": 1},
        ],
    }
    (tmp_path / "annotations").mkdir()
    ann = tmp_path / "annotations" / "instances_val2017.json"
    ann.write_text(json.dumps(doc))
    scene = load_scene(SceneConfig(path=str(ann), labels="official", min_size=1), 64, keep_empty=True)
    assert [p.name for p in scene.paths] == ["a.jpg", "b.jpg"]
    torch.testing.assert_close(scene.boxes[0], _expected_person(), atol=0.5, rtol=0)  # person only; dog is class 1
    assert scene.boxes[1].shape[0] == 0  # the crowd box is skipped
    dogs = load_scene(SceneConfig(path=str(ann), labels="official", classes=[1], min_size=1), 64)
    assert len(dogs) == 1 and dogs.n_boxes == 1
    assert labels_available(ann, "test", None) == "official"
    doc["images"].append({"id": 3, "file_name": "missing.jpg"})
    ann.write_text(json.dumps(doc))
    with pytest.raises(PatchkitError, match=r"instances_val2017\.json.*'missing\.jpg' not found"):
        load_scene(SceneConfig(path=str(ann), labels="official"), 64)
    ann.write_text("{not json")
    with pytest.raises(PatchkitError, match=r"instances_val2017\.json.*not a COCO annotation file"):
        load_scene(SceneConfig(path=str(ann), labels="official"), 64)


def test_official_labels_on_a_plain_folder_is_a_clear_error(tmp_path):
    _image(tmp_path / "photos" / "x.png")
    with pytest.raises(PatchkitError, match=r"photos.*no labels/ beside it"):
        load_scene(SceneConfig(path=str(tmp_path / "photos"), labels="official"), 64)
    assert labels_available(tmp_path / "photos", "test", None) is None
