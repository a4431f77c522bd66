"""detect() of the ultralytics family agrees with ultralytics' own YOLO(...).predict()."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops import box_iou

from patchkit.detectors import create_detector
from patchkit.detectors._isolation import preserve_process_state
from patchkit.io import read_image

IMGSZ = 320  # mechanics check: the agreement does not depend on the size


def _predict(ckpt, arr_rgb, conf, iou, **kwargs):
    with preserve_process_state():
        from ultralytics import YOLO

        threads = torch.get_num_threads()
        result = YOLO(str(ckpt)).predict(
            arr_rgb[..., ::-1].copy(), imgsz=IMGSZ, conf=conf, iou=iou, verbose=False, device="cpu", **kwargs
        )[0]
    assert torch.get_num_threads() == threads  # ultralytics' thread side effect was undone
    return result.boxes


@pytest.mark.parametrize(
    "name, end2end, kwargs",
    [
        ("yolov8n.yaml", None, {}),
        ("yolo11n.yaml", None, {}),
        ("yolo26n.yaml", True, {"nms": False}),  # one-to-one head, NMS-free top-k, as predict(nms=False)
    ],
)
def test_detect_matches_ultralytics_predict(lively_checkpoint, assets, name, end2end, kwargs):
    ckpt = lively_checkpoint(name)
    det = create_detector(ckpt, imgsz=IMGSZ, end2end=end2end)
    assert det.info.family == "ultralytics" and det.end2end == bool(end2end)
    arr = read_image(assets / "bus.jpg")
    ours = det.detect(arr, conf=0.5, iou=0.45)[0]
    theirs = _predict(ckpt, arr, conf=0.5, iou=0.45, **kwargs)
    assert len(theirs) >= 5, "the lively model should give several boxes"
    assert theirs.conf.max() < 0.999, "saturated scores would make the order a matter of ties"
    # a random head puts hundreds of boxes near the thresholds: float noise (ultralytics runs a fused,
    # channels_last copy) may flip one or two of them; the leading boxes must agree exactly
    assert abs(len(ours) - len(theirs)) <= 2
    n = min(len(ours), len(theirs), 30)
    assert torch.equal(ours.cls[:n], theirs.cls[:n].long())
    assert torch.allclose(ours.conf[:n], theirs.conf[:n], atol=1e-3)
    a, b = ours.xyxy[:n], theirs.xyxy[:n].float()
    assert torch.allclose(a, b, atol=0.5)  # pixels of the 810x1080 image
    area = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    real = area > 4  # random heads can emit degenerate boxes whose IoU is undefined
    assert real.sum() >= 3
    assert (box_iou(a[real], b[real]).diagonal() > 0.99).all()
    assert (ours.conf[1:] <= ours.conf[:-1]).all()


def test_detect_classes_filter_matches_predict(lively_checkpoint, assets):
    ckpt = lively_checkpoint("yolov8n.yaml")
    det = create_detector(ckpt, imgsz=IMGSZ)
    arr = read_image(assets / "zidane.jpg")
    everything = det.detect(arr, conf=0.1, iou=0.45)[0]
    wanted = [int(everything.cls[0]), int(everything.cls[-1])]
    ours = det.detect(arr, conf=0.1, iou=0.45, classes=wanted)[0]
    theirs = _predict(ckpt, arr, conf=0.1, iou=0.45, classes=wanted)
    assert len(theirs) > 0 and abs(len(ours) - len(theirs)) <= 1
    assert set(ours.cls.tolist()) <= set(wanted)
    n = min(len(ours), len(theirs), 20)
    assert torch.allclose(ours.xyxy[:n], theirs.xyxy[:n].float(), atol=0.5)


def test_detect_batches_lists_and_keeps_their_order(lively_checkpoint, assets):
    det = create_detector(lively_checkpoint("yolo11n.yaml"), imgsz=IMGSZ)
    bus, zidane = read_image(assets / "bus.jpg"), read_image(assets / "zidane.jpg")
    batched = det.detect([bus, zidane, bus[:, ::-1].copy()], conf=0.6)
    single = [det.detect(im, conf=0.6)[0] for im in (bus, zidane, bus[:, ::-1].copy())]
    assert len(batched) == 3
    for a, b in zip(batched, single):
        assert abs(len(a) - len(b)) <= 1  # a score at the threshold may flip
        a, b = a[:20], b[:20]  # batched vs single: float rounding only, far from near-ties
        assert torch.equal(a.cls, b.cls) and torch.allclose(a.conf, b.conf, atol=1e-4)
        assert torch.allclose(a.xyxy, b.xyxy, atol=0.5)  # pixels of the original image
    assert len(batched[0]) >= 5 and len(batched[2]) >= 5
    assert not torch.allclose(batched[0].xyxy[:5], batched[2].xyxy[:5])  # the flipped image differs
