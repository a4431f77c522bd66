"""Score many videos at once: one worker process per CPU share or GPU, one merged report.

The inputs are dealt round-robin to ``jobs`` worker processes (spawned; each builds its own
detector from a :class:`DetectorSpec` and scores its share with :func:`score_inputs` into
``OUT/parts/K/``). The parent then merges the parts' per-frame records into ``OUT/frames.jsonl``,
moves the annotated videos into ``OUT`` and writes one summary and report with
:func:`~patchkit.video.runner.finish_run`, exactly as a single process would (same pooling,
control comparison and bootstrap), so ``jobs`` changes the speed, not the numbers.
With ``device="cuda"`` and several GPUs, worker ``K`` uses ``cuda:K % n_gpus``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Sequence

import torch

from patchkit.errors import PatchkitError
from patchkit.markers import MarkerSpec
from patchkit.video.runner import SUMMARY_KEYS, ScoreRunConfig, finish_run, score_inputs
from patchkit.video.scoring import ScoreOptions, threshold_key
from patchkit.video.sinks import read_jsonl
from patchkit.video.source import open_source
from patchkit.video.summary import summarize_video


@dataclass(frozen=True)
class DetectorSpec:
    """How a worker builds its detector (picklable): :func:`patchkit.detectors.create_detector`
    arguments, then Conv+BN fusion and channels-last (same outputs, faster)."""

    weights: str
    imgsz: int = 640
    letterbox: str = "rect"
    device: str = "cpu"

    def build(self) -> torch.nn.Module:
        from patchkit.detectors import create_detector

        det = create_detector(self.weights, imgsz=self.imgsz, letterbox=self.letterbox, device=self.device)
        if hasattr(det, "optimize_for_attack"):
            det.optimize_for_attack()
        return det


def _device_for(device: str, k: int) -> str:
    if device in ("cuda", "auto") and torch.cuda.is_available() and torch.cuda.device_count() > 1:
        return f"cuda:{k % torch.cuda.device_count()}"
    return device


def _score_part(k: int, spec: DetectorSpec, threads: int, inputs: list[str], control: list[str],
                options: ScoreOptions, make_reference: Callable[[str], object], markers: MarkerSpec | None,
                config: ScoreRunConfig) -> dict:
    """One worker: score its share into ``config.out_dir``; returns its warnings and failures."""
    torch.set_num_threads(threads)
    detector = replace(spec, device=_device_for(spec.device, k)).build()
    try:
        result = score_inputs(inputs, detector, options, make_reference, markers, control, config)
    except PatchkitError as exc:  # nothing in this share could be scored
        return {"warnings": [str(exc)], "failed": [{"path": p, "error": str(exc)} for p in inputs + control]}
    return {"warnings": result["warnings"], "failed": result["failed"]}


def score_parallel(
    inputs: Sequence[str],
    spec: DetectorSpec,
    options: ScoreOptions,
    make_reference: Callable[[str], object],
    markers: MarkerSpec | None = None,
    control: Sequence[str] = (),
    config: ScoreRunConfig | None = None,
    meta: dict | None = None,
    jobs: int = 2,
) -> dict:
    """Score ``inputs`` and ``control`` with ``jobs`` worker processes; one merged summary
    (the same dict as :func:`score_inputs`). ``make_reference`` must be picklable (e.g.
    :class:`~patchkit.video.target.ReferenceFactory`). Cameras cannot be split across processes."""
    cfg = config or ScoreRunConfig()
    if cfg.show:
        raise PatchkitError("--show needs a single process (leave out --jobs)")
    paths = [(str(p), "test") for p in inputs] + [(str(p), "control") for p in control]
    if any(p.isdigit() or p.startswith("camera:") for p, _ in paths):
        raise PatchkitError("a live camera cannot be scored by several processes (leave out --jobs)")
    jobs = max(1, min(int(jobs), len(paths)))
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not cfg.resume and (out / "parts").is_dir():  # a fresh run: no records of an earlier split
        shutil.rmtree(out / "parts")
    shares = [paths[k::jobs] for k in range(jobs)]
    threads = max(1, torch.get_num_threads() // jobs)
    t0 = time.perf_counter()
    part_cfg = [replace(cfg, out_dir=out / "parts" / str(k), plots=False, show=False) for k in range(jobs)]
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_score_part, k, spec, threads, [p for p, r in share if r == "test"],
                               [p for p, r in share if r == "control"], options, make_reference, markers, part_cfg[k])
                   for k, share in enumerate(shares)]
        parts = [f.result() for f in futures]
    return merge_parts(out, cfg, options, paths, parts, time.perf_counter() - t0, meta)


def merge_parts(out: Path, cfg: ScoreRunConfig, options: ScoreOptions, paths: list[tuple[str, str]], parts: list[dict],
                seconds: float, meta: dict | None) -> dict:
    """Merge ``OUT/parts/*`` into ``OUT/frames.jsonl``, the annotated videos and one report."""
    keys = [threshold_key(t) for t in options.all_thresholds()]
    conf_key = threshold_key(options.conf)
    per_video: dict[tuple[str, str], list[dict]] = {}
    tmp = out / "frames.jsonl.tmp"
    with open(tmp, "w", encoding="utf-8") as merged:
        for part in sorted((out / "parts").glob("*/frames.jsonl"), key=lambda p: int(p.parent.name)):
            for rec in read_jsonl(part):
                merged.write(json.dumps(rec) + "\n")
                per_video.setdefault((rec["video"], rec["role"]), []).append({k: rec.get(k) for k in SUMMARY_KEYS})
    os.replace(tmp, out / "frames.jsonl")
    for video in (out / "parts").glob("*/*_annotated*"):
        dest = out / video.name
        if dest.is_dir():
            shutil.rmtree(dest)
        elif dest.exists():
            dest.unlink()
        shutil.move(str(video), dest)
    summaries, fps_of = [], {}
    for path, role in paths:  # input order, as a single process reports them
        key = next(((v, r) for v, r in per_video if r == role and Path(v) == Path(path)), None)
        if key is None:
            continue
        src = open_source(path, fps=cfg.fps)
        fps_of[key[0]] = src.info.fps
        src.close()
        summaries.append(summarize_video(per_video[key], keys, conf_key, fps_of[key[0]], cfg.bootstrap,
                                         cfg.distance_bins, cfg.angle_bins))
    warnings = [w for p in parts for w in p["warnings"]]
    failed = [f for p in parts for f in p["failed"]]
    return finish_run(out, cfg, options, summaries, per_video, fps_of, warnings, failed,
                      sum(len(v) for v in per_video.values()), seconds, False,
                      (meta or {}) | {"jobs": len(parts)})
