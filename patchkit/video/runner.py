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

import torch
from tqdm import tqdm

from patchkit.errors import PatchkitError
from patchkit.io import atomic_write_json
from patchkit.video.markers import MarkerSpec
from patchkit.video.report import write_report
from patchkit.video.scoring import ScoreOptions, score_source, threshold_key
from patchkit.video.sinks import JsonlSink, VideoSink, annotate, read_jsonl
from patchkit.video.source import open_source
from patchkit.video.summary import (
    DEFAULT_ANGLE_BINS_DEG,
    DEFAULT_DISTANCE_BINS_M,
    BootstrapConfig,
    asr_vs_control,
    pooled,
    strip_private,
    summarize_video,
)

log = logging.getLogger(__name__)

SUMMARY_KEYS = ("video", "role", "frame", "time", "target", "detected", "pose")


@dataclass
class RunConfig:
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


def score_inputs(
    inputs: Sequence[str],
    detector: torch.nn.Module,
    options: ScoreOptions,
    make_reference: Callable[[str], object],
    markers: MarkerSpec | None = None,
    control: Sequence[str] = (),
    config: RunConfig | None = None,
    meta: dict | None = None,
) -> dict:
    """Score test inputs and control inputs; write the outputs; return the summary dict
    (the ``--json`` content). ``make_reference(path)`` gives a fresh reference
    (:mod:`patchkit.video.target`) for each input. Raises :class:`PatchkitError` only when no
    input could be scored."""
    cfg = config or RunConfig()
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keys = [threshold_key(t) for t in options.all_thresholds()]
    conf_key = threshold_key(options.conf)
    jsonl = out / "frames.jsonl"
    done: dict[tuple[str, str], set[int]] = {}
    kept: dict[tuple[str, str], list[dict]] = {}
    if cfg.resume:
        for r in read_jsonl(jsonl):
            done.setdefault((r["video"], r["role"]), set()).add(r["frame"])
            kept.setdefault((r["video"], r["role"]), []).append({k: r.get(k) for k in SUMMARY_KEYS})
    warnings: list[str] = []
    failed: list[dict] = []
    summaries: list[dict] = []
    per_video: dict[tuple[str, str], list[dict]] = {}
    first_size: tuple[int, int] | None = None
    fps_of: dict[str, float] = {}
    t0 = time.perf_counter()
    frames_scored = 0
    stop = False
    interrupted = False
    with JsonlSink(jsonl, append=cfg.resume) as sink:
        for role, paths in (("test", inputs), ("control", control)):
            for path in paths:
                if stop:
                    break
                try:
                    src = open_source(path)
                except PatchkitError as exc:
                    log.warning("%s", exc)
                    warnings.append(str(exc))
                    failed.append({"path": str(path), "role": role, "error": str(exc)})
                    continue
                size = (src.info.width, src.info.height)
                if first_size is None:
                    first_size = size
                elif role == "control" and size != first_size:
                    w = (f"{src.info.path}: control resolution {size[0]}x{size[1]} differs from the test "
                         f"input's {first_size[0]}x{first_size[1]}; detection rates are not directly comparable")
                    log.warning("%s", w)
                    warnings.append(w)
                fps_of[src.info.path] = src.info.fps
                recs = per_video.setdefault((src.info.path, role), list(kept.get((src.info.path, role), [])))
                vsink = None
                if cfg.annotate:
                    stem = Path(src.info.path).stem or "camera"
                    photos = src.info.kind == "photos"
                    vsink = VideoSink(out / (f"{stem}_{role}_annotated" + ("" if photos else ".mp4")), src.info.fps, photos)
                total = src.info.frame_count or None
                bar = tqdm(total=total, unit="frame", desc=Path(src.info.path).name[:30], disable=not cfg.progress,
                           initial=len(done.get((src.info.path, role), ())), dynamic_ncols=True, leave=True)

                def on_frame(record: dict, frame, _v=vsink, _bar=bar) -> None:
                    nonlocal stop
                    sink.write(record)
                    _bar.update(1)
                    if _v is not None or cfg.show:
                        img = annotate(frame.image, record, options.conf)
                        if _v is not None:
                            _v.write(img, frame.name)
                        if cfg.show:
                            import cv2

                            cv2.imshow("patchkit score", img)
                            if cv2.waitKey(1) & 0xFF == ord("q"):
                                stop = True

                try:
                    for rec in score_source(src, detector, options, make_reference(src.info.path), markers, role,
                                            done.get((src.info.path, role)), on_frame):
                        recs.append({k: rec.get(k) for k in SUMMARY_KEYS})
                        frames_scored += 1
                        if stop:
                            break
                except KeyboardInterrupt:
                    # keep what was scored: summarise it below, then re-raise
                    interrupted = stop = True
                    warnings.append(f"{src.info.path}: interrupted after {len(recs)} frames")
                finally:
                    bar.close()
                    src.close()
                    if vsink is not None:
                        vsink.close()
                for w in src.warnings:
                    warnings.append(w)
                if not recs:
                    w = f"{src.info.path}: no frame was scored"
                    warnings.append(w)
                    failed.append({"path": str(path), "role": role, "error": w})
                    continue
                summaries.append(summarize_video(recs, keys, conf_key, src.info.fps, cfg.bootstrap,
                                                 cfg.distance_bins, cfg.angle_bins))
    if cfg.show:
        import cv2

        cv2.destroyAllWindows()
    result = finish_run(out, cfg, options, summaries, per_video, fps_of, warnings, failed, frames_scored,
                        time.perf_counter() - t0, interrupted, meta)
    if interrupted:
        raise KeyboardInterrupt
    return result


def finish_run(out: Path, cfg: RunConfig, options: ScoreOptions, summaries: list[dict],
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
    result["videos"] = [strip_private(s) for s in summaries]
    atomic_write_json(out / "summary.json", result)
    result["files"] = write_report(out, result, per_video, options.conf, conf_key, plots=cfg.plots)
    return result
