"""EOTParams: save/load with weights_only, device moves, replay after a round trip."""

from __future__ import annotations

import io

import pytest
import torch

from patchkit.eot import EOTConfig, EOTParams
from patchkit.errors import PatchkitError


def _all_on() -> EOTConfig:
    cfg = EOTConfig()
    cfg.jpeg.enabled = True
    return cfg


def test_round_trip_through_torch_save_weights_only(scene, run):
    out, params = run(_all_on(), scene, seed=4)
    buf = io.BytesIO()
    torch.save(params.to_dict(), buf)
    buf.seek(0)
    loaded = EOTParams.from_dict(torch.load(buf, weights_only=True))
    assert loaded.equal(params)
    assert list(loaded) == list(params)  # order kept
    again, _ = run(_all_on(), scene, params=loaded)
    assert torch.equal(out, again)


def test_plain_dict_is_accepted_for_replay(scene, run):
    out, params = run(_all_on(), scene, seed=4)
    again, _ = run(_all_on(), scene, params=params.to_dict())
    assert torch.equal(out, again)


def test_to_moves_and_casts_floats_only(scene, run):
    _, params = run(_all_on(), scene)
    moved = params.to("cpu", dtype=torch.float64)
    assert moved["rotation"]["angle"].dtype == torch.float64
    assert moved["noise"]["seed"].dtype == torch.int64
    assert moved.num_instances == params.num_instances


def test_shapes_are_per_instance(scene, run):
    _, params = run(_all_on(), scene)
    n = params.num_instances
    for name, data in params.items():
        for key, value in data.items():
            if (name, key) == ("noise", "seed"):
                assert value.shape == (1,)
            else:
                assert value.shape[0] == n, (name, key)
    assert [name for name, _ in params.as_list()] == list(params)


def test_wrong_instance_count_is_rejected(scene, run):
    _, params = run(_all_on(), scene)
    small = {k: v[:2] for k, v in scene.items() if k in ("centers", "sizes", "batch_idx")}
    with pytest.raises(PatchkitError, match="instances"):
        run(_all_on(), {**scene, **small}, params=params)


def test_bad_dict_is_a_clear_error():
    with pytest.raises(PatchkitError):
        EOTParams.from_dict({"rotation": 1})
