"""Frame sources: a video file, a folder of photos, a single photo, or a live camera.

Decoding streams with OpenCV in a background thread into a small bounded queue, so memory stays
flat however long the video, and decoding overlaps inference. Frames come out as RGB uint8
``(H, W, 3)`` arrays with their index and time.

Bad input never raises mid-stream for one bad frame or file: problems that make a source
unusable (missing file, not a video, zero decodable frames) raise :class:`PatchkitError` naming
the file when the source is opened; problems found while reading (a truncated video, a non-image
in a photo folder, a variable frame rate) are appended to :attr:`FrameSource.warnings`, logged,
and reading goes on.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from patchkit.errors import PatchkitError
from patchkit.io import IMAGE_SUFFIXES, read_image

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts"}


@dataclass
class Frame:
    """One decoded frame.

    Attributes:
        index: 0-based position in the source (decode order; photo order for folders).
        time: seconds from the start (container timestamps when present), ``None`` for photos.
        image: ``(H, W, 3)`` uint8 RGB.
        name: the photo's file name, ``None`` for video frames.
        extra: results of the source's ``on_decode`` hook (e.g. ``"markers"``), computed in the
            decode thread.
    """

    index: int
    time: float | None
    image: np.ndarray
    name: str | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class VideoInfo:
    """What is known about a source before decoding it.

    Attributes:
        path: the file, folder, or ``camera:N``.
        kind: ``"video"``, ``"photos"`` or ``"camera"``.
        width, height: pixels of the first frame.
        fps: nominal frames per second (0 for photos; camera's reported value).
        frame_count: frames announced by the container (photos: image files; camera: 0 = unknown).
    """

    path: str
    kind: str
    width: int
    height: int
    fps: float
    frame_count: int

    def to_dict(self) -> dict:
        return {"path": self.path, "kind": self.kind, "width": self.width, "height": self.height,
                "fps": self.fps, "frame_count": self.frame_count}


@dataclass
class FrameSource:
    """An opened source; iterate it for :class:`Frame` objects (once).

    Use :func:`open_source` to build one. ``warnings`` collects one-line messages naming the file.
    ``on_decode``, when set, is called with every frame in the decode thread (OpenCV work there,
    such as marker detection, overlaps the detector's forward pass on the main thread).
    """

    info: VideoInfo
    warnings: list[str] = field(default_factory=list)
    prefetch: int = 16
    on_decode: Callable[[Frame], None] | None = None
    _cap: cv2.VideoCapture | None = None
    _first: np.ndarray | None = None
    _files: list[Path] | None = None
    frames_read: int = 0

    # -- iteration -------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Frame]:
        if self.info.kind == "photos":
            yield from self._iter_photos()
            return
        q: queue.Queue = queue.Queue(maxsize=max(1, self.prefetch))
        stop = threading.Event()
        done = object()

        def put(item) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def reader() -> None:
            try:
                for fr in self._iter_capture():
                    if self.on_decode is not None:
                        self.on_decode(fr)
                    if not put(fr):
                        return
            except BaseException as exc:  # forwarded to the consumer
                put(exc)
            put(done)

        thread = threading.Thread(target=reader, name="patchkit-decode", daemon=True)
        thread.start()
        try:
            while True:
                item = q.get()
                if item is done:
                    break
                if isinstance(item, BaseException):
                    raise item
                self.frames_read += 1
                yield item
        finally:
            stop.set()
            thread.join(timeout=5)
            self.close()

    def _warn(self, message: str) -> None:
        line = f"{self.info.path}: {message}"
        self.warnings.append(line)
        log.warning(line)

    def _iter_capture(self) -> Iterator[Frame]:
        cap, first = self._cap, self._first
        assert cap is not None and first is not None
        fps = self.info.fps if self.info.fps > 0 else 0.0
        index, stamps = 0, []
        bgr = first
        while bgr is not None:
            msec = float(cap.get(cv2.CAP_PROP_POS_MSEC)) if self.info.kind == "video" else -1.0
            if self.info.kind == "video" and (msec > 0 or index == 0):
                t = max(msec, 0.0) / 1000.0  # container timestamp of the frame just decoded
            else:
                t = index / fps if fps else None
            stamps.append(t)
            if bgr.ndim == 2:
                rgb = cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
            else:
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            yield Frame(index=index, time=t, image=rgb)
            index += 1
            ok, bgr = cap.read()
            if not ok:
                bgr = None
        n = self.info.frame_count
        if self.info.kind == "video" and n > 0 and index < n - max(2, int(0.01 * n)):
            self._warn(f"decoding stopped after {index} of {n} frames (truncated or corrupt video); "
                       "the frames read were scored")
        if self.info.kind == "video" and len(stamps) > 10 and all(s is not None for s in stamps):
            d = np.diff(np.asarray(stamps, dtype=np.float64))
            if d.size and d.mean() > 0 and d.std() / d.mean() > 0.1:
                self._warn(f"variable frame rate (frame intervals {d.min() * 1e3:.1f}-{d.max() * 1e3:.1f} ms); "
                           "frame times come from the container timestamps")

    def _iter_photos(self) -> Iterator[Frame]:
        index = 0
        for f in self._files or []:
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                self._warn(f"skipping {f.name}: not an image file")
                continue
            try:
                rgb = read_image(f)
            except PatchkitError as exc:
                self._warn(f"skipping {f.name}: {str(exc).split(': ', 1)[-1]}")
                continue
            self.frames_read += 1
            fr = Frame(index=index, time=None, image=rgb, name=f.name)
            if self.on_decode is not None:
                self.on_decode(fr)
            yield fr
            index += 1

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def open_source(spec: str | Path | int, prefetch: int = 16) -> FrameSource:
    """Open a video file, a photo folder, a single photo, or a camera (an integer index or
    ``"camera:N"``). Raises :class:`PatchkitError` naming the file when nothing can be read."""
    if isinstance(spec, int) or (isinstance(spec, str) and (spec.isdigit() or spec.startswith("camera:"))):
        return _open_camera(int(str(spec).split(":")[-1]), prefetch)
    path = Path(spec)
    if path.is_dir():
        return _open_photos(path, prefetch)
    if not path.exists():
        raise PatchkitError("file not found", path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        rgb = read_image(path)
        src = FrameSource(VideoInfo(str(path), "photos", rgb.shape[1], rgb.shape[0], 0.0, 1), prefetch=prefetch)
        src._files = [path]
        return src
    return _open_video(path, prefetch)


def _open_video(path: Path, prefetch: int) -> FrameSource:
    if path.stat().st_size == 0:
        raise PatchkitError("empty file (zero bytes), no frames to score", path)
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise PatchkitError("cannot open as a video (not a video, corrupt, or an unsupported container/codec)", path)
    ok, bgr = cap.read()
    if not ok or bgr is None:
        cap.release()
        raise PatchkitError("no frame could be decoded (zero frames, corrupt data or an unsupported codec)", path)
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    info = VideoInfo(str(path), "video", bgr.shape[1], bgr.shape[0], fps if np.isfinite(fps) else 0.0, max(count, 0))
    src = FrameSource(info, prefetch=prefetch, _cap=cap, _first=bgr)
    if not (0 < info.fps < 1000):
        src._warn(f"frame rate unknown ({fps}); frame times use the container timestamps or are left empty")
    return src


def _open_camera(index: int, prefetch: int) -> FrameSource:
    cap = cv2.VideoCapture(index)
    if not cap.isOpened():
        cap.release()
        raise PatchkitError(f"cannot open camera {index}", f"camera:{index}")
    ok, bgr = cap.read()
    if not ok or bgr is None:
        cap.release()
        raise PatchkitError(f"camera {index} returned no frame", f"camera:{index}")
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    info = VideoInfo(f"camera:{index}", "camera", bgr.shape[1], bgr.shape[0], fps, 0)
    return FrameSource(info, prefetch=min(prefetch, 2), _cap=cap, _first=bgr)


def _open_photos(folder: Path, prefetch: int) -> FrameSource:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    if not images:
        raise PatchkitError("no image files in this folder (expected .jpg, .png, ...)", folder)
    first = None
    for p in images:  # size of the first readable image, for the record
        try:
            first = read_image(p)
            break
        except PatchkitError:
            continue
    if first is None:
        raise PatchkitError("none of the image files in this folder can be read", folder)
    info = VideoInfo(str(folder), "photos", first.shape[1], first.shape[0], 0.0, len(images))
    src = FrameSource(info, prefetch=prefetch)
    src._files = files
    return src
