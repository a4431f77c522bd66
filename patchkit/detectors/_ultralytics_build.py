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
