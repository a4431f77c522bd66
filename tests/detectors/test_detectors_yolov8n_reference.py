"""The official COCO yolov8n.pt (shared/data) against ultralytics' own predict(), and against the
numbers PROVENANCE.md pinned with ultralytics 8.4.190 (imgsz 640, conf 0.25, NMS IoU 0.7)."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops import box_iou

from patchkit.detectors import create_detector
from patchkit.detectors._isolation import preserve_process_state
from patchkit.io import read_image

PERSON, BUS, TIE, STOP = 0, 5, 27, 11
REFERENCE = {  # image -> [(class, score)] in descending score (PROVENANCE.md)
    "bus.jpg": [(BUS, 0.873), (PERSON, 0.866), (PERSON, 0.853), (PERSON, 0.825), (PERSON, 0.261), (STOP, 0.255)],
    "zidane.jpg": [(PERSON, 0.836), (PERSON, 0.819), (TIE, 0.291)],
}


@pytest.fixture(scope="module")
def yolov8n(shared_data):
    weights = shared_data / "weights" / "yolov8n.pt"
    if not weights.is_file():
        pytest.skip("yolov8n.pt is absent from ../shared/data")
    return weights, create_detector(weights, imgsz=640, letterbox="rect")


@pytest.mark.shared
@pytest.mark.parametrize("image", sorted(REFERENCE))
def test_yolov8n_scores_match_the_pinned_reference(yolov8n, assets, image):
    _, det = yolov8n
    assert det.info.family == "ultralytics" and det.names[0] == "person" and len(det.names) == 80
    dets = det.detect(read_image(assets / image), conf=0.25, iou=0.7)[0]
    got = sorted(zip(dets.cls.tolist(), dets.conf.tolist()), key=lambda t: -t[1])
    expected = REFERENCE[image]
    assert len(got) == len(expected), got
    for (cls, score), (ref_cls, ref_score) in zip(got, expected):
        assert cls == ref_cls and abs(score - ref_score) < 0.01, (got, expected)


@pytest.mark.shared
@pytest.mark.parametrize("image", sorted(REFERENCE))
def test_yolov8n_detections_equal_ultralytics_predict(yolov8n, assets, image):
    weights, det = yolov8n
    arr = read_image(assets / image)
    ours = det.detect(arr, conf=0.25, iou=0.7)[0]
    with preserve_process_state():
        from ultralytics import YOLO

        theirs = YOLO(str(weights)).predict(arr[..., ::-1].copy(), imgsz=640, conf=0.25, iou=0.7,
                                            verbose=False, device="cpu")[0].boxes
    assert len(ours) == len(theirs)
    assert torch.equal(ours.cls, theirs.cls.long())
    assert torch.allclose(ours.conf, theirs.conf, atol=2e-3)
    assert (box_iou(ours.xyxy, theirs.xyxy.float()).diagonal() > 0.995).all()
