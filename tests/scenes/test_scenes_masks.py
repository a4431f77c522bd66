"""Instance masks (Penn-Fudan PNGs, ultralytics polygons), matching to boxes, garment regions."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from patchkit.errors import PatchkitError
from patchkit.scenes.labels import read_yolo_labels
from patchkit.scenes.masks import (
    HEAD_FRACTION,
    WAIST_FRACTION,
    garment_from_mask,
    garment_region,
    match_masks_to_boxes,
    mask_boxes,
    read_instance_mask,
    read_masks,
    read_polygon_labels,
    rasterize_polygons,
)

REPO = Path(__file__).resolve().parents[2]
PENNFUDAN = Path(os.environ.get("PATCHKIT_SHARED", REPO.parent / "shared")) / "data" / "pennfudan"
LOGGER = "patchkit.scenes.masks"


@pytest.fixture(scope="module")
def pennfudan() -> Path:
    if not (PENNFUDAN / "train" / "masks").is_dir():
        pytest.skip("../shared/data/pennfudan is absent")
    return PENNFUDAN


def _write_mask(path: Path, arr: np.ndarray) -> Path:
    Image.fromarray(arr.astype(np.uint8), mode="L").save(path)
    return path


# ---------------------------------------------------------------------------- Penn-Fudan masks


@pytest.mark.parametrize("split, stem", [("train", "FudanPed00001"), ("train", "FudanPed00058"), ("test", "PennPed00019")])
def test_pennfudan_masks_match_the_official_boxes(pennfudan, split, stem):
    root = pennfudan / split
    w, h = Image.open(root / "images" / f"{stem}.png").size
    masks = read_instance_mask(root / "masks" / f"{stem}_mask.png", (h, w))
    _, boxes = read_yolo_labels(root / "labels" / f"{stem}.txt", w, h)
    assert masks.dtype == torch.bool and masks.shape == (boxes.shape[0], h, w)
    assert (masks.flatten(1).sum(1) > 0).all()
    assert masks.sum(0).max() <= 1  # instances are disjoint
    matched, missing = match_masks_to_boxes(masks, boxes)
    assert missing.numel() == 0
    assert torch.equal(matched, masks)  # Penn-Fudan lists instances in label order
    # each mask's bounding box is (almost) its official box
    torch.testing.assert_close(mask_boxes(masks), boxes, atol=6.0, rtol=0)


def test_instance_mask_size_mismatch_names_the_file(tmp_path):
    f = _write_mask(tmp_path / "a_mask.png", np.zeros((20, 30)))
    with pytest.raises(PatchkitError, match=r"a_mask\.png: mask is 30x20 px but its image is 40x20") as info:
        read_instance_mask(f, (20, 40))
    assert "\n" not in str(info.value)


def test_instance_mask_ids_and_bad_files(tmp_path):
    arr = np.zeros((10, 12))
    arr[1:4, 1:4] = 1
    arr[5:9, 6:11] = 3  # ids need not be consecutive
    masks = read_instance_mask(_write_mask(tmp_path / "m.png", arr), (10, 12))
    assert masks.shape == (2, 10, 12) and masks[0].sum() == 9 and masks[1].sum() == 20
    assert read_instance_mask(_write_mask(tmp_path / "e.png", np.zeros((10, 12))), (10, 12)).shape == (0, 10, 12)
    Image.new("RGB", (12, 10)).save(tmp_path / "rgb.png")
    with pytest.raises(PatchkitError, match=r"rgb\.png: expected a single-channel"):
        read_instance_mask(tmp_path / "rgb.png", (10, 12))
    with pytest.raises(PatchkitError, match=r"none\.png: mask file not found"):
        read_instance_mask(tmp_path / "none.png", (10, 12))


# ---------------------------------------------------------------------------- polygons


def test_polygon_round_trip_of_a_rectangle(tmp_path):
    h, w = 50, 80
    x1, y1, x2, y2 = 10, 5, 30, 40
    corners = [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]
    f = tmp_path / "img.txt"
    f.write_text("0 " + " ".join(f"{x / w:.6f} {y / h:.6f}" for x, y in corners) + "\n\n2 0.9 0.9 0.95 0.9 0.95 0.95\n")
    polys = read_polygon_labels(f, (h, w))
    assert [c for c, _ in polys] == [0, 2]
    np.testing.assert_allclose(polys[0][1], np.array(corners, dtype=np.float32), atol=1e-3)
    masks = rasterize_polygons([p for _, p in polys], (h, w))
    assert masks.shape == (2, h, w) and masks.dtype == torch.bool
    rect = torch.zeros(h, w, dtype=torch.bool)
    rect[y1:y2, x1:x2] = True
    grown = torch.zeros(h, w, dtype=torch.bool)
    grown[y1 : y2 + 1, x1 : x2 + 1] = True  # OpenCV fills the boundary inclusively
    assert (masks[0] >= rect).all() and (masks[0] <= grown).all()
    # read_masks picks the format by suffix and keeps class 0 by default
    assert torch.equal(read_masks(f, (h, w)), masks[:1])


@pytest.mark.parametrize(
    "line, message",
    [
        ("0 0.1 0.1 0.5 0.1 0.5", r"line 2: odd number of coordinates \(5\)"),
        ("0 0.5 0.5 0.2 0.4", r"line 2: 2 points, a polygon needs at least 3"),
        ("0 0.1 0.1 0.5 x 0.5 0.5", r"line 2: not numbers"),
        ("-1 0.1 0.1 0.5 0.1 0.5 0.5", r"line 2: negative class"),
    ],
)
def test_bad_polygon_lines_name_file_and_line(tmp_path, line, message):
    f = tmp_path / "bad.txt"
    f.write_text(f"0 0.1 0.1 0.2 0.1 0.2 0.2\n{line}\n")
    with pytest.raises(PatchkitError, match=r"bad\.txt: " + message) as info:
        read_polygon_labels(f, (10, 10))
    assert "\n" not in str(info.value)


def test_out_of_image_points_are_clipped_with_a_warning(tmp_path, caplog):
    f = tmp_path / "out.txt"
    f.write_text("0 0.1 0.1 0.5 0.1 0.5 0.5\n0 -0.2 0.5 1.3 0.5 0.5 1.0004\n")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        polys = read_polygon_labels(f, (20, 40))
    assert len(polys) == 2
    pts = polys[1][1]
    assert pts[:, 0].min() == 0 and pts[:, 0].max() == 40 and pts[:, 1].max() == 20
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "out.txt" in warnings[0] and "line 2" in warnings[0]
    assert read_polygon_labels(tmp_path / "missing.txt", (20, 40)) == []


# ---------------------------------------------------------------------------- matching


def _two_people(h=60, w=80):
    masks = torch.zeros(2, h, w, dtype=torch.bool)
    masks[0, 10:50, 50:70] = True  # instance 0 on the right
    masks[1, 5:55, 5:25] = True  # instance 1 on the left
    return masks


def test_match_picks_the_right_instance_and_reports_a_missing_one(caplog):
    masks = _two_people()
    boxes = torch.tensor([[4.0, 4.0, 26.0, 56.0], [30.0, 10.0, 45.0, 50.0], [49.0, 9.0, 71.0, 51.0]])
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        out, missing = match_masks_to_boxes(masks, boxes, path="img_mask.png")
    assert out.shape == (3, 60, 80)
    assert torch.equal(out[0], masks[1]) and torch.equal(out[2], masks[0])
    assert not out[1].any()
    assert missing.tolist() == [1]
    (msg,) = [r.getMessage() for r in caplog.records]
    assert msg.startswith("img_mask.png: 1 of 3 persons have no instance mask")


def test_missing_policies():
    masks = _two_people()
    boxes = torch.tensor([[4.0, 4.0, 26.0, 56.0], [30.0, 10.0, 45.0, 50.0]])
    with pytest.raises(PatchkitError, match=r"^m\.png: 1 of 2 persons have no instance mask"):
        match_masks_to_boxes(masks, boxes, missing="error", path="m.png")
    out, missing = match_masks_to_boxes(masks, boxes, missing="box")
    assert missing.tolist() == [1]
    assert torch.equal(out[0], masks[1])
    assert torch.equal(out[1], garment_region(boxes[1:], (60, 80), "both", softness=0.0)[0] > 0)
    assert out[1].any() and not out[1, :16].any()  # below the head
    out, _ = match_masks_to_boxes(masks, boxes, missing="warn")
    assert not out[1].any()
    with pytest.raises(PatchkitError, match="did you mean 'box'"):
        match_masks_to_boxes(masks, boxes, missing="boxes")
    # no masks at all, no boxes at all
    out, missing = match_masks_to_boxes(torch.zeros(0, 60, 80, dtype=torch.bool), boxes)
    assert out.shape == (2, 60, 80) and missing.tolist() == [0, 1]
    out, missing = match_masks_to_boxes(masks, torch.zeros(0, 4))
    assert out.shape == (0, 60, 80) and missing.numel() == 0


def test_two_boxes_never_share_a_mask():
    masks = _two_people()[:1]
    boxes = torch.tensor([[50.0, 10.0, 70.0, 50.0], [48.0, 8.0, 72.0, 52.0]])
    out, missing = match_masks_to_boxes(masks, boxes)
    assert missing.tolist() == [1] and torch.equal(out[0], masks[0])


# ---------------------------------------------------------------------------- garment regions

BOXES = torch.tensor([[10.0, 0.0, 50.0, 100.0], [60.0, 20.0, 100.0, 110.0], [0.0, 30.0, 20.0, 70.0]])
SIZE = (120, 110)


def test_garment_region_shape_range_and_soft_edges():
    regions = {g: garment_region(BOXES, SIZE, g, softness=0.05) for g in ("upper", "lower", "both")}
    for r in regions.values():
        assert r.shape == (3, *SIZE) and r.dtype == torch.float32
        assert r.min() >= 0 and r.max() <= 1
        assert ((r > 0) & (r < 1)).any()  # soft edges
        assert (r == 1).any()
    up, low, both = regions["upper"], regions["lower"], regions["both"]
    assert (up * low).sum() <= 0.02 * up.sum()  # upper and lower barely overlap
    assert (both >= up - 1e-6).all() and (both >= low - 1e-6).all()
    # nothing outside the box, nothing in the head band
    for i, (x1, y1, x2, y2) in enumerate(BOXES.tolist()):
        head_end = int(y1 + HEAD_FRACTION * (y2 - y1))
        assert both[i, : head_end].sum() == 0
        outside = torch.ones(SIZE, dtype=torch.bool)
        outside[int(y1) : int(y2), int(x1) : int(x2)] = False
        assert both[i][outside].sum() == 0
    # vectorised over boxes: the same as one box at a time
    for i in range(3):
        torch.testing.assert_close(garment_region(BOXES[i : i + 1], SIZE, "upper", 0.05)[0], up[i])
    hard = garment_region(BOXES, SIZE, "upper", softness=0.0)
    assert set(hard.unique().tolist()) <= {0.0, 1.0}
    assert garment_region(torch.zeros(0, 4), SIZE).shape == (0, *SIZE)
    with pytest.raises(PatchkitError, match="did you mean 'upper'"):
        garment_region(BOXES, SIZE, "uper")


def test_garment_from_mask_excludes_the_head():
    masks = torch.zeros(3, *SIZE, dtype=torch.bool)
    for i, (x1, y1, x2, y2) in enumerate(BOXES.long().tolist()):
        masks[i, y1:y2, x1 + 5 : x2 - 5] = True  # a full silhouette, head included
    for garment in ("upper", "lower", "both"):
        g = garment_from_mask(masks, BOXES, garment, edge=5)
        assert g.shape == (3, *SIZE) and g.min() >= 0 and g.max() <= 1
        assert (g[~masks] == 0).all()  # never outside the person
        assert ((g > 0) & (g < 1)).any() and (g == 1).any()
        for i, (x1, y1, x2, y2) in enumerate(BOXES.tolist()):
            assert g[i, : int(y1 + HEAD_FRACTION * (y2 - y1))].sum() == 0
            if garment == "upper":
                assert g[i, int(y1 + WAIST_FRACTION * (y2 - y1)) + 1 :].sum() == 0
            if garment == "lower":
                assert g[i, : int(y1 + WAIST_FRACTION * (y2 - y1))].sum() == 0
    hard = garment_from_mask(masks, BOXES, "both", edge=1)
    assert set(hard.unique().tolist()) <= {0.0, 1.0}
    assert garment_from_mask(torch.zeros(0, *SIZE, dtype=torch.bool), torch.zeros(0, 4)).shape == (0, *SIZE)
