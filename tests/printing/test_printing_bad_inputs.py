"""Bad calibration inputs give one clear message (never a silently bad profile)."""

import cv2
import numpy as np
import pytest
from _printing_sim import de, make_scenario, sample_colours, scenario

from patchkit.errors import PatchkitError
from patchkit.printing.calibrate import calibrate
from patchkit.printing.chart import layout_for_key
from patchkit.printing.measure import measure_chart


def _hide_markers(sc, ids):
    photo = sc.photo.copy()
    for m, corners in sc.true_marker_corners().items():
        if m in ids:
            centre = corners.mean(0)
            poly = (centre + 1.4 * (corners - centre)).round().astype(np.int32)
            cv2.fillPoly(photo, [poly], (200, 200, 200))
    return photo


def test_two_of_four_markers_is_a_clear_error():
    sc = scenario("halftone", False)
    with pytest.raises(PatchkitError, match="only 2 of 4 chart markers"):
        measure_chart(_hide_markers(sc, {0, 2}), source="p.jpg")
    # three markers are enough (over-determined homography)
    m = measure_chart(_hide_markers(sc, {3}))
    assert m.n_markers == 3 and m.kept.mean() > 0.95


def test_glare_blob_swatches_are_flagged_and_the_fit_survives():
    base = scenario("halftone", False)
    centre = base.pose.project(np.array([[105.0, 110.0]]))[0]
    sc = make_scenario("halftone", False, glare=(centre[0], centre[1], 30.0, 0.6))
    profile, report = calibrate([("glare.jpg", sc.photo)])
    dropped = report.photos[0]["dropped"]
    assert dropped.get("glare_or_shadow", 0) + dropped.get("high_spread", 0) + dropped.get("clipped", 0) >= 8
    assert any("dropped" in w for w in report.warnings)
    test = sample_colours(1000)
    assert de(profile.predict(test).double().numpy(), sc.truth(test)).mean() < 1.0


@pytest.mark.parametrize("gain,message", [(2.2, "overexposed"), (0.12, "underexposed")])
def test_over_and_under_exposed_photos_are_rejected(gain, message):
    sc = scenario("gamut", False)
    photo = np.clip(sc.photo.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    with pytest.raises(PatchkitError, match=message):
        measure_chart(photo, source="p.jpg")


def test_photo_of_another_chart_is_rejected():
    sc = make_scenario("gamut", False, key=1)
    with pytest.raises(PatchkitError, match="photo shows chart k1"):
        measure_chart(sc.photo, layout_for_key(0))
    assert measure_chart(sc.photo).layout.key == 1  # identified from its markers alone
    # same markers, different colours (e.g. an edited layout file): caught by the colour check
    wrong = layout_for_key(1)
    wrong.swatch_rgb = np.random.default_rng(0).permutation(wrong.swatch_rgb)
    with pytest.raises(PatchkitError, match="do not follow the layout"):
        measure_chart(sc.photo, wrong)


def test_markers_that_are_not_chart_markers_are_rejected():
    from patchkit.markers import marker_bits

    img = np.full((900, 900, 3), 235, np.uint8)
    for i, mid in enumerate((40, 41, 42, 43)):
        bits = np.kron(marker_bits(mid), np.ones((20, 20), bool))
        y, x = 100 + (i // 2) * 500, 100 + (i % 2) * 500
        img[y : y + 120, x : x + 120][bits] = 20
    with pytest.raises(PatchkitError, match="not chart ids"):
        measure_chart(img)
    with pytest.raises(PatchkitError, match="no ArUco markers"):
        measure_chart(np.full((600, 800, 3), 128, np.uint8))



def test_chart_corner_outside_the_photo_drops_those_swatches():
    from patchkit.capture import SheetPose, photograph_sheet
    from patchkit.printing.chart import chart_page
    from patchkit.printing.drawing import PAGE_SIZES_MM, rasterize

    sc = scenario("halftone", False)
    sheet = PAGE_SIZES_MM["a4"]
    # in perspective and shifted right: the bottom-right marker and some swatches leave the frame
    corners = np.array([[150.0, 30.0], [870.0, 0.0], [1070.0, 1100.0], [240.0, 1150.0]])
    pose = SheetPose.from_corners(corners, sheet)
    raster = rasterize(chart_page(sc.layout, date="simulated"), px_per_mm=9.0)
    photo = photograph_sheet(raster, sheet, sc.printer, sc.camera, pose, (870, 1160), seed=5)
    m = measure_chart(photo)
    assert m.n_markers == 3
    outside = m.reasons["outside_photo"]
    assert 10 < outside < 0.3 * m.layout.n_swatches
    assert not m.kept[~m.kept].any() and m.kept.sum() >= m.layout.n_swatches - outside - 5
    kept_truth = sc.truth(m.layout.digital()[m.kept])
    assert de(m.normalised[m.kept], kept_truth).mean() < 1.0  # what is kept is measured well
