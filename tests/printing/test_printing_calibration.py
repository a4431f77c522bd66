"""Acceptance bar of `calibrate` on simulated prints (both printer families, seeded, CPU).

Photos are 870 x 1160 px (1.01 MP); nominal = printer/camera strength 1, blur 1 px, JPEG 85,
perspective +-8 %; hard = strength 1.5, blur 1.5 px, JPEG 70, perspective +-12 %.
"""

import numpy as np
import pytest
from _printing_sim import calibrated, de, make_scenario, sample_colours, scenario, stats

from patchkit.printing.calibrate import calibrate
from patchkit.printing.fit import fit_polynomial
from patchkit.printing.measure import chart_homography, detect_markers


@pytest.mark.parametrize("kind", ["halftone", "gamut"])
def test_markers_found_with_sub_pixel_corners_in_hard_photos(kind):
    for seed in (1, 2):
        sc = scenario(kind, True, seed)
        found = detect_markers(sc.photo)
        truth = sc.true_marker_corners()
        assert sorted(found) == [0, 1, 2, 3]
        err = max(np.linalg.norm(found[m] - truth[m], axis=1).max() for m in found)
        assert err < 1.0, f"marker corner error {err:.2f} px"
        H, rms, n = chart_homography(found, sc.layout)
        assert n == 4 and rms < 1.0
        for m, mm in sc.layout.marker_corners_mm().items():  # homography error at every corner
            pred = (H @ np.c_[mm, np.ones(4)].T).T
            assert np.linalg.norm(pred[:, :2] / pred[:, 2:] - truth[m], axis=1).max() < 1.0
    # deterministic
    assert all(np.array_equal(a, b) for a, b in zip(detect_markers(sc.photo).values(), found.values()))


@pytest.mark.parametrize("kind", ["halftone", "gamut"])
@pytest.mark.parametrize("hard", [False, True], ids=["nominal", "hard"])
def test_fit_against_simulator_truth(kind, hard):
    sc = scenario(kind, hard)
    profile, report = calibrated(kind, hard)
    assert report.seconds < 10.0, f"calibrate took {report.seconds:.1f} s for {report.n_swatches} swatches"
    assert report.n_swatches == 418 and report.n_used >= 400

    test = sample_colours()
    truth = sc.truth(test)
    mean, p95 = stats(de(profile.predict(test).double().numpy(), truth))
    # honest comparisons: the same measured swatches through an affine fit, and no calibration
    kept = profile.measurements["photo_kept"][0]
    measured = profile.measurements["photo_normalised"][0].astype(np.float64)
    x, y = sc.layout.digital()[kept], measured[kept]
    affine = de(fit_polynomial(x, y, degree=1).predict(test), truth).mean()
    none = de(test, truth).mean()
    bar_mean, bar_p95 = (1.5, 4.0) if hard else (1.0, 2.5)
    assert mean <= bar_mean and p95 <= bar_p95, f"LUT vs truth mean {mean:.2f} p95 {p95:.2f}"
    assert affine >= 4 * mean, f"affine {affine:.2f} vs LUT {mean:.2f}"
    assert none >= 10 * mean, f"no calibration {none:.2f} vs LUT {mean:.2f}"
    # the measured swatches themselves are close to the truth (flat field + paper white)
    assert de(y, sc.truth(x)).mean() <= (1.5 if hard else 1.0)
    # the report's CV numbers are real held-out errors of the right size
    assert 0.2 < report.cv["mean"] < 2.0 and report.cv["p95"] < 4.0 and not report.warnings


def test_two_photos_combine_and_report_cross_photo_consistency():
    a = scenario("halftone", False)
    b = make_scenario("halftone", False, shot=1)  # same print, camera and light; another pose
    profile, report = calibrate([("a", a.photo), ("b", b.photo)], name="two")
    assert report.n_photos == 2 and report.cross_photo is not None
    assert report.cross_photo["mean"] < 0.7
    single, _ = calibrated("halftone", False)  # photo a alone
    test = sample_colours(500)
    assert de(profile.predict(test).double().numpy(), single.predict(test).double().numpy()).mean() < 0.7
    assert profile.measurements["photo_kept"].shape == (2, 418)
    assert profile.meta["fit"]["cross_photo_mean"] == pytest.approx(report.cross_photo["mean"])
    assert "cross-photo" in report.format()


def test_one_photo_without_a_chart_is_skipped_with_a_warning_not_fatal():
    a = scenario("halftone", False)
    blank = np.full_like(a.photo, 200)
    profile, report = calibrate([("good.jpg", a.photo), ("blank.jpg", blank)], name="one-bad")
    assert report.n_photos == 1
    assert any("blank.jpg" in w and "skipped photo" in w for w in report.warnings)
    assert any("blank.jpg" in w for w in profile.meta["warnings"])
    with pytest.raises(Exception, match="blank.jpg"):  # with no usable photo the first error is raised
        calibrate([("blank.jpg", blank)])


def test_the_profile_keeps_the_model_that_predicts_held_out_swatches_better():
    from patchkit.printing.calibrate import _choose_model
    from patchkit.printing.fit import fit_lattice_cv

    rng = np.random.default_rng(0)
    x = rng.random((300, 3))
    y = np.clip(0.05 + 0.8 * x + 0.1 * x**2 - 0.05 * x**3, 0, 1)  # a cubic: the polynomial is exact
    fit = fit_lattice_cv(x, y, size=5, folds=5)
    poly = {"mean": fit.cv["mean"] - 0.05, "p95": 0.02, "max": 0.03, "rgb_rmse": 1e-4}  # the cubic scores better
    lut, model, why = _choose_model(fit, poly, x, y, 5)
    assert model == "poly3" and lut.shape == (17, 17, 17, 3) and "beats" in why
    from patchkit.printing.lut import apply_lut_numpy

    assert de(apply_lut_numpy(lut, x), y).max() < 0.1  # the baked cubic reproduces it
    lut2, model2, why2 = _choose_model(fit, {**poly, "mean": fit.cv["mean"] - 0.01}, x, y, 5)  # within the margin
    assert model2 == "lattice" and lut2 is fit.lut and "not beaten" in why2
    _, report = calibrated("halftone", False)
    assert report.model in ("lattice", "poly3") and report.model_choice and f"profile ({report.model})" in report.format()


@pytest.mark.parametrize("kind", ["halftone", "gamut"])
def test_a_photo_with_clipped_paper_white_is_fitted_with_the_clipping_modelled(kind):
    """A phone's auto exposure clips the paper white (here in every channel over about half the
    gaps); the camera that films the patch clips the same way, so the profile is judged against
    the simulator's clipped truth."""
    from dataclasses import replace

    from _printing_sim import NOMINAL, PHOTO_SIZE

    from patchkit.capture import SimulatedCamera, make_printer, photograph_chart, simulated_truth
    from patchkit.printing.chart import layout_for_key

    printer = make_printer(kind, 1, 1.0)
    paper = printer.reflectance(np.ones((1, 3)))[0]
    camera = SimulatedCamera.from_seed(11, strength=1.0, blur_sigma=NOMINAL["blur"], jpeg_quality=NOMINAL["jpeg"], paper=paper)
    camera = replace(camera, exposure=camera.exposure * 1.6)
    photo, _ = photograph_chart(layout_for_key(0), printer, camera, PHOTO_SIZE, seed=21, perspective=NOMINAL["perspective"])
    assert (np.percentile(photo.reshape(-1, 3), 99, axis=0) == 255).all()  # really clipped
    profile, report = calibrate([("bright.jpg", photo)])  # used to be refused as overexposed
    assert any("overexposed" in w and "bright.jpg" in w and "clip" in w for w in report.warnings)
    test = sample_colours()
    mean, p95 = stats(de(profile.predict(test).double().numpy(), simulated_truth(printer, camera, test)))
    assert mean <= 1.1 and p95 <= 2.5, (mean, p95)
