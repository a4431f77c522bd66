"""The original YOLOv5 family against the official yolov5 code's numbers (shared/data/PROVENANCE.md).

Reference: ultralytics/yolov5 detect.py at commit 5081342f on yolov5n-v7.0.pt, imgsz 640,
conf 0.25, NMS IoU 0.45, on ultralytics' bundled bus.jpg and zidane.jpg.
"""

from __future__ import annotations

import pytest
import torch

from patchkit.detectors import create_detector
from patchkit.detectors.yolov5 import YOLOv5Detector
from patchkit.io import image_to_tensor, read_image

PERSON, BUS, TIE = 0, 5, 27
REFERENCE = {  # (letterbox, image) -> [(class, score)] in descending score
    ("rect", "bus.jpg"): [(PERSON, 0.867), (PERSON, 0.766), (PERSON, 0.762), (PERSON, 0.479), (BUS, 0.435)],
    ("rect", "zidane.jpg"): [(PERSON, 0.785), (PERSON, 0.516), (TIE, 0.281)],
    ("square", "bus.jpg"): [(PERSON, 0.814), (PERSON, 0.791), (PERSON, 0.608), (BUS, 0.508)],
    ("square", "zidane.jpg"): [(PERSON, 0.787), (PERSON, 0.495), (TIE, 0.292)],
}


@pytest.fixture(scope="module")
def yolov5n(shared_data):
    return {
        mode: create_detector(shared_data / "weights" / "yolov5n-v7.0.pt", imgsz=640, letterbox=mode)
        for mode in ("rect", "square")
    }


@pytest.mark.shared
@pytest.mark.parametrize("mode, image", sorted(REFERENCE))
def test_scores_match_official_yolov5(yolov5n, assets, mode, image):
    det = yolov5n[mode]
    assert isinstance(det, YOLOv5Detector) and det.info.family == "yolov5"
    arr = read_image(assets / image)
    expected = REFERENCE[(mode, image)]
    # uint8 path (OpenCV letterbox, as detect.py) and differentiable torch path: both within 0.01
    for dets in (det.detect(arr, conf=0.25, iou=0.45)[0], det.detect(image_to_tensor(arr), conf=0.25, iou=0.45)[0]):
        got = list(zip(dets.cls.tolist(), dets.conf.tolist()))
        assert len(got) == len(expected), got
        for (cls, score), (ref_cls, ref_score) in zip(got, expected):
            assert cls == ref_cls
            assert abs(score - ref_score) < 0.01, (got, expected)
    assert dets.xyxy[:, 0].min() >= 0 and dets.xyxy[:, 2].max() <= arr.shape[1]


@pytest.mark.shared
def test_state_dict_copy_gives_the_same_outputs(shared_data, assets):
    copy = create_detector(shared_data / "weights" / "yolov5n_state_dict.pt", imgsz=320, letterbox="rect")
    orig = create_detector(shared_data / "weights" / "yolov5n-v7.0.pt", imgsz=320, letterbox="rect")
    assert copy.info.extra["format"] == "yolov5-state-dict" and orig.info.extra["format"] == "yolov5-checkpoint"
    assert copy.names == orig.names and copy.names[0] == "person" and len(copy.names) == 80
    x = image_to_tensor(read_image(assets / "zidane.jpg"))[None]
    a, b = orig.raw(x), copy.raw(x)
    assert torch.equal(a.boxes, b.boxes) and torch.equal(a.scores, b.scores) and torch.equal(a.objectness, b.objectness)
    assert a.objectness is not None and a.scores.shape[-1] == 80


@pytest.mark.shared
def test_state_dict_copy_loads_weights_only(shared_data):
    from patchkit.detectors.safe_load import checkpoint_globals

    # nothing beyond torch's own weights_only defaults is needed for the copy
    assert checkpoint_globals(shared_data / "weights" / "yolov5n_state_dict.pt") == []
    assert any(g.startswith("models.yolo.") for g in checkpoint_globals(shared_data / "weights" / "yolov5n-v7.0.pt"))
