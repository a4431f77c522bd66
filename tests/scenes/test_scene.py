import numpy as np
import pytest
import torch
from PIL import Image

from patchkit.errors import PatchkitError
from patchkit.scenes.scene import SceneConfig, load_scene


def _folder(tmp_path, sizes=((100, 50), (80, 80), (60, 120))):
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate(sizes):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(images / f"im{i}.png")
    (labels / "im0.txt").write_text("0 0.5 0.5 0.4 0.8\n1 0.2 0.2 0.1 0.1\n")
    (labels / "im1.txt").write_text("2 0.5 0.5 0.5 0.5\n")  # no person: dropped for training
    (labels / "im2.txt").write_text("0 0.5 0.5 0.5 0.5\n0 0.5 0.5 0.05 0.05\n")  # one too small
    return images, labels


def test_folder_scene_letterboxes_and_filters(tmp_path):
    images, labels = _folder(tmp_path)
    scene = load_scene(SceneConfig(path=str(images), labels=str(labels), min_size=8), imgsz=64)
    assert len(scene) == 2 and scene.images.shape == (2, 3, 64, 64) and scene.images.dtype == torch.uint8
    # im0: 100x50 -> scale 0.64, 64x32 content, 16 px of padding on top
    torch.testing.assert_close(scene.boxes[0], torch.tensor([[19.2, 19.2, 44.8, 44.8]]), atol=0.2, rtol=0)
    assert scene.boxes[1].shape == (1, 4)  # the 3 px box is gone
    assert (scene.images[0, :, :10].float() - 114).abs().max() <= 1  # gray padding
    imgs, boxes, batch_idx = scene.batch(torch.tensor([1, 0]))
    assert imgs.dtype == torch.float32 and imgs.max() <= 1 and batch_idx.tolist() == [0, 1]
    assert len(load_scene(SceneConfig(path=str(images), labels=str(labels)), 64, keep_empty=True)) == 3


def test_max_boxes_keeps_largest(tmp_path):
    images, labels = _folder(tmp_path)
    (labels / "im2.txt").write_text("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.6 0.6\n0 0.5 0.5 0.4 0.4\n")
    scene = load_scene(SceneConfig(path=str(images), labels=str(labels), max_boxes=1, min_size=1), 64)
    wh = scene.boxes[-1][:, 2:] - scene.boxes[-1][:, :2]
    assert scene.boxes[-1].shape[0] == 1 and wh[0, 1] > 0.55 * 64


def test_bad_inputs_are_one_line_errors(tmp_path):
    images, labels = _folder(tmp_path)
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(PatchkitError, match="broken.png"):
        load_scene(SceneConfig(path=str(images), labels=str(labels)), 64)
    (images / "broken.png").unlink()
    (labels / "im0.txt").write_text("0 0.5 0.5\n")
    with pytest.raises(PatchkitError, match=r"im0.txt.*line 1"):
        load_scene(SceneConfig(path=str(images), labels=str(labels)), 64)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PatchkitError, match="no images"):
        load_scene(SceneConfig(path=str(empty), labels=str(labels)), 64)
    with pytest.raises(PatchkitError, match="not found"):
        load_scene(SceneConfig(path=str(tmp_path / "nope.yaml")), 64)
    (labels / "im0.txt").write_text("")
    (labels / "im2.txt").write_text("")
    with pytest.raises(PatchkitError, match="no target boxes"):
        load_scene(SceneConfig(path=str(images), labels=str(labels)), 64)


def test_scene_yaml_unknown_label_set(tmp_path):
    with pytest.raises(PatchkitError, match="unknown label set 'oficial'"):
        load_scene(SceneConfig(path="scenes/pennfudan.yaml", labels="oficial"), 64)


def test_pennfudan_official_labels(shared_data):
    scene = load_scene(SceneConfig(path="scenes/pennfudan.yaml", split="test", labels="official", min_size=0, max_boxes=99), 416)
    assert len(scene) == 56 and scene.n_boxes == 142
