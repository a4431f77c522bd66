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
