"""A short texture training on the toy detector (issue 15): the trained suit hides people better
than a random-texture suit on the texture scene it trained on."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from patchkit.patches.parameterization import PatchConfig

pytestmark = pytest.mark.skipif("kind" not in PatchConfig.__dataclass_fields__,
                                reason="the trainer has no texture kind yet")


def test_short_texture_training_lowers_detection_below_a_random_texture(tmp_path):
    from patchkit.demo import DemoConfig
    from patchkit.demo.pipeline import printer_profile
    from patchkit.demo.texture import digital_rates, texture_train_config
    from patchkit.detectors import create_detector
    from patchkit.engine.trainer import Trainer
    from patchkit.evaluation.textures import random_texture
    from patchkit.toyworld.config import ToyWorldConfig
    from patchkit.toyworld.texture_scene import build_texture_scene

    cfg = DemoConfig(out=str(tmp_path), progress=False)
    cfg.attack.eot = False  # the shortest path to an effect: no EOT
    cfg.texture.tile_px, cfg.texture.epochs, cfg.texture.lr = 32, 10, 0.1
    # a fine raw tile at a short repeat: the quickest effect (the demo's defaults need ~1000 steps)
    cfg.texture.parameterization, cfg.texture.tile_cm = "raw", 20.0
    world = ToyWorldConfig(persons=[1, 1], person_height=[160.0, 300.0])
    scene = build_texture_scene(16, seed=3, imgsz=256, cfg=world)
    cfg.imgsz = 256
    profile, _ = printer_profile(cfg.printer)
    detector = create_detector("toy", imgsz=256, letterbox="square", device="cpu")
    torch.manual_seed(0)
    tile = Trainer(texture_train_config(cfg, profile, Path(tmp_path)), detector=detector, scene=scene).fit()
    assert tile.shape == (3, 32, 32)
    rates = digital_rates(detector, scene, {"random": random_texture(32, 15), "texture": tile}, cfg.texture.tile_cm,
                          0.25)
    assert rates["texture"]["detection_rate"] < rates["random"]["detection_rate"] - 0.1, rates
