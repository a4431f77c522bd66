"""Run ultralytics' trainer with no network access attempted and no process-wide leftovers.

ultralytics reaches for the network in a few places even when training from a model YAML:
``check_det_dataset`` calls ``check_font("Arial.ttf")``, which downloads the font when it is not
cached (after an online ``requests.head``); plotting calls ``check_font`` again; ``check_amp``
downloads ``yolo26n.pt`` to compare AMP results; ``Model.train`` checks PyPI for updates; anonymous
usage events are sent when its settings allow. :func:`offline_ultralytics` sets ``YOLO_OFFLINE=1``
(ultralytics' own switch, read at import, which turns ``ONLINE`` off and with it the update check
and the events), replaces ``check_font`` by a function that never downloads (ultralytics then
falls back to PIL's default font), and makes every download entry point raise (local files still resolve), so a forgotten
path fails loudly instead of fetching anything. Training must also pass ``amp=False`` (no AMP
probe) and ``pretrained=False``. Everything is restored on exit (with
:func:`~patchkit.detectors._isolation.preserve_process_state` for thread counts, environment and
patched functions).
"""

from __future__ import annotations

import importlib
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from patchkit.detectors._isolation import preserve_process_state


class DownloadBlocked(RuntimeError):
    """ultralytics tried to download something while patchkit trains offline."""


def _no_download(*args: Any, **kwargs: Any) -> Any:
    target = kwargs.get("url") or (args[0] if args else "?")
    raise DownloadBlocked(f"ultralytics tried to download {target}; patchkit never downloads (train from a YAML, pretrained=False)")


def _local_asset(file: Any = "", *args: Any, **kwargs: Any) -> str:
    """``attempt_download_asset`` replacement: a local file is returned as is; anything else raises."""
    if file and Path(str(file)).is_file():
        return str(file)
    return _no_download(file)


def _no_font(font: str = "Arial.ttf") -> None:
    """``check_font`` replacement: a cached font is used by ultralytics' own fallback; never download."""
    return None


# (module, attribute, replacement): every place the names are bound (modules copy them on import)
_PATCHES = (
    ("ultralytics.utils.checks", "check_font", _no_font),
    ("ultralytics.data.utils", "check_font", _no_font),
    ("ultralytics.utils.plotting", "check_font", _no_font),
    ("ultralytics.utils.downloads", "safe_download", _no_download),
    ("ultralytics.utils.downloads", "attempt_download_asset", _local_asset),
    ("ultralytics.data.utils", "safe_download", _no_download),
    ("ultralytics.data.utils", "download", _no_download),
    ("ultralytics.utils.checks", "check_pip_update_available", lambda *a, **k: False),
)


@contextmanager
def offline_ultralytics() -> Iterator[None]:
    """Inside: ultralytics imports and trains with every network path off (see module doc)."""
    with preserve_process_state():
        os.environ["YOLO_OFFLINE"] = "1"
        saved = []
        try:
            for module, attr, replacement in _PATCHES:
                mod = importlib.import_module(module)
                saved.append((mod, attr, getattr(mod, attr)))
                setattr(mod, attr, replacement)
            yield
        finally:
            for mod, attr, original in reversed(saved):
                setattr(mod, attr, original)
