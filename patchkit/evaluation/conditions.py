"""Evaluation conditions: clean images, the trained patch(es), and the control patches.

Every condition with a patch uses the same size and placement, and (with test-time EOT) the same
seeded physical draws, so conditions are paired: the only difference is the patch's pixels.

* ``clean``: no patch.
* ``random``: uniform RGB noise in [0, 1] (seeded), the size of the (first) patch.
* ``gray``: uniform 0.5 gray, the same size.
* one condition per patch file, named by its stem.

A patch's JSON sidecar (``NAME.json`` beside ``NAME.png``, see ../shared/docs/interfaces.md "Shipped
patches") gives its placement rule and the detector it was trained on.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from patchkit.errors import PatchkitError
from patchkit.scenes.placement import PlacementConfig

log = logging.getLogger(__name__)

PATCH_MODES = ("RGB", "RGBA", "L", "LA", "P")


@dataclass
class Condition:
    """One evaluation condition.

    Attributes:
        name: ``clean``, ``random``, ``gray`` or the patch file's stem.
        patch: ``(3, H, W)`` RGB in [0, 1], or ``None`` for ``clean``.
        path: the patch file, when there is one.
        trained_on: detector the patch was trained on (from the sidecar), if known.
        sidecar: the sidecar's content, if any.
    """

    name: str
    patch: Tensor | None = None
    path: str | None = None
    trained_on: str | None = None
    sidecar: dict = field(default_factory=dict)


def load_patch(path: str | Path) -> tuple[Tensor, list[str]]:
    """A patch PNG as ``(3, H, W)`` float RGB in [0, 1], and warnings.

    RGB, RGBA, gray ``L`` and palette ``P`` images are accepted; other modes (CMYK, 16-bit,
    float...) raise a one-line :class:`PatchkitError`. Transparent pixels are composited over paper
    white, as a printer prints them (warned); a gray patch is warned about (it is used as RGB).
    """
    path = Path(path)
    warnings: list[str] = []
    if not path.is_file():
        raise PatchkitError("patch file not found", path)
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode not in PATCH_MODES:
                raise PatchkitError(f"patch must be an 8-bit RGB image, got mode {mode} (convert it to RGB PNG)", path)
            rgba = np.asarray(im.convert("RGBA")).astype(np.float32) / 255.0
            alpha = rgba[..., 3:]
            if alpha.min() < 1.0:
                warnings.append(f"{path}: {float((alpha < 1).mean()):.0%} of the pixels are transparent; they are "
                                "printed as paper white (composited over white), not left out")
            if mode in ("L", "LA"):
                warnings.append(f"{path}: gray-scale patch, used as RGB")
            arr = np.round((rgba[..., :3] * alpha + (1.0 - alpha)) * 255.0).astype(np.uint8)
    except PatchkitError:
        raise
    except (OSError, SyntaxError, ValueError) as exc:
        raise PatchkitError(f"cannot read patch image ({exc})", path) from exc
    if min(arr.shape[:2]) < 2:
        raise PatchkitError(f"patch is too small ({arr.shape[1]}x{arr.shape[0]} pixels)", path)
    return torch.from_numpy(np.array(arr)).permute(2, 0, 1).float().div_(255.0), warnings


def read_patch_uint8(path: str | Path, command: str) -> np.ndarray:
    """:func:`load_patch` as ``(H, W, 3)`` uint8 RGB, its warnings printed for ``patchkit COMMAND``."""
    import sys

    patch, warnings = load_patch(path)
    for w in warnings:
        print(f"patchkit {command}: warning: {w}", file=sys.stderr)
    return patch.mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy().copy()


def unique_name(path: str | Path, used: set[str], warnings: list[str], what: str = "patch") -> str:
    """The condition name of ``path``: its stem, or ``stem_2``, ``stem_3``... when taken (with a
    warning appended); the name is added to ``used``."""
    stem = Path(path).stem
    name, k = stem, 2
    while name in used:
        name, k = f"{stem}_{k}", k + 1
    if name != stem:
        warnings.append(f"{path}: another {what} is already named '{stem}'; this one is reported as '{name}'")
    used.add(name)
    return name


def read_sidecar(patch_path: str | Path) -> dict:
    """The JSON sidecar beside a patch (``NAME.json``), ``{}`` when absent; a broken file is an error."""
    side = Path(patch_path).with_suffix(".json")
    if not side.is_file():
        return {}
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PatchkitError(f"cannot read the patch sidecar ({exc})", side) from exc
    if not isinstance(data, dict):
        raise PatchkitError("patch sidecar must be a JSON object", side)
    return data


def placement_from_sidecar(sidecar: dict) -> dict:
    """Placement keys (``scale``, ``offset_x``, ``offset_y``, ``aspect``) found in a sidecar, at
    ``placement`` or ``config.placement``."""
    names = {f.name for f in fields(PlacementConfig)}
    for block in (sidecar.get("placement"), (sidecar.get("config") or {}).get("placement")):
        if isinstance(block, dict):
            return {k: float(v) for k, v in block.items() if k in names and v is not None}
    return {}


def trained_on(sidecar: dict) -> str | None:
    """The detector named in a sidecar (``detector`` as a string, or its ``file``/``name``)."""
    d = sidecar.get("detector")
    if isinstance(d, str):
        return Path(d).name
    if isinstance(d, dict):
        for key in ("file", "name", "weights", "source"):
            if d.get(key):
                return Path(str(d[key])).name
    cfg = sidecar.get("config") or {}
    w = (cfg.get("detector") or {}).get("weights") if isinstance(cfg.get("detector"), dict) else None
    return Path(str(w)).name if w else None


def build_conditions(patch_paths: list[str | Path], seed: int = 0) -> tuple[list[Condition], list[str]]:
    """``clean``, ``random``, ``gray`` and one condition per patch; warnings for odd patches.

    Control patches take the size of the first patch (300 x 300 without patches). Duplicate
    stems get a numeric suffix, with a warning.
    """
    warnings: list[str] = []
    patches: list[Condition] = []
    used = {"clean", "random", "gray"}
    for p in patch_paths:
        tensor, w = load_patch(p)
        warnings += w
        side = read_sidecar(p)
        name = unique_name(p, used, warnings, "patch")
        patches.append(Condition(name, tensor, str(p), trained_on(side), side))
    h, w = (patches[0].patch.shape[-2:] if patches else (300, 300))
    g = torch.Generator().manual_seed(seed)
    random = torch.rand(3, h, w, generator=g)
    gray = torch.full((3, h, w), 0.5)
    return [Condition("clean"), Condition("random", random), Condition("gray", gray), *patches], warnings
