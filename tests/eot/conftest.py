"""Small scenes for the EOT tests: a few boxes on tiny images, and a pipeline factory."""

from __future__ import annotations

import pytest
import torch

from patchkit.eot import EOTConfig, EOTPipeline
from patchkit.eot.config import OpConfig


def _only(*names: str, **overrides) -> EOTConfig:
    """A config with every op off except ``names``; ``overrides`` set fields of those ops
    (``rotation={"degrees": (10.0, 10.0)}``)."""
    cfg = EOTConfig.all_disabled()
    for name in names:
        op: OpConfig = getattr(cfg, name)
        op.enabled = True
        for key, value in overrides.get(name, {}).items():
            setattr(op, key, value)
    return cfg


@pytest.fixture
def scene():
    """2 images of 96x112 px, 3 instances (2 on image 0, 1 on image 1), 40x40 patch."""
    g = torch.Generator().manual_seed(1)
    images = torch.rand(2, 3, 96, 112, generator=g)
    centers = torch.tensor([[30.0, 40.0], [80.0, 50.0], [56.0, 48.0]])
    sizes = torch.tensor([[24.0, 24.0], [20.0, 26.0], [30.0, 30.0]])
    batch_idx = torch.tensor([0, 0, 1])
    patch = torch.rand(3, 40, 40, generator=g)
    return {"images": images, "centers": centers, "sizes": sizes, "batch_idx": batch_idx, "patch": patch}


def _run(cfg: EOTConfig, scene: dict, seed: int = 0, patch=None, params=None, printer=None):
    eot = EOTPipeline(cfg, printer=printer)
    g = torch.Generator().manual_seed(seed)
    p = scene["patch"] if patch is None else patch
    return eot(p, scene["images"], scene["centers"], scene["sizes"], scene["batch_idx"],
               params=params, generator=None if params is not None else g)


@pytest.fixture
def only():
    """``only("rotation", rotation={...})`` -> EOTConfig with just those ops on."""
    return _only


@pytest.fixture
def run():
    """``run(cfg, scene, seed=0, patch=None, params=None, printer=None)`` -> (images, params)."""
    return _run
