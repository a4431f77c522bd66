"""Every registered family: raw() is differentiable w.r.t. the input, boxes are in input pixels,
weights stay frozen, and optimize_for_attack() keeps the outputs."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import torch
from torch import nn

from patchkit.detectors import create_detector, list_detectors
from patchkit.detectors.letterbox import boxes_to_input
from patchkit.errors import PatchkitError

IMGSZ = 320
SHARED_DATA = Path(os.environ.get("PATCHKIT_SHARED", Path(__file__).resolve().parents[2].parent / "shared")) / "data"
YOLOV5N_STATE_DICT = SHARED_DATA / "weights" / "yolov5n_state_dict.pt"  # as tests/conftest.py
# Example weights per registered family; names without an entry (e.g. "toy") are built by name.
EXAMPLES = {
    "ultralytics": [("yolov8n.yaml", {}), ("yolo26n.yaml", {"end2end": True})],
    "yolov5": [(YOLOV5N_STATE_DICT, {})],
    "rtdetr": [(Path(__file__).with_name("rtdetr-tiny.yaml"), {})],  # rtdetr-l's layer types, tiny
}


def _cases():
    for name in list_detectors():
        for weights, kwargs in EXAMPLES.get(name, [(name, {})]):
            label = f"{name}-{getattr(weights, 'name', weights)}{'-e2e' if kwargs.get('end2end') else ''}"
            yield pytest.param(name, weights, kwargs, id=label)


_CACHE: dict[str, nn.Module] = {}


def _build(weights, kwargs):
    key = f"{weights}{sorted(kwargs.items())}"
    if key not in _CACHE:
        if weights == YOLOV5N_STATE_DICT and not YOLOV5N_STATE_DICT.is_file():
            pytest.skip(f"{SHARED_DATA} is absent")
        try:
            _CACHE[key] = create_detector(weights, imgsz=IMGSZ, **kwargs)
        except PatchkitError as exc:  # a registered name whose shipped weights are not there yet
            if isinstance(weights, str) and weights in list_detectors() and "not found" in str(exc):
                pytest.skip(str(exc))
            raise
    return _CACHE[key]


@pytest.mark.parametrize("family, weights, kwargs", list(_cases()))
def test_raw_is_differentiable_and_in_input_pixels(family, weights, kwargs):
    det = _build(weights, kwargs)
    h, w = 150, 260  # non-square, not a stride multiple: resized and padded
    x = torch.rand(2, 3, h, w, requires_grad=True)
    out = det.raw(x)
    n_cand = out.boxes.shape[1]
    assert out.boxes.shape == (2, n_cand, 4) and out.scores.shape[:2] == (2, n_cand)
    assert out.scores.shape[2] == len(det.names)
    conf = out.confidence()
    assert torch.isfinite(out.boxes).all() and ((conf >= 0) & (conf <= 1)).all()
    (conf.amax(-1).sum() + 1e-3 * out.boxes.sum()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0

    xl, params = det.letterbox(x.detach())
    assert not params.is_identity and xl.shape[-1] == IMGSZ and xl.shape[-2] % det.info.stride == 0
    lb = det.forward_letterboxed(xl).boxes
    assert torch.allclose(out.boxes.detach(), boxes_to_input(lb, params), atol=1e-3)
    # the content rectangle of the letterboxed image is the whole input image
    content = torch.tensor([[params.pad_x, params.pad_y, params.pad_x + params.new_wh[0], params.pad_y + params.new_wh[1]]], dtype=torch.float32)
    assert torch.allclose(boxes_to_input(content, params), torch.tensor([[0.0, 0.0, w, h]]), atol=1e-4)


@pytest.mark.parametrize("family, weights, kwargs", list(_cases()))
def test_weights_frozen_through_backward_and_optimiser_step(family, weights, kwargs):
    det = _build(weights, kwargs)
    det.train()  # a detector stays in eval mode
    assert not det.training and not any(m.training for m in det.modules())
    assert all(not p.requires_grad for p in det.parameters())
    before = {k: v.clone() for k, v in det.state_dict().items()}
    patch = torch.rand(1, 3, IMGSZ, IMGSZ).requires_grad_(True)  # pre-letterboxed square: fast path
    opt = torch.optim.Adam([patch], lr=0.05)
    start = patch.detach().clone()
    for _ in range(2):
        opt.zero_grad()
        det.raw(patch).confidence().amax(-1).mean().backward()
        opt.step()
    assert not torch.equal(patch.detach(), start)
    assert all(p.grad is None for p in det.parameters())
    after = det.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("family, weights, kwargs", list(_cases()))
def test_optimize_for_attack_keeps_outputs(family, weights, kwargs):
    det = _build(weights, kwargs)
    fast = copy.deepcopy(det).optimize_for_attack(channels_last=True, fuse=True)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    conv = next(m for m in fast.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(2, 3, 200, 240, requires_grad=True)
    a, b = det.raw(x), fast.raw(x)
    assert torch.allclose(a.scores, b.scores, atol=1e-4, rtol=1e-3)
    assert torch.allclose(a.boxes, b.boxes, atol=2e-2, rtol=1e-4)  # pixels
    if a.objectness is not None:
        assert torch.allclose(a.objectness, b.objectness, atol=1e-4)
    b.confidence().sum().backward()
    assert torch.isfinite(x.grad).all() and all(p.grad is None for p in fast.parameters())


def test_inference_mode_then_gradient_pass_at_the_same_shape():
    """Grids/anchors cached under inference_mode must not break a later backward pass."""
    det = _build("yolov8n.yaml", {})
    x = torch.rand(1, 3, 96, 128)
    with torch.inference_mode():
        det.raw(x)
        det.detect(x)
    xg = x.clone().requires_grad_(True)
    det.raw(xg).scores.sum().backward()
    assert torch.isfinite(xg.grad).all()


@pytest.mark.shared
def test_boxes_in_input_pixels_agree_across_letterbox_geometries(shared_data, assets):
    """The same objects found through two different letterbox geometries land on the same
    input-pixel boxes (rect 640: no padding for bus.jpg; square 640: 80 px bands each side)."""
    from torchvision.ops import box_iou

    from patchkit.io import load_image_tensor

    x = load_image_tensor(assets / "bus.jpg")
    a = create_detector(shared_data / "weights" / "yolov5n_state_dict.pt", imgsz=640, letterbox="rect").detect(x)[0]
    b = create_detector(shared_data / "weights" / "yolov5n_state_dict.pt", imgsz=640, letterbox="square").detect(x)[0]
    iou = box_iou(a.xyxy[:3], b.xyxy)
    assert (iou.max(1).values > 0.9).all()
    assert a.xyxy[:, 2].max() <= x.shape[-1] and a.xyxy[:, 3].max() <= x.shape[-2]
