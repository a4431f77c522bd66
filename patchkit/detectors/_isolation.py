"""Keep ultralytics' process-wide side effects out of patchkit.

Importing ultralytics sets ``OMP_NUM_THREADS`` and other environment variables, OpenCV's thread
count, torch and NumPy print options, and replaces ``torch.save``, ``PIL.Image.open`` (whose
replacement tries to pip-install a HEIF plugin when an image cannot be read) and, on some
platforms, ``cv2.imread``/``imwrite``/``imshow``; its device selection calls
``torch.set_num_threads`` (see ../shared/docs/performance.md). Its import also checks connectivity with DNS
look-ups unless ``YOLO_OFFLINE`` is set. Every ultralytics import or call in patchkit runs inside
:func:`preserve_process_state`, which sets ``YOLO_OFFLINE=1`` (and turns ``ultralytics.utils.ONLINE``
off when ultralytics was imported before) for its duration, and puts all of this back.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import torch

_TORCH_PRINT_KEYS = ("precision", "threshold", "edgeitems", "linewidth", "sci_mode")


@contextmanager
def preserve_process_state() -> Iterator[None]:
    """Restore thread counts, environment, print options and patched functions on exit."""
    import cv2
    from PIL import Image

    n_torch = torch.get_num_threads()
    n_cv2 = cv2.getNumThreads()
    env = dict(os.environ)
    np_print = np.get_printoptions()
    torch_opts = torch._tensor_str.PRINT_OPTS
    torch_print = {k: getattr(torch_opts, k) for k in _TORCH_PRINT_KEYS if hasattr(torch_opts, k)}
    functions: list[tuple[Any, str, Any]] = [
        (torch, "save", torch.save),
        (torch, "load", torch.load),
        (Image, "open", Image.open),
        (cv2, "imread", cv2.imread),
        (cv2, "imwrite", cv2.imwrite),
        (cv2, "imshow", cv2.imshow),
    ]
    os.environ["YOLO_OFFLINE"] = "1"  # patchkit never downloads: no connectivity checks either
    utils = sys.modules.get("ultralytics.utils")
    online = getattr(utils, "ONLINE", None)
    if utils is not None:
        utils.ONLINE = False
    try:
        yield
    finally:
        if utils is not None:
            utils.ONLINE = online
        if torch.get_num_threads() != n_torch:
            torch.set_num_threads(n_torch)
        if cv2.getNumThreads() != n_cv2:
            cv2.setNumThreads(n_cv2)
        for key in set(os.environ) - set(env):
            del os.environ[key]
        for key, value in env.items():
            if os.environ.get(key) != value:
                os.environ[key] = value
        np.set_printoptions(**np_print)
        for key, value in torch_print.items():
            setattr(torch_opts, key, value)
        for owner, name, original in functions:
            if getattr(owner, name) is not original:
                setattr(owner, name, original)


def import_ultralytics_tasks() -> Any:
    """``ultralytics.nn.tasks``, imported lazily without leaving process-wide side effects."""
    with preserve_process_state():
        from ultralytics.nn import tasks

    return tasks

