import pytest
import torch

from patchkit.errors import PatchkitError
from patchkit.io import save_image
from patchkit.patches import LowResPatch, PalettePatch, PatchConfig, RawPatch, SigmoidPatch, build_patch, initial_patch


@pytest.mark.parametrize("kind", ["raw", "sigmoid", "lowres", "palette"])
def test_every_parameterization_stays_in_range_and_learns(kind):
    palette = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    patch = build_patch(PatchConfig(size=16, init="random", parameterization=kind, lowres_factor=4), palette)
    opt = torch.optim.Adam(patch.parameters(), lr=0.5)
    before = patch().detach().clone()
    for _ in range(5):  # push every pixel towards pure red
        loss = (patch() - torch.tensor([1.0, 0.0, 0.0])[:, None, None]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        patch.project_()
    after = patch().detach()
    assert after.shape == (3, 16, 16)
    assert after.min() >= 0 and after.max() <= 1
    assert (after[0] - after[1:].mean(0)).mean() > (before[0] - before[1:].mean(0)).mean() + 0.05


def test_palette_patch_is_a_convex_mixture_of_its_colours():
    palette = torch.tensor([[0.2, 0.4, 0.6], [0.8, 0.1, 0.3]])
    patch = PalettePatch(torch.rand(3, 8, 8), palette)
    out = patch()
    # every pixel lies on the segment between the two colours
    t = (out[0] - 0.2) / 0.6
    torch.testing.assert_close(out, palette[0][:, None, None] + t * (palette[1] - palette[0])[:, None, None])


def test_initial_patch_from_file_checks_size(tmp_path):
    img = torch.rand(3, 16, 16)
    save_image(tmp_path / "p.png", img)
    loaded = initial_patch(str(tmp_path / "p.png"), 16)
    assert (loaded - img).abs().max() <= 0.5 / 255 + 1e-6
    with pytest.raises(PatchkitError, match="16x16 px but patch.size is 32"):
        initial_patch(str(tmp_path / "p.png"), 32)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(PatchkitError, match="bad.png"):
        initial_patch(str(tmp_path / "bad.png"), 16)


def test_raw_and_sigmoid_start_from_init():
    init = torch.rand(3, 8, 8) * 0.9 + 0.05
    torch.testing.assert_close(RawPatch(init)(), init)
    torch.testing.assert_close(SigmoidPatch(init)(), init, atol=1e-5, rtol=0)
    assert LowResPatch(init, 2)().shape == (3, 8, 8)
