"""Every EOT op: it changes the output, gradients reach the patch, draws replay and follow the seed,
and the batch options (p, same_on_batch, same_on_image) do what they say. The per-op tests run over
the registry (``patchkit.eot.base.OPS``), so a new op is tested without editing them."""

from __future__ import annotations

import pytest
import torch

from patchkit.eot import OP_ORDER, EOTConfig, EOTPipeline
from patchkit.eot.base import KINDS, OPS, RangeOp, register_op
from patchkit.eot.config import OpConfig
from patchkit.errors import PatchkitError

NAMES = sorted(OPS)
ATOL_IDENTITY = 1e-5


def test_registry_matches_the_config():
    cfg = EOTConfig()
    assert sorted(OP_ORDER) == NAMES
    for name in OP_ORDER:
        assert type(getattr(cfg, name)).name == name
        assert OPS[name].config_class is type(getattr(cfg, name))
        assert sum(issubclass(OPS[name], kind) for kind in KINDS) == 1


def test_an_op_must_have_exactly_one_kind():
    class NoKind(RangeOp):
        config_class = OpConfig

    with pytest.raises(TypeError, match="exactly one"):
        register_op(NoKind)
    assert "op" not in OPS


@pytest.mark.parametrize("name", NAMES)
def test_op_changes_output_and_passes_gradient(name, scene, only, run):
    flat, _ = run(only(), scene)
    patch = scene["patch"].clone().requires_grad_(True)
    out, params = run(only(name), scene, patch=patch)
    assert list(params) == [name]
    assert not torch.equal(out, flat), f"{name} had no effect"
    weights = torch.rand(out.shape, generator=torch.Generator().manual_seed(5))
    (out * weights).sum().backward()
    assert patch.grad is not None
    assert torch.isfinite(patch.grad).all()
    assert patch.grad.abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_op_replay_is_bit_identical(name, scene, only, run):
    out, params = run(only(name), scene, seed=3)
    again, params2 = run(only(name), scene, params=params)
    assert torch.equal(out, again)
    assert params2.equal(params)


@pytest.mark.parametrize("name", NAMES)
def test_op_same_on_batch_shares_every_draw(name, scene, only):
    params = EOTPipeline(only(name, **{name: {"same_on_batch": True}})).sample(
        scene["centers"], scene["sizes"], scene["batch_idx"], (96, 112), torch.Generator().manual_seed(4))
    for key, value in params[name].items():
        assert value.shape[0] == (1 if key in OPS[name].shared_keys else 3), key
        assert torch.all(value == value[:1]), key


@pytest.mark.parametrize("name", NAMES)
def test_op_with_p_zero_draws_its_identity(name, scene, only, run):
    flat, _ = run(only(), scene)
    cfg = only(name, **{name: {"p": 0.0}})
    out, params = run(cfg, scene)
    identity = OPS[name](getattr(cfg, name)).identity(3, "cpu")
    for key, value in params[name].items():
        if key not in OPS[name].shared_keys:
            assert torch.equal(value, identity[key]), key
    assert torch.allclose(out, flat, atol=ATOL_IDENTITY), (out - flat).abs().max()


@pytest.mark.parametrize("name", NAMES)
def test_op_config_ranges_are_checked(name):
    cfg = getattr(EOTConfig(), name)
    for key in cfg.bounds:
        low, high = getattr(cfg, key)
        setattr(cfg, key, (high + 1.0, low))
        with pytest.raises(ValueError, match=f"eot.{name}.{key}"):
            cfg.validate()
        setattr(cfg, key, (low, high))
    cfg.p = 1.5
    with pytest.raises(ValueError, match=f"eot.{name}.p"):
        cfg.validate()


def test_full_pipeline_seed_semantics(scene, run):
    cfg = EOTConfig()
    cfg.jpeg.enabled = True
    a, pa = run(cfg, scene, seed=7)
    b, pb = run(cfg, scene, seed=7)
    c, pc = run(cfg, scene, seed=8)
    assert torch.equal(a, b) and pa.equal(pb)
    assert not torch.equal(a, c) and not pa.equal(pc)
    replay, _ = run(cfg, scene, params=pa)
    assert torch.equal(a, replay)


def test_sampling_uses_only_the_generator(scene):
    eot = EOTPipeline(EOTConfig())
    args = (scene["centers"], scene["sizes"], scene["batch_idx"], (96, 112))
    torch.manual_seed(0)
    p1 = eot.sample(*args, torch.Generator().manual_seed(11))
    torch.manual_seed(123)  # the global RNG must not matter
    torch.rand(10)
    p2 = eot.sample(*args, torch.Generator().manual_seed(11))
    assert p1.equal(p2)


def test_same_on_batch_and_same_on_image(scene, only):
    cfg = only("rotation", "brightness", rotation={"same_on_batch": True}, brightness={"same_on_image": True})
    params = EOTPipeline(cfg).sample(scene["centers"], scene["sizes"], scene["batch_idx"], (96, 112),
                                     torch.Generator().manual_seed(2))
    angle = params["rotation"]["angle"]
    assert angle.shape == (3,) and torch.all(angle == angle[0])
    delta = params["brightness"]["delta"]
    assert delta[0] == delta[1] and delta[0] != delta[2]  # instances 0, 1 share image 0


def test_probability_follows_the_sharing():
    from patchkit.eot.geometry import RandomRotation
    from patchkit.eot.config import RotationConfig

    batch_idx = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
    op = RandomRotation(RotationConfig(p=0.5, same_on_image=True))
    mixed = 0
    for seed in range(6):
        angle = op.draw(batch_idx, torch.Generator().manual_seed(seed))["angle"].view(4, 3)
        assert torch.all(angle == angle[:, :1])  # applied or not, per image
        mixed += bool((angle[:, 0] == 0).any() and (angle[:, 0] != 0).any())
    assert mixed > 0
    op = RandomRotation(RotationConfig(p=0.5, same_on_batch=True))
    for seed in range(4):
        angle = op.draw(batch_idx, torch.Generator().manual_seed(seed))["angle"]
        assert torch.all(angle == angle[0])


def test_default_is_per_instance(scene, only):
    params = EOTPipeline(only("rotation")).sample(scene["centers"], scene["sizes"], scene["batch_idx"],
                                                  (96, 112), torch.Generator().manual_seed(2))
    assert params["rotation"]["angle"].unique().numel() == 3


def test_probability_zero_gives_identity_values(scene, only, run):
    flat, _ = run(only(), scene)
    cfg = only("contrast", "brightness", "jpeg", contrast={"p": 0.0}, brightness={"p": 0.0}, jpeg={"p": 0.0})
    out, params = run(cfg, scene)
    assert torch.all(params["contrast"]["factor"] == 1.0)
    assert torch.all(params["brightness"]["delta"] == 0.0)
    assert torch.all(params["jpeg"]["quality"] > 100)  # "not compressed"
    assert torch.allclose(out, flat, atol=1e-5)  # same values; atlas vs single-texture sampling


def test_partial_jpeg_only_touches_selected_instances(scene, only, run):
    _, params = run(only("jpeg"), scene)
    params["jpeg"]["quality"] = torch.tensor([101.0, 101.0, 20.0])
    out, _ = run(only("jpeg"), scene, params=params)
    flat, _ = run(only(), scene)
    assert torch.allclose(out[0], flat[0], atol=1e-5)  # image 0 only has unselected instances
    assert (out[1] - flat[1]).abs().max() > 1e-2


def test_params_of_another_config_are_rejected(scene, only, run):
    _, params = run(only("rotation"), scene)
    with pytest.raises(PatchkitError, match="lack enabled ops"):
        run(only("rotation", "tps"), scene, params=params)


def test_missing_generator_is_a_clear_error(scene):
    with pytest.raises(PatchkitError, match="Generator"):
        EOTPipeline(EOTConfig())(scene["patch"], scene["images"], scene["centers"], scene["sizes"],
                                 scene["batch_idx"])


def test_printer_slot_is_applied(scene, only, run):
    class Invert(torch.nn.Module):
        def forward(self, x):
            return 1.0 - x

    flat, _ = run(only(), scene)
    inv, _ = run(only(), scene, printer=Invert())
    inv_patch, _ = run(only(), scene, patch=1.0 - scene["patch"])
    assert not torch.equal(flat, inv)
    assert torch.allclose(inv, inv_patch, atol=1e-5)


def test_per_instance_patches(scene, only, run):
    red = torch.zeros(3, 3, 16, 16)
    red[:, 0] = 1.0
    red[1] = 0.0
    red[1, 1] = 1.0  # instance 1 green
    out, _ = run(only(), scene, patch=red)
    x, y = scene["centers"][1].long().tolist()
    assert torch.allclose(out[0, :, y, x], torch.tensor([0.0, 1.0, 0.0]))
    x, y = scene["centers"][0].long().tolist()
    assert torch.allclose(out[0, :, y, x], torch.tensor([1.0, 0.0, 0.0]))
