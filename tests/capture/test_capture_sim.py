"""Print-and-capture simulator: printers, camera, geometry and compositing."""

import numpy as np
import pytest

from patchkit.capture import (
    SimulatedCamera,
    GamutPrinter,
    HalftonePrinter,
    composite_print,
    make_printer,
    photograph_sheet,
    print_reflectance,
    project_plane,
    random_sheet_pose,
    simulated_truth,
)
from patchkit.printing.colour import srgb_to_linear_np
from patchkit.printing.fit import delta_e_rgb

GREY = np.repeat(np.linspace(0, 1, 17)[:, None], 3, axis=1)
Y = np.array([0.2126, 0.7152, 0.0722])


@pytest.mark.parametrize("kind", ["halftone", "gamut"])
def test_printers_are_plausible_and_seeded(kind):
    p = make_printer(kind, 3)
    assert isinstance(p, HalftonePrinter if kind == "halftone" else GamutPrinter)
    refl = p.reflectance(GREY)
    lum = refl @ Y
    assert np.all(np.diff(lum) > 0)  # the grey ramp stays monotonic
    assert 0.7 < lum[-1] < 0.95 and lum[0] < 0.06  # paper white, dense black
    assert np.array_equal(make_printer(kind, 3).reflectance(GREY), refl)
    assert not np.allclose(make_printer(kind, 4).reflectance(GREY), refl)
    # strength makes it harder
    cam = SimulatedCamera()
    test = np.random.default_rng(0).random((300, 3))
    mild = delta_e_rgb(test, simulated_truth(make_printer(kind, 3, 0.5), cam, test)).mean()
    strong = delta_e_rgb(test, simulated_truth(make_printer(kind, 3, 1.5), cam, test)).mean()
    assert strong > mild


def test_halftone_respects_the_ink_limit_and_printers_differ():
    p = HalftonePrinter.from_seed(0)
    rgb = np.random.default_rng(1).random((2000, 3))
    cov = p.coverage(rgb)
    gain = 4 * p.dot_gain.max() * 0.25
    assert (cov.sum(axis=1) <= p.ink_limit + 4 * gain + 1e-9).all()
    a = simulated_truth(p, SimulatedCamera(), rgb)
    b = simulated_truth(GamutPrinter.from_seed(0), SimulatedCamera(), rgb)
    assert delta_e_rgb(a, b).mean() > 3.0  # two structurally different printers


def test_camera_response_and_noise():
    cam = SimulatedCamera.from_seed(0, jpeg_quality=None, blur_sigma=0.0)
    ramp = np.linspace(0, 1, 50)[:, None] * np.ones(3)
    resp = cam.respond(ramp)
    assert np.all(np.diff(resp, axis=0) >= 0) and resp.max() <= 1.0
    flat = np.full((200, 200, 3), 0.4, np.float32)
    shot = cam.capture(flat, np.random.default_rng(0)).astype(np.float64)
    assert shot.std(axis=(0, 1)).max() > 0.5  # noise present
    assert np.abs(shot.mean(axis=(0, 1)) - cam.respond(np.full(3, 0.4)) * 255).max() < 1.5
    assert np.array_equal(cam.capture(flat, np.random.default_rng(0)), cam.capture(flat, np.random.default_rng(0)))
    f = cam.field(64, 48)
    assert f.shape == (64, 48) and abs(f.mean() - 1) < 0.05


def test_truth_is_paper_white_relative():
    p, cam = make_printer("gamut", 2), SimulatedCamera.from_seed(2)
    t = simulated_truth(p, cam, np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]))
    assert np.allclose(t[0], 1.0) and t[1].max() < 0.4


def test_photographed_sheet_lands_at_its_pose():
    sheet = np.full((200, 300, 3), 255, np.uint8)
    sheet[80:120, 130:170] = 0  # black square centred at (150, 100) px = (75, 50) mm
    rng = np.random.default_rng(3)
    pose = random_sheet_pose((150.0, 100.0), (320, 240), rng, perspective=0.1)
    cam = SimulatedCamera(exposure=1.0, jpeg_quality=None)
    photo = photograph_sheet(sheet, (150.0, 100.0), make_printer("halftone", 0), cam, pose, (320, 240), seed=0, background=1.0)
    assert photo.shape == (240, 320, 3)
    grey = photo.mean(axis=2)
    dark = (grey < (grey.min() + grey.max()) / 2).astype(np.float64)
    yy, xx = np.mgrid[0:240, 0:320]
    centroid = np.array([(xx * dark).sum(), (yy * dark).sum()]) / dark.sum()
    expected = pose.project(np.array([[75.0, 50.0]]))[0]
    assert np.linalg.norm(centroid - expected) < 1.0


def test_project_plane_geometry():
    frontal = project_plane((200.0, 100.0), (640, 480), distance_mm=1000.0, focal_px=800.0)
    width = np.linalg.norm(frontal.corners[1] - frontal.corners[0])
    assert width == pytest.approx(800.0 * 200.0 / 1000.0, rel=1e-6)
    assert frontal.corners.mean(axis=0) == pytest.approx([319.5, 239.5])
    turned = project_plane((200.0, 100.0), (640, 480), distance_mm=1000.0, yaw_deg=40.0, focal_px=800.0)
    left = np.linalg.norm(turned.corners[3] - turned.corners[0])
    right = np.linalg.norm(turned.corners[2] - turned.corners[1])
    assert abs(left - right) > 5  # one side is nearer the camera
    assert np.allclose(turned.project(np.array([[0.0, 0.0], [200.0, 100.0]])), turned.corners[[0, 2]], atol=1e-6)
    with pytest.raises(ValueError, match="camera plane"):
        project_plane((200.0, 100.0), (640, 480), distance_mm=50.0, yaw_deg=80.0)


def test_composite_print_pastes_the_printed_colour_at_the_pose():
    frame = np.full((240, 320, 3), 90, np.uint8)
    patch = np.zeros((60, 60, 3), np.uint8)
    patch[:] = (200, 40, 40)
    pose = project_plane((300.0, 300.0), (320, 240), distance_mm=2000.0, yaw_deg=20.0, focal_px=600.0, centre_px=(150.0, 120.0))
    printer = make_printer("gamut", 1)
    out = composite_print(frame, patch, pose, printer, degrade=False)
    assert out.shape == frame.shape and out.dtype == np.uint8
    inside = out[int(pose.corners[:, 1].mean()), int(pose.corners[:, 0].mean())].astype(float)
    cam = SimulatedCamera(exposure=0.9 / 0.88)
    expected = cam.respond(printer.reflectance(np.array([[200, 40, 40]]) / 255.0))[0] * 255
    assert np.abs(inside - expected).max() <= 1.0
    assert (out[5, 5] == 90).all() and (out[235, 315] == 90).all()  # outside untouched
    lit = composite_print(frame, patch, pose, printer, illumination=0.5, degrade=False)
    c = (int(pose.corners[:, 1].mean()), int(pose.corners[:, 0].mean()))
    assert srgb_to_linear_np(lit[c] / 255.0).mean() < 0.65 * srgb_to_linear_np(out[c] / 255.0).mean()
    noisy = composite_print(frame, patch, pose, printer, camera=SimulatedCamera.from_seed(0), seed=1)
    assert np.array_equal(noisy, composite_print(frame, patch, pose, printer, camera=SimulatedCamera.from_seed(0), seed=1))
    with pytest.raises(ValueError, match="uint8"):
        composite_print(frame.astype(np.float32), patch, pose, printer)


def test_print_reflectance_matches_pointwise_model_for_any_image():
    p = make_printer("halftone", 5)
    img = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    img[:10] = 17  # many repeats plus many distinct colours
    want = p.reflectance(img.reshape(-1, 3) / 255.0).reshape(40, 50, 3)
    assert np.abs(print_reflectance(p, img) - want).max() < 1e-6
    assert np.abs(print_reflectance(p, img / 255.0) - want).max() < 1e-6
