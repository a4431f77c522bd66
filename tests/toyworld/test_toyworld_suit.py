"""Texture suits on toy-world figures (issue 15): where the suit is drawn, its masks, the scene."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from patchkit.patches.texture import texture_scale
from patchkit.toyworld import BodyPose, FigureStyle, render_figure, render_scene, render_walk, split_rng
from patchkit.toyworld.config import ToyWorldConfig
from patchkit.toyworld.suit import TextureSuit, prefilter_tile, suit_texture
from patchkit.toyworld.texture_scene import build_texture_scene, render_suit_images

GREEN = torch.tensor([0.0, 1.0, 0.0])[:, None, None].expand(3, 8, 8).clone()
WORLD = ToyWorldConfig(persons=[1, 2], person_height=[64.0, 360.0])


def _green(rgb: np.ndarray) -> np.ndarray:
    """Pixels whose colour is the suit's green (shading scales it, never turns it another hue)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return (g > 0.25) & (g > 3 * r + 0.05) & (g > 3 * b + 0.05)


@pytest.mark.parametrize("seed", range(6))
def test_suit_alpha_marks_exactly_the_suit_pixels(seed):
    rng = np.random.default_rng(seed)
    style, pose = FigureStyle.sample(rng), BodyPose.sample(rng)
    fig = render_figure(style, pose, 220.0, (150.0, 260.0), perspective=0.1, light=0.2,
                        suit=TextureSuit(GREEN), seed=seed)
    a = fig.sprite.alpha
    colour = fig.sprite.rgb / np.maximum(a, 1e-6)[..., None]
    green = _green(colour) & (a > 0.5)
    mask = fig.suit_alpha > 0.5
    assert fig.suit_alpha.shape == a.shape and fig.suit_alpha.dtype == np.float32
    assert mask.sum() > 0.3 * (a > 0.5).sum()  # shirt + trousers: most of the figure
    # they agree except on anti-aliased edges (a pixel shared by the suit and a hand or shoe)
    diff = green ^ mask
    soft = (fig.suit_alpha > 0.02) & (fig.suit_alpha < 0.98)
    edge = soft | np.roll(soft, 1, 0) | np.roll(soft, -1, 0) | np.roll(soft, 1, 1) | np.roll(soft, -1, 1)
    assert not (diff & ~edge).any()
    assert diff.sum() <= 0.02 * mask.sum()
    # never more suit than figure, and nothing outside the figure
    assert (fig.suit_alpha <= a + 1e-5).all()


def test_without_a_suit_the_figure_is_unchanged():
    rng = np.random.default_rng(3)
    style, pose = FigureStyle.sample(rng), BodyPose.sample(rng)
    a = render_figure(style, pose, 180.0, (100.0, 200.0), seed=4)
    b = render_figure(style, pose, 180.0, (100.0, 200.0), seed=4)
    assert a.suit_alpha is None and np.array_equal(a.sprite.rgb, b.sprite.rgb)


def test_suit_repeat_follows_tile_cm():
    """One repeat spans tile_cm of a 170 cm figure: a tile of a single bright row shows
    170 / tile_cm rows per figure height."""
    tile = torch.zeros(3, 16, 16)
    tile[:, 0] = 1.0
    suit = TextureSuit(tile, tile_cm=17.0, offset=(0.0, 0.0))
    h = 340.0
    tex = suit_texture(suit, (340, 4), (0.0, 0.0), (0.0, 0.0), h)
    rows = tex[:, 0, 0]
    period = h * 17.0 / 170.0  # 34 px
    peaks = np.flatnonzero(rows > 0.5 * rows.max())
    starts = peaks[np.r_[True, np.diff(peaks) > 1]]
    assert np.allclose(np.diff(starts), period, atol=1.0)
    assert float(texture_scale(torch.tensor([h]), 17.0, 16)[0]) == pytest.approx(16 / period)


def test_prefilter_keeps_the_tile_seamless():
    tile = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
    small, scale = prefilter_tile(tile, 4.0)
    assert small.shape == (3, 16, 16) and scale == pytest.approx(1.0)
    # mean colour preserved, and resampling the 3 x 3 tiling gives the same centre period
    assert torch.allclose(small.mean((1, 2)), tile.mean((1, 2)), atol=0.02)
    again, _ = prefilter_tile(tile.roll((16, 16), (1, 2)), 4.0)
    assert torch.allclose(again, small.roll((4, 4), (1, 2)), atol=1e-5)


def test_scene_masks_match_the_green_suits():
    """In a whole scene the masks also account for nearer people and objects over the suit."""
    cfg = ToyWorldConfig(persons=[2, 4], person_height=[80.0, 300.0], blur=[0.0, 0.0], noise=[0.0, 0.0],
                         motion_blur_prob=0.0, light=[1.0, 1.0], occluder_prob=0.5, min_visible=0.0,
                         themes=["street", "plaza", "indoor"])  # no grass: green is the suit's alone
    checked = 0
    for i in range(6):
        item = render_scene(split_rng(5, "train", i), cfg, suit=TextureSuit(GREEN))
        assert item.masks is not None and item.masks.shape == (len(item.boxes), *item.image.shape[:2])
        if not len(item.boxes):
            continue
        union = item.masks.max(0) > 0.5
        green = _green(item.image.astype(np.float32) / 255.0)
        inter = (union & green).sum()
        iou = inter / max((union | green).sum(), 1)
        assert iou > 0.93, iou
        # each mask lies inside its person's box
        for b, m in zip(item.boxes, item.masks):
            ys, xs = np.nonzero(m > 0.5)
            if len(ys):
                assert xs.min() >= b[0] - 1 and xs.max() < b[2] + 1 and ys.min() >= b[1] - 1 and ys.max() < b[3] + 1
        checked += 1
    assert checked >= 4


def test_scene_without_suit_is_byte_identical_to_the_old_render():
    cfg = ToyWorldConfig()
    a = render_scene(split_rng(1, "train", 2), cfg)
    assert a.masks is None
    b = render_scene(split_rng(1, "train", 2), cfg, suit=TextureSuit(GREEN))
    assert np.array_equal(a.boxes, b.boxes)  # the same scene, dressed otherwise


def test_texture_scene_has_one_mask_per_box():
    scene = build_texture_scene(6, seed=1, imgsz=320, cfg=WORLD)
    assert scene.images.shape[1:] == (3, 320, 320) and scene.images.dtype == torch.uint8
    assert scene.masks is not None and len(scene.masks) == len(scene.boxes) == len(scene)
    for b, m in zip(scene.boxes, scene.masks):
        assert b.shape[0] >= 1 and b.shape[1] == 4 and b.dtype == torch.float32
        assert m.shape == (b.shape[0], 320, 320) and m.dtype == torch.uint8
        assert int(m.max()) == 255 and (m.flatten(1).amax(1) > 0).all()
    assert scene.batch_masks(torch.arange(len(scene))).shape == (scene.n_boxes, 320, 320)


def test_texture_scene_masks_letterbox_with_the_image():
    """The gray suits of the letterboxed canvas are where the letterboxed masks are."""
    data = render_suit_images(4, seed=2, imgsz=256, cfg=WORLD, suit=TextureSuit(GREEN), jpeg=False)
    for img, m in zip(data.images, data.masks):
        green = _green(img.permute(1, 2, 0).numpy().astype(np.float32) / 255.0)
        union = (m.amax(0) > 127).numpy()
        iou = (union & green).sum() / max((union | green).sum(), 1)
        assert iou > 0.85, iou


def test_suit_walk_is_deterministic_and_the_suit_follows_the_walker():
    tile = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(1))
    a = render_walk(None, seed=3, n_frames=4, size=(160, 128), suit=TextureSuit(tile))
    b = render_walk(None, seed=3, n_frames=4, size=(160, 128), suit=TextureSuit(tile))
    c = render_walk(None, seed=3, n_frames=4, size=(160, 128), suit=TextureSuit(torch.rand(3, 32, 32)))
    assert np.array_equal(a.frames, b.frames)
    assert np.array_equal(a.boxes, c.boxes)  # only the suit's pixels differ
    assert not np.array_equal(a.frames, c.frames)
