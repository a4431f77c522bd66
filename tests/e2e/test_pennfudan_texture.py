"""End to end on real data: a clothing texture trained against the official yolov8n on Penn-Fudan
train (official instance masks) hides the people of Penn-Fudan test who wear it far better than a
random texture of the same coverage. Skipped without ../shared/data. Short schedule (320 px)."""

import pytest
import torch

from patchkit.config import from_dict
from patchkit.engine.config import TrainConfig
from patchkit.engine.trainer import Trainer
from patchkit.evaluation.textures import load_masked_set, random_texture, texture_detection_rate

IMGSZ = 320


@pytest.mark.slow
@pytest.mark.shared
def test_trained_texture_hides_people_on_pennfudan_test(shared_data, tmp_path):
    weights = str(shared_data / "weights" / "yolov8n.pt")
    cfg = from_dict(
        TrainConfig,
        {
            "detector": {"weights": weights, "imgsz": IMGSZ},
            "scene": {"path": "scenes/pennfudan.yaml", "split": "train", "labels": "official", "masks": "auto"},
            "patch": {"kind": "texture", "size": 32, "init": "random", "texture": {"tile_cm": 30.0}},
            "loss": {"reduction": "per_box_topk", "topk": 10},
            "optim": {"epochs": 4, "batch_size": 8, "lr": 0.1},
            "run": {"out": str(tmp_path / "run"), "progress": False, "log_every": 10},
        },
    )
    trainer = Trainer(cfg)
    assert trainer.scene.masks is not None and len(trainer.scene.masks) == len(trainer.scene)
    tile = trainer.fit()
    images, boxes, masks = load_masked_set("test", IMGSZ, limit=24)
    kw = {"repeat_cm": 30.0, "seed": 1, "conf": 0.25}
    trained = texture_detection_rate(trainer.detector, images, boxes, masks, tile, **kw)
    control = texture_detection_rate(trainer.detector, images, boxes, masks, random_texture(32, seed=3), **kw)
    print(f"trained {trained['detection_rate']:.3f}, random {control['detection_rate']:.3f}")
    assert control["detection_rate"] > 0.8, control
    assert trained["detection_rate"] < control["detection_rate"] - 0.25, (trained, control)
    assert trained["coverage"] == pytest.approx(control["coverage"])
