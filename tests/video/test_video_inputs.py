"""The inputs people have (issue 14): photo folders with a frame rate, cameras and stream URLs,
Ctrl-C on a live source, and bad video files (truncated, no frames, variable frame rate).

Network: only 127.0.0.1 (a closed port, and a listening socket that never answers)."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import threading
import time

import cv2
import numpy as np
import pytest

from patchkit.errors import PatchkitError
from patchkit.io import write_video
from patchkit.video import BootstrapConfig, EveryPersonReference, ScoreOptions, ScoreRunConfig, score_inputs
from patchkit.video import source as source_mod
from patchkit.video.sinks import read_jsonl
from patchkit.video.source import is_live, is_stream_url, open_source, redact_url


# -- helpers ---------------------------------------------------------------------------------
def person_frame(k: int, conf: float = 0.6, size: tuple[int, int] = (160, 120)) -> np.ndarray:
    """A small RGB frame with one "person" for the stand-in ColorDetector (confidence ``conf``)."""
    w, h = size
    rng = np.random.default_rng(k)
    img = np.clip(rng.normal(110, 25, (h, w, 3)), 0, 255).astype(np.uint8)  # noise: frames do not compress to nothing
    img[20:100, 40:90] = (235, int(round(conf * 255)), 40)
    return img


def _config(out, **kw) -> ScoreRunConfig:
    return ScoreRunConfig(out_dir=out, progress=False, annotate=False, plots=False,
                          bootstrap=BootstrapConfig(resamples=20), **kw)


def _score(inputs, detector, out, live: bool = False, **kw) -> dict:
    """Score with the stand-in detector; ``live``: one frame per call, one inference thread (as the CLI
    does for a camera or stream, so every frame is recorded as soon as it is scored)."""
    opts = ScoreOptions(thresholds=(0.25,), batch=1, workers=1) if live else ScoreOptions(thresholds=(0.25,), batch=2)
    return score_inputs([str(i) for i in inputs], detector, opts, lambda _: EveryPersonReference(), None,
                        config=_config(out, **kw))


def _boxes(data: bytes | bytearray, off: int, end: int):
    while off + 8 <= end:
        size, kind = struct.unpack(">I4s", data[off:off + 8])
        yield off, size, kind
        off += size


def mp4_moov_first(src, dst) -> None:
    """Rewrite an MP4 with its index (``moov``) before the data (as "fast start" files and many
    cameras have it), shifting the chunk offsets: cut short, such a file keeps its index."""
    b = bytes(open(src, "rb").read())
    top = {kind: (off, size) for off, size, kind in _boxes(b, 0, len(b))}
    mo, ms = top[b"moov"]
    moov = bytearray(b[mo:mo + ms])

    def shift(off: int, end: int) -> None:
        for o, s, kind in _boxes(moov, off, end):
            if kind in (b"trak", b"mdia", b"minf", b"stbl"):
                shift(o + 8, o + s)
            elif kind == b"stco":
                for k in range(struct.unpack(">I", moov[o + 12:o + 16])[0]):
                    p = o + 16 + 4 * k
                    moov[p:p + 4] = struct.pack(">I", struct.unpack(">I", moov[p:p + 4])[0] + ms)

    shift(8, ms)
    fo, fs = top[b"ftyp"]
    open(dst, "wb").write(b[:fo + fs] + bytes(moov) + b[fo + fs:mo] + b[mo + ms:])


def mp4_with_frame_durations(src, dst, deltas: list[int]) -> None:
    """Rewrite an MP4's time-to-sample table (``stts``) with one duration per frame (in the track's
    time units): a real variable-frame-rate file. The index is at the end, so no offset moves."""
    b = bytearray(open(src, "rb").read())

    def find(off: int, end: int, chain: list[int]) -> list[int] | None:
        for o, s, kind in _boxes(b, off, end):
            if kind == b"stts":
                return chain + [o]
            if kind in (b"moov", b"trak", b"mdia", b"minf", b"stbl"):
                found = find(o + 8, o + s, chain + [o])
                if found:
                    return found
        return None

    chain = find(0, len(b), [])
    assert chain is not None
    stts = chain[-1]
    old = struct.unpack(">I", b[stts:stts + 4])[0]
    body = struct.pack(">I4sII", 16 + 8 * len(deltas), b"stts", 0, len(deltas)) + b"".join(
        struct.pack(">II", 1, d) for d in deltas)
    for parent in chain[:-1]:
        size = struct.unpack(">I", b[parent:parent + 4])[0]
        b[parent:parent + 4] = struct.pack(">I", size + len(body) - old)
    b[stts:stts + old] = body
    open(dst, "wb").write(bytes(b))


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connections are refused at once
    return port


class FakeCamera:
    """Stands in for ``cv2.VideoCapture`` on a live source: endless BGR frames (``limit`` of them
    when set). ``on_read(k)`` runs before frame ``k`` is returned, in the decode thread."""

    limit: int | None = None
    on_read = None
    opened: list["FakeCamera"] = []

    def __init__(self, *args, **kwargs) -> None:
        self.k = 0
        self.released = False
        FakeCamera.opened.append(self)

    def isOpened(self) -> bool:
        return True

    def read(self):
        if FakeCamera.on_read is not None and FakeCamera.on_read(self.k) is False:
            return False, None
        if FakeCamera.limit is not None and self.k >= FakeCamera.limit:
            return False, None
        frame = cv2.cvtColor(person_frame(self.k), cv2.COLOR_RGB2BGR)
        self.k += 1
        return True, frame

    def get(self, prop) -> float:
        return 25.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self) -> None:
        self.released = True


@pytest.fixture
def fake_camera(monkeypatch):
    FakeCamera.limit, FakeCamera.on_read, FakeCamera.opened = None, None, []
    monkeypatch.setattr(source_mod.cv2, "VideoCapture", FakeCamera)
    yield FakeCamera
    FakeCamera.limit, FakeCamera.on_read, FakeCamera.opened = None, None, []


@pytest.fixture
def cli(monkeypatch, color_detector):
    """``patchkit score`` in-process with the stand-in detector; returns main(args) -> exit status."""
    from patchkit.cli.main import main
    from patchkit.video.parallel import DetectorSpec

    made = {}

    def build(self):
        made["detector"] = color_detector(interrupt_after=made.get("interrupt_after"))
        return made["detector"]

    monkeypatch.setattr(DetectorSpec, "build", build)

    def run(args: list[str], interrupt_after: int | None = None) -> int:
        made["interrupt_after"] = interrupt_after
        return main(["score", *args, "--detector", "stand-in", "--reference", "every", "--quiet", "--no-plots",
                     "--bootstrap", "20"])

    run.made = made
    return run


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert "Traceback" not in err
    return lines[0]


# -- a folder of frames with --fps --------------------------------------------------------------
def _frames_folder(root, n=5, broken_at: int | None = None):
    folder = root / "frames"
    folder.mkdir()
    for k in reversed(range(n)):  # written in reverse: the order comes from the names
        if k == broken_at:
            (folder / f"f{k:04d}.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut")
        else:
            cv2.imwrite(str(folder / f"f{k:04d}.png"), cv2.cvtColor(person_frame(k), cv2.COLOR_RGB2BGR))
    (folder / "notes.txt").write_text("not a frame")
    return folder


def test_a_folder_of_frames_with_fps_gets_times_from_the_sorted_names(tmp_path):
    folder = _frames_folder(tmp_path, n=6, broken_at=3)
    src = open_source(folder, fps=10.0)
    frames = list(src)
    assert src.info.fps == 10.0 and src.info.kind == "photos"
    assert [f.name for f in frames] == ["f0000.png", "f0001.png", "f0002.png", "f0004.png", "f0005.png"]
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    # the unreadable f0003 keeps its slot: the frames after it keep their capture times
    assert [f.time for f in frames] == pytest.approx([0.0, 0.1, 0.2, 0.4, 0.5])
    assert any("f0003.jpg" in w for w in src.warnings)
    # without a frame rate nothing changes: no times
    plain = open_source(folder)
    assert plain.info.fps == 0.0 and all(f.time is None for f in plain)
    single = open_source(folder / "f0002.png", fps=5.0)
    assert [f.time for f in single] == [0.0]


@pytest.mark.parametrize("bad", [0, -2.5, float("nan")])
def test_open_source_refuses_a_frame_rate_that_is_not_positive(tmp_path, bad):
    folder = _frames_folder(tmp_path, n=2)
    with pytest.raises(PatchkitError, match="frame rate must be > 0"):
        open_source(folder, fps=bad)


def test_cli_scores_a_frame_folder_with_fps(tmp_path, cli, capsys):
    folder = _frames_folder(tmp_path, n=4)
    out = tmp_path / "out"
    assert cli([str(folder), "--fps", "4", "--out", str(out), "--no-video", "--json", str(tmp_path / "s.json")]) == 0
    recs = list(read_jsonl(out / "frames.jsonl"))
    assert [r["frame"] for r in recs] == [0, 1, 2, 3]
    assert [r["time"] for r in recs] == [0.0, 0.25, 0.5, 0.75]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["videos"][0]["frames"] == 4


@pytest.mark.parametrize("value", ["0", "-1", "nan"])
def test_cli_refuses_fps_below_or_at_zero_in_one_line(tmp_path, cli, capsys, value):
    folder = _frames_folder(tmp_path, n=2)
    code = cli([str(folder), "--fps", value, "--out", str(tmp_path / "o")])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and "--fps must be > 0" in line
    assert not (tmp_path / "o").exists()


def test_cli_without_any_input_says_so(tmp_path, cli, capsys):
    code = cli(["--out", str(tmp_path / "o")])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and "no input" in line and "--source" in line


# -- cameras and stream URLs --------------------------------------------------------------------
def test_live_source_specs_are_recognised():
    assert is_live(0) and is_live("3") and is_live("camera:1") and is_live("rtsp://10.0.0.2/stream")
    assert is_live("http://127.0.0.1:8080/video.mjpg") and is_live("udp://@:1234")
    assert not is_live("walk.mp4") and not is_live("frames/") and not is_live("file:///tmp/walk.mp4")
    assert is_stream_url("RTSP://h/x") and not is_stream_url("C:\\videos\\walk.mp4")
    assert redact_url("rtsp://admin:hunter2@10.0.0.2:554/live") == "rtsp://admin:***@10.0.0.2:554/live"
    assert redact_url("rtsp://10.0.0.2/live") == "rtsp://10.0.0.2/live"


def test_a_file_url_is_the_file(tmp_path):
    video = tmp_path / "v.mp4"
    write_video(video, (person_frame(k) for k in range(3)), fps=5.0)
    src = open_source(video.as_uri())
    assert src.info.kind == "video" and len(list(src)) == 3


def test_a_camera_that_does_not_exist_is_one_line_naming_it(tmp_path, cli, capfd):
    if os.path.exists("/dev/video99"):
        pytest.skip("this machine has a /dev/video99")
    with pytest.raises(PatchkitError) as exc:
        open_source(99)
    assert str(exc.value).startswith("camera:99: cannot open camera 99")
    with pytest.raises(PatchkitError, match="camera:N"):
        open_source("camera:front")
    capfd.readouterr()
    code = cli(["--source", "99", "--out", str(tmp_path / "o")])
    err = capfd.readouterr().err  # file descriptor 2: OpenCV's own warnings are not on the terminal either
    line = _one_error_line(err)
    assert code == 2 and line.startswith("patchkit score: error: camera:99: cannot open camera 99")
    assert "detector" not in cli.made  # refused before the detector was loaded
    assert not (tmp_path / "o").exists()
    # positional, as before
    assert cli(["camera:99", "--out", str(tmp_path / "o")]) == 2


def test_an_unreachable_stream_url_is_one_line_naming_it(tmp_path, cli, capfd):
    url = f"rtsp://viewer:secret@127.0.0.1:{_closed_port()}/none"
    t0 = time.monotonic()
    with pytest.raises(PatchkitError) as exc:
        open_source(url)
    msg = str(exc.value)
    assert msg.startswith("rtsp://viewer:***@127.0.0.1:") and "cannot open the stream" in msg
    assert "refused" in msg.lower() and "secret" not in msg
    capfd.readouterr()
    http = f"http://127.0.0.1:{_closed_port()}/cam.mjpg"
    code = cli(["--source", http, "--out", str(tmp_path / "o")])
    line = _one_error_line(capfd.readouterr().err)
    assert code == 2 and line.startswith(f"patchkit score: error: {http}: cannot open the stream")
    assert time.monotonic() - t0 < 20


def test_a_stream_that_never_answers_times_out(monkeypatch):
    monkeypatch.setattr(source_mod, "STREAM_OPEN_TIMEOUT_S", 1.0)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)  # accepts connections (the kernel does) but never says a word
    try:
        t0 = time.monotonic()
        with pytest.raises(PatchkitError, match="cannot open the stream: no answer within 1 s"):
            open_source(f"rtsp://127.0.0.1:{server.getsockname()[1]}/silent")
        assert time.monotonic() - t0 < 15
    finally:
        server.close()


def test_a_live_source_that_stops_keeps_its_frames_and_says_so(tmp_path, fake_camera, color_detector):
    fake_camera.limit = 5
    result = _score(["rtsp://127.0.0.1/cam"], color_detector(), tmp_path / "out", live=True)
    v = result["videos"][0]
    assert v["path"] == "rtsp://127.0.0.1/cam" and v["frames"] == 5
    assert len(list(read_jsonl(tmp_path / "out" / "frames.jsonl"))) == 5
    assert [r["time"] for r in list(read_jsonl(tmp_path / "out" / "frames.jsonl"))] == [0.0, 0.04, 0.08, 0.12, 0.16]
    assert any("stopped sending frames after 5 frames" in w for w in result["warnings"])
    assert all(c.released for c in fake_camera.opened)


def test_ctrl_c_on_a_live_source_writes_the_report_for_what_was_scored(tmp_path, cli, fake_camera, capsys):
    out = tmp_path / "out"
    code = cli(["--source", "0", "--out", str(out), "--json", str(tmp_path / "s.json")], interrupt_after=7)
    assert code == 130 and "interrupted" in capsys.readouterr().err
    assert cli.made["detector"].calls == 7  # one frame per detector call on a live source
    recs = list(read_jsonl(out / "frames.jsonl"))
    assert [r["frame"] for r in recs] == list(range(7))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["frames_scored"] == 7
    assert summary["videos"][0]["path"] == "camera:0" and summary["videos"][0]["frames"] == 7
    assert any("interrupted after 7 frames" in w for w in summary["warnings"])
    assert (out / "report.md").is_file()
    assert json.loads((tmp_path / "s.json").read_text())["videos"][0]["frames"] == 7
    assert all(c.released for c in fake_camera.opened)


def test_a_real_sigint_while_waiting_for_a_stalled_stream_keeps_the_frames(tmp_path, fake_camera, color_detector):
    """Ctrl-C (a real SIGINT) comes while the main thread waits for the next frame of a stalled stream."""
    out = tmp_path / "out"
    n = 4  # frames the stream sends before it stalls

    def on_read(k: int):
        if k < n:
            return None
        if k == n:  # wait until the scored frames are on disk and the main thread waits for more
            deadline, lines = time.monotonic() + 10, -1
            while time.monotonic() < deadline:
                now = len(list(read_jsonl(out / "frames.jsonl")))
                if now == lines and now >= n:
                    break
                lines = now
                time.sleep(0.25)
            os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1.0)  # stalled: the read returns late, after the interrupt
        return False

    fake_camera.on_read = on_read
    assert threading.current_thread() is threading.main_thread()
    with pytest.raises(KeyboardInterrupt):
        _score(["rtsp://127.0.0.1/cam"], color_detector(), out, live=True)
    summary = json.loads((out / "summary.json").read_text())
    recs = list(read_jsonl(out / "frames.jsonl"))
    k = summary["videos"][0]["frames"]
    # every frame the stream sent before it stalled was scored and kept (a full batch goes at once)
    assert summary["interrupted"] is True and k == n and [r["frame"] for r in recs] == list(range(k))
    assert any(f"interrupted after {k} frames" in w for w in summary["warnings"])
    assert not any("stopped sending" in w for w in summary["warnings"])  # it was the user, not the stream
    assert (out / "report.md").is_file()
    deadline = time.monotonic() + 5
    while not all(c.released for c in fake_camera.opened) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(c.released for c in fake_camera.opened)  # released once the stalled read returned


class _MjpegStream:
    """A live MJPEG stream over HTTP on 127.0.0.1 (as many IP cameras serve), ~25 frames/s, endless."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's API
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                k = 0
                try:
                    while True:
                        jpg = cv2.imencode(".jpg", cv2.cvtColor(person_frame(k), cv2.COLOR_RGB2BGR))[1].tobytes()
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                         % len(jpg) + jpg + b"\r\n")
                        k += 1
                        time.sleep(0.04)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cam.mjpg"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_real_stream_url_is_read_as_a_live_source():
    stream = _MjpegStream()
    try:
        src = open_source(stream.url)
        assert src.info.kind == "camera" and src.info.frame_count == 0 and src.info.path == stream.url
        frames = []
        for fr in src:
            frames.append(fr)
            if len(frames) == 4:
                break
        assert [f.index for f in frames] == [0, 1, 2, 3] and frames[0].image.shape == (120, 160, 3)
    finally:
        stream.close()


def test_ctrl_c_on_patchkit_score_of_a_live_stream_writes_the_report(tmp_path):
    """End to end: ``patchkit score --source URL`` in its own process, stopped with a real SIGINT."""
    import subprocess
    import sys

    stream = _MjpegStream()
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "patchkit", "score", "--source", stream.url, "--detector", "yolov8n.yaml",
           "--target", "0", "--reference", "every", "--imgsz", "64", "--out", str(out), "--quiet", "--no-plots",
           "--no-video",
           "--bootstrap", "20", "--json", str(tmp_path / "s.json")]
    env = dict(os.environ, YOLO_OFFLINE="1", MPLBACKEND="Agg")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while len(list(read_jsonl(out / "frames.jsonl"))) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        stream.close()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted; results so far are kept" in stderr
    summary = json.loads((out / "summary.json").read_text())
    recs = list(read_jsonl(out / "frames.jsonl"))
    assert summary["interrupted"] is True and summary["videos"][0]["path"] == stream.url
    assert summary["videos"][0]["frames"] == len(recs) >= 3 and [r["frame"] for r in recs] == list(range(len(recs)))
    assert (out / "report.md").is_file() and json.loads((tmp_path / "s.json").read_text())["interrupted"] is True


def test_cli_refuses_jobs_with_a_live_source(tmp_path, cli, capsys):
    code = cli(["--source", "rtsp://127.0.0.1/x", "--jobs", "2", "--out", str(tmp_path / "o")])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and "rtsp://127.0.0.1/x is live" in line


# -- bad video files -------------------------------------------------------------------------------
def test_a_truncated_mp4_scores_what_decodes_and_says_where_it_stopped(tmp_path, color_detector):
    full = tmp_path / "full.mp4"
    write_video(full, (person_frame(k) for k in range(30)), fps=10.0)
    # index first (fast start), then cut in half: the frames before the cut decode
    cut = tmp_path / "cut.mp4"
    mp4_moov_first(full, tmp_path / "faststart.mp4")
    data = (tmp_path / "faststart.mp4").read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    # index last (as OpenCV and most cameras write it), cut: the index is gone, nothing can be located
    no_index = tmp_path / "no_index.mp4"
    no_index.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    good = tmp_path / "good.mp4"
    write_video(good, (person_frame(k) for k in range(4)), fps=10.0)

    result = _score([good, cut, no_index], color_detector(), tmp_path / "out")
    scored = {os.path.basename(v["path"]): v for v in result["videos"]}
    k = scored["cut.mp4"]["frames"]
    assert scored["good.mp4"]["frames"] == 4 and 0 < k < 30
    stop = [w for w in result["warnings"] if "cut.mp4" in w and "decoding stopped" in w]
    assert len(stop) == 1 and f"after {k} of 30 frames, at {(k - 1) / 10:.2f} s" in stop[0] and "truncated" in stop[0]
    recs = [r for r in list(read_jsonl(tmp_path / "out" / "frames.jsonl")) if r["video"].endswith("cut.mp4")]
    assert [r["frame"] for r in recs] == list(range(k))  # every frame that decoded is kept
    failed = {os.path.basename(f["path"]): f["error"] for f in result["failed"]}
    assert set(failed) == {"no_index.mp4"}
    assert "no_index.mp4" in failed["no_index.mp4"] and "'moov'" in failed["no_index.mp4"]
    assert "\n" not in failed["no_index.mp4"]


def test_videos_with_no_frames_are_named_and_the_run_goes_on(tmp_path, color_detector):
    (tmp_path / "zero_bytes.mp4").write_bytes(b"")
    for name, fourcc in (("empty.mp4", "mp4v"), ("empty.avi", "MJPG")):
        writer = cv2.VideoWriter(str(tmp_path / name), cv2.VideoWriter_fourcc(*fourcc), 10.0, (64, 48))
        assert writer.isOpened()
        writer.release()  # a valid container, zero frames
        assert (tmp_path / name).stat().st_size > 0
    good = tmp_path / "good.mp4"
    write_video(good, (person_frame(k) for k in range(3)), fps=10.0)
    inputs = [tmp_path / "zero_bytes.mp4", tmp_path / "empty.mp4", tmp_path / "empty.avi", good]
    result = _score(inputs, color_detector(), tmp_path / "out")
    failed = {os.path.basename(f["path"]): f["error"] for f in result["failed"]}
    assert set(failed) == {"zero_bytes.mp4", "empty.mp4", "empty.avi"}
    assert "zero bytes" in failed["zero_bytes.mp4"]
    assert "no frames" in failed["empty.mp4"] and "no frames" in failed["empty.avi"]
    assert all(name in e and "\n" not in e for name, e in failed.items())
    assert [v["frames"] for v in result["videos"]] == [3]


def test_cli_on_a_video_with_no_frames_exits_2_without_a_traceback(tmp_path, cli, capsys):
    writer = cv2.VideoWriter(str(tmp_path / "empty.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48))
    writer.release()
    code = cli([str(tmp_path / "empty.mp4"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "empty.mp4: the video has no frames" in err.strip().splitlines()[-1]


def test_a_variable_frame_rate_video_warns_and_times_come_from_the_timestamps(tmp_path, color_detector):
    cfr = tmp_path / "cfr.mp4"
    write_video(cfr, (person_frame(k) for k in range(20)), fps=10.0)
    vfr = tmp_path / "vfr.mp4"
    # the track's time unit is 1/10240 s (OpenCV's MP4 writer at 10 fps): frames last 150 ms and 50 ms in turn
    mp4_with_frame_durations(cfr, vfr, [1536 if k % 2 == 0 else 512 for k in range(20)])
    result = _score([vfr, cfr], color_detector(), tmp_path / "out")
    assert [v["frames"] for v in result["videos"]] == [20, 20]
    vfr_warn = [w for w in result["warnings"] if "variable frame rate" in w]
    assert len(vfr_warn) == 1 and "vfr.mp4" in vfr_warn[0] and "50.0-150.0 ms" in vfr_warn[0]
    recs = list(read_jsonl(tmp_path / "out" / "frames.jsonl"))
    times = [r["time"] for r in recs if r["video"].endswith("vfr.mp4")]
    expected = np.cumsum([0] + [0.15 if k % 2 == 0 else 0.05 for k in range(19)])
    assert times == pytest.approx(expected, abs=1e-3)  # not frame / 10
    assert [r["time"] for r in recs if r["video"].endswith("cfr.mp4")] == pytest.approx([k / 10 for k in range(20)])


def test_ctrl_c_before_the_first_frame_is_an_interrupt_not_an_error(tmp_path, fake_camera, color_detector, monkeypatch):
    """Nothing scored yet: Ctrl-C still means "interrupted" (exit 130), not "no input could be scored"."""
    import patchkit.video.runner as runner

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
        yield  # a generator, as score_source

    monkeypatch.setattr(runner, "score_source", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _score(["camera:0"], color_detector(), tmp_path / "out", live=True)
