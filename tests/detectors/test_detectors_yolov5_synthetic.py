"""Original-YOLOv5 checkpoints of other sizes, versions and class counts, made in the test.

The file is pickled exactly as the yolov5 repository pickles its models (classes
``models.common.Focus``, ``models.yolo.Detect``, ``models.yolo.Model``...; fp16 weights; the
architecture in ``model.yaml``), with stand-in classes registered under those module names only
while saving. Loading must rebuild the architecture from the yaml (v5.0 style: Focus, SPP,
custom width, 3 classes, LeakyReLU activations) and give the same outputs.
"""

from __future__ import annotations

import copy
import sys
import types

import pytest
import torch
from torch import nn

from patchkit.detectors import create_detector
from patchkit.detectors._isolation import import_ultralytics_tasks
from patchkit.detectors._ultralytics_build import head_inputs
from patchkit.detectors.base import DetectorInfo
from patchkit.detectors.yolov5 import YOLOv5Detector, YOLOv5Head
from patchkit.errors import PatchkitError

ANCHORS = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]
YAML_V5 = {  # yolov5 v5.0 layout (Focus stem, SPP), tiny width, 3 classes
    "nc": 3,
    "depth_multiple": 0.33,
    "width_multiple": 0.125,
    "anchors": ANCHORS,
    "backbone": [
        [-1, 1, "Focus", [64, 3]],
        [-1, 1, "Conv", [128, 3, 2]],
        [-1, 3, "C3", [128]],
        [-1, 1, "Conv", [256, 3, 2]],
        [-1, 3, "C3", [256]],
        [-1, 1, "Conv", [512, 3, 2]],
        [-1, 3, "C3", [512]],
        [-1, 1, "Conv", [1024, 3, 2]],
        [-1, 1, "SPP", [1024, [5, 9, 13]]],
        [-1, 1, "C3", [1024, False]],
    ],
    "head": [
        [-1, 1, "Conv", [512, 1, 1]],
        [-1, 1, "nn.Upsample", [None, 2, "nearest"]],
        [[-1, 6], 1, "Concat", [1]],
        [-1, 3, "C3", [512, False]],
        [-1, 1, "Conv", [256, 1, 1]],
        [-1, 1, "nn.Upsample", [None, 2, "nearest"]],
        [[-1, 4], 1, "Concat", [1]],
        [-1, 3, "C3", [256, False]],
        [-1, 1, "Conv", [256, 3, 2]],
        [[-1, 14], 1, "Concat", [1]],
        [-1, 3, "C3", [512, False]],
        [-1, 1, "Conv", [512, 3, 2]],
        [[-1, 10], 1, "Concat", [1]],
        [-1, 3, "C3", [1024, False]],
        [[17, 20, 23], 1, "Detect", ["nc", "anchors"]],
    ],
}
STRIDES = [8.0, 16.0, 32.0]


def _reference_model() -> YOLOv5Detector:
    """The architecture built independently of any checkpoint, with non-degenerate random weights."""
    tasks = import_ultralytics_tasks()
    d = copy.deepcopy(YAML_V5)
    d["head"] = d["head"][:-1]
    g = torch.Generator().manual_seed(0)
    layers, save = tasks.parse_model(d, ch=3, verbose=False)
    for m in layers.modules():
        if hasattr(m, "act") and isinstance(m.act, nn.SiLU):
            m.act = nn.LeakyReLU(0.1)  # as yolov5 v3-v4 releases; the yaml does not say so
    x = torch.rand(1, 3, 64, 64)
    ch = [c.shape[1] for c in _features(layers, save, x)]
    anchors = torch.tensor(ANCHORS, dtype=torch.float32).view(3, 3, 2) / torch.tensor(STRIDES).view(3, 1, 1)
    head = YOLOv5Head(ch, 3, anchors, STRIDES)
    info = DetectorInfo(family="yolov5", source="reference", names={0: "a", 1: "b", 2: "c"})
    ref = YOLOv5Detector(layers, save, head, [17, 20, 23], info)
    for p in ref.parameters():
        if p.ndim == 4:
            p.data = torch.randn(p.shape, generator=g) * (2.0 / p[0].numel()) ** 0.5
    for m in ref.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None
            m.bias.data = torch.randn(m.bias.shape, generator=g) * 0.1
    nn.Module.train(ref, True)
    with torch.no_grad():
        ref.forward_letterboxed(torch.rand(2, 3, 128, 160, generator=g))
    return ref.freeze()


def _features(layers, save, x):
    from patchkit.detectors._ultralytics_build import run_layers

    return run_layers(layers, frozenset(save) | {17, 20, 23}, x, [17, 20, 23])


def _save_as_yolov5_repo_checkpoint(ref: YOLOv5Detector, path, monkeypatch) -> None:
    common, yolo = types.ModuleType("models.common"), types.ModuleType("models.yolo")
    pkg = types.ModuleType("models")
    pkg.common, pkg.yolo = common, yolo
    for name, mod in (("models", pkg), ("models.common", common), ("models.yolo", yolo)):
        monkeypatch.setitem(sys.modules, name, mod)

    def fake(module, name):
        if not hasattr(module, name):
            cls = type(name, (nn.Module,), {"__module__": module.__name__})
            cls.__qualname__ = name
            setattr(module, name, cls)
        return getattr(module, name)

    tree = copy.deepcopy(ref.model)
    for m in tree.modules():
        if type(m).__module__.startswith("ultralytics."):
            m.__class__ = fake(common, type(m).__name__)
    head = tree[-1]
    head.__class__ = fake(yolo, "Detect")
    # yolov5 <= v5.0 kept the pixel anchors as a registered buffer too
    head.register_buffer("anchor_grid", (head.anchors * head.stride.view(-1, 1, 1)).view(3, 1, -1, 1, 1, 2))
    root = fake(yolo, "Model")()
    root.model = tree
    root.yaml = copy.deepcopy(YAML_V5)
    root.names = ["a", "b", "c"]
    root.stride = torch.tensor(STRIDES)
    root.half()
    torch.save({"epoch": -1, "best_fitness": None, "model": root, "ema": None, "optimizer": None}, path)


def test_v5_style_custom_class_checkpoint_round_trip(tmp_path, monkeypatch):
    ref = _reference_model()
    path = tmp_path / "yolov5-custom.pt"
    _save_as_yolov5_repo_checkpoint(ref, path, monkeypatch)
    monkeypatch.undo()  # the stand-in yolov5 modules are gone: loading must not need them
    assert "models.common" not in sys.modules

    det = create_detector(path, imgsz=160)
    assert isinstance(det, YOLOv5Detector) and det.names == {0: "a", 1: "b", 2: "c"}
    assert det.info.extra["nc"] == 3 and det.info.stride == 32
    assert type(det.model[0]).__name__ == "Focus" and type(det.model[8]).__name__ == "SPP"
    assert any(isinstance(m, nn.LeakyReLU) for m in det.modules())  # activations taken from the pickle

    ref = ref.half().float()  # the checkpoint holds fp16 weights
    x = torch.rand(2, 3, 96, 160)
    a, b = ref.forward_letterboxed(x), det.forward_letterboxed(x)
    assert a.scores.shape == b.scores.shape == (2, 3 * (12 * 20 + 6 * 10 + 3 * 5), 3)
    assert a.confidence().max() > 0.05  # not a degenerate network
    assert torch.allclose(a.boxes, b.boxes, atol=1e-3) and torch.allclose(a.scores, b.scores, atol=1e-5)
    assert torch.allclose(a.objectness, b.objectness, atol=1e-5)


def test_unsupported_yolov5_heads_are_clear_errors(tmp_path, monkeypatch):
    ref = _reference_model()
    path = tmp_path / "seg.pt"
    _save_as_yolov5_repo_checkpoint(ref, path, monkeypatch)
    monkeypatch.undo()
    from patchkit.detectors.safe_load import safe_torch_load

    ckpt = safe_torch_load(path)
    ckpt["model"].yaml["head"][-1][2] = "Segment"
    bad = tmp_path / "segment.pt"
    torch.save({"state_dict": ckpt["model"].state_dict(), "meta": {"yaml": ckpt["model"].yaml, "stride": STRIDES}}, bad)
    with pytest.raises(PatchkitError) as exc:
        create_detector(bad)
    assert "Segment" in str(exc.value) and "not supported" in str(exc.value)
    assert head_inputs([17, 20, 23], 24) == [17, 20, 23] and head_inputs(-1, 5) == [4]
