"""Labels cover exactly what is drawn: boxes of the visible pixels of each pedestrian."""

from __future__ import annotations

import numpy as np
import pytest

from patchkit.scenes.labels import read_yolo_labels
from patchkit.toyworld import FigureStyle, BodyPose, generate_dataset, render_figure, render_scene, split_rng
from patchkit.toyworld.compose import visible_boxes
from patchkit.toyworld.config import ToyWorldConfig
from patchkit.toyworld.draw import Sprite, composite

BG = np.array([0.5, 0.5, 0.5], np.float32)


def _flat_scene(seed: int, height: float = 150.0, occluder: Sprite | None = None):
    rng = np.random.default_rng(seed)
    canvas = np.broadcast_to(BG, (200, 240, 3)).copy()
    ids = np.full(canvas.shape[:2], -1, np.int32)
    fig = render_figure(FigureStyle.sample(rng), BodyPose.sample(rng), height, (120.0, 185.0), perspective=0.1, seed=seed)
    full = [composite(canvas, fig.sprite, ids, 0)]
    sprites, classes = [fig.sprite], [0]
    if occluder is not None:
        full.append(composite(canvas, occluder, ids, 1))
        sprites.append(occluder)
        classes.append(-1)
    boxes, cls = visible_boxes(ids, sprites, classes, full, 0.3)
    return canvas, boxes, cls


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_box_matches_non_background_mask(seed):
    canvas, boxes, cls = _flat_scene(seed)
    assert boxes.shape == (1, 4) and cls.tolist() == [0]
    # the figure's pixels: clearly different from the flat background (skip faint AA fringes);
    # a garment may match the background colour, so the mask's box is at most the label
    diff = np.abs(canvas - BG).max(-1)
    ys, xs = np.nonzero(diff > 0.02)
    mask_box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
    x1, y1, x2, y2 = boxes[0]
    assert (xs >= x1 - 1).all() and (xs < x2 + 1).all() and (ys >= y1 - 1).all() and (ys < y2 + 1).all()
    # and the label is tight: its extremes are drawn pixels (within the 1-px anti-aliased edge)
    assert np.abs(mask_box - boxes[0]).max() <= 1.5
    # the figure is about as tall as asked (soles at the foot row, head at the top)
    assert 0.9 * 150 <= y2 - y1 <= 1.1 * 150 + 2
    assert abs(y2 - 185.0) <= 6


def test_occluded_part_is_not_in_the_box():
    _, free, _ = _flat_scene(0)
    wall = Sprite(0, 130, np.full((70, 240, 3), 0.2, np.float32), np.ones((70, 240), np.float32))
    canvas, boxes, _ = _flat_scene(0, occluder=wall)
    assert boxes.shape == (1, 4)
    assert boxes[0, 3] == 130  # the visible part ends where the wall starts
    assert boxes[0, 1] == free[0, 1]


def test_mostly_hidden_figure_is_not_labelled():
    wall = Sprite(0, 40, np.full((160, 240, 3), 0.2, np.float32), np.ones((160, 240), np.float32))
    _, boxes, _ = _flat_scene(0, occluder=wall)
    assert boxes.shape == (0, 4)


def test_scene_labels_are_valid_boxes():
    cfg = ToyWorldConfig()
    n = 0
    for i in range(6):
        item = render_scene(split_rng(11, "train", i), cfg)
        h, w = item.image.shape[:2]
        assert item.image.dtype == np.uint8 and w % 32 == 0 and h % 32 == 0
        b = item.boxes
        assert ((b[:, 0] >= 0) & (b[:, 1] >= 0) & (b[:, 2] <= w) & (b[:, 3] <= h)).all()
        assert ((b[:, 2] - b[:, 0] >= 5) & (b[:, 3] - b[:, 1] >= 12)).all()
        assert (item.classes == 0).all()
        n += len(b)
    assert n >= 6  # pedestrians are common


def test_written_labels_round_trip(tmp_path):
    info = generate_dataset(tmp_path, n_train=2, n_val=0, n_test=1, seed=4)
    for split, n in (("train", 2), ("test", 1)):
        for i in range(n):
            item = render_scene(split_rng(4, split, i), ToyWorldConfig())
            h, w = item.image.shape[:2]
            cls, boxes = read_yolo_labels(info.root / "labels" / split / f"{i:06d}.txt", w, h)
            assert cls.tolist() == item.classes.tolist()
            assert np.allclose(boxes.numpy(), item.boxes, atol=0.01)


def test_distractor_classes_when_asked():
    from patchkit.toyworld import class_names

    cfg = ToyWorldConfig(label_distractors=True, distractors=[4, 7], distractor_kinds=["car", "bicycle", "sign", "bag"])
    seen = set()
    for i in range(6):
        seen |= set(render_scene(split_rng(5, "train", i), cfg).classes.tolist())
    names = class_names(True)
    assert seen <= set(names) and len(seen - {0}) >= 2
    assert names[0] == "person" and class_names(False) == {0: "person"}
