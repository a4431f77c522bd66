"""Helpers shared by the detector families built on ultralytics' layers (ultralytics, rtdetr, yolov5, toy).

- Model YAMLs: :func:`resolve_yaml` finds a local file or a bare name in the installed
  ultralytics ``cfg/models`` folder (never downloaded); :func:`peek_model_yaml` reads one without
  importing ultralytics (for ``sniff``); :func:`load_model_dict` adds ultralytics' scale guess;
  :func:`layer_rows` / :func:`last_layer_type` read the ``[from, number, module, args]`` rows.
- Building without ``eval``: ``parse_model`` evaluates a YAML's ``activation`` string with
  ``eval`` and looks layer names up in its module namespace. Model dicts can come from untrusted
  files (a checkpoint's pickled ``yaml``, a user's YAML), so :func:`check_layers` checks every
  layer name first (it must name an ``nn.Module`` class) and :func:`default_activation` resolves
  ``activation`` itself (only ``nn.<Class>(literal args)``); :func:`build_seeded` builds a model
  class with seeded random weights and no process-wide side effects.
- Running a built layer list: :func:`head_inputs`, :func:`run_layers` (``_predict_once`` semantics).
- Checkpoints and metadata: :func:`checkpoint_model`, :func:`upsample_compat`, :func:`names_dict`,
  :func:`yaml_extra`.

Nothing here imports ultralytics at module import time.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import torch
import yaml
from torch import Tensor, nn

from patchkit.detectors._isolation import preserve_process_state
from patchkit.errors import PatchkitError

# -- model YAMLs ------------------------------------------------------------------------------


def ultralytics_cfg_dir() -> Path | None:
    """``<site-packages>/ultralytics/cfg/models`` located without importing ultralytics."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "cfg" / "models"


def _unified_stem(stem: str) -> str:
    """``yolov8n`` -> ``yolov8``, ``yolov5n6`` -> ``yolov5-p6``, ``yolov5nu`` -> ``yolov5``,
    ``yolov3-tinyu`` -> ``yolov3-tiny`` (ultralytics' scale and "u" naming)."""
    if stem.endswith("u") and re.match(r"yolov\d", stem):
        stem = stem[:-1]
    if re.fullmatch(r"yolov[58][nslmx]6", stem):
        stem = re.sub(r"(\d+)([nslmx])6(.+)?$", r"\1\2-p6\3", stem)
    return re.sub(r"(\d+)([nslmx])(.+)?$", r"\1\3", stem)


def resolve_yaml(name: str | Path) -> tuple[Path, Path]:
    """``(file to read, path whose name carries the scale)`` for a model YAML.

    A path that exists is used as is. A bare name (``yolov8n.yaml``) is looked up in the installed
    ultralytics ``cfg/models`` folder, scale letter stripped as ultralytics does; never downloaded.
    """
    path = Path(name)
    if path.is_file():
        return path, path
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise PatchkitError("model YAML not found", path)
    root = ultralytics_cfg_dir()
    if str(path) == path.name and root is not None and root.is_dir():
        for candidate in (path.name, _unified_stem(path.stem) + path.suffix):
            found = sorted(root.rglob(candidate))
            if found:
                return found[0], found[0].with_name(path.name)
    raise PatchkitError(
        "model YAML not found (give a file path, or a bare name of the installed ultralytics "
        "cfg/models such as yolov8n.yaml, yolo11n.yaml, yolo26n.yaml, yolov10n.yaml)",
        path,
    )


def _read_yaml_mapping(file: Path) -> dict:
    try:
        d = yaml.safe_load(file.read_text(encoding="utf-8", errors="ignore"))
    except (OSError, yaml.YAMLError) as exc:
        raise PatchkitError(f"cannot read model YAML ({type(exc).__name__}: {exc})", file) from exc
    if not isinstance(d, dict):
        raise PatchkitError("is not a model YAML (expected a mapping with backbone/head)", file)
    return d


def peek_model_yaml(name: str | Path) -> dict:
    """The mapping of a model YAML (resolved as :func:`resolve_yaml`), or ``{}`` when it cannot be
    found or read; never imports ultralytics (for a family's ``sniff``)."""
    try:
        return _read_yaml_mapping(resolve_yaml(name)[0])
    except PatchkitError:
        return {}


def load_model_dict(name: str | Path, tasks: Any) -> dict:
    """The model dict of a YAML, with ``scale`` guessed from the name like ultralytics does."""
    file, named = resolve_yaml(name)
    d = _read_yaml_mapping(file)
    d["scale"] = tasks.guess_model_scale(named)
    d["yaml_file"] = str(named)
    return d


def layer_rows(d: dict) -> list:
    """The layer rows of a model dict: ``backbone`` then ``head``."""
    return list(d.get("backbone") or []) + list(d.get("head") or [])


def last_layer_type(d: dict) -> str | None:
    """Module name of the last ``[from, number, module, args]`` row (the head), or ``None``."""
    rows = layer_rows(d)
    last = rows[-1] if rows else None
    return last[2] if isinstance(last, (list, tuple)) and len(last) == 4 else None


def yaml_extra(d: dict, seed: int) -> dict:
    """``DetectorInfo.extra`` entries of a detector built from a model YAML."""
    return {"format": "ultralytics-yaml", "yaml": Path(d["yaml_file"]).name, "seed": seed}


# -- building without eval --------------------------------------------------------------------


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
    rows = layer_rows(d)
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
    with preserve_process_state(), torch.random.fork_rng(devices=[]), default_activation(d, tasks, source) as d2:
        torch.manual_seed(seed)
        try:
            return model_class(d2, nc=nc, verbose=False)
        except PatchkitError:
            raise
        except Exception as exc:  # a malformed YAML row surfaces as any exception inside parse_model
            raise PatchkitError(f"{source}: cannot build the model ({type(exc).__name__}: {exc})") from exc


# -- running a layer list built by parse_model (each layer has .f and .i) ---------------------


def head_inputs(from_: int | Sequence[int], head_index: int) -> list[int]:
    """Absolute layer indices feeding the head at ``head_index`` (``-1`` = previous layer)."""
    idx = [from_] if isinstance(from_, int) else list(from_)
    return [head_index - 1 if j == -1 else j % head_index for j in idx]


def run_layers(layers: Iterable[nn.Module], save: frozenset[int], x: Tensor, outputs: Sequence[int]) -> list[Tensor]:
    """Forward ``x`` through ``layers`` (ultralytics ``_predict_once`` semantics) and return the
    outputs of the layers listed in ``outputs`` (absolute indices, all in ``save``)."""
    y: list[Tensor | None] = []
    for m in layers:
        f = m.f
        if f != -1:
            x = y[f] if isinstance(f, int) else [x if j == -1 else y[j] for j in f]
        x = m(x)
        y.append(x if m.i in save else None)
    return [y[j] for j in outputs]  # type: ignore[misc]


# -- checkpoints and metadata -----------------------------------------------------------------


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


def names_dict(names: Any, nc: int) -> dict[int, str]:
    """Class id -> name for ids ``0..nc-1`` from a dict or list of names (missing ids: their number)."""
    if isinstance(names, dict):
        out = {int(k): str(v) for k, v in names.items()}
    elif isinstance(names, (list, tuple)):
        out = {i: str(v) for i, v in enumerate(names)}
    else:
        out = {}
    return {i: out.get(i, str(i)) for i in range(nc)}
