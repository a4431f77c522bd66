"""The training options of the stronger-patch recipe each do what they say: multi-resolution
sizes, the per-person loss, T-SEA's cutout and ShakeDrop, several scenes at once; and a run with
all of them on still resumes to the same bits."""

import math

import pytest
import torch

from patchkit.config import from_dict, to_dict
from patchkit.detectors import create_detector
from patchkit.detectors.base import RawOutput
from patchkit.engine.config import DetectorConfig, TrainConfig
from patchkit.engine.multires import ResolutionSampler, sizes_in_range
from patchkit.engine.objective import AttackObjective
from patchkit.engine.self_ensemble import PatchCutout, SelfEnsembleConfig, ShakeDrop, residual_blocks
from patchkit.engine.trainer import Trainer
from patchkit.losses import LossConfig, TargetSuppression
from patchkit.losses.suppression import candidates_on_boxes, to_score_space
from patchkit.scenes.scene import Scene

from test_trainer import IMGSZ, _Interrupt, tiny_cfg, tiny_scene


@pytest.fixture(scope="module")
def detector():
    torch.manual_seed(0)
    return create_detector("yolov8n.yaml", imgsz=IMGSZ, letterbox="square")


# -- multi-resolution ---------------------------------------------------------------------------
def test_the_resolution_sampler_covers_its_range_in_stride_steps():
    sampler = ResolutionSampler(640, [320, 640])
    assert sampler.sizes == list(range(320, 641, 32))
    drawn = {sampler.draw(torch.Generator().manual_seed(s)) for s in range(400)}
    assert drawn == set(sampler.sizes)  # every size is reached, nothing outside
    assert sizes_in_range(300, 400) == [320, 352, 384]
    assert ResolutionSampler(416).sizes == [416]
    x = torch.rand(2, 3, 640, 640, requires_grad=True)
    y = sampler.resize(x, 352)
    assert y.shape == (2, 3, 352, 352)
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert sampler.resize(x, 640) is x


def test_a_bad_size_range_is_refused():
    for bad in ([640, 320], [320, 704], [10, 20], [330, 350], [320]):
        with pytest.raises(ValueError, match="imgsz_range"):
            DetectorConfig(weights="yolov8n.yaml", imgsz=640, imgsz_range=bad).validate()


def test_multi_resolution_training_feeds_the_detector_every_size(tmp_path, detector):
    cfg = tiny_cfg(tmp_path, detector__imgsz_range=[64, 128], optim__epochs=6)
    seen = []
    trainer = Trainer(cfg, detector=detector, scene=tiny_scene())
    forward = trainer._forwards[0]
    trainer._forwards[0] = lambda x: (seen.append(x.shape[-1]), forward(x))[1]
    trainer.fit()
    assert set(seen) <= {64, 96, 128} and len(set(seen)) >= 2, seen


# -- per-person loss ----------------------------------------------------------------------------
def _raw(scores, boxes):
    s = torch.tensor(scores, requires_grad=True)
    b = torch.tensor(boxes, dtype=torch.float32).expand(s.shape[0], -1, -1)
    return RawOutput(b, s.unsqueeze(-1), None), s


def test_per_box_loss_counts_every_patched_person_and_ignores_unpatched_ones():
    cand = [[0, 0, 10, 10], [2, 2, 8, 8], [20, 0, 30, 10], [50, 50, 60, 60]]  # centres 5,5 / 5,5 / 25,5 / 55,55
    raw, s = _raw([[0.9, 0.3, 0.6, 0.95]], cand)
    targets = torch.tensor([[0.0, 0.0, 10.0, 10.0], [18.0, 0.0, 32.0, 12.0]])
    batch_idx = torch.tensor([0, 0])
    per_box = TargetSuppression(reduction="per_box")(raw, targets, batch_idx)
    assert per_box.shape == (1,) and per_box.item() == pytest.approx((0.9 + 0.6) / 2)
    assert TargetSuppression(reduction="max")(raw).item() == pytest.approx(0.95)  # a background person
    per_box.sum().backward()
    assert s.grad[0].tolist() == pytest.approx([0.5, 0.0, 0.5, 0.0])
    # an image with no target box contributes 0
    raw2, _ = _raw([[0.9, 0.3, 0.6, 0.95], [0.7, 0.7, 0.7, 0.7]], cand)
    out = TargetSuppression(reduction="per_box")(raw2, targets, batch_idx)
    assert out[1].item() == 0.0
    with pytest.raises(ValueError, match="per_box"):
        TargetSuppression(reduction="per_box")(raw2)
    # per_box_topk: the mean of the k highest inside each box, so a second box on the same person counts
    raw3, s3 = _raw([[0.9, 0.3, 0.6, 0.95]], cand)
    top2 = TargetSuppression(reduction="per_box_topk", k=2)(raw3, targets, batch_idx)
    assert top2.item() == pytest.approx(((0.9 + 0.3) / 2 + (0.6 + 0.0) / 2) / 2)
    top2.sum().backward()
    assert s3.grad[0].tolist() == pytest.approx([0.25, 0.25, 0.25, 0.0])


def test_iou_matching_takes_only_the_boxes_that_would_find_the_person():
    person = torch.tensor([[0.0, 0.0, 10.0, 20.0]])  # a labelled person, 10 x 20 px
    cand = [[0, 0, 10, 20],    # the person's own box: IoU 1
            [0, 2, 10, 20],    # slightly cut at the head: IoU 0.9
            [3, 6, 7, 10],     # a small box on the chest (the kind a patch raises): centred inside, IoU 0.08
            [0, 0, 10, 9],     # the upper half: IoU 0.45
            [40, 0, 50, 20]]   # someone else
    inside = candidates_on_boxes(torch.tensor(cand, dtype=torch.float32)[None], person, torch.tensor([0]), "centre")
    assert inside[0].tolist() == [True, True, True, True, False]
    for iou, want in ((0.5, [True, True, False, False, False]), (0.4, [True, True, False, True, False])):
        got = candidates_on_boxes(torch.tensor(cand, dtype=torch.float32)[None], person, torch.tensor([0]), "iou", iou)
        assert got[0].tolist() == want, iou
    # the chest box scores highest, but with iou matching the loss (and its gradient) is on the person's boxes
    raw, s = _raw([[0.5, 0.7, 0.95, 0.9, 0.99]], cand)
    centre = TargetSuppression(reduction="per_box")(raw, person, torch.tensor([0]))
    assert centre.item() == pytest.approx(0.95)
    loss = TargetSuppression(reduction="per_box", match="iou")(raw, person, torch.tensor([0]))
    assert loss.item() == pytest.approx(0.7)
    loss.sum().backward()
    assert s.grad[0].tolist() == pytest.approx([0.0, 1.0, 0.0, 0.0, 0.0])
    # centre_weight adds the centre-matched term back: the chest box is pushed down too, at that weight
    raw, s = _raw([[0.5, 0.7, 0.95, 0.9, 0.99]], cand)
    mixed = TargetSuppression(reduction="per_box", match="iou", centre_weight=0.5)(raw, person, torch.tensor([0]))
    assert mixed.item() == pytest.approx(0.7 + 0.5 * 0.95)
    mixed.sum().backward()
    assert s.grad[0].tolist() == pytest.approx([0.0, 1.0, 0.5, 0.0, 0.0])
    top2 = TargetSuppression(reduction="per_box_topk", k=2, match="iou", match_iou=0.4)(*_raw(
        [[0.5, 0.7, 0.95, 0.9, 0.99]], cand)[:1], person, torch.tensor([0]))
    assert top2.item() == pytest.approx((0.9 + 0.7) / 2)
    # a person no candidate overlaps enough contributes 0, and bad settings are refused
    assert TargetSuppression(reduction="per_box", match="iou")(
        *_raw([[0.9]], [[3, 6, 7, 10]])[:1], person, torch.tensor([0])).item() == 0.0
    with pytest.raises(ValueError, match="match"):
        TargetSuppression(match="overlap")
    with pytest.raises(ValueError, match="match_iou"):
        TargetSuppression(match="iou", match_iou=0.0)
    with pytest.raises(ValueError, match="loss.match"):
        LossConfig(match="overlap").validate()
    with pytest.raises(ValueError, match="loss.match_iou"):
        LossConfig(match="iou", match_iou=1.5).validate()
    with pytest.raises(ValueError, match="centre_weight"):
        TargetSuppression(match="iou", centre_weight=-1.0)
    with pytest.raises(ValueError, match="loss.centre_weight"):
        LossConfig(match="iou", centre_weight=-0.5).validate()
    # the config reaches the loss the trainer builds
    det = AttackObjective(LossConfig(reduction="per_box", match="iou", match_iou=0.4, centre_weight=0.25)).detection
    assert (det.match, det.match_iou, det.centre_weight) == ("iou", 0.4, 0.25)


def test_bce_score_space_pulls_hardest_on_people_still_detected():
    cand = [[0, 0, 10, 10], [20, 0, 30, 10]]  # one candidate per target box
    targets = torch.tensor([[0.0, 0.0, 10.0, 10.0], [18.0, 0.0, 32.0, 12.0]])
    batch_idx = torch.tensor([0, 0])
    logits = torch.tensor([[2.1972246, -2.1972246]], requires_grad=True)  # scores 0.9 (detected), 0.1 (hidden)

    def raw():
        return RawOutput(torch.tensor(cand, dtype=torch.float32)[None], torch.sigmoid(logits).unsqueeze(-1), None)

    bce = TargetSuppression(reduction="per_box", score_space="bce")(raw(), targets, batch_idx)
    assert bce.item() == pytest.approx((-math.log(0.1) - math.log(0.9)) / 2, rel=1e-5)
    bce.sum().backward()
    assert logits.grad[0].tolist() == pytest.approx([0.45, 0.05], rel=1e-4)  # d/dlogit = score / n_boxes: 9x
    logits.grad = None
    TargetSuppression(reduction="per_box")(raw(), targets, batch_idx).sum().backward()
    assert logits.grad[0].tolist() == pytest.approx([0.045, 0.045], rel=1e-4)  # prob: s(1-s), the same for both
    # monotone: the max reduction picks the same candidate in both spaces; a score of exactly 1 stays finite
    raw1, _ = _raw([[0.3, 0.8, 0.5]], [[0, 0, 1, 1]] * 3)
    assert TargetSuppression(score_space="bce")(raw1).item() == pytest.approx(-math.log(1 - 0.8), rel=1e-5)
    raw1, _ = _raw([[1.0, 0.2, 0.5]], [[0, 0, 1, 1]] * 3)
    assert torch.isfinite(TargetSuppression(score_space="bce")(raw1)).all()
    with pytest.raises(ValueError, match="score_space"):
        TargetSuppression(score_space="log")
    with pytest.raises(ValueError, match="score_space"):  # the function itself refuses, not only its callers
        to_score_space(torch.tensor([0.5]), "log")
    with pytest.raises(ValueError, match="score_space"):
        LossConfig(objective="targeted", target_class=2, score_space="bce").validate()


# -- self-ensemble --------------------------------------------------------------------------------
def test_cutout_fills_the_stated_fraction_of_the_patch():
    patch = torch.ones(3, 100, 100, requires_grad=True)
    cut = PatchCutout(p=1.0, fraction=0.4, fill=0.5)
    for seed in range(5):
        out = cut(patch, torch.Generator().manual_seed(seed))
        filled = (out[0] == 0.5).float().mean().item()
        assert filled == pytest.approx(0.4, abs=0.01)
        assert torch.equal(out[0] == 0.5, out[2] == 0.5)  # same square in every channel
    out.sum().backward()
    assert patch.grad.sum().item() == pytest.approx(3 * 100 * 100 * 0.6, rel=0.02)  # no gradient in the cut
    assert PatchCutout(p=0.0)(patch) is patch
    never = PatchCutout(p=0.3, fraction=0.4)
    cuts = sum(not torch.equal(never(patch, torch.Generator().manual_seed(s)), patch) for s in range(200))
    assert 35 <= cuts <= 85  # about 30 % of the calls


def test_shakedrop_perturbs_the_detector_and_then_returns_it_to_the_clean_one(detector):
    x = torch.rand(1, 3, IMGSZ, IMGSZ)
    blocks = residual_blocks(detector)
    seen = []
    record = lambda m, i, o: seen.append((i[0].clone(), o.clone()))  # noqa: E731
    with torch.no_grad():
        spy = blocks[0].register_forward_hook(record)
        clean = detector.forward_letterboxed(x).boxes.clone()
        spy.remove()
        shake = ShakeDrop(detector, p=1.0, alpha=0.5)
        assert len(shake.blocks) == len(blocks) > 0
        with shake.active(torch.Generator().manual_seed(0)):
            spy = blocks[0].register_forward_hook(record)  # after ShakeDrop's hook: sees its output
            shaken = detector.forward_letterboxed(x).boxes.clone()
            spy.remove()
        after = detector.forward_letterboxed(x).boxes
    assert ((shake.scales >= 0.5) & (shake.scales <= 1.5)).all() and (shake.scales != 1).all()
    (x0, y_clean), (_, y_shaken) = seen  # block 0's input is the same; its branch is rescaled
    s = shake.scales[0].item()
    torch.testing.assert_close(y_shaken - x0, s * (y_clean - x0), rtol=1e-4, atol=1e-6)
    assert not torch.equal(shaken, clean)
    assert torch.equal(after, clean)  # hooks gone: exactly the clean detector
    off = ShakeDrop(detector, p=0.0)
    with torch.no_grad(), off.active(torch.Generator().manual_seed(0)):
        assert torch.equal(detector.forward_letterboxed(x).boxes, clean)


def test_shakedrop_moves_the_real_yolov8n_scores(shared_data):
    weights = shared_data / "weights" / "yolov8n.pt"
    det = create_detector(str(weights), imgsz=256, letterbox="square")
    x = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        clean = det.forward_letterboxed(x).scores.clone()
        with ShakeDrop(det, p=1.0, alpha=0.5).active(torch.Generator().manual_seed(0)):
            shaken = det.forward_letterboxed(x).scores
    assert (shaken - clean).abs().max() > 0.01


def test_self_ensemble_config_is_validated():
    for bad in (dict(cutout_p=1.5), dict(cutout_fraction=0.0), dict(shakedrop_alpha=-1.0)):
        with pytest.raises(ValueError, match="self_ensemble"):
            SelfEnsembleConfig(**bad).validate()


# -- several scenes, and an exact resume with everything on -------------------------------------
def test_scenes_are_joined_in_order():
    a, b = tiny_scene(2, seed=0), tiny_scene(3, seed=1)
    joined = Scene.concat([a, b])
    assert len(joined) == 5 and torch.equal(joined.images[2:], b.images) and len(joined.boxes) == 5


def test_a_run_with_every_recipe_option_resumes_to_identical_bits(tmp_path, detector):
    over = dict(detector__imgsz_range=[64, 128], loss__reduction="per_box", self_ensemble__cutout_p=0.5,
                self_ensemble__shakedrop_p=0.5)
    straight = Trainer(tiny_cfg(tmp_path / "a", **over), detector=detector, scene=tiny_scene()).fit()
    cfg_b = tiny_cfg(tmp_path / "b", **over)
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg_b, detector=detector, scene=tiny_scene(), callbacks=[_Interrupt(3)]).fit()
    resumed = Trainer(cfg_b, detector=detector, scene=tiny_scene())
    resumed.load_checkpoint(tmp_path / "b" / "run" / "checkpoint.pt")
    assert torch.equal(resumed.fit(), straight)


def test_extra_scenes_are_trained_on_together(tmp_path, detector):
    from PIL import Image

    for name, n in (("one", 2), ("two", 3)):
        (tmp_path / name / "images").mkdir(parents=True)
        (tmp_path / name / "labels").mkdir()
        for i in range(n):
            Image.new("RGB", (160, 120), (i * 40, 90, 30)).save(tmp_path / name / "images" / f"{name}{i}.png")
            (tmp_path / name / "labels" / f"{name}{i}.txt").write_text("0 0.5 0.5 0.4 0.8\n")
    scene = lambda name: {"path": str(tmp_path / name / "images"), "labels": str(tmp_path / name / "labels")}
    cfg = tiny_cfg(tmp_path, optim__epochs=1)
    cfg = from_dict(TrainConfig, {**to_dict(cfg),
                                  "scene": scene("one"), "extra_scenes": [scene("two")]})
    trainer = Trainer(cfg, detector=detector)
    assert len(trainer.scene) == 5
    assert [p.stem for p in trainer.scene.paths] == ["one0", "one1", "two0", "two1", "two2"]


def test_a_stopped_long_run_is_reproduced_by_max_steps_on_its_schedule(tmp_path, detector):
    """Stopping a 6-step cosine run at step 4 equals a fresh run with max_steps=4 schedule_steps=6."""
    cfg = tiny_cfg(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, detector=detector, scene=tiny_scene(), callbacks=[_Interrupt(4)]).fit()
    stopped = torch.load(tmp_path / "a" / "run" / "checkpoint.pt", weights_only=True)
    short = Trainer(tiny_cfg(tmp_path / "b", optim__max_steps=4, optim__schedule_steps=6), detector=detector,
                    scene=tiny_scene())
    short.fit()
    assert short.state.step == 4
    assert all(torch.equal(stopped["patch"][k], short.patch.state_dict()[k]) for k in stopped["patch"])
    assert short.optimizer.param_groups[0]["lr"] == pytest.approx(stopped["optimizer"]["param_groups"][0]["lr"])


def test_soft_iou_matching_also_pushes_the_box_off_the_person():
    person = torch.tensor([[0.0, 0.0, 10.0, 20.0]])
    cand = [[0, 0, 10, 20],    # IoU 1: counts fully
            [0, 0, 10, 10],    # the upper half: IoU 0.5, exactly at the threshold: weight 1/2
            [0, 0, 10, 8],     # IoU 0.4 = 0.5 - 2 softness: weight sigmoid(-2), still in play
            [3, 6, 7, 10],     # the chest box: IoU 0.08, far below: left out
            [40, 0, 50, 20]]   # someone else
    s = torch.tensor([[0.6, 0.8, 0.9, 0.99, 0.99]], requires_grad=True)
    b = torch.tensor(cand, dtype=torch.float32)[None].requires_grad_(True)
    loss = TargetSuppression(reduction="per_box_topk", k=3, match="soft_iou", match_softness=0.05)(
        RawOutput(b, s.unsqueeze(-1), None), person, torch.tensor([0]))
    w = torch.sigmoid(torch.tensor([10.0, 0.0, -2.0]))  # (IoU - 0.5) / 0.05
    assert loss.item() == pytest.approx(float((torch.tensor([0.6, 0.8, 0.9]) * w).sum() / 3), rel=1e-5)
    loss.sum().backward()
    assert s.grad[0, 3:].tolist() == [0.0, 0.0]  # the chest box and the other person take no gradient
    assert s.grad[0, :3].tolist() == pytest.approx((w / 3).tolist(), rel=1e-5)
    # descending the loss moves the half box's bottom edge up, off the person (its IoU falls below 0.5),
    # and the whole-person box barely moves (its weight is saturated)
    assert b.grad[0, 1, 3] > 0 and b.grad[0, 1].abs().sum() > 100 * b.grad[0, 0].abs().sum()
    # hard iou matching gives the boxes no gradient at all
    b2 = torch.tensor(cand, dtype=torch.float32)[None].requires_grad_(True)
    TargetSuppression(reduction="per_box_topk", k=3, match="iou")(
        RawOutput(b2, torch.tensor([[0.6, 0.8, 0.9, 0.99, 0.99]], requires_grad=True).unsqueeze(-1), None), person,
        torch.tensor([0])).sum().backward()
    assert b2.grad is None or b2.grad.abs().sum() == 0
    with pytest.raises(ValueError, match="match_softness"):
        TargetSuppression(match="soft_iou", match_softness=0.0)
    with pytest.raises(ValueError, match="loss.match_softness"):
        LossConfig(match="soft_iou", match_softness=-1.0).validate()
    det = AttackObjective(LossConfig(reduction="per_box_topk", match="soft_iou", match_softness=0.1)).detection
    assert (det.match, det.match_softness) == ("soft_iou", 0.1)
