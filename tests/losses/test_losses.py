import pytest
import torch

from patchkit.detectors.base import RawOutput
from patchkit.engine.objective import AttackObjective
from patchkit.losses.config import LossConfig
from patchkit.losses import NonPrintabilityScore, TargetedMisclassification, TargetSuppression, TotalVariation


def _raw(objectness=True, requires_grad=True):
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(2, 50, 3, generator=g).requires_grad_(requires_grad)
    obj = torch.rand(2, 50, generator=g).requires_grad_(requires_grad) if objectness else None
    return RawOutput(torch.rand(2, 50, 4, generator=g), scores, obj)


def test_suppression_modes_read_the_right_scores():
    raw = _raw()
    obj_cls = TargetSuppression(0, "obj_cls")(raw)
    torch.testing.assert_close(obj_cls, (raw.objectness * raw.scores[..., 0]).amax(1))
    torch.testing.assert_close(TargetSuppression(1, "cls")(raw), raw.scores[..., 1].amax(1))
    torch.testing.assert_close(TargetSuppression(0, "obj")(raw), raw.objectness.amax(1))
    top = TargetSuppression(0, "cls", "topk", k=5)(raw)
    torch.testing.assert_close(top, raw.scores[..., 0].topk(5, 1).values.mean(1))
    # anchor-free families: every mode falls back to the class score (column 4 is not objectness)
    free = _raw(objectness=False)
    torch.testing.assert_close(TargetSuppression(0, "obj")(free), free.scores[..., 0].amax(1))


def test_suppression_gradient_flows_to_the_max_candidate_only():
    raw = _raw()
    TargetSuppression(0, "cls")(raw).sum().backward()
    g = raw.scores.grad[..., 0]
    assert (g != 0).sum() == 2  # one candidate per image
    assert raw.scores.grad[..., 1:].abs().sum() == 0


def test_targeted_lowers_source_raises_target():
    raw = _raw()
    loss = TargetedMisclassification(0, 2, k=4, mode="cls")(raw)
    loss.sum().backward()
    assert (raw.scores.grad[..., 0] > 0).sum() == 8 and (raw.scores.grad[..., 2] < 0).sum() == 8
    with pytest.raises(ValueError):
        TargetedMisclassification(0, 0)


def test_nps_zero_on_palette_and_positive_off_it():
    palette = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    nps = NonPrintabilityScore(palette)
    on = torch.zeros(3, 4, 4)
    on[:, :2] = 1.0
    assert nps(on).item() < 1e-5
    off = torch.full((3, 4, 4), 0.5)
    torch.testing.assert_close(nps(off), torch.tensor(0.75**0.5))


def test_tv_zero_for_flat_patch_and_grows_with_noise():
    tv = TotalVariation()
    assert tv(torch.full((3, 8, 8), 0.3)).item() == 0
    noisy = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(1))
    assert tv(noisy) > 0.2


def test_objective_tv_floor_and_parts():
    raw = _raw()
    patch = torch.full((3, 8, 8), 0.5, requires_grad=True)
    total, parts = AttackObjective(LossConfig(tv_weight=2.5, tv_floor=0.1))(raw, patch)
    torch.testing.assert_close(total, parts["det"] + 0.1)
    assert set(parts) == {"det", "tv"}
