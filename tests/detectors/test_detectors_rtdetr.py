"""RT-DETR: detect() agrees with ultralytics' RTDETR(...).predict(); raw() is differentiable
(also after inference-mode passes that fill the decoder's own anchor cache); stretch geometry."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import box_iou

from _ultralytics_ckpt import save_ultralytics_checkpoint

from patchkit.detectors import create_detector
from patchkit.detectors._isolation import preserve_process_state
from patchkit.detectors.rtdetr import RTDETRDetector
from patchkit.errors import PatchkitError
from patchkit.io import read_image

IMGSZ = 320  # mechanics check on CPU: the agreement does not depend on the size
TINY = Path(__file__).with_name("rtdetr-tiny.yaml")  # same layer types as rtdetr-l, ~100x cheaper


def _lively_rtdetr(seed: int = 0) -> nn.Module:
    """rtdetr-l with random weights whose outputs are not degenerate: He-normal convs (default init
    makes the HGNet activations vanish, so every query gets the same score) and small random last
    layers of the box heads (zero by default, so every box would be its anchor)."""
    from ultralytics.nn.tasks import RTDETRDetectionModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = RTDETRDetectionModel("rtdetr-l.yaml", verbose=False)
    g = torch.Generator().manual_seed(seed)
    for mod in model.modules():
        if isinstance(mod, nn.Conv2d):
            mod.weight.data = torch.randn(mod.weight.shape, generator=g) * (2.0 / mod.weight[0].numel()) ** 0.5
    head = model.model[-1]
    for mlp in (head.enc_bbox_head, *head.dec_bbox_head):
        mlp.layers[-1].weight.data = torch.randn(mlp.layers[-1].weight.shape, generator=g) * 0.02
    return model.eval()


@pytest.fixture(scope="module")
def rtdetr_checkpoint(tmp_path_factory) -> Path:
    """An ultralytics-format RT-DETR checkpoint (fp16 model, as ultralytics saves them)."""
    with preserve_process_state():
        path = tmp_path_factory.mktemp("rtdetr") / "rtdetr-l-random.pt"
        save_ultralytics_checkpoint(_lively_rtdetr(), path, "rtdetr-l.yaml", IMGSZ)
    return path


@pytest.fixture(scope="module")
def tiny() -> RTDETRDetector:
    return create_detector(TINY, imgsz=IMGSZ, seed=3)


def test_detect_matches_ultralytics_rtdetr_predict(rtdetr_checkpoint, assets):
    det = create_detector(rtdetr_checkpoint, imgsz=IMGSZ)
    assert isinstance(det, RTDETRDetector) and det.info.family == "rtdetr"
    assert det.info.extra["num_queries"] == 300 and det.info.sha256 is not None
    arr = read_image(assets / "bus.jpg")  # 810x1080: stretched to 320x320, aspect ratio not kept
    bgr = arr[..., ::-1].copy()
    conf = 0.06
    with preserve_process_state():
        from ultralytics import RTDETR

        threads = torch.get_num_threads()
        model = RTDETR(str(rtdetr_checkpoint))
        theirs = model.predict(bgr, imgsz=IMGSZ, conf=conf, verbose=False, device="cpu")[0].boxes
        assert len(theirs) >= 10, "the random model should give several boxes above conf"
        wanted = [int(theirs.cls[0]), int(theirs.cls[-1])]
        theirs_some = model.predict(bgr, imgsz=IMGSZ, conf=conf, classes=wanted, max_det=5, verbose=False, device="cpu")
        theirs_some = theirs_some[0].boxes
    assert torch.get_num_threads() == threads  # ultralytics' thread side effect was undone
    ours = det.detect(arr, conf=conf)[0]
    assert len(ours) <= 300 and abs(len(ours) - len(theirs)) <= 2  # a score at the threshold may flip
    assert (ours.conf[1:] <= ours.conf[:-1]).all() and (ours.conf > conf).all()
    # RT-DETR's predict() does not clip: boxes may leave the image, ours must too
    a, b = ours.xyxy, theirs.xyxy.float()
    n = min(len(a), len(b))
    # near-equal scores may swap places between the two runs (ultralytics runs a fused copy): match
    # each of our detections to the same class in theirs
    iou = box_iou(a[:n], b) * (ours.cls[:n, None] == theirs.cls[None].long())
    best, j = iou.max(1)
    assert (best > 0.99).all()
    assert torch.allclose(ours.conf[:n], theirs.conf[j].float(), atol=1e-3)
    assert torch.allclose(a[:n], b[j], atol=1.0)  # pixels of the 810x1080 image
    assert torch.equal(ours.cls[:5], theirs.cls[:5].long())

    # classes filter then max_det, as RTDETRPredictor.postprocess
    some = det.detect(arr, conf=conf, classes=wanted, max_det=5)[0]
    assert len(some) == len(theirs_some) and 0 < len(some) <= 5
    assert set(some.cls.tolist()) <= set(wanted)
    assert (box_iou(some.xyxy, theirs_some.xyxy.float()).max(1).values > 0.99).all()


def test_stretch_geometry_and_square_canvas_identity(tiny):
    assert tiny.info.letterbox == "square" and tiny.info.extra["resize"] == "stretch"
    assert tiny.letterbox_params(IMGSZ, IMGSZ).is_identity  # the trainer's square canvases
    x = torch.rand(1, 3, 150, 260)
    xl, params = tiny.letterbox(x)
    assert xl.shape[-2:] == (IMGSZ, IMGSZ) and (params.pad_x, params.pad_y) == (0, 0)
    assert torch.allclose(xl, F.interpolate(x, size=(IMGSZ, IMGSZ), mode="bilinear", align_corners=False))
    raw = tiny.raw(x).boxes
    lb = tiny.forward_letterboxed(xl).boxes  # letterboxed pixels: x scaled by 320/260, y by 320/150
    assert torch.allclose(raw * raw.new_tensor([IMGSZ / 260, IMGSZ / 150] * 2), lb, atol=1e-3)
    dets = tiny.detect(x, conf=0.0, max_det=1000)[0]
    assert len(dets) == 30  # no NMS: the top num_queries (query, class) pairs, as the decoder's postprocess


def test_gradient_pass_after_inference_mode_and_ultralytics_forward(tiny):
    """The decoder's own anchor cache filled under inference_mode (as predict() does) and
    patchkit's own passes under inference_mode must not break a later backward at that shape."""
    x = torch.rand(1, 3, IMGSZ, IMGSZ)
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    with torch.inference_mode():
        tiny.model(x)  # ultralytics' forward: RTDETRDecoder caches anchors as inference tensors
        tiny.detect(x)
        tiny.raw(x)
    head = tiny.model.model[-1]
    assert head.anchors.is_inference()
    xg = x.clone().requires_grad_(True)
    out = tiny.raw(xg)
    assert out.objectness is None
    (out.scores.amax(-1).sum() + 1e-3 * out.boxes.sum()).backward()
    assert torch.isfinite(xg.grad).all() and xg.grad.abs().sum() > 0
    assert all(p.grad is None for p in tiny.parameters())
    after = tiny.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_registry_dispatch_and_errors(tiny, tmp_path):
    assert "rtdetr" in __import__("patchkit.detectors", fromlist=["list_detectors"]).list_detectors()
    assert tiny.info.source == str(TINY) and len(tiny.names) == 4
    with pytest.raises(PatchkitError, match="end-to-end only"):
        create_detector(TINY, end2end=False)
    with pytest.raises(PatchkitError, match="not an RT-DETR"):
        create_detector("rtdetr:yolov8n.yaml")
    with pytest.raises(PatchkitError, match="needs a model YAML"):
        create_detector("rtdetr")
