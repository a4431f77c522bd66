"""Where per-frame results go, as they come (supervision-style sinks, context managers).

* :class:`JsonlSink` appends one JSON record per frame and flushes it at once, so Ctrl-C or a
  crash keeps every frame scored so far; :func:`read_jsonl` reads such a file back, ignoring a
  torn last line.
* :class:`VideoSink` writes annotated frames to an MP4 (or, for photo folders, one image per frame).
* :func:`annotate` draws boxes, scores, the marker outline, the pose and the verdict on a frame.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from patchkit.errors import PatchkitError
from patchkit.io import VideoWriter

log = logging.getLogger(__name__)


class JsonlSink:
    """Append-only JSON-lines file, flushed after every record."""

    def __init__(self, path: str | Path, append: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a" if append else "w", encoding="utf-8")
        self.count = 0

    def write(self, record: dict[str, Any]) -> None:
        self._f.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")
        self._f.flush()
        self.count += 1

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def __enter__(self) -> "JsonlSink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Records of a JSONL file; a torn (partially written) last line is skipped with a warning."""
    path = Path(path)
    if not path.is_file():
        return
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    for k, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            if k == len(lines) - 1:
                log.warning("%s: ignoring an incomplete last line (interrupted write)", path)
            else:
                raise PatchkitError(f"line {k + 1} is not valid JSON", path)


GREEN, RED, YELLOW, WHITE, GRAY = (0, 200, 0), (230, 0, 0), (255, 220, 0), (255, 255, 255), (160, 160, 160)  # RGB
ORANGE = (255, 140, 0)


def _partial_boxes(boxes: list, target: dict, conf: float, match_iou: float = 0.5) -> list[tuple]:
    """Boxes at or above ``conf`` that overlap the target's box but match it with IoU below
    ``match_iou`` (so the frame counts as hidden): ``[(x1, y1, x2, y2, conf)]``."""
    if not target.get("present") or not target.get("box") or not boxes:
        return []
    from patchkit.metrics.ap import box_iou_numpy

    arr = np.asarray([b[:5] for b in boxes if b[4] >= conf], dtype=np.float64).reshape(-1, 5)
    if not len(arr):
        return []
    iou = box_iou_numpy(arr[:, :4], np.asarray([target["box"]], dtype=np.float64))[:, 0]
    return [tuple(row) for row, v in zip(arr.tolist(), iou) if 0.0 < v < match_iou]


def annotate(image_rgb: np.ndarray, record: dict[str, Any], conf: float) -> np.ndarray:
    """An RGB copy of the frame with all boxes (gray below ``conf``; with their track id when tracked), partial boxes on the target
    (orange: at or above ``conf`` but IoU < 0.5 with it, so not a detection), the target box (red
    detected / green hidden), the marker outlines, the pose and the verdict at ``conf``."""
    img = np.ascontiguousarray(image_rgb).copy()
    h = img.shape[0]
    th = max(1, h // 360)
    fs = max(0.4, h / 1200)
    boxes = record.get("boxes", [])
    track_ids = record.get("track_ids") or [-1] * len(boxes)
    for (x1, y1, x2, y2, c, _), tid in zip(boxes, track_ids):
        col = WHITE if c >= conf else GRAY
        label = f"{c:.2f}" if tid < 0 else f"id {tid} {c:.2f}"
        cv2.rectangle(img, (int(x1), int(y1)), (int(x2), int(y2)), col, th)
        cv2.putText(img, label, (int(x1), max(12, int(y1) - 4)), cv2.FONT_HERSHEY_SIMPLEX, fs, col, th)
    markers = record.get("markers")
    if markers:
        for quad in markers["corners"]:
            cv2.polylines(img, [np.asarray(quad, np.int32).reshape(-1, 1, 2)], True, YELLOW, th)
    tgt = record.get("target") or {}
    partial = _partial_boxes(record.get("boxes", []), tgt, conf)
    for x1, y1, x2, y2, c in partial:  # confident boxes on the target that do not match it (IoU < 0.5)
        cv2.rectangle(img, (int(x1), int(y1)), (int(x2), int(y2)), ORANGE, th)
        cv2.putText(img, f"partial {c:.2f}", (int(x1), max(12, int(y1) - 4)), cv2.FONT_HERSHEY_SIMPLEX, fs, ORANGE, th)
    if not tgt.get("present"):
        verdict, col = "no target in view", GRAY
    elif tgt.get("conf", 0.0) >= conf:
        verdict, col = f"DETECTED {tgt['conf']:.2f}", RED
    else:
        verdict, col = f"HIDDEN (best {tgt.get('conf', 0.0):.2f} < {conf:g})", GREEN
        if partial:
            verdict += f"; {len(partial)} partial box{'es' if len(partial) > 1 else ''} (IoU < 0.5) up to {max(p[4] for p in partial):.2f}"
    if tgt.get("present") and tgt.get("box"):
        x1, y1, x2, y2 = (int(v) for v in tgt["box"])
        cv2.rectangle(img, (x1, y1), (x2, y2), col, 2 * th)
    pose = record.get("pose")
    text = verdict + (f" | {pose['distance_m']:.2f} m, {pose['angle_deg']:.0f} deg" if pose else "")
    if tgt.get("track_id") is not None:
        text += f" | track {tgt['track_id']}"
    text += f" | frame {record.get('frame')}"
    (tw, tht), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fs * 1.2, th)
    cv2.rectangle(img, (0, 0), (tw + 16, tht + base + 16), (0, 0, 0), -1)
    cv2.putText(img, text, (8, tht + 8), cv2.FONT_HERSHEY_SIMPLEX, fs * 1.2, col, th, cv2.LINE_AA)
    return img


class VideoSink:
    """Annotated output (RGB frames): an MP4 for videos (``mp4v``), or a folder of JPEGs for photos."""

    def __init__(self, path: str | Path, fps: float, photos: bool = False) -> None:
        self.path = Path(path)
        self.photos = photos
        self._video = None if photos else VideoWriter(self.path, fps)
        self.count = 0

    def write(self, image_rgb: np.ndarray, name: str | None = None) -> None:
        if self._video is not None:
            self._video.write(image_rgb)
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(self.path / (Path(name or f"{self.count:06d}").stem + ".jpg")),
                        cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
        self.count += 1

    def close(self) -> None:
        if self._video is not None:
            self._video.close()

    def __enter__(self) -> "VideoSink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
