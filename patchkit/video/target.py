"""Which person wears the patch, frame by frame.

Three references, as the user chooses:

* :class:`MarkerReference`: the person box (of the target class, at any scored confidence) that
  contains the ArUco markers printed around the patch. A frame without markers has no target in
  view (counted separately, never as a success).
* :class:`EveryPersonReference`: the user states the target is in view in every frame; the frame's
  target confidence is the highest target-class confidence in it.
* :class:`BoxReference`: a box in the first frame, followed by associating it frame to frame with
  the detection of highest IoU. While the person is undetected the last box is kept (the camera
  and the person are assumed to move little), so a hidden person still counts as in view.

Each returns a :class:`TargetState` per frame: whether the target is in view, its box, and its
confidence (0 when no detection covers it). "Detected at threshold t" is ``conf >= t``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from patchkit.detections import Detections
from patchkit.errors import PatchkitError
from patchkit.metrics.ap import box_iou_numpy
from patchkit.video.markers import MarkerObservation


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

    def __call__(self, dets: Detections, markers: MarkerObservation | None) -> TargetState:
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
        if not ok.any():
            return TargetState(True, hull, 0.0)
        # the most confident covering box: any person box over the patch means "detected"
        k = int(np.flatnonzero(ok)[np.argmax(conf[ok])])
        return TargetState(True, boxes[k].tolist(), float(conf[k]))


class EveryPersonReference:
    """Every frame has the target in view; its confidence is the frame's best target-class box."""

    name = "every"

    def __call__(self, dets: Detections, markers: MarkerObservation | None = None) -> TargetState:
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

    def __call__(self, dets: Detections, markers: MarkerObservation | None = None) -> TargetState:
        boxes, conf = _boxes_conf(dets)
        if len(boxes):
            iou = box_iou_numpy(self.box[None], boxes)[0]
            cand = np.flatnonzero(iou >= self.min_iou)
            if len(cand):
                k = int(cand[np.argmax(iou[cand])])
                self.box = boxes[k].copy()
                return TargetState(True, boxes[k].tolist(), float(conf[k]))
        return TargetState(True, self.box.tolist(), 0.0)


def parse_box(text: str) -> tuple[float, float, float, float]:
    """``"x1,y1,x2,y2"`` -> floats; a clear error otherwise."""
    try:
        vals = tuple(float(v) for v in text.replace(" ", "").split(","))
    except ValueError as exc:
        raise PatchkitError(f"--box {text!r}: expected four numbers x1,y1,x2,y2") from exc
    if len(vals) != 4:
        raise PatchkitError(f"--box {text!r}: expected four numbers x1,y1,x2,y2")
    return vals  # type: ignore[return-value]
