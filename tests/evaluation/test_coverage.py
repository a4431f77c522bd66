"""person_coverage tells a hidden person from one cut into partial boxes."""

import pytest
import torch

from patchkit.detections import Detections
from patchkit.evaluation.coverage import person_coverage


def _dets(rows):
    t = torch.tensor(rows, dtype=torch.float32).reshape(-1, 5)
    return Detections(t[:, :4], t[:, 4], torch.zeros(len(t), dtype=torch.long))


def test_found_partial_and_hidden_people_are_told_apart():
    people = torch.tensor([[0.0, 0.0, 10.0, 20.0], [30.0, 0.0, 40.0, 20.0], [60.0, 0.0, 70.0, 20.0]])
    dets = _dets([[0, 1, 10, 20, 0.9],     # person 1 found (IoU 0.95)
                  [30, 0, 40, 7, 0.8],     # person 2 only as its top third: IoU 0.35, centre inside
                  [62, 14, 68, 20, 0.1],   # person 3: a box below the confidence threshold
                  [100, 0, 110, 10, 0.7]])  # a hallucinated person elsewhere
    cov = person_coverage([dets], [people])
    assert cov.persons == 3
    assert cov.found == pytest.approx(1 / 3)
    assert cov.found_loose == pytest.approx(2 / 3)
    assert cov.touched == pytest.approx(2 / 3)
    assert cov.false_per_image == 2.0  # the partial box and the hallucination
    assert person_coverage([dets], [people], conf=0.05).touched == 1.0


def test_images_without_people_or_detections():
    cov = person_coverage([_dets([]), _dets([[0, 0, 5, 5, 0.9]])], [torch.tensor([[0.0, 0.0, 5.0, 5.0]]),
                                                                    torch.zeros(0, 4)])
    assert (cov.found, cov.touched, cov.false_per_image, cov.persons) == (0.0, 0.0, 0.5, 1)
    with pytest.raises(ValueError, match="label sets"):
        person_coverage([_dets([])], [])


def test_found_share_by_person_height_in_pixels():
    small = torch.tensor([[0.0, 0.0, 10.0, 100.0], [20.0, 0.0, 30.0, 100.0]])  # 100 px tall
    large = torch.tensor([[50.0, 0.0, 150.0, 300.0]])                          # 300 px tall
    dets = _dets([[0, 0, 10, 100, 0.9], [50, 0, 150, 300, 0.2]])  # one small found; the large one too weak
    cov = person_coverage([dets], [torch.cat([small, large])], height_edges=(128, 256))
    assert cov.found_by_height == {"<128": 0.5, ">=256": 0.0}  # the empty 128-256 band is left out
    assert cov.persons_by_height == {"<128": 2, ">=256": 1}
    assert person_coverage([dets], [large], conf=0.1, height_edges=(128, 256)).found_by_height == {">=256": 1.0}
    with pytest.raises(ValueError, match="increasing"):
        person_coverage([dets], [large], height_edges=(256, 128))
