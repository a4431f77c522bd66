"""PrinterProfile: module contract, save/load, integrity, uncertainty sampling, palettes."""

import json

import numpy as np
import pytest
import torch

from _printing_sim import one_thread  # noqa: F401 (fixture)

from patchkit.errors import PatchkitError
from patchkit.printing import (
    PrinterProfile,
    RandomPrinterProfile,
    legacy_nps_palette,
    palette_from_profile,
)
from patchkit.printing.colour import srgb_to_lab
from patchkit.printing.lut import identity_lut


def _toy_profile(size=9, sigma=0.02):
    lut = identity_lut(size) * 0.8 + 0.1
    lut[..., 0] = lut[..., 0] ** 1.5
    meta = {"name": "toy", "chart_id": "k0", "fit": {"cv_mean": 0.6, "cv_rgb_rmse": sigma}}
    meas = {"digital": np.random.default_rng(0).random((10, 3)), "kept": np.ones(10, bool)}
    return PrinterProfile(lut, meta, meas)


def test_identity_profile_is_a_module_mapping_images():
    prof = PrinterProfile.identity()
    assert isinstance(prof, torch.nn.Module)
    x = torch.rand(2, 3, 8, 8, requires_grad=True)
    y = prof(x)
    assert y.shape == x.shape and torch.allclose(y, x, atol=1e-6)
    y.sum().backward()
    assert torch.allclose(x.grad, torch.ones_like(x), atol=1e-4)


def test_save_load_round_trip(tmp_path):
    prof = _toy_profile()
    prof.save(tmp_path / "p")
    meta = json.loads((tmp_path / "p" / "profile.json").read_text())
    assert meta["schema_version"] == 1 and len(meta["sha256"]) == 64 and meta["lut_size"] == 9
    for target in (tmp_path / "p", tmp_path / "p" / "profile.json", tmp_path / "p" / "profile.npz"):
        back = PrinterProfile.load(target)
        assert torch.equal(back.lut, prof.lut)
        assert back.meta["chart_id"] == "k0" and back.sha256 == meta["sha256"]
        assert np.array_equal(back.measurements["digital"], prof.measurements["digital"])
    prof.save(tmp_path / "flat.json")  # stem form: flat.json + flat.npz
    assert torch.equal(PrinterProfile.load(tmp_path / "flat.json").lut, prof.lut)


def test_load_rejects_tampered_or_broken_profiles(tmp_path):
    _toy_profile().save(tmp_path / "p")
    jpath = tmp_path / "p" / "profile.json"
    meta = json.loads(jpath.read_text())
    meta["fit"]["cv_mean"] = 0.1  # edited statistics
    jpath.write_text(json.dumps(meta))
    with pytest.raises(PatchkitError, match="sha256"):
        PrinterProfile.load(tmp_path / "p")
    with pytest.raises(PatchkitError, match="missing profile.json"):
        PrinterProfile.load(tmp_path / "nothing")
    jpath.write_text("{not json")
    with pytest.raises(PatchkitError, match="cannot read"):
        PrinterProfile.load(tmp_path / "p")
    meta["schema_version"] = 99
    jpath.write_text(json.dumps(meta))
    with pytest.raises(PatchkitError, match="schema_version"):
        PrinterProfile.load(tmp_path / "p")
    (tmp_path / "p" / "profile.npz").write_bytes(b"garbage")
    meta["schema_version"] = 1
    jpath.write_text(json.dumps(meta))
    with pytest.raises(PatchkitError, match="cannot read printer profile arrays"):
        PrinterProfile.load(tmp_path / "p")
    with pytest.raises(PatchkitError, match="S, S, S, 3"):
        PrinterProfile(torch.zeros(4, 4, 3))


def test_perturbation_is_smooth_seeded_and_of_the_calibration_size(one_thread):
    prof = _toy_profile(sigma=0.02)
    a = prof.sample_luts(64, torch.Generator().manual_seed(3))
    b = prof.sample_luts(64, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    res = a - prof.lut
    assert 0.012 < res.std().item() < 0.03  # about sigma (trilinear upsampling shrinks it a little)
    # smooth: neighbouring nodes differ far less than for white noise (ratio about 1.4 there)
    assert (res[:, 1:] - res[:, :-1]).abs().mean() < 0.6 * res.abs().mean()
    p = prof.perturbed(torch.Generator().manual_seed(0))
    assert isinstance(p, PrinterProfile) and not torch.equal(p.lut, prof.lut)
    assert torch.equal(prof.sample_luts(2, sigma=0.0), prof.lut.expand(2, -1, -1, -1, -1))


def test_random_printer_profile_samples_per_image_and_replays(one_thread):
    p1, p2 = _toy_profile(), PrinterProfile.identity(size=5)
    op = RandomPrinterProfile([p1, p2])
    x = torch.rand(16, 3, 6, 6, requires_grad=True)
    params = op.sample(x.shape, torch.Generator().manual_seed(0))
    assert params["lut"].shape == (16, 9, 9, 9, 3)
    assert set(params["profile_index"].tolist()) == {0, 1}
    y = op(x, params)
    assert torch.equal(y, op(x, params))  # replay
    ident = params["profile_index"] == 1
    assert torch.allclose(y[ident], x[ident], atol=1e-5)  # identity has no uncertainty
    y.sum().backward()
    assert x.grad.abs().sum() > 0
    same = RandomPrinterProfile(p1, same_on_batch=True).sample((4,), torch.Generator().manual_seed(1))
    assert torch.equal(same["lut"][0], same["lut"][3])


def test_palettes_are_digital_and_printable(one_thread):
    legacy = legacy_nps_palette()
    assert legacy.shape == (30, 3) and 0 <= legacy.min() and legacy.max() <= 1
    assert torch.allclose(legacy[0], torch.tensor([27, 14, 28]) / 255.0)
    prof = _toy_profile()
    pal = palette_from_profile(prof, k=12)
    assert pal.shape == (12, 3) and pal.min() >= 0 and pal.max() <= 1
    # entries spread over the reachable lightness range of the printer
    lab = srgb_to_lab(prof.predict(pal).double())
    assert lab[:, 0].max() - lab[:, 0].min() > 40
    assert torch.equal(pal, palette_from_profile(prof, k=12))  # deterministic


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_profile_and_uncertainty_on_cuda():
    prof = _toy_profile().to("cuda")
    x = torch.rand(4, 3, 16, 16, device="cuda", requires_grad=True)
    y = prof(x)
    assert y.device.type == "cuda" and torch.allclose(y.cpu(), _toy_profile()(x.detach().cpu()), atol=1e-5)
    y.sum().backward()
    op = RandomPrinterProfile(prof).to("cuda")
    params = op.sample(x.shape, torch.Generator().manual_seed(0))  # CPU generator, CUDA tensors
    assert params["lut"].device.type == "cuda" and op(x, params).shape == x.shape
