"""Score a frame source against a detector: batched inference, one record per frame.

:func:`score_source` streams frames from a :class:`~patchkit.video.source.FrameSource`, batches
consecutive frames of equal size, runs ``detector.detect`` once per batch (under ``no_grad``, not
``inference_mode``, so a model shared with an attack keeps working), finds the markers and the
patched person in each frame, and yields a JSON-ready record per frame::

    {"video": "...", "role": "test", "frame": 12, "time": 0.4, "name": null,
     "boxes": [[x1, y1, x2, y2, conf, cls], ...],          # target class, conf >= min threshold
     "target": {"present": true, "box": [...], "conf": 0.31},
     "detected": {"0.1": true, "0.25": true, "0.5": false},  # null when the target is not in view
     "markers": {"ids": [...], "corners": [...]} | null,
     "pose": {"distance_m": 2.1, "angle_deg": 18.0, "reproj_px": 0.4, "n_markers": 4} | null}

With a tracker (``ScoreOptions.tracker``), every record also has ``"track_ids"`` (one per box,
``-1`` where the box is in no confirmed track) and ``target.track_id`` (the track on the target:
the tracked box of highest IoU >= 0.5 with the target's box, else ``null``); see
:mod:`patchkit.video.tracking`.

Memory is flat: at most one batch and the decode queue are held.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Protocol

import numpy as np
import torch

from patchkit.detections import Detections
from patchkit.device import module_device
from patchkit.metrics.ap import box_iou_numpy
from patchkit.markers import MarkerDetector, MarkerSpec, PinholeCamera, estimate_pose
from patchkit.video.source import Frame, FrameSource
from patchkit.video.tracking import FrameTracker

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9)


class Reference(Protocol):
    name: str

    def __call__(self, dets: Detections, markers, index: int = 0): ...


@dataclass
class ScoreOptions:
    """How to score.

    Attributes:
        conf: the headline confidence threshold in [0, 1] (always among ``thresholds``).
        thresholds: confidence thresholds at which "detected" is recorded; detection runs at the lowest.
        iou: NMS IoU threshold.
        target_class: class id of the target (person = 0 for COCO models).
        batch: frames per detector call.
        hfov_deg: camera horizontal field of view, degrees, used for the pose when ``focal_px`` is unset.
        focal_px: camera focal length in pixels (overrides ``hfov_deg``).
        max_det: most boxes kept per frame.
        workers: inference threads, each running whole batches with one intra-op thread
            (``None``: the process's torch thread count on CPU, 1 on GPU). Batches in flight run
            in parallel without OpenMP barriers, which stays fast when other processes share
            the cores; results keep decode order. The torch thread count is restored afterwards.
        tracker: ``bytetrack`` | ``botsort`` (ultralytics' own, on these detections) or ``None``.
        alarm_frames: frames a track must live on the target before the alarm fires; ``None``
            is one second of video (the source's frame rate, rounded; 1 for photos).
    """

    conf: float = 0.25
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    iou: float = 0.45
    target_class: int = 0
    batch: int = 4
    hfov_deg: float = 65.0
    focal_px: float | None = None
    max_det: int = 300
    workers: int | None = None
    tracker: str | None = None
    alarm_frames: int | None = None

    def alarm_frames_for(self, fps: float) -> int:
        """``alarm_frames``, or one second of video at ``fps`` (at least 1 frame)."""
        if self.alarm_frames is not None:
            return int(self.alarm_frames)
        return max(1, int(round(fps))) if fps and fps > 0 else 1

    def all_thresholds(self) -> list[float]:
        return sorted({round(float(t), 6) for t in (*self.thresholds, self.conf)})


def threshold_key(t: float) -> str:
    """JSON key of a threshold: ``0.25 -> "0.25"``, ``0.1 -> "0.1"``."""
    return f"{float(t):g}"


def _batches(frames: Iterator[Frame], size: int) -> Iterator[list[Frame]]:
    batch: list[Frame] = []
    for fr in frames:
        if batch and fr.image.shape != batch[0].image.shape:
            yield batch
            batch = []
        batch.append(fr)
        if len(batch) >= size:  # at once: a live source that stalls still gets its last frame scored
            yield batch
            batch = []
    if batch:
        yield batch


def frames_to_tensor(images: list[np.ndarray], device: torch.device) -> torch.Tensor:
    """RGB uint8 ``(H, W, 3)`` frames -> ``(B, 3, H, W)`` float in [0, 1] (channels-last memory)."""
    x = torch.from_numpy(np.stack(images)).to(device, non_blocking=True)
    return x.permute(0, 3, 1, 2).float().div_(255.0)


def detect_frames(
    detector: torch.nn.Module,
    images: list[np.ndarray],
    conf: float,
    iou: float,
    classes: list[int] | None,
    max_det: int = 300,
) -> list[Detections]:
    """Detections of equal-size RGB uint8 frames in one batched forward pass.

    Frames are letterboxed in uint8 with OpenCV exactly as ultralytics' / yolov5's predict do
    (:func:`patchkit.detectors.letterbox.letterbox_uint8`), so the network sees the same input
    as theirs; boxes come back in frame pixels. Detectors without a letterboxed forward (e.g. a
    test stand-in) get the float batch through ``detect``.
    """
    from patchkit.detectors.base import Detector
    from patchkit.detectors.letterbox import boxes_to_input, letterbox_uint8

    device = module_device(detector)
    native = isinstance(detector, Detector) and type(detector).forward_letterboxed is not Detector.forward_letterboxed
    if not native:
        return detector.detect(frames_to_tensor(images, device), conf=conf, iou=iou, classes=classes,
                               max_det=max_det)
    params = detector.letterbox_params(images[0].shape[0], images[0].shape[1])
    boxed = images if params.is_identity else [letterbox_uint8(im, params) for im in images]
    x = frames_to_tensor(boxed, device)
    dets = detector.postprocess(detector.forward_letterboxed(x), conf, iou, classes, max_det)
    return [Detections(boxes_to_input(d.xyxy, params, clip=True), d.conf, d.cls) for d in dets]


@contextmanager
def inplace_activations(model: torch.nn.Module) -> Iterator[None]:
    """Run element-wise activations (SiLU, ReLU, ...) in place while inside, as ultralytics'
    predict does (about 10% of a CPU forward pass); their ``inplace`` flags are restored on exit,
    so a model shared with an attack (which needs out-of-place activations for backward) is left
    as it was. Only for forward passes without gradients."""
    kinds = (torch.nn.SiLU, torch.nn.ReLU, torch.nn.ReLU6, torch.nn.LeakyReLU, torch.nn.Hardswish,
             torch.nn.Hardsigmoid, torch.nn.Mish)
    mods = [m for m in model.modules() if isinstance(m, kinds) and hasattr(m, "inplace")]
    old = [m.inplace for m in mods]
    for m in mods:
        m.inplace = True
    try:
        yield
    finally:
        for m, v in zip(mods, old):
            m.inplace = v


def _in_order(batches: Iterable[list[Frame]], run: Callable[[list[Frame]], list[Detections]],
              workers: int) -> Iterator[tuple[list[Frame], list[Detections]]]:
    """``(batch, run(batch))`` in input order, with up to ``2 * workers`` batches in flight."""
    if workers <= 1:
        for b in batches:
            yield b, run(b)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="patchkit-infer") as pool:
        pending: deque = deque()
        try:
            for b in batches:
                pending.append((b, pool.submit(run, b)))
                if len(pending) >= 2 * workers:
                    b0, f0 = pending.popleft()
                    yield b0, f0.result()
            while pending:
                b0, f0 = pending.popleft()
                yield b0, f0.result()
        finally:
            for _, f in pending:
                f.cancel()


def score_source(
    source: FrameSource,
    detector: torch.nn.Module,
    options: ScoreOptions,
    reference: Reference,
    markers: MarkerSpec | None = None,
    role: str = "test",
    skip_frames: set[int] | dict[int, list] | None = None,
    on_frame: Callable[[dict, Frame], None] | None = None,
) -> Iterator[dict]:
    """Yield one record per frame (see the module docstring), in decode order.

    Args:
        source: an opened frame source (iterated once).
        detector: a :class:`patchkit.detectors.base.Detector` (``detect(images, conf, iou, classes, max_det)``).
        options: thresholds, batch size, camera.
        reference: which box is the patched person (see :mod:`patchkit.video.target`).
        markers: the printed markers; ``None`` skips marker detection.
        role: ``"test"`` or ``"control"``, copied into every record.
        skip_frames: frame indices already scored (``--resume``): decoded but not scored again.
            With a tracker, pass ``{frame: stored boxes}``: those frames' stored detections are
            replayed through the tracker (no detector call, no record), so track ids go on.
        on_frame: called with each record and its frame (sinks, live display).
    """
    thresholds = options.all_thresholds()
    keys = [threshold_key(t) for t in thresholds]
    tmin = thresholds[0]
    mdet = MarkerDetector(markers) if markers is not None else None
    if mdet is not None:  # in the decode thread, overlapping the forward pass
        source.on_decode = lambda fr: fr.extra.__setitem__("markers", mdet.detect(fr.image))
    path = source.info.path
    frames = iter(source)
    tracker = FrameTracker(options.tracker) if options.tracker else None
    replay = skip_frames if tracker is not None and isinstance(skip_frames, dict) else None
    if replay:
        frames = (_mark_replay(f, replay) for f in frames)
    elif skip_frames:
        frames = (f for f in frames if f.index not in skip_frames)
    on_cpu = module_device(detector).type == "cpu"
    workers = options.workers if options.workers else (torch.get_num_threads() if on_cpu else 1)
    intra = torch.get_num_threads()

    def run(batch: list[Frame]) -> list[Detections]:
        if workers > 1:
            torch.set_num_threads(1)
        todo = [f for f in batch if "replay" not in f.extra]
        with torch.no_grad():  # grad mode is per thread
            found = iter(detect_frames(detector, [f.image for f in todo], tmin, options.iou, [options.target_class],
                                       options.max_det) if todo else [])
        return [f.extra["replay"] if "replay" in f.extra else next(found) for f in batch]

    try:
        with inplace_activations(detector):
            yield from _records(_in_order(_batches(frames, max(1, options.batch)), run, workers), mdet, markers,
                                options, reference, path, role, keys, thresholds, on_frame, tracker)
    finally:
        if torch.get_num_threads() != intra:
            torch.set_num_threads(intra)


def _mark_replay(frame: Frame, replay: dict[int, list]) -> Frame:
    """Attach the stored detections of an already-scored frame (``extra["replay"]``)."""
    if frame.index in replay:
        rows = torch.as_tensor(replay[frame.index], dtype=torch.float32).reshape(-1, 6)
        frame.extra["replay"] = Detections(rows[:, :4], rows[:, 4], rows[:, 5].long())
    return frame


def target_track_id(target_box: list[float] | None, boxes: np.ndarray, ids: np.ndarray, min_iou: float = 0.5) -> int | None:
    """The track on the target: the tracked box (``ids >= 0``) of highest IoU >= ``min_iou`` with
    ``target_box`` (frame pixels), else ``None``."""
    tracked = ids >= 0
    if target_box is None or not tracked.any():
        return None
    iou = box_iou_numpy(np.asarray([target_box], np.float64), boxes[tracked, :4].astype(np.float64))[0]
    k = int(np.argmax(iou))
    return int(ids[tracked][k]) if iou[k] >= min_iou else None


def _records(batches, mdet, markers, options, reference, path, role, keys, thresholds, on_frame,
             tracker: FrameTracker | None = None) -> Iterator[dict]:
    camera: PinholeCamera | None = None
    for batch, dets in batches:
        for fr, d in zip(batch, dets):
            d = d.to("cpu")
            boxes = torch.cat([d.xyxy.float(), d.conf.float()[:, None], d.cls.float()[:, None]], 1)
            if "replay" in fr.extra:  # scored before (--resume): only keeps the tracker going
                tracker.update(boxes.numpy(), fr.image)
                continue
            obs = fr.extra.get("markers") if mdet is not None else None
            pose = None
            if obs is not None and len(obs) and markers is not None:
                h, w = fr.image.shape[:2]
                if camera is None or (camera.cx, camera.cy) != (w / 2.0, h / 2.0):
                    camera = (PinholeCamera.from_focal(w, h, options.focal_px) if options.focal_px
                              else PinholeCamera.from_hfov(w, h, options.hfov_deg))
                pose = estimate_pose(obs, markers, camera)
            state = reference(d, obs, fr.index)
            record = {
                "video": path,
                "role": role,
                "frame": fr.index,
                "time": None if fr.time is None else round(fr.time, 4),
                "name": fr.name,
                "boxes": [[round(v, 2) for v in b[:4]] + [round(b[4], 5), int(b[5])] for b in boxes.tolist()],
                "target": {"present": state.present,
                           "box": None if state.box is None else [round(v, 2) for v in state.box],
                           "conf": round(state.conf, 5)},
                "detected": ({k: bool(state.conf >= np.float32(t)) for k, t in zip(keys, thresholds)}
                             if state.present else None),
                "markers": obs.to_dict() if obs is not None and len(obs) else None,
                "pose": pose.to_dict() if pose is not None else None,
            }
            if tracker is not None:
                rows = boxes.numpy()
                ids = tracker.update(rows, fr.image)
                record["track_ids"] = ids.tolist()
                record["target"]["track_id"] = target_track_id(state.box if state.present else None, rows, ids)
            if on_frame is not None:
                on_frame(record, fr)
            yield record
