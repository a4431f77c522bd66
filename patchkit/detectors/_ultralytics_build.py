"""Building layer lists with ultralytics' ``parse_model`` from a model dict, without ``eval``.

``parse_model`` evaluates a YAML's ``activation`` string with ``eval`` and looks layer names up in
its module namespace. Model dicts can come from untrusted files (a checkpoint's pickled ``yaml``,
a user's YAML), so patchkit checks every layer name first (it must name an ``nn.Module`` class)
and resolves ``activation`` itself (only ``nn.<Class>(literal args)``).
"""

from __future__ import annotations

import ast
from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import nn

from patchkit.errors import PatchkitError


def parse_activation(spec: str, source: str = "model yaml") -> nn.Module:
    """``"nn.SiLU()"`` / ``"torch.nn.LeakyReLU(0.1)"`` -> module instance; anything else is refused."""
    try:
        call = ast.parse(str(spec).strip(), mode="eval").body
        if not isinstance(call, ast.Call):
            raise ValueError
        parts, node = [], call.func
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            raise ValueError
        parts.append(node.id)
        if parts[1:] not in (["nn"], ["nn", "torch"]):
            raise ValueError
        cls = getattr(nn, parts[0], None)
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise ValueError
        args = [ast.literal_eval(a) for a in call.args]
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
        return cls(*args, **kwargs)
    except (ValueError, SyntaxError, TypeError) as exc:
        raise PatchkitError(f"{source}: unsupported activation {spec!r} (expected e.g. 'nn.SiLU()')") from exc


def check_layers(d: dict, tasks: Any, source: str) -> None:
    """Every layer row ``[from, n, module, args]`` must name an ``nn.Module`` class known to
    ultralytics (``Conv``, ``C3``...) or ``torch.nn`` (``nn.Upsample``...)."""
    rows = list(d.get("backbone") or []) + list(d.get("head") or [])
    if not rows:
        raise PatchkitError(f"{source}: the model description has no backbone/head layers")
    for i, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or len(row) != 4 or not isinstance(row[2], str):
            raise PatchkitError(f"{source}: layer {i} is not a [from, number, module, args] row")
        name = row[2]
        if name.startswith("nn."):
            obj = getattr(nn, name[3:], None)
        elif name.startswith("torchvision.ops."):
            obj = None
        else:
            obj = vars(tasks).get(name)
        if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
            raise PatchkitError(f"{source}: layer {i} type {name!r} is not a supported layer class")


@contextmanager
def default_activation(d: dict, tasks: Any, source: str) -> Iterator[dict]:
    """Yield a copy of ``d`` without ``activation``; while inside, ultralytics' ``Conv`` uses the
    parsed activation as its default (restored on exit)."""
    d = dict(d)
    spec = d.pop("activation", None)
    conv = tasks.Conv
    saved = conv.default_act
    if spec:
        conv.default_act = parse_activation(spec, source)
    try:
        yield d
    finally:
        conv.default_act = saved


def build_seeded(model_class: Any, d: dict, tasks: Any, source: str, nc: int | None, seed: int) -> nn.Module:
    """Build ``model_class(d, nc=nc)`` (an ultralytics model class) from a model dict that passed
    :func:`check_layers`, with random weights drawn from ``seed``, leaving the global RNG and
    process state untouched. Any failure inside ultralytics' ``parse_model`` becomes a one-line
    :class:`PatchkitError`."""
    from patchkit.detectors._isolation import preserve_process_state

    with preserve_process_state(), torch.random.fork_rng(devices=[]), default_activation(d, tasks, source) as d2:
        torch.manual_seed(seed)
        try:
            return model_class(d2, nc=nc, verbose=False)
        except PatchkitError:
            raise
        except Exception as exc:  # a malformed YAML row surfaces as any exception inside parse_model
            raise PatchkitError(f"{source}: cannot build the model ({type(exc).__name__}: {exc})") from exc


def checkpoint_model(ckpt: Any) -> Any:
    """The model held by a loaded ultralytics checkpoint: ``ema`` first, then ``model`` (as
    ultralytics); a bare model is returned as is."""
    if isinstance(ckpt, dict):
        return ckpt["ema"] if ckpt.get("ema") is not None else ckpt.get("model")
    return ckpt


def upsample_compat(model: nn.Module) -> nn.Module:
    """As ultralytics' ``load_checkpoint``: give old pickled ``nn.Upsample`` layers the attribute
    newer torch expects. Returns ``model``."""
    for m in model.modules():
        if isinstance(m, nn.Upsample) and not hasattr(m, "recompute_scale_factor"):
            m.recompute_scale_factor = None
    return model
