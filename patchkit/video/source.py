"""Frame sources: a video file, a folder of photos, a single photo, a live camera or a stream URL.

Decoding streams with OpenCV in a background thread into a small bounded queue, so memory stays
flat however long the video, and decoding overlaps inference. Frames come out as RGB uint8
``(H, W, 3)`` arrays with their index and time.

Bad input never raises mid-stream for one bad frame or file: problems that make a source
unusable (missing file, not a video, zero decodable frames) raise :class:`PatchkitError` naming
the file when the source is opened; problems found while reading (a truncated video, a non-image
in a photo folder, a variable frame rate) are appended to :attr:`FrameSource.warnings`, logged,
and reading goes on.

Live sources are a camera index (``0``, ``camera:0``) or a stream URL (``rtsp://``, ``http(s)://``,
``udp://``, ...): their length is unknown, and a camera or stream that cannot be opened is a one-line
:class:`PatchkitError` naming it (what OpenCV and FFmpeg print while trying is kept off the terminal
and its gist goes into the message). A password in a URL is shown as ``***``.
"""

from __future__ import annotations

import glob
import logging
import math
import os
import queue
import re
import struct
import sys
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import unquote, urlsplit, urlunsplit

import cv2
import numpy as np

from patchkit.errors import PatchkitError
from patchkit.io import IMAGE_SUFFIXES, read_image

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts"}

#: seconds a stream URL may take to open, and to deliver a frame, before it counts as gone
STREAM_OPEN_TIMEOUT_S = 10.0
STREAM_READ_TIMEOUT_S = 30.0

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass
class Frame:
    """One decoded frame.

    Attributes:
        index: 0-based position in the source (decode order; photo order for folders).
        time: seconds from the start (container timestamps when present); for photos ``None``, or
            with a frame rate (``open_source(..., fps=F)``) the image's position among the folder's
            image files (sorted by name) / F, so an unreadable image keeps its slot.
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
        path: the file, folder, ``camera:N``, or the stream URL (password shown as ``***``).
        kind: ``"video"``, ``"photos"`` or ``"camera"`` (a live camera or stream URL).
        width, height: pixels of the first frame.
        fps: nominal frames per second (photos: 0, or the frame rate given; camera / stream: the
            reported value, 0 when unknown).
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
    _photo_fps: float | None = None
    _stop: threading.Event | None = None
    frames_read: int = 0

    # -- iteration -------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Frame]:
        if self.info.kind == "photos":
            yield from self._iter_photos()
            return
        q: queue.Queue = queue.Queue(maxsize=max(1, self.prefetch))
        stop = self._stop = threading.Event()
        done = object()
        # the capture is released by whichever side finishes last: releasing it while the reader
        # is inside cap.read() (a stalled stream, up to STREAM_READ_TIMEOUT_S) is unsafe
        lock = threading.Lock()
        state = {"reader_done": False, "orphaned": False}

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
            finally:
                with lock:
                    state["reader_done"] = True
                    if state["orphaned"]:
                        self.close()
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
            with lock:
                if state["reader_done"]:
                    self.close()
                else:  # still inside cap.read(): the reader releases the capture when it returns
                    state["orphaned"] = True

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
            at = f", at {stamps[-1]:.2f} s" if stamps and stamps[-1] is not None else ""
            self._warn(f"decoding stopped after {index} of {n} frames{at} (truncated or corrupt video); "
                       "the frames read were scored")
        if self.info.kind == "camera" and not (self._stop is not None and self._stop.is_set()):
            self._warn(f"the live source stopped sending frames after {index} frames (disconnected, or "
                       "no frame in time); the frames read were scored")
        if self.info.kind == "video" and len(stamps) > 10 and all(s is not None for s in stamps):
            d = np.diff(np.asarray(stamps, dtype=np.float64))
            if d.size and d.mean() > 0 and d.std() / d.mean() > 0.1:
                self._warn(f"variable frame rate (frame intervals {d.min() * 1e3:.1f}-{d.max() * 1e3:.1f} ms); "
                           "frame times come from the container timestamps")

    def _iter_photos(self) -> Iterator[Frame]:
        index, slot = 0, -1
        fps = self._photo_fps
        for f in self._files or []:
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                self._warn(f"skipping {f.name}: not an image file")
                continue
            slot += 1  # position among the image files: its time, when a frame rate is given
            try:
                rgb = read_image(f)
            except PatchkitError as exc:
                self._warn(f"skipping {f.name}: {str(exc).split(': ', 1)[-1]}")
                continue
            self.frames_read += 1
            fr = Frame(index=index, time=slot / fps if fps else None, image=rgb, name=f.name)
            if self.on_decode is not None:
                self.on_decode(fr)
            yield fr
            index += 1

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def is_stream_url(spec: str | Path | int) -> bool:
    """``True`` for a stream URL (``rtsp://``, ``http(s)://``, ``udp://``, ... but not ``file://``)."""
    m = _URL.match(str(spec)) if isinstance(spec, str) else None
    return bool(m) and m.group(1).lower() != "file"


def is_live(spec: str | Path | int) -> bool:
    """``True`` for a live source: a camera index (``0``, ``camera:0``) or a stream URL."""
    if isinstance(spec, bool):
        return False
    if isinstance(spec, int):
        return True
    text = str(spec) if isinstance(spec, str) else ""
    return text.isdigit() or text.startswith("camera:") or is_stream_url(text)


def redact_url(url: str) -> str:
    """The URL with its password, if any, replaced by ``***`` (for reports and messages)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.netloc.rsplit("@", 1)[-1]
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    except ValueError:
        return url


def open_source(spec: str | Path | int, prefetch: int = 16, fps: float | None = None) -> FrameSource:
    """Open a video file, a photo folder, a single photo, a camera (an integer index or
    ``"camera:N"``) or a stream URL (``rtsp://...``, ``http(s)://...``, ``udp://...``).

    Args:
        spec: what to open.
        prefetch: frames decoded ahead (live sources: at most 2, to stay current).
        fps: frame rate of a photo folder (frames per second): frame times become the image's
            position among the folder's image files (sorted by name) / ``fps`` seconds. ``None``
            (default) leaves photo times empty; videos and live sources keep their own times.

    Raises :class:`PatchkitError` naming the file, camera or URL when nothing can be read.
    """
    if fps is not None and not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise PatchkitError(f"frame rate must be > 0 frames per second, got {fps}", spec)
    if isinstance(spec, bool):
        raise PatchkitError("not a video, folder, camera index or URL", spec)
    if isinstance(spec, int) or (isinstance(spec, str) and (spec.isdigit() or spec.startswith("camera:"))):
        index = str(spec).split(":", 1)[-1]
        if not index.isdigit():
            raise PatchkitError("expected camera:N with N a camera index (0, 1, ...)", spec)
        return _open_camera(int(index), prefetch)
    if is_stream_url(str(spec)):
        return _open_stream(str(spec), prefetch)
    if isinstance(spec, str) and _URL.match(spec):  # file://
        spec = unquote(urlsplit(spec).path)
    path = Path(spec)
    if path.is_dir():
        return _open_photos(path, prefetch, fps)
    if not path.exists():
        raise PatchkitError("file not found", path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        rgb = read_image(path)
        src = FrameSource(VideoInfo(str(path), "photos", rgb.shape[1], rgb.shape[0], float(fps or 0.0), 1),
                          prefetch=prefetch, _photo_fps=fps)
        src._files = [path]
        return src
    return _open_video(path, prefetch)


def probe_live(spec: str | int) -> None:
    """Open a live source (camera index or stream URL), read one frame and close it: a dead camera
    or stream is a one-line :class:`PatchkitError` before anything slow (loading a detector) starts."""
    open_source(spec, prefetch=1).close()


def _open_video(path: Path, prefetch: int) -> FrameSource:
    if path.stat().st_size == 0:
        raise PatchkitError("empty file (zero bytes), no frames to score", path)
    with _native_stderr() as noise:  # FFmpeg's complaints about a bad file: the one-line error says it
        cap = cv2.VideoCapture(str(path))
        opened = cap.isOpened()
        ok, bgr = cap.read() if opened else (False, None)
    if not opened:
        cap.release()
        raise PatchkitError(_mp4_problem(path) or
                            "cannot open as a video (not a video, corrupt, or an unsupported container/codec)", path)
    if not ok or bgr is None:
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        cap.release()
        raise PatchkitError(_mp4_problem(path) or
                            ("the video has no frames (an empty recording)" if count == 0 else
                             "no frame could be decoded (zero frames, corrupt data or an unsupported codec)"), path)
    _replay(noise)
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    info = VideoInfo(str(path), "video", bgr.shape[1], bgr.shape[0], fps if np.isfinite(fps) else 0.0, max(count, 0))
    src = FrameSource(info, prefetch=prefetch, _cap=cap, _first=bgr)
    if not (0 < info.fps < 1000):
        src._warn(f"frame rate unknown ({fps}); frame times use the container timestamps or are left empty")
    return src


def _mp4_problem(path: Path) -> str | None:
    """Why an MP4 / MOV / 3GP file (ISO boxes) has no decodable frame, when its boxes tell; else ``None``."""
    try:
        size = path.stat().st_size
        top: dict[bytes, tuple[int, int]] = {}
        with open(path, "rb") as f:
            off = 0
            while off + 8 <= size and len(top) < 64:
                f.seek(off)
                hdr = f.read(16)
                n, kind = struct.unpack(">I4s", hdr[:8])
                if n == 1 and len(hdr) == 16:
                    n = struct.unpack(">Q", hdr[8:16])[0]
                elif n == 0:
                    n = size - off
                if n < 8 or (not top and kind != b"ftyp"):
                    return None  # not an ISO box file
                top.setdefault(kind, (off, n))
                off += n
            if b"ftyp" not in top:
                return None
            if b"moov" not in top:
                return ("the MP4 index ('moov' box, written when a recording is stopped) is missing: the file was "
                        "cut off before it was finalised, so no frame can be located (a recovery tool such as "
                        "untrunc may rebuild it)")
            mo, mn = top[b"moov"]
            if mn > 64 << 20 or mo + mn > size:
                return None
            f.seek(mo)
            moov = f.read(mn)
    except (OSError, struct.error):
        return None
    samples = [0]

    def walk(b: bytes, off: int, end: int) -> None:
        while off + 8 <= end:
            n, kind = struct.unpack(">I4s", b[off:off + 8])
            if n < 8:
                return
            if kind in (b"trak", b"mdia", b"minf", b"stbl"):
                walk(b, off + 8, min(off + n, end))
            elif kind == b"stsz" and off + 20 <= end:
                samples[0] += struct.unpack(">I", b[off + 16:off + 20])[0]
            off += n

    walk(moov, 8, len(moov))
    if samples[0] == 0:
        return "the video has no frames (an empty recording: its MP4 index lists no samples)"
    return None


@contextmanager
def _native_stderr() -> Iterator[list[str]]:
    """Collect what native code (OpenCV, FFmpeg) writes to stderr (file descriptor 2) while inside;
    the lines are in the yielded list once the block exits. Without a usable descriptor 2 nothing
    is collected and the output goes where it went."""
    lines: list[str] = []
    tmp, saved = None, None
    try:
        if sys.stderr is not None:
            sys.stderr.flush()
        tmp = tempfile.TemporaryFile()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        pass
    if tmp is None or saved is None:
        if tmp is not None:
            tmp.close()
        yield lines
        return
    try:
        os.dup2(tmp.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            tmp.seek(0)
            lines.extend(tmp.read().decode("utf-8", "replace").splitlines())
    finally:
        os.close(saved)
        tmp.close()


def _replay(lines: list[str]) -> None:
    """Put what :func:`_native_stderr` collected back on stderr (the open went well)."""
    if lines and sys.stderr is not None:
        sys.stderr.write("\n".join(lines) + "\n")


def _stream_reason(lines: list[str]) -> str:
    """The gist of why FFmpeg could not open a stream, from what it printed."""
    if any("timeout" in ln.lower() and "triggered" in ln.lower() for ln in lines):
        return f"no answer within {STREAM_OPEN_TIMEOUT_S:g} s"
    said = [m.group(1).strip() for ln in lines if (m := re.match(r"^\[[^\]]+ @ 0x[0-9a-fA-F]+\]\s*(.+)$", ln))]
    if said:
        return re.sub(r"\?timeout=\d+", "", said[-1]).rstrip(".")
    return "unreachable, refused, or not a video stream"


def _camera_reason(index: int) -> str:
    """Why camera ``index`` could not be opened, as far as the system tells."""
    if sys.platform.startswith("linux") and os.path.isdir("/dev"):
        found = sorted(glob.glob("/dev/video[0-9]*"), key=lambda d: int(re.sub(r"\D", "", d) or 0))
        if not os.path.exists(f"/dev/video{index}"):
            return f"there is no /dev/video{index} (" + (f"cameras: {', '.join(found)}" if found else
                                                         "no camera is connected") + ")"
        return "it may be in use by another program, or access is denied (is the user in the 'video' group?)"
    return "no camera at this index, or it is in use by another program"


def _open_camera(index: int, prefetch: int) -> FrameSource:
    return _open_live(lambda: cv2.VideoCapture(index), f"camera:{index}", prefetch,
                      lambda noise: f"cannot open camera {index}: {_camera_reason(index)}",
                      f"camera {index} returned no frame")


def _open_stream(url: str, prefetch: int) -> FrameSource:
    """A stream URL as a live source (unknown length), opened within :data:`STREAM_OPEN_TIMEOUT_S`."""
    label = redact_url(url)
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(STREAM_OPEN_TIMEOUT_S * 1000),
              cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(STREAM_READ_TIMEOUT_S * 1000)]

    def capture() -> cv2.VideoCapture:
        try:
            return cv2.VideoCapture(url, cv2.CAP_ANY, params)
        except (cv2.error, TypeError):  # an OpenCV without the params API
            return cv2.VideoCapture(url)

    return _open_live(capture, label, prefetch, lambda noise: f"cannot open the stream: {_stream_reason(noise)}",
                      f"the stream opened but sent no frame within {STREAM_READ_TIMEOUT_S:g} s")


def _open_live(make_capture: Callable[[], cv2.VideoCapture], label: str, prefetch: int,
               cannot_open: Callable[[list[str]], str], no_frame: str) -> FrameSource:
    """Open a camera or stream and read its first frame, OpenCV's own stderr captured: a source
    that cannot be opened is one line (``cannot_open(captured noise)``), else the noise is replayed."""
    with _native_stderr() as noise:
        cap = make_capture()
        opened = cap.isOpened()
        ok, bgr = cap.read() if opened else (False, None)
    if not opened:
        cap.release()
        raise PatchkitError(cannot_open(noise), label)
    _replay(noise)
    return _live_source(cap, bgr if ok else None, label, prefetch, no_frame)


def _live_source(cap: cv2.VideoCapture, first: np.ndarray | None, label: str, prefetch: int,
                 no_frame: str) -> FrameSource:
    """A camera or stream whose first read gave ``first`` (``None``: the error ``no_frame``)."""
    if first is None:
        cap.release()
        raise PatchkitError(no_frame, label)
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    info = VideoInfo(label, "camera", first.shape[1], first.shape[0], fps if 0 < fps < 1000 else 0.0, 0)
    return FrameSource(info, prefetch=min(prefetch, 2), _cap=cap, _first=first)


def _open_photos(folder: Path, prefetch: int, fps: float | None = None) -> FrameSource:
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
    info = VideoInfo(str(folder), "photos", first.shape[1], first.shape[0], float(fps or 0.0), len(images))
    src = FrameSource(info, prefetch=prefetch, _photo_fps=fps)
    src._files = files
    return src
