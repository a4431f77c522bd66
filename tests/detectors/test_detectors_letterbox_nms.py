"""Letterbox geometry/pixels and NMS semantics against ultralytics' own implementations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from patchkit.detectors._isolation import preserve_process_state
from patchkit.detectors.letterbox import (
    PAD_VALUE,
    apply_letterbox,
    boxes_to_input,
    boxes_to_letterbox,
    letterbox,
    letterbox_params,
    letterbox_uint8,
)
from patchkit.detectors.nms import non_max_suppression, topk_detections
from patchkit.errors import PatchkitError

SIZES = [(1080, 810), (720, 1280), (480, 640), (640, 640), (333, 517), (37, 901), (901, 37), (200, 200), (1, 5)]


@pytest.fixture(scope="module")
def ul():
    with preserve_process_state():
        from ultralytics.data.augment import LetterBox
        from ultralytics.nn.modules.head import Detect
        from ultralytics.utils import nms, ops

    return LetterBox, nms, ops, Detect


@pytest.mark.parametrize("mode", ["rect", "square"])
def test_geometry_matches_ultralytics_letterbox(ul, mode):
    LetterBox = ul[0]
    for imgsz in (640, 320):
        for h, w in SIZES:
            ref = LetterBox((imgsz, imgsz), auto=mode == "rect", stride=32).get_params({"img": np.zeros((h, w, 3), np.uint8)})
            p = letterbox_params(h, w, imgsz, 32, mode)
            assert p.new_wh == tuple(ref["new_unpad"]) and p.scale == pytest.approx(ref["ratio"][0])
            assert (p.pad_x, p.pad_y) == (ref["left"], ref["top"])
            assert p.out_hw == (p.new_wh[1] + ref["top"] + ref["bottom"], p.new_wh[0] + ref["left"] + ref["right"])
            if mode == "square":
                assert p.out_hw == (imgsz, imgsz)
            else:
                assert p.out_hw[0] % 32 == 0 and p.out_hw[1] % 32 == 0 and max(p.out_hw) == imgsz


@pytest.mark.parametrize("mode", ["rect", "square"])
def test_pixels_match_opencv_letterbox(ul, mode):
    LetterBox = ul[0]
    rng = np.random.default_rng(0)
    img = (rng.random((333, 517, 3)) * 255).astype(np.uint8)
    ref = LetterBox((320, 320), auto=mode == "rect", stride=32)(image=img.copy())
    x = torch.from_numpy(img).permute(2, 0, 1).float().div(255)[None]
    ours, params = letterbox(x, 320, 32, mode)
    assert ours.shape[-2:] == ref.shape[:2]
    ref_t = torch.from_numpy(ref).permute(2, 0, 1).float().div(255)[None]
    assert (ours - ref_t).abs().max() <= 1.01 / 255  # cv2 computes in uint8 fixed point, we in float
    assert np.array_equal(letterbox_uint8(img, params), ref)  # the uint8 path is bit-identical
    if params.pad_y:
        assert torch.all(ours[..., : params.pad_y, :] == PAD_VALUE)


def test_fast_path_and_differentiability():
    x = torch.rand(2, 3, 320, 320)
    out, p = letterbox(x, 320, 32, "square")
    assert out is x and p.is_identity
    boxes = torch.rand(2, 5, 4) * 100
    assert boxes_to_input(boxes, p) is boxes
    xd = torch.rand(1, 3, 5, 7, dtype=torch.float64, requires_grad=True)
    params = letterbox_params(5, 7, 16, 4, "square")
    assert torch.autograd.gradcheck(lambda t: apply_letterbox(t, params), (xd,))
    b = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: boxes_to_input(t, params), (b,))
    assert torch.allclose(boxes_to_letterbox(boxes_to_input(b, params), params), b)


def test_bad_letterbox_inputs():
    with pytest.raises(PatchkitError):
        letterbox_params(100, 100, 640, 32, "stretch")
    with pytest.raises(PatchkitError):
        letterbox(torch.rand(3, 4), 64)


def _random_predictions(bsz=2, anchors=600, nc=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(bsz, anchors, 2, generator=g) * 300
    wh = torch.rand(bsz, anchors, 2, generator=g) * 60 + 2
    scores = torch.rand(bsz, anchors, nc, generator=g) ** 3
    xyxy = torch.cat((xy - wh / 2, xy + wh / 2), -1)
    return torch.cat((xy, wh), -1), xyxy, scores


def _same(ours, theirs):
    assert len(ours) == len(theirs)
    assert torch.allclose(ours.xyxy, theirs[:, :4], atol=1e-4)
    assert torch.allclose(ours.conf, theirs[:, 4], atol=1e-6)
    assert torch.equal(ours.cls, theirs[:, 5].long())


@pytest.mark.parametrize("classes, max_det", [(None, 300), ([1, 4], 300), (None, 7)])
def test_nms_matches_ultralytics(ul, classes, max_det):
    nms = ul[1]
    xywh, xyxy, scores = _random_predictions()
    ref = nms.non_max_suppression(torch.cat((xywh, scores), -1).transpose(1, 2), 0.3, 0.45, classes, max_det=max_det)
    ours = non_max_suppression(xyxy, scores, None, 0.3, 0.45, classes, max_det)
    for a, b in zip(ours, ref):
        assert len(a) > 0
        _same(a, b)
        assert (a.conf[1:] <= a.conf[:-1]).all()
        if classes:
            assert set(a.cls.tolist()) <= set(classes)


def test_nms_with_objectness_is_yolov5_semantics(ul):
    """yolov5: candidates need obj > conf, final confidence obj * cls. Equivalent ultralytics input:
    class scores obj * cls where obj > conf, else 0."""
    nms = ul[1]
    xywh, xyxy, scores = _random_predictions(seed=1)
    obj = torch.rand(scores.shape[:2], generator=torch.Generator().manual_seed(2))
    conf = 0.25
    equiv = torch.where((obj > conf)[..., None], scores * obj[..., None], torch.zeros_like(scores))
    ref = nms.non_max_suppression(torch.cat((xywh, equiv), -1).transpose(1, 2), conf, 0.45)
    ours = non_max_suppression(xyxy, scores, obj, conf, 0.45)
    for a, b in zip(ours, ref):
        assert len(a) > 0
        _same(a, b)


@pytest.mark.parametrize("classes", [None, [0, 3]])
def test_topk_matches_ultralytics_end2end_postprocess(ul, classes):
    nms, Detect = ul[1], ul[3]
    _, xyxy, scores = _random_predictions(anchors=900, seed=3)
    head = Detect(nc=scores.shape[-1], ch=(16,))
    head.max_det = 300
    y = head.postprocess(torch.cat((xyxy, scores), -1))
    ref = nms.non_max_suppression(y, 0.5, 0.45, classes, max_det=100, end2end=True)
    ours = topk_detections(xyxy, scores, 0.5, classes, max_det=100, topk=300)
    for a, b in zip(ours, ref):
        assert len(a) > 0
        _same(a, b)
