"""Shipped profiles and the round trip: export -> simulated print + photo -> compare with the
training-time prediction of the profile (both simulated printers)."""

import numpy as np
import pytest
import torch
from _printing_sim import PRINTERS, de, sample_colours, stats

from patchkit.capture import photograph_sheet, random_sheet_pose, simulated_truth
from patchkit.capture.presets import preset
from patchkit.printing import PrinterProfile
from patchkit.printing.drawing import PAGE_SIZES_MM, rasterize
from patchkit.printing.export import export_patch
from patchkit.printing.qa import measure_print_photo

NAMES = ["sim-halftone", "sim-gamut"]


def test_identity_profile_ships():
    prof = PrinterProfile.load(PRINTERS / "identity")
    x = torch.rand(1, 3, 8, 8)
    assert torch.allclose(prof(x), x, atol=1e-6) and prof.uncertainty == 0.0


@pytest.mark.parametrize("name", NAMES)
def test_shipped_simulated_profiles_match_their_simulator(name):
    prof = PrinterProfile.load(PRINTERS / name)
    assert prof.meta["chart_id"] == "patchkit-chart-v1-k0" and f"preset('{name}')" in prof.meta["notes"]["text"]
    assert prof.meta["fit"]["n_photos"] == 2 and prof.meta["fit"]["cv_mean"] < 1.0
    p = preset(name)
    test = sample_colours()
    truth = simulated_truth(p.printer(), p.camera(), test)
    mean, p95 = stats(de(prof.predict(test).double().numpy(), truth))
    assert mean <= 1.0 and p95 <= 2.5
    assert de(test, truth).mean() >= 10 * mean


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_export_print_photo_matches_training_prediction(name):
    prof = PrinterProfile.load(PRINTERS / name)
    blocks = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    patch = np.kron(blocks, np.ones((12, 12, 1), np.uint8))  # 96 x 96 px, 8 x 8 colour blocks
    exp = export_patch(patch, 120.0, markers=True, profile=prof)

    # print the exported page with the simulated printer and photograph it in a new pose
    p = preset(name)
    sheet = PAGE_SIZES_MM["a4"]
    pose = random_sheet_pose(sheet, (960, 1280), np.random.default_rng(7), fill=0.85, perspective=0.08)
    scale = np.linalg.norm(pose.corners[1] - pose.corners[0]) / sheet[0]
    raster = rasterize(exp.pages[0], 2.2 * scale)
    photo = photograph_sheet(raster, sheet, p.printer(), p.camera(), pose, (960, 1280), seed=3)

    check = measure_print_photo(photo, exp.meta, prof)
    cell = 120.0 / 8
    centres = np.array([[(j + 0.5) * cell, (i + 0.5) * cell] for i in range(8) for j in range(8)])
    captured = check.sample(centres, cell * 0.5)

    # the training-time prediction: the profile applied to the digital patch as an image batch
    with torch.no_grad():
        pred_img = prof(torch.from_numpy(patch).permute(2, 0, 1).unsqueeze(0).float() / 255.0)[0]
    idx = ((centres / cell - 0.5) * 12 + 6).astype(int)
    predicted = pred_img[:, idx[:, 1], idx[:, 0]].T.double().numpy()
    mean = de(captured, predicted).mean()
    assert mean <= 1.5, f"round trip mean dE2000 {mean:.2f}"
    assert check.reprojection_px < 1.0 and check.markers == [40, 41, 42, 43]
    assert check.qa_delta_e is not None and check.qa_delta_e.mean() < 2.0  # QA strip vs profile
