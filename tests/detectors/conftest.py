"""Fixtures of the detector tests: ultralytics' bundled images, models with lively random weights."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Callable

import pytest
import torch
from torch import nn

from patchkit.detectors._isolation import preserve_process_state

from _ultralytics_ckpt import save_ultralytics_checkpoint


def _ultralytics_dir() -> Path:
    spec = importlib.util.find_spec("ultralytics")
    assert spec is not None and spec.submodule_search_locations
    return Path(list(spec.submodule_search_locations)[0])


@pytest.fixture(scope="session")
def assets() -> Path:
    """ultralytics' bundled sample images (bus.jpg 810x1080, zidane.jpg 1280x720)."""
    folder = _ultralytics_dir() / "assets"
    if not (folder / "bus.jpg").is_file():
        pytest.skip("ultralytics assets are not installed")
    return folder


@pytest.fixture
def ultralytics_isolated():
    """Run ultralytics calls (which set torch threads, patch PIL/cv2/torch.save) and undo them."""
    with preserve_process_state():
        yield


def lively(model: nn.Module, images: list[torch.Tensor], seed: int = 0) -> nn.Module:
    """Give a YAML-built ultralytics model random weights whose outputs are not degenerate.

    Default random init makes activations vanish and every class score equal its bias, so
    detections would be ties. Here: He-normal conv weights, batch-norm statistics calibrated on
    ``images``, and final class convs scaled to logits of unit spread around -3 (a few dozen
    boxes above 0.25). The DFL conv (fixed arange weights) is kept.
    """
    g = torch.Generator().manual_seed(seed)
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Conv2d) and "dfl" not in name:
            mod.weight.data = torch.randn(mod.weight.shape, generator=g) * (2.0 / mod.weight[0].numel()) ** 0.5
    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.reset_running_stats()
            mod.momentum = None  # cumulative average: the statistics of the calibration images
    model.train()
    with torch.no_grad():
        for im in images:
            model(im)
    model.eval()
    head = model.model[-1]
    finals = [seq[-1] for b in ("cv3", "one2one_cv3") for seq in (getattr(head, b, None) or [])]
    seen: dict[nn.Module, list[torch.Tensor]] = {}
    hooks = [
        c.register_forward_hook(lambda mod, i, o: seen.setdefault(mod, []).append(o - mod.bias.view(1, -1, 1, 1)))
        for c in finals
    ]
    with torch.no_grad():
        for im in images:
            model(im)
    for h in hooks:
        h.remove()
    for c in finals:
        z = torch.cat([o.flatten() for o in seen[c]])
        c.weight.data /= z.std()
        c.bias.data.fill_(-3.0 - float(z.mean() / z.std()))
    return model


@pytest.fixture(scope="session")
def lively_checkpoint(tmp_path_factory, assets) -> Callable[[str], Path]:
    """``make(yaml_name) -> path`` of an ultralytics-format checkpoint (fp16 model, as ultralytics
    saves them) holding a lively random model; cached per name for the session."""
    from patchkit.detectors.letterbox import letterbox
    from patchkit.io import load_image_tensor

    cache: dict[str, Path] = {}
    # calibrated on the inputs the tests feed (320 rect letterbox), so that no score saturates
    calib = [letterbox(load_image_tensor(assets / f), 320, 32, "rect")[0] for f in ("bus.jpg", "zidane.jpg")]

    def make(name: str) -> Path:
        if name not in cache:
            with preserve_process_state():
                from ultralytics.nn.tasks import DetectionModel

                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(0)
                    model = lively(DetectionModel(name, verbose=False), calib)
                path = tmp_path_factory.mktemp("ckpt") / name.replace(".yaml", ".pt")
                save_ultralytics_checkpoint(model, path, name, 320)
            cache[name] = path
        return cache[name]

    return make
