"""Which box is the patched person: markers, every person, a tracked first-frame box, known boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from patchkit.detections import Detections
from patchkit.errors import PatchkitError
from patchkit.markers import MarkerObservation
from patchkit.video.target import BoxReference, EveryPersonReference, KnownBoxesReference, MarkerReference, parse_box


def dets(boxes, confs):
    return Detections(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), torch.tensor(confs, dtype=torch.float32),
                      torch.zeros(len(confs), dtype=torch.long))


def quad(x, y, s=10.0):
    return np.array([[x, y], [x + s, y], [x + s, y + s], [x, y + s]], dtype=np.float64)


def test_marker_reference_picks_the_box_with_the_markers():
    obs = MarkerObservation(np.array([0, 1]), np.stack([quad(120, 100), quad(160, 100)]))
    d = dets([[300, 50, 400, 300], [100, 40, 190, 320], [110, 60, 180, 200]], [0.95, 0.4, 0.6])
    st = MarkerReference()(d, obs)
    assert st.present and st.conf == pytest.approx(0.6)  # the more confident of the two covering boxes
    st = MarkerReference()(d[torch.tensor([0])], obs)  # only the bystander detected
    assert st.present and st.conf == 0.0 and st.box == [120.0, 100.0, 170.0, 110.0]
    assert MarkerReference()(d, MarkerObservation(np.zeros(0, int), np.zeros((0, 4, 2)))).present is False


def test_every_person_and_box_tracking():
    st = EveryPersonReference()(dets([[0, 0, 10, 10], [5, 5, 20, 20]], [0.3, 0.7]), None)
    assert st.present and st.conf == pytest.approx(0.7)
    assert EveryPersonReference()(Detections.empty(), None).conf == 0.0
    ref = BoxReference((100, 100, 200, 300))
    a = ref(dets([[105, 110, 205, 305], [400, 100, 500, 300]], [0.5, 0.9]), None)
    assert a.conf == pytest.approx(0.5) and a.box == [105.0, 110.0, 205.0, 305.0]
    b = ref(dets([[400, 100, 500, 300]], [0.9]), None)  # target hidden: still in view, not detected
    assert b.present and b.conf == 0.0 and b.box == [105.0, 110.0, 205.0, 305.0]
    c = ref(dets([[115, 115, 215, 310]], [0.8]), None)  # found again near the last box
    assert c.conf == pytest.approx(0.8)
    assert parse_box("1, 2,3,4") == (1.0, 2.0, 3.0, 4.0)
    with pytest.raises(PatchkitError):
        parse_box("1,2,3")
    with pytest.raises(PatchkitError):
        BoxReference((10, 10, 5, 20))


def test_known_boxes_reference_matches_the_true_box_of_each_frame():
    ref = KnownBoxesReference([[100, 100, 150, 220], None, [10, 10, 60, 130]])
    both = dets([[102, 98, 151, 225], [12, 10, 58, 128]], [0.4, 0.9])
    st = ref(both, None, 0)  # frame 0: only the first detection overlaps the truth
    assert st.present and st.conf == pytest.approx(0.4) and st.box[0] == pytest.approx(102)
    assert ref(both, None, 2).conf == pytest.approx(0.9)
    assert ref(both, None, 1).present is False  # no truth: not in view, never a success
    assert ref(both, None, 7).present is False  # past the end of the file
    shifted = dets([[130, 100, 180, 220]], [0.95])  # IoU 0.25 with the truth: a miss
    st = ref(shifted, None, 0)
    assert st.present and st.conf == 0.0 and st.box == [100.0, 100.0, 150.0, 220.0]


def test_known_boxes_reference_reads_the_toyworld_json_and_names_bad_files(tmp_path):
    import json

    good = tmp_path / "walk.json"
    good.write_text(json.dumps({"frames": [{"index": 1, "person_box": [0, 0, 10, 20]},
                                           {"index": 0, "person_box": [5, 5, 15, 25]}]}))
    ref = KnownBoxesReference.from_json(good)
    assert ref(dets([[5, 5, 15, 25]], [0.7]), None, 0).conf == pytest.approx(0.7)
    assert ref(dets([[5, 5, 15, 25]], [0.7]), None, 1).conf == 0.0
    bad = tmp_path / "bad.json"
    bad.write_text('{"boxes": []}')
    for path, words in ((bad, "not a per-frame boxes file"), (tmp_path / "missing.json", "no per-frame boxes file")):
        with pytest.raises(PatchkitError) as exc:
            KnownBoxesReference.from_json(path)
        assert words in str(exc.value) and path.name in str(exc.value)
