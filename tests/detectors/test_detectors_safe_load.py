"""Checkpoint loading never executes pickled code; bad files give one-line PatchkitErrors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from patchkit.detectors import create_detector
from patchkit.detectors.safe_load import (
    YOLOv5Stub,
    checkpoint_globals,
    load_weights_only,
    resolve_global,
    safe_torch_load,
)
from patchkit.errors import PatchkitError


class _RunsCommand:
    """Unpickling this object would run a shell command that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _CallsEval:
    def __reduce__(self):
        return (eval, ("1 + 1",))


def _one_line(exc: pytest.ExceptionInfo, path: Path | str) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg
    return msg


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, zipped):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pt"
    torch.save({"model": _RunsCommand(marker), "x": torch.ones(2)}, path, _use_new_zipfile_serialization=zipped)
    for load in (safe_torch_load, load_weights_only, create_detector):
        with pytest.raises(PatchkitError) as exc:
            load(path)
        msg = _one_line(exc, path)
        assert "system" in msg and "refused" in msg
    assert not marker.exists()


def test_eval_global_is_refused(tmp_path):
    path = tmp_path / "eval.pt"
    torch.save([_CallsEval()], path)
    with pytest.raises(PatchkitError) as exc:
        safe_torch_load(path)
    assert "builtins.eval" in _one_line(exc, path)


@pytest.mark.parametrize("name", ["os.system", "posix.system", "builtins.eval", "subprocess.Popen", "builtins.exec",
                                  "ultralytics.utils.checks.check_requirements", "models.yolo.not an identifier"])
def test_dangerous_globals_do_not_resolve(name):
    assert resolve_global(name) is None


def test_yolov5_classes_become_inert_stubs():
    stub = resolve_global("models.yolo.Model")
    assert issubclass(stub, YOLOv5Stub) and stub.__name__ == "Model"
    with pytest.raises(PatchkitError):
        stub()(torch.zeros(1))  # a placeholder has no forward pass


def test_bad_files_give_one_line_errors(tmp_path):
    missing = tmp_path / "nothere.pt"
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    text = tmp_path / "notes.pt"
    text.write_text("this is not a checkpoint\n")
    good = tmp_path / "good.pt"
    torch.save({"w": torch.arange(10000.0)}, good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    for path, words in [
        (missing, "not found"),
        (empty, "empty"),
        (text, "not a PyTorch checkpoint"),
        (truncated, "truncated"),
        (tmp_path, "not a file"),
    ]:
        for load in (safe_torch_load, load_weights_only):
            with pytest.raises(PatchkitError) as exc:
                load(path)
            assert words in _one_line(exc, path)
        with pytest.raises(PatchkitError) as exc:
            create_detector(path)
        _one_line(exc, path)
    assert torch.equal(load_weights_only(good)["w"], torch.arange(10000.0))


def test_tensor_only_file_is_not_a_detector(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"state_dict": {"w": torch.ones(3)}}, path)
    with pytest.raises(PatchkitError) as exc:
        create_detector(path)
    assert "not a recognised detector checkpoint" in _one_line(exc, path)


def test_ultralytics_checkpoint_with_helper_types_loads(tmp_path, ultralytics_isolated):
    """A checkpoint shaped like ultralytics' trainer output: fp16 model, train_args with a Path,
    NumPy metrics, an IterableSimpleNamespace; all of them load, nothing else is allowed."""
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils import IterableSimpleNamespace

    model = DetectionModel("yolov8n.yaml", verbose=False).half()
    path = tmp_path / "trained.pt"
    torch.save(
        {
            "date": "2025-01-01T00:00:00",
            "version": "8.4.190",
            "model": model,
            "ema": None,
            "optimizer": None,
            "train_args": {"imgsz": 640, "save_dir": Path("runs/detect/train")},
            "train_metrics": {"fitness": np.float64(0.5), "per_class": np.arange(3.0)},
            "args": IterableSimpleNamespace(task="detect"),
        },
        path,
    )
    names = checkpoint_globals(path)
    assert "ultralytics.nn.tasks.DetectionModel" in names and "pathlib.PosixPath" in names
    ckpt = safe_torch_load(path)
    assert type(ckpt["model"]).__name__ == "DetectionModel"
    assert ckpt["model"].model[0].conv.weight.dtype == torch.float16
    assert float(ckpt["train_metrics"]["fitness"]) == 0.5 and ckpt["args"].task == "detect"
    assert str(ckpt["train_args"]["save_dir"]) == "runs/detect/train"
    det = create_detector(path, imgsz=320)
    assert det.info.family == "ultralytics" and det.info.sha256 and len(det.info.sha256) == 64


@pytest.mark.shared
def test_original_yolov5_checkpoint_unpickles_into_stubs(shared_data):
    ckpt = safe_torch_load(shared_data / "weights" / "yolov5n-v7.0.pt")
    model = ckpt["model"]
    assert isinstance(model, YOLOv5Stub) and model.yolov5_name == "models.yolo.Model"
    assert model.yaml["depth_multiple"] == 0.33 and len(model.state_dict()) == 349
    assert model.state_dict()["model.0.conv.weight"].dtype == torch.float16
