"""End to end on real data: a patch trained against the official yolov5n on Penn-Fudan train
hides people on Penn-Fudan test far better than a random-noise patch of the same size.
Skipped without ../shared/data. Short schedule (320 px, a few epochs) so CI stays fast."""

import pytest
import torch

from patchkit.config import from_dict
from patchkit.detectors import create_detector
from patchkit.engine.config import TrainConfig
from patchkit.engine.trainer import Trainer
from patchkit.evaluation.conditions import Condition
from patchkit.evaluation.digital import EvalOptions
from patchkit.evaluation.runner import load_image_set, run_evaluation

IMGSZ = 320


@pytest.mark.slow
def test_trained_patch_hides_people_on_pennfudan_test(shared_data, tmp_path):
    weights = str(shared_data / "weights" / "yolov5n-v7.0.pt")
    cfg = from_dict(
        TrainConfig,
        {
            "detector": {"weights": weights, "imgsz": IMGSZ},
            "scene": {"path": "scenes/pennfudan.yaml", "split": "train", "labels": "yolov5n"},
            "placement": {"scale": 0.25, "offset_y": -0.05},
            "optim": {"epochs": 6, "batch_size": 8, "lr": 0.05},
            "run": {"out": str(tmp_path / "run"), "progress": False, "log_every": 20},
        },
    )
    trainer = Trainer(cfg)
    before = {k: v.clone() for k, v in trainer.detector.state_dict().items()}
    patch = trainer.fit()
    assert all(torch.equal(v, before[k]) for k, v in trainer.detector.state_dict().items())

    detector = create_detector(weights, imgsz=IMGSZ, letterbox="square")
    images, labels, _ = load_image_set("scenes/pennfudan.yaml", "test", "yolov5n", IMGSZ, 0)
    conditions = [
        Condition("clean"),
        Condition("random", torch.rand(patch.shape, generator=torch.Generator().manual_seed(0))),
        Condition("patch", patch),
    ]
    opts = EvalOptions(placement=cfg.placement, thresholds=(0.25,))
    result = run_evaluation([("yolov5n", detector)], images, labels, conditions, opts, references=("self",), plots=False)
    rate = {r["condition"]: r["detection_rate"]["0.25"] for r in result["results"]}
    ap50 = {r["condition"]: r["ap50"] for r in result["results"]}
    assert rate["clean"] > 0.9 and rate["random"] > 0.75, rate
    assert rate["patch"] < 0.7 * rate["random"], rate
    assert ap50["patch"] < 0.75 * ap50["random"], ap50
