from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from patchkit.patches.texture import (
    Camouflage,
    TextureLowFreq,
    TextureRaw,
    random_offsets,
    texture_scale,
    tile_pixels,
    toroidal_crops,
    torus_voronoi,
)

PROFILE = Path(__file__).resolve().parents[2] / "printers" / "sim-gamut" / "profile.json"
PALETTE4 = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.5, 0.0], [1.0, 1.0, 1.0]])


def _tile(size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(3, size, size, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- toroidal crops


def test_integer_crop_equals_rolled_tiling():
    t = 16
    tile = _tile(t)
    offsets = torch.tensor([[0, 0], [3, 5], [15, 15], [7, -2], [20, 33]])
    h, w = 24, 40  # larger than the tile: wraps more than once
    crops = toroidal_crops(tile, offsets.float(), (h, w))
    assert crops.shape == (len(offsets), 3, h, w)
    tiled = tile.repeat(1, 3, 3)  # period t, side a multiple of t
    for crop, (a, b) in zip(crops, offsets.tolist()):
        expected = tiled.roll(shifts=(-a, -b), dims=(1, 2))[:, :h, :w]
        torch.testing.assert_close(crop, expected, atol=1e-6, rtol=0)


def test_fractional_crops_match_bilinear_sampling_of_the_tiled_texture():
    t = 16
    tile = _tile(t, seed=1)
    offsets = torch.tensor([[15.5, 15.25], [0.3, 8.7], [-3.6, 40.1]])
    scale = torch.tensor([0.37, 1.0, 1.9])
    h, w = 12, 10
    crops = toroidal_crops(tile, offsets, (h, w), scale)
    # reference: plain bilinear sampling (no wrap-around logic) of a tile repeated 5x5,
    # each crop's origin moved into the middle copy
    big = tile.repeat(1, 5, 5)
    side = big.shape[-1]
    origin = torch.remainder(offsets, t) + t
    y = origin[:, 0, None] + scale[:, None] * torch.arange(h)
    x = origin[:, 1, None] + scale[:, None] * torch.arange(w)
    grid = torch.stack(
        (
            (2 * x / (side - 1) - 1)[:, None, :].expand(-1, h, w),
            (2 * y / (side - 1) - 1)[:, :, None].expand(-1, h, w),
        ),
        dim=-1,
    )
    expected = F.grid_sample(big[None].expand(3, -1, -1, -1), grid, mode="bilinear", align_corners=True)
    torch.testing.assert_close(crops, expected, atol=1e-5, rtol=0)


def test_crop_across_the_seam_interpolates_last_and_first_pixel():
    t = 16
    tile = _tile(t, seed=2)
    crop = toroidal_crops(tile, torch.tensor([[0.0, t - 0.5]]), (1, 2))[0]
    torch.testing.assert_close(crop[:, 0, 0], 0.5 * (tile[:, 0, t - 1] + tile[:, 0, 0]))
    torch.testing.assert_close(crop[:, 0, 1], 0.5 * (tile[:, 0, 0] + tile[:, 0, 1]))


def test_crop_scale_steps_through_tile_pixels():
    tile = _tile(16, seed=3)
    crop = toroidal_crops(tile, torch.tensor([[2.0, 5.0]]), (8, 8), scale=2.0)[0]
    torch.testing.assert_close(crop, tile.repeat(1, 2, 2)[:, 2:18:2, 5:21:2], atol=1e-6, rtol=0)


def test_gradients_reach_the_tile_and_the_offsets():
    tile = _tile(16).requires_grad_(True)
    offsets = random_offsets(4, 16, torch.Generator().manual_seed(0)).requires_grad_(True)
    crops = toroidal_crops(tile, offsets, (8, 8), torch.full((4,), 0.8))
    (crops * torch.linspace(0, 1, 8)).sum().backward()
    assert tile.grad is not None and tile.grad.abs().sum() > 0
    assert offsets.grad is not None and offsets.grad.abs().sum() > 0


def test_random_offsets_are_seeded_and_in_range():
    a = random_offsets(50, 32, torch.Generator().manual_seed(7))
    b = random_offsets(50, 32, torch.Generator().manual_seed(7))
    assert a.shape == (50, 2)
    assert torch.equal(a, b)
    assert a.min() >= 0 and a.max() < 32


def test_crop_rejects_bad_shapes():
    with pytest.raises(ValueError, match="offsets"):
        toroidal_crops(_tile(), torch.zeros(3), (4, 4))
    with pytest.raises(ValueError, match="tile"):
        toroidal_crops(torch.zeros(16, 16), torch.zeros(1, 2), (4, 4))


# --------------------------------------------------------------------------- physical sizing


def test_tile_pixels_from_centimetres():
    assert tile_pixels(20.0, 150 / 2.54) == 1181
    assert tile_pixels(10.0, 3.2) == 32
    with pytest.raises(ValueError):
        tile_pixels(0.0, 10.0)


def test_texture_scale_follows_person_height():
    heights = torch.tensor([340.0, 85.0])
    scale = texture_scale(heights, repeat_cm=20.0, tile_px=64)  # 170 cm people
    # a 340 px person: 2 px per cm, a 20 cm repeat spans 40 image px holding 64 tile px
    torch.testing.assert_close(scale, torch.tensor([1.6, 6.4]))
    # every person, whatever their size, wears 170 / 20 = 8.5 repeats from head to foot
    torch.testing.assert_close(heights * scale / 64, torch.full((2,), 8.5))
    with pytest.raises(ValueError):
        texture_scale(torch.tensor([0.0]), 20.0, 64)


# --------------------------------------------------------------------------- raw / low frequency


def test_texture_raw_learns_and_projects():
    tex = TextureRaw(_tile(16))
    out = tex()
    assert out.shape == (3, 16, 16)
    out.sum().backward()
    assert tex.pixels.grad is not None
    with torch.no_grad():
        tex.pixels.add_(2.0)
    tex.project_()
    assert tex().max() <= 1
    with pytest.raises(ValueError, match="tile"):
        TextureRaw(torch.rand(3, 16, 8))


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_low_frequency_tile_is_seamless(mode):
    t, factor = 32, 4
    tex = TextureLowFreq(_tile(t, seed=4), factor, mode=mode)
    out = tex()
    assert out.shape == (3, t, t) and out.min() >= 0 and out.max() <= 1
    # exact: upsampling the coarse grid tiled 2x2 gives the tile tiled 2x2
    doubled = TextureLowFreq(torch.zeros(3, 2 * t, 2 * t), factor, mode=mode)
    with torch.no_grad():
        doubled.coarse.copy_(tex.coarse.repeat(1, 2, 2))
    torch.testing.assert_close(doubled(), out.repeat(1, 2, 2), atol=1e-6, rtol=0)
    # statistic: the step across the seam is like a step inside the tile
    interior = (out[:, :, 1:] - out[:, :, :-1]).abs().mean(dim=(0, 1))  # (t-1,) per column pair
    seam = (out[:, :, 0] - out[:, :, -1]).abs().mean()
    assert seam <= interior.max() + 1e-6
    seam_rows = (out[:, 0, :] - out[:, -1, :]).abs().mean()
    assert seam_rows <= (out[:, 1:, :] - out[:, :-1, :]).abs().mean(dim=(0, 2)).max() + 1e-6


def test_low_frequency_learns_and_checks_factor():
    tex = TextureLowFreq(torch.full((3, 16, 16), 0.5), 4)
    assert tex.coarse.shape == (3, 4, 4)
    tex().sum().backward()
    assert tex.coarse.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="factor"):
        TextureLowFreq(torch.rand(3, 16, 16), 3)


# --------------------------------------------------------------------------- camouflage


def test_torus_voronoi_wraps_around():
    t = 32
    seeds = torch.rand(12, 2, generator=torch.Generator().manual_seed(5)) * t
    cell = torus_voronoi(seeds, t)
    assert cell.shape == (t, t) and cell.dtype == torch.long
    # computed on a doubled grid the map repeats the tile's: no seam
    assert torch.equal(torus_voronoi(seeds, 2 * t, period=t), cell.repeat(2, 2))
    # independent reference: planar Voronoi of the seeds copied into the 3x3 neighbouring tiles
    shifts = torch.tensor([[dy, dx] for dy in (-t, 0, t) for dx in (-t, 0, t)], dtype=seeds.dtype)
    copies = (seeds[None] + shifts[:, None]).reshape(-1, 2)  # (9 * C, 2), copy-major
    coords = torch.arange(t, dtype=seeds.dtype)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    d2 = (yy[..., None] - copies[:, 0]) ** 2 + (xx[..., None] - copies[:, 1]) ** 2
    assert torch.equal(d2.argmin(-1) % len(seeds), cell)


def test_camouflage_hardens_to_at_most_k_printable_colours():
    from patchkit.printing.palette import load_palette

    palette = load_palette(str(PROFILE), 4)
    assert palette.shape == (4, 3)
    camo = Camouflage(palette, cells=48, tile=32, tau=1.0, seed=0)
    hard = camo.harden()
    assert hard.shape == (3, 32, 32)
    colours = hard.permute(1, 2, 0).reshape(-1, 3).unique(dim=0)
    assert 2 <= len(colours) <= 4
    # every colour is exactly a palette entry
    assert all((palette == c).all(-1).any() for c in colours)
    torch.testing.assert_close(hard, palette[camo.colour_indices()].permute(2, 0, 1))
    # seamless: the colour map is constant on cells, which wrap around the torus
    assert torch.equal(camo.cell_index, torus_voronoi(camo.seeds, 32))


def test_camouflage_soft_sample_is_a_mixture_and_anneals_to_one_hot():
    camo = Camouflage(PALETTE4, cells=16, tile=32, tau=1.0, seed=1)
    soft = camo.cell_weights(torch.Generator().manual_seed(0))
    torch.testing.assert_close(soft.sum(-1), torch.ones(16))
    assert soft.max(-1).values.min() < 0.999  # a real mixture at tau = 1
    camo.anneal(1e-3)
    cold = camo.cell_weights(torch.Generator().manual_seed(0))
    assert cold.max(-1).values.min() > 0.999
    with pytest.raises(ValueError, match="tau"):
        camo.anneal(0.0)


@pytest.mark.parametrize("hard", [False, True])
def test_camouflage_gradients_reach_the_logits(hard):
    camo = Camouflage(PALETTE4, cells=16, tile=32, tau=0.5, seed=2, hard=hard)
    out = camo(torch.Generator().manual_seed(0))
    assert out.shape == (3, 32, 32)
    if hard:  # straight-through: the forward value is a palette colour
        pixels = out.detach().permute(1, 2, 0).reshape(-1, 1, 3)
        assert (pixels - PALETTE4).abs().amax(-1).amin(-1).max() < 1e-5
    (out[0] - out[1]).sum().backward()  # wants more red
    assert camo.logits.grad is not None and camo.logits.grad.abs().sum() > 0


def test_camouflage_is_seeded_and_deterministic():
    a = Camouflage(PALETTE4, cells=16, tile=32, seed=3)
    b = Camouflage(PALETTE4, cells=16, tile=32, seed=3)
    c = Camouflage(PALETTE4, cells=16, tile=32, seed=4)
    assert torch.equal(a.cell_index, b.cell_index) and torch.equal(a.logits, b.logits)
    assert not torch.equal(a.cell_index, c.cell_index)
    g = lambda: torch.Generator().manual_seed(9)  # noqa: E731
    assert torch.equal(a(g()), b(g()))
    assert torch.equal(a.harden(), b.harden())


def test_camouflage_trains_through_toroidal_crops():
    """End to end: per-instance crops of the camouflage, pushed towards red, harden to more red."""
    camo = Camouflage(PALETTE4, cells=16, tile=32, tau=1.0, seed=5)
    red = PALETTE4[1][:, None, None]
    before = (camo.colour_indices() == 1).float().mean()
    opt = torch.optim.Adam(camo.parameters(), lr=0.3)
    gen = torch.Generator().manual_seed(0)
    for step in range(30):
        camo.anneal(max(0.1, 1.0 * 0.9**step))
        scale = texture_scale(torch.tensor([100.0, 200.0, 300.0]), repeat_cm=20.0, tile_px=32)
        crops = toroidal_crops(camo(gen), random_offsets(3, 32, gen), (16, 16), scale)
        loss = (crops - red).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = (camo.colour_indices() == 1).float().mean()
    assert after > before + 0.3
