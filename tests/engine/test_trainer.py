"""Training loop mechanics on a random-weight YAML detector (no files needed)."""

import json
from pathlib import Path

import pytest
import torch

from patchkit.config import from_dict
from patchkit.detectors import create_detector
from patchkit.engine.callbacks import Callback
from patchkit.engine.config import TrainConfig
from patchkit.engine.trainer import Trainer
from patchkit.errors import PatchkitError
from patchkit.io import load_image_tensor
from patchkit.scenes.scene import Scene

IMGSZ = 128


def tiny_scene(n=4, seed=0) -> Scene:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, IMGSZ, IMGSZ), generator=g, dtype=torch.uint8)
    boxes = [torch.tensor([[20.0, 10.0, 70.0, 120.0], [80.0, 30.0, 120.0, 110.0]]) for _ in range(n)]
    return Scene.from_canvases(images, boxes)


def tiny_cfg(tmp_path, **over) -> TrainConfig:
    data = {
        "detector": {"weights": "yolov8n.yaml", "imgsz": IMGSZ, "fuse": False, "channels_last": False},
        "patch": {"size": 32, "init": "random"},
        "optim": {"epochs": 3, "batch_size": 2, "lr": 0.05},
        "run": {"out": str(tmp_path / "run"), "progress": False, "log_every": 1, "checkpoint_every": 2},
        "loss": {"mode": "cls"},
    }
    for key, value in over.items():
        section, name = key.split("__")
        data.setdefault(section, {})[name] = value
    return from_dict(TrainConfig, data)


@pytest.fixture(scope="module")
def detector():
    """yolov8n with random weights: enough for the mechanics (its scores barely depend on the
    input, so attack strength is tested against real weights below)."""
    torch.manual_seed(0)
    return create_detector("yolov8n.yaml", imgsz=IMGSZ, letterbox="square")


def test_training_writes_run_folder_and_keeps_weights_frozen(tmp_path, detector):
    before = {k: v.clone() for k, v in detector.state_dict().items()}
    trainer = Trainer(tiny_cfg(tmp_path), detector=detector, scene=tiny_scene())
    patch = trainer.fit()
    run = tmp_path / "run"
    assert (run / "patch.png").is_file() and (run / "config.yaml").is_file()
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ckpt["state"]["step"] == 6
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert all({"loss", "det", "tv", "det_rate"} <= set(r) for r in records)
    assert patch.shape == (3, 32, 32) and 0 <= patch.min() and patch.max() <= 1
    for k, v in detector.state_dict().items():
        assert torch.equal(v, before[k]), f"detector weight {k} changed"
    assert not any(p.requires_grad for p in detector.parameters())
    assert not detector.training


class _Interrupt(Callback):
    def __init__(self, at_step):
        self.at_step = at_step

    def on_step_end(self, trainer, state):
        if state.step == self.at_step:
            raise KeyboardInterrupt


@pytest.mark.parametrize("schedule,ema", [("cosine", 0.0), ("plateau", 0.0), ("cosine", 0.5)])
def test_killed_and_resumed_run_gives_identical_patch_bits(tmp_path, detector, schedule, ema):
    cfg = tiny_cfg(tmp_path / "a", optim__schedule=schedule, optim__patience=0, optim__ema=ema)
    straight = Trainer(cfg, detector=detector, scene=tiny_scene()).fit()

    cfg_b = tiny_cfg(tmp_path / "b", optim__schedule=schedule, optim__patience=0, optim__ema=ema)
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg_b, detector=detector, scene=tiny_scene(), callbacks=[_Interrupt(3)]).fit()
    resumed = Trainer(cfg_b, detector=detector, scene=tiny_scene())
    resumed.load_checkpoint(tmp_path / "b" / "run" / "checkpoint.pt")
    assert resumed.state.step == 3
    patch = resumed.fit()
    assert torch.equal(patch, straight)
    a = torch.load(tmp_path / "a" / "run" / "checkpoint.pt", weights_only=True)["patch"]
    b = torch.load(tmp_path / "b" / "run" / "checkpoint.pt", weights_only=True)["patch"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    steps = [json.loads(l)["step"] for l in (tmp_path / "b" / "run" / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


class _Iterates(Callback):
    def __init__(self):
        self.params = []

    def on_step_end(self, trainer, state):
        self.params.append([p.detach().clone() for p in trainer.patch.parameters()])


def test_ema_patch_is_the_moving_average_of_the_iterates_and_is_the_product(tmp_path, detector):
    decay = 0.6
    cfg = tiny_cfg(tmp_path, optim__ema=decay, run__snapshot_every=3)
    seen = _Iterates()
    trainer = Trainer(cfg, detector=detector, scene=tiny_scene(), callbacks=[seen])
    patch = trainer.fit()
    expected = seen.params[0]  # the average starts at the first iterate, then e = d e + (1 - d) p
    for params in seen.params[1:]:
        expected = [decay * e + (1 - decay) * p for e, p in zip(expected, params)]
    for e, a in zip(expected, trainer.ema.module.parameters()):
        assert torch.allclose(a, e, atol=1e-6)
    iterate = trainer.current_patch(average=False)
    assert (patch - iterate).abs().max() > 1e-3  # the average is not the last iterate
    with torch.no_grad():
        assert torch.allclose(patch, trainer.ema.module().clamp(0, 1))
    run = tmp_path / "run"
    assert torch.allclose(load_image_tensor(run / "patch.png"), patch, atol=1 / 255)
    assert torch.allclose(load_image_tensor(run / "patch_iterate.png"), iterate, atol=1 / 255)
    assert {p.name for p in (run / "snapshots").iterdir()} == {
        "step_000003.png", "step_000003_iterate.png", "step_000006.png", "step_000006_iterate.png"}
    with pytest.raises(PatchkitError, match="optim.ema"):
        tiny_cfg(tmp_path, optim__ema=1.0)


def test_attack_lowers_real_detector_scores_on_fresh_eot_draws(tmp_path, shared_data):
    """Against the real COCO yolov5n: a short training must push the person scores down on EOT
    draws it never saw (the long run on Penn-Fudan is tests/e2e)."""
    from patchkit.scenes.placement import place_patches
    from patchkit.scenes.scene import SceneConfig, load_scene

    weights = str(shared_data / "weights" / "yolov5n-v7.0.pt")
    det = create_detector(weights, imgsz=256, letterbox="square")
    scene = load_scene(SceneConfig(path="scenes/pennfudan.yaml", labels="yolov5n", max_images=8), 256)
    cfg = from_dict(
        TrainConfig,
        {
            "detector": {"weights": weights, "imgsz": 256},
            "placement": {"scale": 0.3},
            "patch": {"size": 64, "init": "gray"},
            "optim": {"epochs": 6, "batch_size": 4, "lr": 0.08},
            "run": {"out": str(tmp_path / "run"), "progress": False},
        },
    )
    trainer = Trainer(cfg, detector=det, scene=scene)

    def held_out_score(patch):
        images, boxes, batch_idx = scene.batch(torch.arange(len(scene)))
        centers, sizes = place_patches(boxes, cfg.placement)
        g = torch.Generator().manual_seed(12345)
        with torch.no_grad():
            adv, _ = trainer.eot(patch, images, centers, sizes, batch_idx, generator=g)
            return trainer.objective.detection(trainer.detector.forward_letterboxed(adv)).mean().item()

    before = held_out_score(trainer.current_patch())
    after = held_out_score(trainer.fit())
    assert before > 0.5 and after < 0.8 * before, (before, after)


def test_a_palette_patch_uses_its_own_palette_and_size_not_the_nps_palette(tmp_path):
    """patch.palette / patch.palette_size drive the palette parameterisation; loss.palette only
    the NPS term (they used to be mixed up, with 32 colours hard-coded)."""
    profile = Path(__file__).resolve().parents[2] / "printers" / "sim-gamut" / "profile.json"
    cfg = tiny_cfg(tmp_path, patch__parameterization="palette", patch__palette=str(profile), patch__palette_size=6,
                   loss__nps_weight=0.01, loss__palette="legacy")
    trainer = Trainer(cfg, scene=tiny_scene())
    assert trainer.patch.palette.shape == (6, 3)
    assert trainer.objective.nps.palette.shape == (30, 3)  # the legacy palette, for NPS only
