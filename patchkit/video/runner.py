"""The whole ``patchkit score`` run: every input, the control, sinks, summary and report.

Bad inputs are reported (one line naming the file) and skipped; the good ones are scored. Per-frame
records are appended to ``OUT/frames.jsonl`` and flushed as they come; ``resume=True`` skips the
frames already there (decoding them again, which is cheap, but not re-running the detector).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from patchkit.errors import PatchkitError
from patchkit.io import atomic_write_json
from patchkit.markers import MarkerSpec
from patchkit.video.report import write_report
from patchkit.video.scoring import ScoreOptions, score_source, threshold_key
from patchkit.video.sinks import JsonlSink, VideoSink, annotate, read_jsonl
from patchkit.video.source import Frame, FrameSource, open_source
from patchkit.video.summary import (
    DEFAULT_ANGLE_BINS_DEG,
    DEFAULT_DISTANCE_BINS_M,
    BootstrapConfig,
    asr_vs_control,
    pooled,
    strip_private,
    summarize_video,
)
from patchkit.video.track_metrics import track_metrics

log = logging.getLogger(__name__)

SUMMARY_KEYS = ("video", "role", "frame", "time", "target", "detected", "pose")


@dataclass
class ScoreRunConfig:
    """Outputs and behaviour of a run (the scoring itself is :class:`ScoreOptions`).

    Attributes:
        out_dir: folder for ``frames.jsonl``, ``summary.json``, plots, report, annotated videos.
        annotate: write ``<stem>_annotated.mp4`` (photos: a folder of JPEGs) per input.
        resume: keep ``frames.jsonl`` and skip frames already scored.
        show: live window with the annotated frames (``q`` stops).
        plots: write the PNG plots (the markdown report is always written).
        progress: tqdm bars (frames/s).
        bootstrap: CI settings.
        distance_bins, angle_bins: pose bin edges (m, degrees).
        fps: frame rate of photo folders (frames per second; frame time = position / fps seconds),
            ``None``: photo times stay empty. Videos and live sources keep their own times.
    """

    out_dir: str | Path = "runs/score"
    annotate: bool = True
    resume: bool = False
    show: bool = False
    plots: bool = True
    progress: bool = True
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    distance_bins: Sequence[float] = DEFAULT_DISTANCE_BINS_M
    angle_bins: Sequence[float] = DEFAULT_ANGLE_BINS_DEG
    fps: float | None = None


def score_inputs(
    inputs: Sequence[str],
    detector: torch.nn.Module,
    options: ScoreOptions,
    make_reference: Callable[[str], object],
    markers: MarkerSpec | None = None,
    control: Sequence[str] = (),
    config: ScoreRunConfig | None = None,
    meta: dict | None = None,
) -> dict:
    """Score test inputs and control inputs; write the outputs; return the summary dict
    (the ``--json`` content). ``make_reference(path)`` gives a fresh reference
    (:mod:`patchkit.video.target`) for each input. Raises :class:`PatchkitError` only when no
    input could be scored."""
    cfg = config or ScoreRunConfig()
    run = _ScoreRun(cfg, options)
    t0 = time.perf_counter()
    with JsonlSink(run.jsonl, append=cfg.resume) as sink:
        for role, paths in (("test", inputs), ("control", control)):
            for path in paths:
                if run.stop:
                    break
                run.score(path, role, sink, detector, make_reference, markers)
    if cfg.show:
        import cv2

        cv2.destroyAllWindows()
    if run.interrupted and not run.summaries:  # Ctrl-C before any frame was scored: nothing to report
        raise KeyboardInterrupt
    result = finish_run(run.out, cfg, options, run.summaries, run.per_video, run.fps_of, run.warnings, run.failed,
                        run.frames_scored, time.perf_counter() - t0, run.interrupted, meta)
    if run.interrupted:
        raise KeyboardInterrupt
    return result


class _ScoreRun:
    """The state of one :func:`score_inputs` run, scored input by input: the frames already in
    ``frames.jsonl`` (resume), the records and summaries so far, warnings and failures, and whether
    to stop (``q`` in the live window, or Ctrl-C)."""

    def __init__(self, cfg: ScoreRunConfig, options: ScoreOptions) -> None:
        self.cfg = cfg
        self.options = options
        self.out = Path(cfg.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.keys = [threshold_key(t) for t in options.all_thresholds()]
        self.conf_key = threshold_key(options.conf)
        self.jsonl = self.out / "frames.jsonl"
        self.done: dict[tuple[str, str], set[int]] = {}  # frame indices already scored, by (path, role)
        self.kept: dict[tuple[str, str], list[dict]] = {}  # their records' SUMMARY_KEYS
        self.replay: dict[tuple[str, str], dict[int, list]] = {}  # their boxes, replayed through a tracker
        if cfg.resume:
            for r in read_jsonl(self.jsonl):
                self.done.setdefault((r["video"], r["role"]), set()).add(r["frame"])
                self.kept.setdefault((r["video"], r["role"]), []).append({k: r.get(k) for k in SUMMARY_KEYS})
                self.replay.setdefault((r["video"], r["role"]), {})[r["frame"]] = r.get("boxes", [])
        self.warnings: list[str] = []
        self.failed: list[dict] = []
        self.summaries: list[dict] = []
        self.per_video: dict[tuple[str, str], list[dict]] = {}
        self.first_size: tuple[int, int] | None = None
        self.fps_of: dict[str, float] = {}
        self.frames_scored = 0
        self.stop = False
        self.interrupted = False

    def score(self, path: str, role: str, sink: JsonlSink, detector: torch.nn.Module,
              make_reference: Callable[[str], object], markers: MarkerSpec | None) -> None:
        """Score one input into ``sink`` and summarise it; a bad input becomes a warning and a failure."""
        try:
            src = open_source(path, fps=self.cfg.fps)
        except PatchkitError as exc:
            log.warning("%s", exc)
            self._fail(path, role, str(exc))
            return
        self._check_resolution(src, role)
        self.fps_of[src.info.path] = src.info.fps
        key = (src.info.path, role)
        recs = self.per_video.setdefault(key, list(self.kept.get(key, [])))
        vsink = self._video_sink(src, role)
        bar = tqdm(total=src.info.frame_count or None, unit="frame", desc=Path(src.info.path).name[:30],
                   disable=not self.cfg.progress, initial=len(self.done.get(key, ())), dynamic_ncols=True, leave=True)
        try:
            skip = self.replay.get(key) if self.options.tracker else self.done.get(key)
            for rec in score_source(src, detector, self.options, make_reference(src.info.path), markers, role,
                                    skip, self._frame_callback(sink, vsink, bar)):
                recs.append({k: rec.get(k) for k in SUMMARY_KEYS})
                self.frames_scored += 1
                if self.stop:
                    break
        except KeyboardInterrupt:
            # keep what was scored: summarise it below, then re-raise
            self.interrupted = self.stop = True
            self.warnings.append(f"{src.info.path}: interrupted after {len(recs)} frames")
        finally:
            bar.close()
            src.close()
            if vsink is not None:
                vsink.close()
        self.warnings.extend(src.warnings)
        if not recs:
            self._fail(path, role, f"{src.info.path}: no frame was scored")
            return
        self.summaries.append(summarize_video(recs, self.keys, self.conf_key, src.info.fps, self.cfg.bootstrap,
                                              self.cfg.distance_bins, self.cfg.angle_bins))

    def _fail(self, path: str, role: str, error: str) -> None:
        self.warnings.append(error)
        self.failed.append({"path": str(path), "role": role, "error": error})

    def _check_resolution(self, src: FrameSource, role: str) -> None:
        """Warn when a control input's resolution differs from the first input's."""
        size = (src.info.width, src.info.height)
        if self.first_size is None:
            self.first_size = size
        elif role == "control" and size != self.first_size:
            w = (f"{src.info.path}: control resolution {size[0]}x{size[1]} differs from the test "
                 f"input's {self.first_size[0]}x{self.first_size[1]}; detection rates are not directly comparable")
            log.warning("%s", w)
            self.warnings.append(w)

    def _video_sink(self, src: FrameSource, role: str) -> VideoSink | None:
        """``<stem>_<role>_annotated.mp4`` (photos: a folder), or ``None`` without ``annotate``."""
        if not self.cfg.annotate:
            return None
        stem = Path(src.info.path).stem or "camera"
        photos = src.info.kind == "photos"
        return VideoSink(self.out / (f"{stem}_{role}_annotated" + ("" if photos else ".mp4")), src.info.fps, photos)

    def _frame_callback(self, sink: JsonlSink, vsink: VideoSink | None, bar: tqdm) -> Callable[[dict, Frame], None]:
        """Per scored frame: write its record, advance the bar, annotate it for the video and the window."""
        cfg, conf = self.cfg, self.options.conf

        def on_frame(record: dict, frame: Frame) -> None:
            sink.write(record)
            bar.update(1)
            if vsink is not None or cfg.show:
                img = annotate(frame.image, record, conf)
                if vsink is not None:
                    vsink.write(img, frame.name)
                if cfg.show and _show(img):
                    self.stop = True

        return on_frame


def _show(img: np.ndarray) -> bool:
    """Show an RGB frame in the live window; ``True`` when ``q`` was pressed."""
    import cv2

    cv2.imshow("patchkit score", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return cv2.waitKey(1) & 0xFF == ord("q")


def finish_run(out: Path, cfg: ScoreRunConfig, options: ScoreOptions, summaries: list[dict],
               per_video: dict[tuple[str, str], list[dict]], fps_of: dict[str, float], warnings: list[str],
               failed: list[dict], frames_scored: int, seconds: float, interrupted: bool = False,
               meta: dict | None = None) -> dict:
    """Pool, compare with the control, write ``summary.json`` and the report; returns the
    summary (with ``files``). ``summaries`` are :func:`summarize_video` results, ``per_video``
    their records keyed by ``(path, role)``."""
    keys = [threshold_key(t) for t in options.all_thresholds()]
    conf_key = threshold_key(options.conf)
    if not summaries:
        raise PatchkitError("no input could be scored: " + "; ".join(f["error"] for f in failed))
    result = {
        **(meta or {}),
        "thresholds": keys,
        "conf": options.conf,
        "tracker": options.tracker,
        "videos": [],
        "asr_vs_control": {},
        "asr_vs_control_ci95": {},
        "frames_jsonl": str(out / "frames.jsonl"),
        "interrupted": interrupted,
        "frames_scored": frames_scored,
        "seconds": round(seconds, 3),
        "frames_per_second": round(frames_scored / seconds, 3) if seconds > 0 else None,
        "warnings": warnings,
        "failed": failed,
    }
    fps = max((fps_of.get(s["path"], 0.0) for s in summaries), default=0.0)
    pools = {}
    for role in ("test", "control"):  # every video of a role as one (rates over all their frames)
        group = [s for s in summaries if s["role"] == role]
        if group:
            pools[role] = pooled(group, [per_video[(s["path"], role)] for s in group], keys, conf_key, fps,
                                 cfg.bootstrap)
    result["pooled"] = {role: {k: v for k, v in strip_private(p).items() if k not in ("path", "role")}
                        | {"videos": sum(s["role"] == role for s in summaries)} for role, p in pools.items()}
    tests = [s for s in summaries if s["role"] == "test"]
    if "test" in pools and "control" in pools:
        pt, pc = pools["test"], pools["control"]
        result["asr_vs_control"], result["asr_vs_control_ci95"] = asr_vs_control(pt, pc, keys)
        for s in tests:
            s["asr_vs_control"], s["asr_vs_control_ci95"] = asr_vs_control(s, pc, keys)
    if options.tracker:
        add_tracking(result, summaries, per_video, fps_of, options)
    result["videos"] = [strip_private(s) for s in summaries]
    atomic_write_json(out / "summary.json", result)
    result["files"] = write_report(out, result, per_video, options.conf, conf_key, plots=cfg.plots)
    return result


def add_tracking(result: dict, summaries: list[dict], per_video: dict[tuple[str, str], list[dict]],
                 fps_of: dict[str, float], options: ScoreOptions) -> None:
    """Track-level numbers (:func:`~patchkit.video.track_metrics.track_metrics`) into each video's
    summary (``tracking``) and, per role, pooled over its videos into ``result["pooled"][role]``."""
    for s in summaries:
        fps = fps_of.get(s["path"], 0.0)
        s["tracking"] = track_metrics(per_video[(s["path"], s["role"])], fps, options.alarm_frames_for(fps))
    for role, pool in result["pooled"].items():
        group = [s["tracking"] for s in summaries if s["role"] == role and s["tracking"]["frames_in_view"]]
        if not group:
            continue
        pool["tracking"] = {
            "videos": len(group),
            "alarms": sum(g["alarm"] for g in group),
            "alarm_rate": round(sum(g["alarm"] for g in group) / len(group), 6),
            "tracked_fraction": _mean_of(group, "tracked_fraction"),
            "fragments": _mean_of(group, "fragments"),
            "first_track_s": _mean_of(group, "first_track_s"),
            "longest_untracked_s": _mean_of(group, "longest_untracked_s"),
            "alarm_delay_s": _mean_of(group, "alarm_delay_s"),
        }


def _mean_of(group: list[dict], key: str) -> float | None:
    """Mean of ``key`` over the dicts where it is set; ``None`` when it is set nowhere."""
    values = [g[key] for g in group if g[key] is not None]
    return round(float(np.mean(values)), 6) if values else None
