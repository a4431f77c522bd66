"""Detector ensembles (weighted losses) and autocast in the training step."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from test_trainer import IMGSZ, tiny_cfg, tiny_scene  # noqa: E402

from patchkit.engine.trainer import Trainer  # noqa: E402
from patchkit.errors import PatchkitError  # noqa: E402
from patchkit.scenes.placement import place_patches  # noqa: E402


def test_ensemble_loss_is_the_weighted_sum_of_each_detector(tmp_path):
    cfg = tiny_cfg(tmp_path, eot__rotation={"enabled": False})
    cfg.detector.weight = 1.0
    cfg.ensemble = [type(cfg.detector)(weights="yolo11n.yaml", imgsz=IMGSZ, fuse=False, channels_last=False, weight=0.5)]
    scene = tiny_scene()
    trainer = Trainer(cfg, scene=scene)
    assert len(trainer.detectors) == 2 and trainer.det_weights == [1.0, 0.5]
    images, boxes, idx = scene.batch(torch.arange(2))
    patch = trainer.current_patch()
    centers, sizes = place_patches(boxes, cfg.placement)
    g = torch.Generator().manual_seed(3)
    adv, params = trainer.eot(patch, images.clone(), centers, sizes, idx, generator=g)
    with torch.no_grad():
        expected = sum(w * trainer.objective.detection(d.forward_letterboxed(adv)).mean()
                       for w, d in zip(trainer.det_weights, trainer.detectors))
    _, parts, _ = trainer.train_step(images, boxes, idx, params=params)
    torch.testing.assert_close(parts["det"], expected, rtol=1e-5, atol=1e-7)


def test_ensemble_members_must_share_imgsz(tmp_path):
    cfg = tiny_cfg(tmp_path)
    cfg.ensemble = [type(cfg.detector)(weights="yolo11n.yaml", imgsz=IMGSZ * 2)]
    with pytest.raises(PatchkitError, match="imgsz must equal"):
        Trainer(cfg, scene=tiny_scene())


def test_bf16_autocast_step_keeps_patch_and_loss_in_fp32(tmp_path):
    cfg = tiny_cfg(tmp_path, run__amp="bf16")
    trainer = Trainer(cfg, scene=tiny_scene())
    images, boxes, idx = tiny_scene().batch(torch.arange(2))
    before = trainer.current_patch()
    loss, parts, raw = trainer.train_step(images, boxes, idx, torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and loss.dtype == torch.float32
    assert raw.scores.dtype == torch.float32
    assert trainer.patch.pixels.dtype == torch.float32
    assert not torch.equal(trainer.current_patch(), before)


def test_fp16_needs_cuda(tmp_path):
    with pytest.raises(PatchkitError, match="fp16 needs a CUDA device"):
        Trainer(tiny_cfg(tmp_path, run__amp="fp16"), scene=tiny_scene())


def test_ensemble_detectors_run_on_their_own_devices(tmp_path):
    """``device`` per detector: the batch goes to it and its loss comes back (here all on CPU)."""
    cfg = tiny_cfg(tmp_path, eot__rotation={"enabled": False})
    cfg.ensemble = [type(cfg.detector)(weights="yolo11n.yaml", imgsz=IMGSZ, fuse=False, channels_last=False,
                                       weight=0.5, device="cpu")]
    trainer = Trainer(cfg, scene=tiny_scene())
    assert trainer.det_devices == [torch.device("cpu"), torch.device("cpu")]
    before = trainer.current_patch()
    images, boxes, idx = tiny_scene().batch(torch.arange(2))
    trainer.train_step(images, boxes, idx, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(trainer.current_patch(), before)  # gradients reached the patch


def test_ensemble_is_spread_over_several_gpus(monkeypatch):
    """The placement rule alone (no GPU here): detector k on cuda:k % n_gpus in one process."""
    from types import SimpleNamespace

    from patchkit.engine.config import DetectorConfig

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    fake = SimpleNamespace(device=torch.device("cuda"), cfg=SimpleNamespace(ensemble=[DetectorConfig()] * 2),
                           dist=SimpleNamespace(world=1))
    picks = [Trainer._detector_device(fake, k, DetectorConfig()) for k in range(3)]
    assert picks == [torch.device("cuda", 0), torch.device("cuda", 1), torch.device("cuda", 0)]
    assert Trainer._detector_device(fake, 1, DetectorConfig(device="cpu")) == torch.device("cpu")
    fake.dist.world = 2  # data parallel: every rank keeps its detectors on its own GPU
    assert Trainer._detector_device(fake, 1, DetectorConfig()) == torch.device("cuda")
