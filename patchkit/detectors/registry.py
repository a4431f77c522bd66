"""Detector registry and the single factory, timm style, with detector families as plug-ins.

Two kinds of entries, both reached by name (and by ``"name:PATH"``):

- ``@register_detector("name")`` records a plain factory ``fn(weights, *, imgsz, letterbox, device,
  **kw)``, e.g. ``"toy"`` (called with ``weights=None`` when given by name);
- ``register_family(DetectorFamily(...))`` records a family plug-in: ``sniff(view)`` says whether
  a file is one of its own, ``from_yaml`` / ``from_checkpoint`` build from a model YAML or a
  checkpoint. A family is also the factory under its name (it picks the builder by suffix).

Plug-ins are the public modules of this package (``patchkit/detectors/*.py`` without a leading
underscore): the first call of :func:`create_detector` or :func:`list_detectors` imports them
all, and each family module registers itself on import, so a new family is one new file. This
module imports no family module and names none.

:func:`create_detector` dispatches:

1. ``"name:PATH"`` with a registered name -> that entry with ``PATH``, no sniffing;
2. a registered name that is not an existing file -> that entry with ``weights=None``;
3. a model YAML (``.yaml`` / ``.yml``; a bare name is resolved by the family) -> the first
   family whose ``sniff`` claims ``FileView("yaml", path)``;
4. any other existing file, sniffed without executing anything:

   a. a zip checkpoint referencing pickled classes: its globals are listed statically and the
      first family claiming ``FileView("globals", path, names)`` builds it; otherwise a global
      outside :mod:`patchkit.detectors.safe_load`'s allow-list is refused;
   b. a tensors-only (or legacy) file is loaded without executing code: a top-level (or
      ``meta``) ``"family"`` naming a registered entry builds it; otherwise the first family
      claiming ``FileView("object", path, obj)``.

Families are asked in decreasing ``priority``, then by name; a catch-all family (ultralytics:
any ultralytics model) has a negative priority so that more specific ones (rtdetr) come first.
Missing or wrong files raise a one-line :class:`PatchkitError`; nothing is ever downloaded.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import torch

from patchkit.detectors.base import Detector
from patchkit.detectors.letterbox import check_letterbox_mode
from patchkit.detectors.safe_load import checkpoint_globals, load_weights_only, resolve_global, safe_torch_load
from patchkit.device import resolve_device
from patchkit.errors import PatchkitError, suggest

log = logging.getLogger(__name__)

DetectorFactory = Callable[..., Detector]
_REGISTRY: dict[str, DetectorFactory] = {}  # name -> factory (a DetectorFamily for families)
_FAMILIES: dict[str, "DetectorFamily"] = {}
_PLUGINS_LOADED = False
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class FileView:
    """What a family's ``sniff`` sees of a file (nothing in it has been executed).

    Attributes:
        kind: ``"yaml"``: a model YAML (``content`` is ``None``; the path may be a bare name
            that the family resolves); ``"globals"``: a zip checkpoint whose ``content`` is the
            sorted list of its pickle globals, listed statically; ``"object"``: a checkpoint
            without pickled classes (or a legacy one) whose ``content`` is the loaded object.
        path: the file.
        content: as described for ``kind``.
    """

    kind: Literal["yaml", "globals", "object"]
    path: Path
    content: Any = None


@dataclass(frozen=True)
class DetectorFamily:
    """A detector family plug-in.

    Attributes:
        name: registry name, also the prefix of ``"name:PATH"``.
        sniff: ``sniff(view) -> bool``: whether the file is this family's (see :class:`FileView`);
            returns ``False`` (never raises) for foreign files.
        from_checkpoint: ``fn(path, *, imgsz, letterbox, device, **kw) -> Detector``.
        from_yaml: the same for a model YAML, or ``None`` for families without one.
        example: a file named in the error when the family is given without one.
        priority: families are asked in decreasing priority (ties: by name).
    """

    name: str
    sniff: Callable[[FileView], bool]
    from_checkpoint: DetectorFactory
    from_yaml: DetectorFactory | None = None
    example: str = "PATH"
    priority: int = 0

    def __call__(self, weights: str | Path | None = None, **kwargs: Any) -> Detector:
        """The family's factory: ``from_yaml`` for a ``.yaml`` / ``.yml`` (when it has one), else
        ``from_checkpoint``; ``weights=None`` is a one-line error."""
        if weights is None:
            what = "a model YAML or checkpoint" if self.from_yaml is not None else "a weights file"
            raise PatchkitError(f"detector family {self.name!r} needs {what}, e.g. {self.example}")
        if self.from_yaml is not None and Path(weights).suffix.lower() in YAML_SUFFIXES:
            return self.from_yaml(weights, **kwargs)
        return self.from_checkpoint(weights, **kwargs)


def register_detector(name: str) -> Callable[[DetectorFactory], DetectorFactory]:
    """Decorator registering ``fn(weights: str | Path | None, *, imgsz, letterbox, device, **kwargs)``
    under ``name``. Re-registering a name replaces it with a warning (as timm)."""

    def decorator(fn: DetectorFactory) -> DetectorFactory:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            log.warning("detector %r registered again; replacing %s", name, _REGISTRY[name])
        _REGISTRY[name] = fn
        return fn

    return decorator


def register_family(family: DetectorFamily) -> DetectorFamily:
    """Register a family plug-in (its files are sniffed; it is also the factory under its name);
    returns it."""
    register_detector(family.name)(family)
    _FAMILIES[family.name] = family
    return family


def _load_plugins() -> None:
    """Import every public module of this package once; family modules register on import."""
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    package = __name__.rpartition(".")[0]
    for module in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{package}.{module.name}")
    _PLUGINS_LOADED = True


def list_detectors() -> list[str]:
    """Names of the registered detectors and families, sorted."""
    _load_plugins()
    return sorted(_REGISTRY)


def list_families() -> list[DetectorFamily]:
    """The registered family plug-ins, in the order they are asked to sniff a file."""
    _load_plugins()
    return sorted(_FAMILIES.values(), key=lambda f: (-f.priority, f.name))


def _unknown(name: str) -> PatchkitError:
    known = list_detectors()
    return PatchkitError(
        f"unknown detector {name!r}{suggest(name, known)}: give a weights file (.pt), a model YAML, "
        f"or a registered name ({', '.join(known)}); patchkit never downloads weights"
    )


def _claim(view: FileView) -> str | None:
    """Name of the first family whose ``sniff`` claims ``view``."""
    return next((f.name for f in list_families() if f.sniff(view)), None)


def _declared_family(obj: Any) -> str | None:
    """A checkpoint dict's own top-level (or ``meta``) ``"family"`` entry."""
    if not isinstance(obj, dict):
        return None
    family = obj.get("family")
    meta = obj.get("meta")
    if family is None and isinstance(meta, dict):
        family = meta.get("family")
    return family if isinstance(family, str) else None


def sniff_family(path: str | Path) -> str:
    """The registered name that builds ``path`` (a model YAML or checkpoint), decided without
    executing pickled code; see the module docstring for the order of the checks."""
    path = Path(path)
    families = ", ".join(sorted(f.name for f in list_families()))
    if path.suffix.lower() in YAML_SUFFIXES:
        name = _claim(FileView("yaml", path))
        if name is None:
            raise PatchkitError(f"is not a model YAML of a registered family ({families})", path)
        return name
    names = checkpoint_globals(path)  # static listing; bad files raise one-line errors here
    if names:
        name = _claim(FileView("globals", path, names))
        if name is not None:
            return name
        for n in names:
            if resolve_global(n) is None:
                raise PatchkitError(f"refused to load: the checkpoint references the disallowed global '{n}'", path)
        raise PatchkitError(f"is not a detector checkpoint (no model of a registered family inside: {families})", path)
    try:
        obj = load_weights_only(path)
    except PatchkitError:
        obj = safe_torch_load(path)  # legacy (pre-zip) pickles: listed only while loading
    declared = _declared_family(obj)
    if declared is not None:
        if declared in list_detectors():
            return declared
        raise _unknown(declared)
    name = _claim(FileView("object", path, obj))
    if name is None:
        raise PatchkitError(
            f"is not a recognised detector checkpoint (families: {families}; or a dict whose 'family' names "
            f"a registered detector)",
            path,
        )
    return name


def create_detector(
    weights: str | Path,
    imgsz: int = 640,
    letterbox: str = "rect",
    device: str | torch.device = "cpu",
    **kwargs: Any,
) -> Detector:
    """Build a frozen, eval-mode detector: the single entry point.

    Args:
        weights: a checkpoint (original YOLOv5 release, its state-dict copy, ultralytics), an
            ultralytics model YAML (random weights; bare names resolve from the installed
            ultralytics cfg folder), a registered name (``"toy"``), or ``"name:PATH"``.
        imgsz: long side of the letterboxed input in pixels (rounded up to a stride multiple).
        letterbox: ``"rect"`` (minimum rectangle, as predict()) or ``"square"`` (imgsz x imgsz).
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        **kwargs: family options (``end2end``, ``nc``, ``seed`` for ultralytics); ``None`` values
            are dropped so the family default applies.

    Raises:
        PatchkitError: one line naming the file or name.
    """
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    check_letterbox_mode(letterbox)
    dev = resolve_device(device)
    _load_plugins()
    text = str(weights)
    common = dict(imgsz=imgsz, letterbox=letterbox, device=dev, **kwargs)
    prefix, _, rest = text.partition(":")
    if rest and len(prefix) > 1 and prefix in _REGISTRY:
        return _REGISTRY[prefix](rest, **common)
    path = Path(text)
    if text in _REGISTRY and not path.exists():
        return _REGISTRY[text](None, **common)
    if not path.exists() and path.suffix.lower() not in YAML_SUFFIXES:
        if not path.suffix and str(path) == path.name:
            raise _unknown(text)
        raise PatchkitError("detector weights not found (patchkit never downloads weights; give a local file)", path)
    return _REGISTRY[sniff_family(path)](path, **common)
