"""Clothing textures in the training engine (issue 15): the texture EOT, scene masks, the trainer's
``patch.kind: texture`` (mechanics on a random-weight detector; attack strength on real weights in
tests/e2e/test_pennfudan_texture.py)."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from patchkit.config import from_dict
from patchkit.detectors import create_detector
from patchkit.engine.config import TrainConfig
from patchkit.engine.trainer import Trainer
from patchkit.eot.config import OP_ORDER, EOTConfig
from patchkit.eot.pipeline import EOTPipeline
from patchkit.eot.texture_pipeline import TexturePipeline
from patchkit.errors import PatchkitError
from patchkit.patches.parameterization import PatchConfig, TextureConfig
from patchkit.patches.texture import camouflage_tau, toroidal_crops
from patchkit.scenes.scene import Scene
from patchkit.scenes.scene_masks import attach_masks

IMGSZ = 128
BOXES = torch.tensor([[20.0, 10.0, 70.0, 120.0], [80.0, 30.0, 120.0, 110.0]])


def _all_off() -> EOTConfig:
    cfg = EOTConfig()
    for name in OP_ORDER:
        getattr(cfg, name).enabled = False
    return cfg


def _masks() -> torch.Tensor:
    m = torch.zeros(2, IMGSZ, IMGSZ, dtype=torch.uint8)
    m[0, 30:110, 30:60] = 255
    m[1, 45:100, 88:112] = 255
    return m


def tiny_scene(n=4, seed=0, masks=True) -> Scene:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, IMGSZ, IMGSZ), generator=g, dtype=torch.uint8)
    return Scene.from_canvases(images, [BOXES.clone() for _ in range(n)],
                               masks=[_masks() for _ in range(n)] if masks else None)


def tiny_cfg(tmp_path, **patch) -> TrainConfig:
    data = {
        "detector": {"weights": "yolov8n.yaml", "imgsz": IMGSZ, "fuse": False, "channels_last": False},
        "patch": {"kind": "texture", "size": 16, "init": "random", **patch},
        "optim": {"epochs": 2, "batch_size": 2, "lr": 0.05},
        "run": {"out": str(tmp_path / "run"), "progress": False, "log_every": 1, "checkpoint_every": 2},
        "loss": {"mode": "cls"},
    }
    return from_dict(TrainConfig, data)


@pytest.fixture(scope="module")
def detector():
    torch.manual_seed(0)
    return create_detector("yolov8n.yaml", imgsz=IMGSZ, letterbox="square")


# --------------------------------------------------------------------------- toroidal crops


def test_a_half_turn_reverses_the_crop_and_a_zero_displacement_changes_nothing():
    tile = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(1))
    offsets = torch.tensor([[2.0, 3.0]])
    plain = toroidal_crops(tile, offsets, (9, 9))
    same = toroidal_crops(tile, offsets, (9, 9), displacement=torch.zeros(1, 2, 9, 9))
    turned = toroidal_crops(tile, offsets, (9, 9), angle=torch.tensor([math.pi]))
    torch.testing.assert_close(same, plain)
    # rotating the grid by 180 degrees about the crop centre samples pixel (8 - r, 8 - c)
    torch.testing.assert_close(turned, plain.flip(-1).flip(-2), atol=1e-5, rtol=0)


def test_a_constant_displacement_is_a_shift():
    tile = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(2))
    shifted = toroidal_crops(tile, torch.zeros(1, 2), (6, 6), displacement=torch.full((1, 2, 6, 6), 3.0))
    torch.testing.assert_close(shifted, toroidal_crops(tile, torch.full((1, 2), 3.0), (6, 6)))


# --------------------------------------------------------------------------- texture EOT


def test_uniform_gray_texture_on_gray_clothes_without_eot_leaves_the_photo_unchanged():
    images = torch.full((1, 3, IMGSZ, IMGSZ), 0.5)
    pipe = TexturePipeline(TextureConfig(), EOTPipeline(_all_off()))
    out, _ = pipe(torch.full((3, 16, 16), 0.5), images, BOXES, torch.zeros(2, dtype=torch.long),
                  _masks().float() / 255, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, images, atol=1e-6, rtol=0)


def test_texture_lands_only_on_the_masks_and_a_draw_replays_exactly():
    images = torch.rand(2, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(3))
    masks = _masks().float() / 255
    eot = EOTConfig()
    eot.jpeg.enabled = False
    pipe = TexturePipeline(TextureConfig(), EOTPipeline(eot))
    tile = torch.rand(3, 16, 16, requires_grad=True)
    idx = torch.tensor([0, 1])
    out, draw = pipe(tile, images, BOXES, idx, masks, generator=torch.Generator().manual_seed(0))
    again, _ = pipe(tile, images, BOXES, idx, masks, draw=draw)
    torch.testing.assert_close(out, again)
    outside = torch.stack([masks[0] == 0, masks[1] == 0])[:, None].expand_as(images)
    assert torch.equal(out[outside], images[outside])
    assert (out - images).abs()[~outside].mean() > 0.05
    out.sum().backward()
    assert tile.grad is not None and tile.grad.abs().sum() > 0


def test_without_masks_the_box_region_is_worn_and_the_head_stays_bare():
    images = torch.zeros(1, 3, IMGSZ, IMGSZ)
    pipe = TexturePipeline(TextureConfig(shading=0.0), EOTPipeline(_all_off()))
    out, _ = pipe(torch.ones(3, 16, 16), images, BOXES[:1], torch.zeros(1, dtype=torch.long), None,
                  generator=torch.Generator().manual_seed(0))
    worn = out[0, 0] > 0
    assert worn[40:100, 35:55].all()  # torso and legs
    assert not worn[10:25].any()  # the head band (top 17 % of the box)
    assert not worn[:, :20].any() and not worn[:, 70:].any()


def test_the_repeat_follows_the_person_height():
    """Two persons, one twice as tall: the texture's period on screen doubles."""
    images = torch.zeros(1, 3, 256, 256)
    boxes = torch.tensor([[10.0, 0.0, 60.0, 100.0], [100.0, 0.0, 200.0, 200.0]])
    masks = torch.zeros(2, 256, 256)
    masks[0, 20:100, 10:60] = 1
    masks[1, 40:200, 100:200] = 1
    cfg = TextureConfig(tile_cm=17.0, scale_jitter=0.0, rotation=0.0, shading=0.0)
    stripes = torch.zeros(3, 16, 16)
    stripes[:, :8] = 1.0  # horizontal stripes, period 16 tile px
    out, _ = TexturePipeline(cfg, EOTPipeline(_all_off()))(stripes, images, boxes, torch.zeros(2, dtype=torch.long),
                                                          masks, generator=torch.Generator().manual_seed(0))

    def period(column: torch.Tensor) -> float:
        edges = (column[1:] > 0.5) & (column[:-1] <= 0.5)  # rising edges
        pos = edges.nonzero().flatten().float()
        return float((pos[1:] - pos[:-1]).mean())

    # 17 cm of a 170 cm person: 10 px on the small one, 20 px on the tall one
    assert period(out[0, 0, 20:100, 35]) == pytest.approx(10.0, abs=0.6)
    assert period(out[0, 0, 40:200, 150]) == pytest.approx(20.0, abs=0.6)


# --------------------------------------------------------------------------- scene masks


def _write_scene(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    img = (np.random.default_rng(0).random((100, 200, 3)) * 255).astype(np.uint8)
    Image.fromarray(img).save(images / "a.png")
    Image.fromarray(img).save(images / "b.png")
    inst = np.zeros((100, 200), np.uint8)
    inst[10:90, 20:60] = 1
    inst[20:95, 120:150] = 2
    pngs = tmp_path / "pngs"
    pngs.mkdir()
    Image.fromarray(inst).save(pngs / "a_mask.png")
    Image.fromarray(inst).save(pngs / "b.png")
    polys = tmp_path / "polys"
    polys.mkdir()
    rect = lambda x1, y1, x2, y2: f"0 {x1/200} {y1/100} {x2/200} {y1/100} {x2/200} {y2/100} {x1/200} {y2/100}"
    text = rect(20, 10, 60, 90) + "\n" + rect(120, 20, 150, 95) + "\n"
    (polys / "a.txt").write_text(text)
    (polys / "b.txt").write_text(text)
    # canvases: 200x100 letterboxed to 128: scale 0.64, pad y = 32
    boxes = torch.tensor([[20, 10, 60, 90], [120, 20, 150, 95]], dtype=torch.float32) * 0.64
    boxes[:, [1, 3]] += 32
    scene = Scene(torch.zeros(2, 3, IMGSZ, IMGSZ, dtype=torch.uint8), [boxes.clone(), boxes.clone()],
                  [images / "a.png", images / "b.png"], torch.full((2, 2), 0.64), torch.tensor([[0.0, 32.0]] * 2))
    return scene, pngs, polys


def test_png_and_polygon_masks_give_the_same_garments(tmp_path):
    scene, pngs, polys = _write_scene(tmp_path)
    attach_masks(scene, pngs)
    from_png = [m.clone() for m in scene.masks]
    attach_masks(scene, polys)
    assert [m.shape for m in scene.masks] == [(2, IMGSZ, IMGSZ)] * 2 and scene.masks[0].dtype == torch.uint8
    for a, b in zip(from_png, scene.masks):
        differ = ((a.float() - b.float()).abs() > 128).float().mean()
        assert differ < 0.01
        assert (a > 0).sum() > 500
    batch = scene.batch_masks(torch.tensor([1, 0]))
    assert batch.shape == (4, IMGSZ, IMGSZ) and batch.dtype == torch.uint8 and batch.max() == 255
    head = int(scene.boxes[0][0, 1] + 0.1 * (scene.boxes[0][0, 3] - scene.boxes[0][0, 1]))
    assert batch[2, :head].sum() == 0  # no texture on the face


def test_a_missing_mask_file_follows_the_policy(tmp_path, caplog):
    scene, pngs, _ = _write_scene(tmp_path)
    (pngs / "b.png").unlink()
    with pytest.raises(PatchkitError, match="no mask file for image 'b' with 2 persons"):
        attach_masks(scene, pngs, missing="error")
    attach_masks(scene, pngs, missing="box")
    assert scene.masks[1].float().mean() > 0 and "2 of 4 persons have no instance mask" in caplog.text


# --------------------------------------------------------------------------- training


def test_texture_training_writes_a_tile_and_resumes_exactly(tmp_path, detector):
    full = Trainer(tiny_cfg(tmp_path / "a"), detector=detector, scene=tiny_scene()).fit()
    assert full.shape == (3, 16, 16)
    records = [json.loads(x) for x in (tmp_path / "a" / "run" / "log.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all(math.isfinite(r["loss"]) for r in records)

    cfg = tiny_cfg(tmp_path / "b")
    cfg.optim.max_steps, cfg.optim.schedule_steps = 2, 4
    Trainer(cfg, detector=detector, scene=tiny_scene()).fit()
    cfg = tiny_cfg(tmp_path / "b")
    resumed = Trainer(cfg, detector=detector, scene=tiny_scene())
    resumed.load_checkpoint(tmp_path / "b" / "run" / "checkpoint.pt")
    assert torch.equal(resumed.fit(), full)


def test_camouflage_training_ends_with_exactly_k_palette_colours(tmp_path, detector):
    cfg = tiny_cfg(tmp_path, parameterization="camouflage", texture={"colours": 3, "cells": 12})
    trainer = Trainer(cfg, detector=detector, scene=tiny_scene(masks=False))
    tile = trainer.fit()
    colours = torch.unique(tile.reshape(3, -1).T, dim=0)
    palette = trainer.patch.palette
    assert len(colours) <= 3 and len(palette) == 3
    assert all((palette - c).abs().sum(1).min() < 1e-6 for c in colours)
    assert trainer.patch.tau == pytest.approx(camouflage_tau(trainer.total_steps - 1, trainer.total_steps, [1.0, 0.1]))


def test_bad_texture_config_is_one_clear_error():
    with pytest.raises(ValueError, match="texture's patch.parameterization"):
        PatchConfig(kind="texture", parameterization="palette").validate()
    with pytest.raises(ValueError, match="garment"):
        TextureConfig(garment="hat").validate()


def test_antialiased_crops_of_a_far_person_average_the_tile_instead_of_skipping_pixels():
    """A checkerboard of 1-px squares read 4 tile px per output px: plain bilinear sampling hits
    one colour only (aliasing); the mip level gives the mean gray."""
    tile = ((torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2).float().expand(3, 16, 16)
    aliased = toroidal_crops(tile, torch.zeros(1, 2), (8, 8), scale=4.0)
    smooth = toroidal_crops(tile, torch.zeros(1, 2), (8, 8), scale=4.0, antialias=True)
    assert aliased.std() < 1e-6 and min(abs(aliased.mean()), abs(1 - aliased.mean())) < 1e-6
    torch.testing.assert_close(smooth, torch.full_like(smooth, 0.5))
    near = toroidal_crops(tile, torch.tensor([[2.0, 3.0]]), (8, 8), scale=1.0, antialias=True)
    torch.testing.assert_close(near, toroidal_crops(tile, torch.tensor([[2.0, 3.0]]), (8, 8)))


def test_camouflage_colours_are_the_palette_colours_farthest_apart():
    from patchkit.printing.palette import legacy_nps_palette, spread_colours

    pal = legacy_nps_palette()
    four = spread_colours(pal, 4)
    assert four.shape == (4, 3) and all((pal - c).abs().sum(1).min() == 0 for c in four)
    gaps = torch.cdist(four, four) + torch.eye(4) * 9
    first4 = pal[:4]
    assert gaps.min() > (torch.cdist(first4, first4) + torch.eye(4) * 9).min()  # spread wider than any 4 in order
    assert torch.equal(spread_colours(pal, 40), pal)


def test_persons_of_very_different_sizes_render_in_size_groups():
    from patchkit.eot.cloth_render import roi_groups

    hy = torch.tensor([300, 20, 310, 25, 22, 150])
    wx = torch.tensor([120, 10, 110, 12, 9, 60])
    groups = roi_groups(hy, wx)
    assert sorted(torch.cat(groups).tolist()) == list(range(6)) and len(groups) == 3
    rendered = sum(len(g) * int(hy[g].max()) * int(wx[g].max()) for g in groups)
    assert rendered < 0.45 * 6 * 310 * 120  # one common ROI would render every person at 310 x 120
    assert len(roi_groups(torch.tensor([50, 50]), torch.tensor([20, 20]))) == 1  # equal sizes: one group


def test_an_image_without_masks_wears_the_configured_garment():
    """In a scene joined from one with masks and one without, the persons without masks wear the
    garment the texture config asks for, as in a scene without any masks."""
    scene = Scene.concat([tiny_scene(1), tiny_scene(1, masks=False)])
    upper = scene.batch_masks(torch.tensor([1]), "upper", 0.05)
    both = scene.batch_masks(torch.tensor([1]), "both", 0.05)
    waist = int(BOXES[0, 1] + 0.6 * (BOXES[0, 3] - BOXES[0, 1]))
    assert upper[0, waist:].sum() == 0 and both[0, waist:].sum() > 0
    pipe = TexturePipeline(TextureConfig(garment="upper"), EOTPipeline(_all_off()))
    assert torch.equal(upper.float() / 255, (pipe.garments(BOXES, (IMGSZ, IMGSZ), None) * 255).round() / 255)
