"""Checkpoint loading that never executes pickled code.

Every checkpoint goes through torch's ``weights_only`` unpickler. Before loading, the pickle's
globals are listed statically (no code runs) and each one is resolved against an allow-list:

- torch's own defaults (tensor/storage rebuild functions, ``OrderedDict``, ``set``, dtypes);
- ``torch.nn`` module classes (``torch.nn.modules.*`` subclasses of ``nn.Module``);
- original YOLOv5-repository classes (``models.common.*``, ``models.yolo.*``,
  ``models.experimental.*``), mapped to :class:`YOLOv5Stub` subclasses: the unpickled tree is a
  plain module tree whose ``state_dict()`` and ``yaml`` can be read, and no yolov5 code is needed;
- ultralytics classes (``ultralytics.nn.modules.*``, ``ultralytics.nn.tasks.*``; ``nn.Module``
  subclasses only, never functions) plus the helper types ultralytics checkpoints carry
  (``IterableSimpleNamespace``, NumPy scalars and arrays, ``pathlib`` paths, a ``getattr`` limited
  to module methods, loss-criterion classes);

anything else (``os.system``, ``builtins.eval``, ``subprocess``...) is refused with a one-line
:class:`PatchkitError` naming the file and the offending global, before any byte is unpickled.
"""

from __future__ import annotations

import enum
import hashlib
import importlib
import pathlib
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from patchkit.errors import PatchkitError

YOLOV5_MODULES = ("models.common", "models.yolo", "models.experimental")
ULTRALYTICS_CLASS_MODULES = ("ultralytics.utils.loss", "ultralytics.utils.tal", "ultralytics.nn.distill_model")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class YOLOv5Stub(nn.Module):
    """Stand-in for a class of the yolov5 repository (``models.yolo.Model``, ``models.common.C3``...).

    It only holds what was pickled (parameters, buffers, sub-modules, attributes such as ``yaml``,
    ``names``, ``stride``); it has no forward pass. ``yolov5_name`` is the original class path.
    """

    yolov5_name = "models.?"

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise PatchkitError(f"{self.yolov5_name} is a placeholder for a yolov5-repository class and cannot run")


def _yolov5_stub(qualified: str) -> type:
    name = qualified.rpartition(".")[2]
    return type(name, (YOLOv5Stub,), {"__module__": __name__, "yolov5_name": qualified})


def _restricted_getattr(obj: Any, name: str) -> Any:
    """``getattr`` for pickles, limited to what checkpoints need: methods/attributes of allowed
    ``nn.Module`` classes (ultralytics pickles ``Detect.forward``) and enum members."""
    if not name.startswith("_"):
        if isinstance(obj, type) and issubclass(obj, (nn.Module, enum.Enum)):
            return getattr(obj, name)
        if isinstance(obj, nn.Module) and name in {"forward", "forward_fuse"}:
            return getattr(type(obj), name).__get__(obj)
    raise pickle.UnpicklingError(f"getattr({type(obj).__name__}, {name!r}) is not allowed")


def _numpy_global(name: str) -> Any:
    import numpy as np

    module, _, attr = name.rpartition(".")
    if module in {"numpy.core.multiarray", "numpy._core.multiarray"} and attr == "scalar":
        return np.float64(0).__reduce__()[0]
    if module in {"numpy.core.multiarray", "numpy._core.multiarray"} and attr == "_reconstruct":
        return np.ndarray.__reduce__(np.zeros(1))[0]
    if name == "numpy.ndarray":
        return np.ndarray
    if name == "numpy.dtype":
        return np.dtype
    if module == "numpy.dtypes" and attr.endswith("DType"):
        obj = getattr(importlib.import_module("numpy.dtypes"), attr, None)
        return obj if isinstance(obj, type) and issubclass(obj, np.dtype) else None
    return None


def _implied_entries(names: list[str]) -> list[Any]:
    """Types that unpickling builds without naming them as globals: NumPy's per-dtype classes
    (``numpy.dtypes.Float64DType``...) are instantiated by ``numpy.dtype`` itself."""
    if "numpy.dtype" not in names:
        return []
    import numpy as np

    kinds = {type(np.dtype(t)) for t in ("b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16")}
    return sorted(kinds, key=lambda t: t.__name__)


def _ultralytics_global(name: str) -> Any:
    module, _, attr = name.rpartition(".")
    aliases = {
        "ultralytics.nn.tasks.YOLOv10DetectionModel": ("ultralytics.nn.tasks", "DetectionModel"),
        "ultralytics.nn.modules.block.Silence": ("torch.nn", "Identity"),
        "ultralytics.yolo.utils.IterableSimpleNamespace": ("ultralytics.utils", "IterableSimpleNamespace"),
        "ultralytics.utils.IterableSimpleNamespace": ("ultralytics.utils", "IterableSimpleNamespace"),
    }
    if name in aliases:
        mod, attr = aliases[name]
        return getattr(importlib.import_module(mod), attr)
    in_modules = module == "ultralytics.nn.modules" or module.startswith("ultralytics.nn.modules.")
    if in_modules or module == "ultralytics.nn.tasks":
        obj = _import_attr(module, attr)
        return obj if isinstance(obj, type) and issubclass(obj, nn.Module) else None
    if module in ULTRALYTICS_CLASS_MODULES:  # loss criteria pickled inside some training checkpoints
        obj = _import_attr(module, attr)
        return obj if isinstance(obj, type) and obj.__module__ == module else None
    return None


def _import_attr(module: str, attr: str) -> Any:
    try:
        return getattr(importlib.import_module(module), attr, None)
    except ImportError:
        return None


def resolve_global(name: str) -> Any:
    """The object a checkpoint global ``"module.Name"`` may be unpickled as, or ``None`` (refused)."""
    module, _, attr = name.rpartition(".")
    if not module or not _IDENT.match(attr):
        return None
    if module.startswith("torch.nn.modules."):
        obj = _import_attr(module, attr)
        return obj if isinstance(obj, type) and issubclass(obj, nn.Module) else None
    if module in YOLOV5_MODULES:
        return _yolov5_stub(name)
    if module == "numpy" or module.startswith("numpy."):
        return _numpy_global(name)
    if module.startswith("ultralytics."):
        from patchkit.detectors._isolation import preserve_process_state

        with preserve_process_state():
            return _ultralytics_global(name)
    if module in {"pathlib", "pathlib._local"} and attr in {"PosixPath", "WindowsPath", "PurePosixPath", "PureWindowsPath"}:
        return pathlib.PurePosixPath if "Posix" in attr else pathlib.PureWindowsPath
    if name in {"builtins.getattr", "__builtin__.getattr"}:
        return _restricted_getattr
    return None


def _check_file(path: Path) -> None:
    if not path.exists():
        raise PatchkitError("checkpoint file not found", path)
    if not path.is_file():
        raise PatchkitError("is not a file (expected a checkpoint)", path)
    if path.stat().st_size == 0:
        raise PatchkitError("is empty, not a PyTorch checkpoint", path)


def _file_kind(path: Path) -> str:
    """``"zip"`` (torch.save), ``"legacy"`` (pre-1.6 torch.save), ``"truncated"`` or ``"other"``."""
    with open(path, "rb") as f:
        head = f.read(4)
    if zipfile.is_zipfile(path):
        return "zip"
    if head.startswith(b"PK\x03\x04"):
        return "truncated"
    if head[:1] == b"\x80":  # pickle protocol opcode: the legacy torch.save format starts with one
        return "legacy"
    return "other"


def checkpoint_globals(path: str | Path) -> list[str]:
    """All pickle globals referenced by a ``torch.save`` zip checkpoint, listed statically (no code
    runs), except torch's own default-safe ones. Raises :class:`PatchkitError` on unreadable files."""
    path = Path(path)
    _check_file(path)
    kind = _file_kind(path)
    if kind == "truncated":
        raise PatchkitError("is truncated or corrupt (damaged zip archive), not a loadable checkpoint", path)
    if kind != "zip":
        return []
    try:
        with zipfile.ZipFile(path) as zf:
            if not any(n.endswith("data.pkl") for n in zf.namelist()):
                raise PatchkitError("is a zip archive but not a PyTorch checkpoint (no data.pkl)", path)
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except PatchkitError:
        raise
    except pickle.UnpicklingError as exc:
        raise PatchkitError(f"uses pickle instructions outside the safe subset ({exc})", path) from exc
    except (ValueError, RuntimeError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise PatchkitError(f"is not a loadable PyTorch checkpoint ({_first_line(exc)})", path) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:200]


_REFUSED = re.compile(r"GLOBAL ([\w.]+)")
_BOILERPLATE = ("Weights only load failed", "Please file an issue", "Check the documentation", "WeightsUnpickler error")


def _unpickling_reason(exc: BaseException) -> str:
    """The informative line of torch's multi-line weights_only error."""
    for line in str(exc).splitlines():
        line = line.strip()
        if line and not line.startswith(_BOILERPLATE):
            return line[:200]
    return _first_line(exc)


def safe_torch_load(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """Load a detector checkpoint (original YOLOv5, ultralytics or patchkit format) without executing
    pickled code; see the module docstring for what is allowed.

    Raises:
        PatchkitError: one line naming the file: missing, empty, truncated, not a checkpoint, or
            referencing a global outside the allow-list (named in the message).
    """
    path = Path(path)
    _check_file(path)
    kind = _file_kind(path)
    if kind == "other":
        raise PatchkitError("is not a PyTorch checkpoint (unknown file format)", path)
    entries: list[Any] = []
    for name in checkpoint_globals(path):
        obj = resolve_global(name)
        if obj is None:
            raise PatchkitError(f"refused to load: the checkpoint references the disallowed global '{name}'", path)
        entries.append((obj, name))
    entries += _implied_entries([n for _, n in entries])
    # Legacy (non-zip) files cannot be listed in advance: the weights_only unpickler reports the
    # first unknown global, which is resolved (or refused) and the load retried.
    for _ in range(512):
        try:
            with torch.serialization.safe_globals(entries):
                return torch.load(str(path), map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as exc:
            match = _REFUSED.search(str(exc))
            name = match.group(1) if match else None
            obj = resolve_global(name) if name else None
            if obj is None or any(n == name for _, n in entries):
                what = f"the disallowed global '{name}'" if name else f"a disallowed object ({_unpickling_reason(exc)})"
                raise PatchkitError(f"refused to load: the checkpoint references {what}", path) from exc
            entries.append((obj, name))
            entries += _implied_entries([name])
        except PatchkitError:
            raise
        except (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile, KeyError) as exc:
            raise PatchkitError(f"is truncated or not a loadable checkpoint ({_first_line(exc)})", path) from exc
    raise PatchkitError("references too many globals to be a detector checkpoint", path)


def load_weights_only(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """Load a tensors-only checkpoint (patchkit's own, state-dict copies) with
    ``torch.load(weights_only=True)`` and no extra allowed globals; errors are one-line
    :class:`PatchkitError` s naming the file."""
    path = Path(path)
    _check_file(path)
    if _file_kind(path) == "other":
        raise PatchkitError("is not a PyTorch checkpoint (unknown file format)", path)
    try:
        return torch.load(str(path), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        match = _REFUSED.search(str(exc))
        what = f"the disallowed global '{match.group(1)}'" if match else f"a disallowed object ({_unpickling_reason(exc)})"
        raise PatchkitError(f"refused to load as weights only: the checkpoint references {what}", path) from exc
    except (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile, KeyError) as exc:
        raise PatchkitError(f"is truncated or not a loadable checkpoint ({_first_line(exc)})", path) from exc


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file (recorded in ``DetectorInfo.sha256``)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
