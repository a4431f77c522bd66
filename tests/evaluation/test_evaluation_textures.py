"""Clothing-texture evaluation (issue 15): masked Penn-Fudan set, rendering, detection rate."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from patchkit.errors import PatchkitError
from patchkit.evaluation.textures import (
    gray_texture,
    letterbox_masks,
    load_masked_set,
    random_texture,
    render_textured,
    texture_detection_rate,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
WEIGHTS = SHARED / "weights" / "yolov8n.pt"
needs_data = pytest.mark.skipif(
    not (SHARED / "pennfudan" / "test" / "masks").is_dir() or not WEIGHTS.is_file(),
    reason="../shared/data (Penn-Fudan masks, yolov8n) not available",
)


# ------------------------------------------------------------------ synthetic (no data needed)


def test_controls():
    g = gray_texture(16, 0.25)
    assert g.shape == (3, 16, 16) and torch.all(g == 0.25)
    r = random_texture(16, seed=1)
    assert r.shape == (3, 16, 16) and 0 <= r.min() and r.max() <= 1
    assert torch.equal(r, random_texture(16, seed=1)) and not torch.equal(r, random_texture(16, seed=2))


def test_letterbox_masks_geometry():
    m = torch.zeros(1, 100, 200, dtype=torch.bool)
    m[0, 40:60, 100:200] = True  # right half, middle rows
    out = letterbox_masks(m, 64)  # r = 0.32, content 64 x 32, pad_y = 16
    assert out.shape == (1, 64, 64)
    ys, xs = out[0].nonzero(as_tuple=True)
    assert xs.min() == 32 and xs.max() == 63
    assert 16 + 12 <= ys.min() and ys.max() <= 16 + 20


def test_synthetic_detection_rate(blue_detector, canvases):
    images, boxes = canvases(4)
    s = images.shape[-1]
    masks = []
    for b in boxes:  # garment = inner part of each red person box
        m = torch.zeros(len(b), s, s)
        for k, (x0, y0, x1, y1) in enumerate(b.int().tolist()):
            m[k, y0 + 20:y1 - 10, x0 + 5:x1 - 5] = 1.0
        masks.append(m)
    det = blue_detector(10.0)
    blue = torch.zeros(3, 8, 8)
    blue[2] = 1.0
    clean = texture_detection_rate(det, images, boxes, masks, gray_texture(8, 0.0), shading=False, conf=0.5, batch=3)
    assert clean["n_images"] == 4 and clean["n_boxes"] == 6
    assert clean["detection_rate"] == 1.0  # the red ring around a black garment keeps the full box
    hidden = texture_detection_rate(det, images, boxes, masks, blue, shading=False, conf=0.5, batch=3)
    assert hidden["detection_rate"] == 0.0
    untouched = texture_detection_rate(det, images, boxes, [m * 0 for m in masks], blue, conf=0.5)
    assert untouched["detection_rate"] == 1.0 and untouched["ap50"] == 1.0 and untouched["coverage"] == 0.0
    expected = sum(float(m.sum()) for m in masks) / 6 / (40 * 110)
    assert hidden["coverage"] == pytest.approx(expected, rel=1e-5)
    # same seed -> same pixels; batch size does not change the offsets
    a = render_textured(images, boxes, masks, random_texture(8), seed=3)
    assert torch.equal(a, render_textured(images, boxes, masks, random_texture(8), seed=3))
    assert not torch.equal(a, render_textured(images, boxes, masks, random_texture(8), seed=4))
    outside = (torch.stack([m.sum(0) for m in masks]) == 0)[:, None].expand_as(a)  # (B, 3, S, S)
    assert torch.equal(a[outside], images.float().div(255)[outside])


def test_mismatched_lists_raise(blue_detector, canvases):
    images, boxes = canvases(2)
    with pytest.raises(PatchkitError):
        texture_detection_rate(blue_detector(1.0), images, boxes[:1], [], gray_texture(4))


def test_missing_scene_is_one_line(tmp_path):
    with pytest.raises(PatchkitError) as e:
        load_masked_set(scene=tmp_path / "nope.yaml")
    assert "nope.yaml" in str(e.value) and "\n" not in str(e.value)


def test_missing_mask_folder_names_it(tmp_path):
    from PIL import Image

    root = tmp_path / "data" / "test"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    Image.new("RGB", (40, 80)).save(root / "images" / "a.png")
    (root / "labels" / "a.txt").write_text("0 0.5 0.5 0.5 0.8\n")
    scene = tmp_path / "s.yaml"
    scene.write_text("name: s\nroot: data\nnames: {0: person}\nsplits:\n  test:\n    images: test/images\n"
                     "    labels:\n      official: test/labels\n")
    with pytest.raises(PatchkitError) as e:
        load_masked_set(scene=scene, imgsz=64)
    assert "masks" in str(e.value) and "\n" not in str(e.value)


# ------------------------------------------------------------------ Penn-Fudan + yolov8n


@pytest.fixture(scope="module")
def pennfudan():
    return load_masked_set("test", imgsz=320, limit=4)


@pytest.fixture(scope="module")
def yolov8n():
    from patchkit.detectors import create_detector

    return create_detector(WEIGHTS, imgsz=320, letterbox="square")


@needs_data
def test_masks_line_up_with_boxes(pennfudan):
    images, boxes, masks = pennfudan
    assert images.shape == (4, 3, 320, 320) and images.dtype == torch.uint8
    for b, m in zip(boxes, masks):
        assert m.shape == (len(b), 320, 320) and 0 <= m.min() and m.max() <= 1
        for k, (x0, y0, x1, y1) in enumerate(b.round().int().tolist()):
            assert m[k].sum() > 0
            assert m[k, y0:y1, x0:x1].sum() / m[k].sum() >= 0.9  # the mass lies inside its box
            assert m[k, : y0 + int(0.17 * (y1 - y0)) - 1].sum() == 0  # no face


@needs_data
def test_gray_keeps_detection_and_coverage(pennfudan, yolov8n):
    images, boxes, masks = pennfudan
    r = texture_detection_rate(yolov8n, images, boxes, masks, gray_texture(64), shading=False)
    assert r["detection_rate"] >= 0.5
    assert 0.0 < r["coverage"] < 1.0
    assert r["n_boxes"] == sum(len(b) for b in boxes)


@needs_data
def test_rendering_seeded(pennfudan):
    images, boxes, masks = pennfudan
    tile = random_texture(64, seed=0)
    a = render_textured(images, boxes, masks, tile, seed=0)
    assert torch.equal(a, render_textured(images, boxes, masks, tile, seed=0))
    assert not torch.equal(a, render_textured(images, boxes, masks, tile, seed=1))
    assert not torch.equal(a, images.float() / 255)
