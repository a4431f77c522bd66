"""The shipped toy detector: loads by name, safely, and finds the toy world's pedestrians."""

from __future__ import annotations

import json

import pytest
import torch

from patchkit.detectors import create_detector, list_detectors
from patchkit.detectors.toy import TOY_WEIGHTS
from patchkit.errors import PatchkitError
from patchkit.metrics import average_precision
from patchkit.toyworld import render_split
from patchkit.toyworld.dataset import fingerprint

SIDECAR = TOY_WEIGHTS.with_suffix(".json")
MARGIN = 0.07  # fresh images from another seed, and fewer of them than the reported test split


@pytest.fixture(scope="module")
def sidecar() -> dict:
    if not TOY_WEIGHTS.is_file():
        pytest.fail(f"{TOY_WEIGHTS} is missing: the toy detector must ship with the package")
    return json.loads(SIDECAR.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def toy():
    # a tiny network: one thread is as fast, and immune to oversubscribed shared cores
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield create_detector("toy", imgsz=320)
    torch.set_num_threads(threads)


def test_registered_and_small(sidecar):
    assert "toy" in list_detectors()
    assert TOY_WEIGHTS.stat().st_size < 10 * 2**20
    assert sidecar["sha256"] and sidecar["metrics"]["test"]["ap50"] > 0
    for key in ("seed", "command", "model_yaml", "seconds"):
        assert key in sidecar


def test_plain_weights_only_file():
    # no pickled classes at all: torch's weights_only loader with no extra allowed globals
    obj = torch.load(TOY_WEIGHTS, map_location="cpu", weights_only=True)
    assert obj["family"] == "toy" and isinstance(obj["model_yaml"], str)
    assert all(isinstance(v, torch.Tensor) for v in obj["state_dict"].values())
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(TOY_WEIGHTS)) == []

def test_loads_by_name_and_by_path(toy):
    assert toy.info.family == "toy" and toy.names == {0: "person"}
    same = create_detector(str(TOY_WEIGHTS), imgsz=320)  # sniffed through the file's "family"
    x = torch.rand(1, 3, 160, 224)
    a, b = toy.raw(x), same.raw(x)
    assert torch.equal(a.boxes, b.boxes) and torch.equal(a.scores, b.scores)


def test_generator_still_makes_its_training_data(sidecar):
    fp = sidecar["dataset"].get("fingerprint")
    if fp is None:
        pytest.skip("sidecar has no dataset fingerprint")
    assert fingerprint(fp["split"], fp["n"], sidecar["dataset"]["seed"]) == fp["sha256"]


def test_detects_people_on_fresh_toy_images(toy, sidecar):
    reported = sidecar["metrics"]["test"]["ap50"]
    images, refs = [], []
    for item in render_split("test", 40, seed=2024):
        images.append(item.image)
        refs.append(item.boxes[item.classes == 0])
    dets = toy.detect(images, conf=0.001, iou=0.6, classes=[0])
    ap50 = average_precision(dets, refs, 0.5, classes=[0])
    assert ap50 >= reported - MARGIN, f"AP50 {ap50:.3f} on fresh toy images, reported {reported:.3f}"


def test_bad_toy_file_is_a_one_line_error(tmp_path):
    bad = tmp_path / "fake.pt"
    torch.save({"family": "toy", "state_dict": {}}, bad)
    with pytest.raises(PatchkitError, match="toy-detector file"):
        create_detector(str(bad))
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"family": "toy", "x": _Evil(str(marker))}, evil)
    with pytest.raises(PatchkitError, match="refused"):
        create_detector(str(evil))
    with pytest.raises(PatchkitError, match="refused"):
        create_detector(f"toy:{evil}")
    assert not marker.exists()


class _Evil:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.path}",))


def test_export_round_trip(tmp_path):
    """An ultralytics training checkpoint -> patchkit's toy format -> the same network (fp16)."""
    from patchkit.detectors._isolation import import_ultralytics_tasks
    from patchkit.detectors.ultralytics import load_ultralytics_checkpoint
    from patchkit.toyworld.detector_training import REPO_MODEL_YAML, export_toy_weights

    import yaml

    tasks = import_ultralytics_tasks()
    torch.manual_seed(0)
    model = tasks.DetectionModel(yaml.safe_load(REPO_MODEL_YAML.read_text()), nc=1, verbose=False)
    model.names = {0: "person"}
    for m in model.modules():  # non-trivial batch-norm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    ckpt = tmp_path / "last.pt"
    torch.save({"model": model.half(), "ema": None, "epoch": -1}, ckpt)
    out = tmp_path / "toy.pt"
    sha = export_toy_weights(ckpt, REPO_MODEL_YAML, out, imgsz=320, meta={"seed": 0})
    assert len(sha) == 64
    toy = create_detector(str(out), imgsz=320)
    ref = load_ultralytics_checkpoint(ckpt, imgsz=320)
    x = torch.rand(2, 3, 160, 192)
    a, b = toy.raw(x), ref.raw(x)
    assert torch.allclose(a.scores, b.scores, atol=1e-5) and torch.allclose(a.boxes, b.boxes, atol=1e-3)
