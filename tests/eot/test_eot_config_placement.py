"""EOTConfig through the project's YAML loader, validation errors, and patch placement."""

from __future__ import annotations

import math

import pytest
import torch

from patchkit.config import from_dict
from patchkit.eot import EOTConfig, EOTPipeline
from patchkit.errors import PatchkitError
from patchkit.scenes.placement import PlacementConfig, place_patches


def test_config_from_yaml_dict():
    cfg = from_dict(EOTConfig, {"rotation": {"degrees": [-10, 10]}, "jpeg": {"enabled": True},
                                "noise": {"std": [0, 0.05], "per_channel": True}}, source="test.yaml")
    assert cfg.rotation.degrees == (-10.0, 10.0)
    assert cfg.jpeg.enabled and cfg.noise.per_channel
    assert cfg.tps.grid == 5  # defaults kept


def test_config_errors_name_the_key():
    with pytest.raises(PatchkitError, match="eot.rotation.degrees"):
        from_dict(EOTConfig, {"rotation": {"degrees": [10, -10]}}, source="t.yaml")
    with pytest.raises(PatchkitError, match="unknown key"):
        from_dict(EOTConfig, {"rotaton": {}}, source="t.yaml")
    cfg = EOTConfig()
    cfg.perspective.distance = 1.0
    with pytest.raises(PatchkitError, match="eot.perspective.distance"):
        EOTPipeline(cfg)
    cfg = EOTConfig()
    cfg.brightness.p = 2.0
    with pytest.raises(PatchkitError, match="eot.brightness.p"):
        EOTPipeline(cfg)


def test_all_disabled_has_no_ops():
    assert len(EOTPipeline(EOTConfig.all_disabled()).ops) == 0
    assert "jpeg" not in EOTPipeline(EOTConfig()).ops  # JPEG is opt-in


def test_bad_inputs_are_clear_errors(scene):
    eot = EOTPipeline(EOTConfig())
    g = torch.Generator().manual_seed(0)
    args = dict(scene)
    with pytest.raises(PatchkitError, match="images"):
        eot(args["patch"], args["images"][0], args["centers"], args["sizes"], args["batch_idx"], generator=g)
    with pytest.raises(PatchkitError, match="batch_idx"):
        eot(args["patch"], args["images"], args["centers"], args["sizes"], torch.tensor([0, 0, 5]), generator=g)
    with pytest.raises(PatchkitError, match="sizes"):
        eot(args["patch"], args["images"], args["centers"], args["sizes"][:2], args["batch_idx"], generator=g)


def test_place_patches():
    boxes = torch.tensor([[10.0, 20.0, 40.0, 60.0], [0.0, 0.0, 0.0, 0.0]])
    centers, sizes = place_patches(boxes, PlacementConfig(scale=0.2, offset_x=0.1, offset_y=-0.1, aspect=1.5))
    diag = math.hypot(30.0, 40.0)
    assert torch.allclose(centers[0], torch.tensor([25.0 + 3.0, 40.0 - 4.0]))
    assert torch.allclose(sizes[0], torch.tensor([0.2 * diag, 0.3 * diag]))
    assert torch.equal(sizes[1], torch.zeros(2))
    c, s = place_patches(torch.zeros(0, 4), PlacementConfig())
    assert c.shape == (0, 2) and s.shape == (0, 2)


def test_place_patches_errors():
    with pytest.raises(PatchkitError, match="boxes"):
        place_patches(torch.zeros(3, 5), PlacementConfig())
    with pytest.raises(PatchkitError, match="placement.scale"):
        place_patches(torch.zeros(1, 4), PlacementConfig(scale=0.0))


def test_zero_size_boxes_do_not_break_the_pipeline(scene):
    sizes = scene["sizes"].clone()
    sizes[1] = 0.0
    out, _ = EOTPipeline(EOTConfig())(scene["patch"], scene["images"], scene["centers"], sizes,
                                      scene["batch_idx"], generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out).all()


def test_flat_p_draws_whole_images_flat(scene, run):
    """``eot.flat_p``: with 1 every image looks exactly like the all-disabled paste; with 0.5 each
    image's instances get either every op's identity or the very draw of the default EOT with the
    same seed (the flat choice is drawn last, so earlier seeds keep their meaning), and both happen;
    out of [0, 1] is a config error."""
    flat, _ = run(EOTConfig.all_disabled(), scene)
    always = EOTConfig()
    always.flat_p = 1.0
    out, _ = run(always, scene)
    assert torch.allclose(out, flat, atol=1e-5)
    half = EOTConfig()
    half.flat_p = 0.5
    ident = {name: {k: v for k, v in op.identity(3, "cpu").items() if k not in op.shared_keys}
             for name, op in EOTPipeline(half).ops.items()}
    seen = set()
    for seed in range(12):
        _, p_default = run(EOTConfig(), scene, seed=seed)
        _, p_half = run(half, scene, seed=seed)
        for image in (0, 1):
            rows = scene["batch_idx"] == image
            same = [torch.equal(p_half[n][k][rows], p_default[n][k][rows]) for n in ident for k in ident[n]]
            at_identity = [torch.equal(p_half[n][k][rows], ident[n][k][rows].to(p_half[n][k].dtype))
                           for n in ident for k in ident[n]]
            assert all(same) or all(at_identity)
            seen.add(all(at_identity))
    assert seen == {True, False}
    with pytest.raises(PatchkitError, match="eot.flat_p"):
        from_dict(EOTConfig, {"flat_p": 1.5}, source="t.yaml")
