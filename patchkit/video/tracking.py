"""Multi-object tracking on patchkit's per-frame detections, with ultralytics' own trackers.

:class:`FrameTracker` feeds each frame's detections (the boxes patchkit already scored) to
ultralytics' ``BYTETracker`` or ``BOTSORT``, built from the YAML ultralytics ships
(``ultralytics/cfg/trackers/<name>.yaml``, read from the installed package: nothing is downloaded)
exactly as ``model.track()`` builds them, and returns the track id of every detection. A
detection gets an id only when the tracker outputs it this frame: a confirmed track matched to
it (ultralytics' ``track()`` shows the same tracks). Track ids start at 1; ``-1`` means none.

Everything runs inside :func:`patchkit.detectors._isolation.preserve_process_state`, so
ultralytics' import leaves no process-wide side effects and makes no connectivity checks.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import yaml

from patchkit.errors import PatchkitError, suggest

TRACKERS: tuple[str, ...] = ("bytetrack", "botsort")


def check_tracker(name: str) -> str:
    """``name`` if it is a supported tracker, else a one-line error listing the valid ones."""
    if name not in TRACKERS:
        raise PatchkitError(f"unknown tracker {name!r}{suggest(name, TRACKERS)}; valid: {', '.join(TRACKERS)}")
    return name


def tracker_settings(name: str) -> dict[str, Any]:
    """The settings of ultralytics' default ``<name>.yaml``, as shipped with the installed package."""
    from patchkit.detectors._isolation import preserve_process_state

    check_tracker(name)
    with preserve_process_state():
        import ultralytics

    path = Path(ultralytics.__file__).parent / "cfg" / "trackers" / f"{name}.yaml"
    if not path.is_file():
        raise PatchkitError(f"this ultralytics ({ultralytics.__version__}) ships no {name}.yaml", path)
    return yaml.safe_load(path.read_text(encoding="utf-8"))


class FrameTracker:
    """One tracker for one video (frames in order). ``update`` -> a track id per detection.

    Args:
        name: ``bytetrack`` or ``botsort``.
    """

    def __init__(self, name: str) -> None:
        from patchkit.detectors._isolation import preserve_process_state

        self.name = check_tracker(name)
        self.settings = tracker_settings(name)
        try:
            import lap  # noqa: F401  (ultralytics' trackers need it and would try to pip-install it)
        except ImportError:
            raise PatchkitError("tracking needs the 'lap' package (pip install 'lap>=0.5.12')") from None
        with preserve_process_state():
            from ultralytics.engine.results import Boxes
            from ultralytics.trackers.track import TRACKER_MAP

            self._boxes_cls = Boxes
            self._tracker = TRACKER_MAP[self.settings["tracker_type"]](args=SimpleNamespace(**self.settings))

    def update(self, boxes: np.ndarray, frame_rgb: np.ndarray | None = None) -> np.ndarray:
        """Track one frame.

        Args:
            boxes: ``(N, 6)`` rows ``[x1, y1, x2, y2, conf, cls]`` in frame pixels.
            frame_rgb: the frame, ``(H, W, 3)`` uint8 RGB (BoT-SORT's camera-motion compensation
                uses it; ByteTrack ignores it).

        Returns:
            ``(N,)`` int64 track ids (1, 2, ...), ``-1`` where the detection is not in a confirmed track.
        """
        import cv2

        data = np.asarray(boxes, dtype=np.float32).reshape(-1, 6)
        h, w = (frame_rgb.shape[:2] if frame_rgb is not None else (1, 1))
        img = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR) if frame_rgb is not None and self.name == "botsort" else None
        tracks = self._tracker.update(self._boxes_cls(data, (h, w)), img)
        ids = np.full(len(data), -1, np.int64)
        if len(tracks):
            ids[tracks[:, -1].astype(np.int64)] = tracks[:, 4].astype(np.int64)
        return ids
