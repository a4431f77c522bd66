"""Which person wears the patch, frame by frame.

Four references, as the user chooses:

* :class:`MarkerReference`: the person box (of the target class, at any scored confidence) that
  contains the ArUco markers printed around the patch. A frame without markers has no target in
  view (counted separately, never as a success).
* :class:`EveryPersonReference`: the user states the target is in view in every frame; the frame's
  target confidence is the highest target-class confidence in it.
* :class:`BoxReference`: a box in the first frame, followed by associating it frame to frame with
  the detection of highest IoU. While the person is undetected the last box is kept (the camera
  and the person are assumed to move little), so a hidden person still counts as in view.
* :class:`KnownBoxesReference`: the target's true box in every frame is known (rendered or
  annotated video, e.g. the JSON that ``patchkit toyworld video`` writes beside its MP4); the
  target is detected when a detection overlaps the true box with IoU >= 0.5.

Each is called with the frame's detections, its markers and the frame index, and returns a
:class:`TargetState` per frame: whether the target is in view, its box, and its
confidence (0 when no detection covers it). "Detected at threshold t" is ``conf >= t``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from patchkit.detections import Detections
from patchkit.errors import PatchkitError
from patchkit.metrics.ap import box_iou_numpy
from patchkit.markers import MarkerObservation


@dataclass
class TargetState:
    """The patched person in one frame.

    Attributes:
        present: the target is in view (markers seen, or asserted by the reference).
        box: ``[x1, y1, x2, y2]`` pixels of the matched detection (or the reference box), or None.
        conf: confidence of the matched detection in [0, 1]; 0 when none matches.
    """

    present: bool
    box: list[float] | None
    conf: float


def _boxes_conf(d: Detections) -> tuple[np.ndarray, np.ndarray]:
    return d.xyxy.detach().cpu().double().numpy().reshape(-1, 4), d.conf.detach().cpu().float().numpy().reshape(-1)


def _most_confident(boxes: np.ndarray, conf: np.ndarray, ok: np.ndarray, fallback: list[float]) -> TargetState:
    """The target in view: the most confident of the ``ok`` boxes, or ``fallback`` with
    confidence 0 when none qualifies."""
    if not ok.any():
        return TargetState(True, fallback, 0.0)
    k = int(np.flatnonzero(ok)[np.argmax(conf[ok])])
    return TargetState(True, boxes[k].tolist(), float(conf[k]))


class MarkerReference:
    """The target is the detection box that contains most of the marker corners.

    Args:
        min_inside: share of the marker corners that must lie inside the (slightly enlarged) box.
        margin: the box is enlarged by this fraction of its width/height on each side (markers
            near the edge of a person box still count).
    """

    name = "markers"

    def __init__(self, min_inside: float = 0.5, margin: float = 0.05) -> None:
        self.min_inside = min_inside
        self.margin = margin

    def __call__(self, dets: Detections, markers: MarkerObservation | None, index: int = 0) -> TargetState:
        if markers is None or len(markers) == 0:
            return TargetState(False, None, 0.0)
        boxes, conf = _boxes_conf(dets)
        pts = markers.points
        hull = [float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())]
        if len(boxes) == 0:
            return TargetState(True, hull, 0.0)
        wh = boxes[:, 2:] - boxes[:, :2]
        lo = boxes[:, None, :2] - self.margin * wh[:, None]
        hi = boxes[:, None, 2:] + self.margin * wh[:, None]
        inside = ((pts[None] >= lo) & (pts[None] <= hi)).all(-1).mean(1)  # (N,)
        ok = inside >= self.min_inside
        # the most confident covering box: any person box over the patch means "detected"
        return _most_confident(boxes, conf, ok, hull)


class EveryPersonReference:
    """Every frame has the target in view; its confidence is the frame's best target-class box."""

    name = "every"

    def __call__(self, dets: Detections, markers: MarkerObservation | None = None, index: int = 0) -> TargetState:
        boxes, conf = _boxes_conf(dets)
        if len(conf) == 0:
            return TargetState(True, None, 0.0)
        k = int(np.argmax(conf))
        return TargetState(True, boxes[k].tolist(), float(conf[k]))


class BoxReference:
    """A first-frame box followed by IoU association (``min_iou``) with the detections.

    Stateful: one instance per video, frames in order.
    """

    name = "box"

    def __init__(self, box: tuple[float, float, float, float] | list[float], min_iou: float = 0.3) -> None:
        box = [float(v) for v in box]
        if len(box) != 4 or not (box[2] > box[0] and box[3] > box[1]):
            raise PatchkitError(f"--box needs x1,y1,x2,y2 with x2 > x1 and y2 > y1, got {box}")
        self.box = np.asarray(box, dtype=np.float64)
        self.min_iou = min_iou

    def __call__(self, dets: Detections, markers: MarkerObservation | None = None, index: int = 0) -> TargetState:
        boxes, conf = _boxes_conf(dets)
        if len(boxes):
            iou = box_iou_numpy(self.box[None], boxes)[0]
            cand = np.flatnonzero(iou >= self.min_iou)
            if len(cand):
                k = int(cand[np.argmax(iou[cand])])
                self.box = boxes[k].copy()
                return TargetState(True, boxes[k].tolist(), float(conf[k]))
        return TargetState(True, self.box.tolist(), 0.0)


class KnownBoxesReference:
    """The target's true box is known in every frame (pixels, xyxy; ``None`` or an empty box: not
    in view). Its confidence is the highest among detections with IoU >= ``min_iou`` with it.

    Args:
        boxes: one true box per frame index.
        min_iou: the detection-to-truth IoU that counts as detecting the target (0.5, as AP50).
    """

    name = "boxes"

    def __init__(self, boxes: Sequence[Sequence[float] | None], min_iou: float = 0.5) -> None:
        self.boxes = [None if b is None or not (b[2] > b[0] and b[3] > b[1]) else np.asarray(b, np.float64)
                      for b in boxes]
        self.min_iou = min_iou

    @classmethod
    def from_json(cls, path: str | Path, min_iou: float = 0.5) -> "KnownBoxesReference":
        """Read ``{"frames": [{"index": i, "person_box": [x1, y1, x2, y2]}, ...]}`` (the file
        ``patchkit toyworld video`` writes beside its MP4); a clear error for anything else."""
        import json

        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            frames = data["frames"]
            n = max(int(f["index"]) for f in frames) + 1 if frames else 0
            boxes: list = [None] * n
            for f in frames:
                b = f.get("person_box")
                boxes[int(f["index"])] = None if b is None else [float(v) for v in b][:4]
        except FileNotFoundError as exc:
            raise PatchkitError("no per-frame boxes file (--reference boxes reads VIDEO.json beside each video)",
                                path) from exc
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise PatchkitError(f"not a per-frame boxes file ({{'frames': [{{'index', 'person_box'}}]}}): {exc}",
                                path) from exc
        return cls(boxes, min_iou)

    def __call__(self, dets: Detections, markers: MarkerObservation | None = None, index: int = 0) -> TargetState:
        truth = self.boxes[index] if 0 <= index < len(self.boxes) else None
        if truth is None:
            return TargetState(False, None, 0.0)
        boxes, conf = _boxes_conf(dets)
        ok = box_iou_numpy(truth[None], boxes)[0] >= self.min_iou if len(boxes) else np.zeros(0, bool)
        return _most_confident(boxes, conf, ok, truth.tolist())


@dataclass(frozen=True)
class ReferenceFactory:
    """A fresh reference for each input path (picklable, so worker processes can use it).

    Attributes:
        kind: ``markers`` | ``every`` | ``box`` (needs ``box``) | ``boxes`` (reads ``VIDEO.json``
            beside each video, see :meth:`KnownBoxesReference.from_json`).
        box: the first-frame box for ``box``, pixels xyxy.
    """

    kind: str = "markers"
    box: tuple[float, float, float, float] | None = None

    def __call__(self, path: str):
        if self.kind == "markers":
            return MarkerReference()
        if self.kind == "every":
            return EveryPersonReference()
        if self.kind == "box":
            if self.box is None:
                raise PatchkitError("--reference box needs --box X1,Y1,X2,Y2 (the target in the first frame)")
            return BoxReference(self.box)
        if self.kind == "boxes":
            return KnownBoxesReference.from_json(Path(path).with_suffix(".json"))
        raise PatchkitError(f"unknown reference {self.kind!r} (markers, every, box or boxes)")


def parse_box(text: str) -> tuple[float, float, float, float]:
    """``"x1,y1,x2,y2"`` -> floats; a clear error otherwise."""
    try:
        vals = tuple(float(v) for v in text.replace(" ", "").split(","))
    except ValueError as exc:
        raise PatchkitError(f"--box {text!r}: expected four numbers x1,y1,x2,y2") from exc
    if len(vals) != 4:
        raise PatchkitError(f"--box {text!r}: expected four numbers x1,y1,x2,y2")
    return vals  # type: ignore[return-value]
