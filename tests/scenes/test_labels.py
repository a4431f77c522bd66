import pytest
import torch

from patchkit.errors import PatchkitError
from patchkit.scenes.labels import format_yolo_labels, read_yolo_labels


def test_read_and_roundtrip(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("0 0.5 0.5 0.2 0.4\n\n2 0.25 0.75 0.1 0.1\n")
    cls, boxes = read_yolo_labels(f, 200, 100)
    assert cls.tolist() == [0, 2]
    torch.testing.assert_close(boxes[0], torch.tensor([80.0, 30.0, 120.0, 70.0]))
    f2 = tmp_path / "b.txt"
    f2.write_text(format_yolo_labels(cls, boxes, 200, 100))
    cls2, boxes2 = read_yolo_labels(f2, 200, 100)
    assert cls2.tolist() == cls.tolist()
    torch.testing.assert_close(boxes2, boxes, atol=1e-3, rtol=0)


def test_missing_label_file_means_no_objects(tmp_path):
    cls, boxes = read_yolo_labels(tmp_path / "none.txt", 10, 10)
    assert cls.numel() == 0 and boxes.shape == (0, 4)


@pytest.mark.parametrize(
    "line, message",
    [
        ("0 0.5 0.5 0.2", "expected 'class cx cy w h'"),
        ("0 a 0.5 0.2 0.2", "not numbers"),
        ("0 0.95 0.5 0.3 0.2", "outside the image"),
        ("0 0.5 0.5 0 0.2", "empty box"),
    ],
)
def test_malformed_labels_name_file_and_line(tmp_path, line, message):
    f = tmp_path / "bad.txt"
    f.write_text("0 0.5 0.5 0.1 0.1\n" + line + "\n")
    with pytest.raises(PatchkitError) as e:
        read_yolo_labels(f, 100, 100)
    assert str(f) in str(e.value) and "line 2" in str(e.value) and message in str(e.value)
