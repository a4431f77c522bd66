"""Per-video summaries of scored frames, with bootstrap confidence intervals and pose bins.

Works on the per-frame records of :mod:`patchkit.video.scoring` (also as read back from
``frames.jsonl``, so a partial, interrupted run can be summarised).

Confidence intervals: consecutive video frames are strongly correlated, so the 95% interval is a
percentile **moving-block bootstrap** over the frames with the target in view (block length about
one second of frames, capped at ``n ** (1/3)`` so short videos still have many blocks; 1 for photos,
where it is the plain bootstrap). It is seeded and
vectorised: block sums come from one cumulative sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from patchkit.metrics.ap import box_iou_numpy
from patchkit.video.sinks import read_jsonl

DEFAULT_DISTANCE_BINS_M: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 10.0)
DEFAULT_ANGLE_BINS_DEG: tuple[float, ...] = (0.0, 15.0, 30.0, 45.0, 60.0, 90.0)


@dataclass
class BootstrapConfig:
    """``resamples`` percentile bootstrap draws; ``block`` frames per block (None: about 1 s of
    frames from the fps, 1 without an fps); ``seed`` for the generator."""

    resamples: int = 1000
    block: int | None = None
    seed: int = 0


def block_bootstrap_means(x: np.ndarray, block: int, resamples: int, seed: int) -> np.ndarray:
    """Moving-block bootstrap of column means.

    Args:
        x: ``(n, k)`` values (e.g. 0/1 detected flags per threshold).
        block: block length in rows (clipped to ``[1, n]``).
    Returns:
        ``(resamples, k)`` resampled means.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    if n == 0:
        return np.full((resamples, x.shape[1]), np.nan)
    L = int(min(max(1, block), n))
    nb = int(np.ceil(n / L))
    c = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, 0)])
    sums = c[L:] - c[:-L]  # (n - L + 1, k): sum of every block
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n - L + 1, size=(resamples, nb))
    return sums[starts].sum(1) / (nb * L)


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> np.ndarray:
    """``(2, k)`` lower/upper percentile bounds of bootstrap samples ``(B, k)``."""
    a = (1 - level) / 2
    return np.nanpercentile(samples, [100 * a, 100 * (1 - a)], axis=0)


def _r(x: float | None, nd: int = 6) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), nd)


def _bins(values: np.ndarray, flags: np.ndarray, edges: Sequence[float], unit: str, key: str) -> list[dict]:
    """Rate per bin ``[lo, hi)``; values beyond the last edge go to an open ``>= last`` bin,
    reported only when it has frames."""
    edges = [float(e) for e in edges]
    if np.isfinite(edges[-1]):
        edges.append(float("inf"))
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (values >= lo) & (values < hi)
        n = int(m.sum())
        if not np.isfinite(hi) and n == 0:
            continue
        label = f"{lo:g}-{hi:g} {unit}" if np.isfinite(hi) else f">={lo:g} {unit}"
        out.append({"bin": label, key + "_min": lo, key + "_max": hi if np.isfinite(hi) else None, "frames": n,
                    "detection_rate": None if n == 0 else _r(flags[m].mean())})
    return out


def summarize_video(
    records: Sequence[dict],
    thresholds: Sequence[str],
    conf_key: str,
    fps: float = 0.0,
    bootstrap: BootstrapConfig = BootstrapConfig(),
    distance_bins: Sequence[float] = DEFAULT_DISTANCE_BINS_M,
    angle_bins: Sequence[float] = DEFAULT_ANGLE_BINS_DEG,
) -> dict:
    """Summary of one video's records (interfaces.md ``score`` fields plus extras).

    Args:
        records: this video's per-frame records, any order (sorted by frame here).
        thresholds: threshold keys (``"0.25"``) to report.
        conf_key: the headline threshold's key (pose bins use it).
        fps: frames per second of the video (block length of the bootstrap); 0 for photos.
    """
    recs = sorted(records, key=lambda r: r["frame"])
    present = [r for r in recs if r["target"]["present"]]
    n, npres = len(recs), len(present)
    flags = np.array([[r["detected"][k] for k in thresholds] for r in present], dtype=np.float64).reshape(npres, len(thresholds))
    conf = np.array([r["target"]["conf"] for r in present], dtype=np.float64)
    if bootstrap.block is not None:
        block = bootstrap.block
    else:  # about one second of frames, but never fewer than ~n^(2/3) blocks
        block = max(1, min(int(round(fps)) if fps > 0 else 1, int(round(max(npres, 1) ** (1 / 3)))))
    rate = flags.mean(0) if npres else np.full(len(thresholds), np.nan)
    boots = block_bootstrap_means(np.concatenate([flags, conf[:, None]], 1), block, bootstrap.resamples, bootstrap.seed)
    ci = percentile_ci(boots) if npres else np.full((2, len(thresholds) + 1), np.nan)
    out = {
        "path": recs[0]["video"] if recs else None,
        "role": recs[0]["role"] if recs else None,
        "frames": n,
        "frames_with_target": npres,
        "frames_without_target": n - npres,
        "detection_rate": {k: _r(rate[i]) for i, k in enumerate(thresholds)},
        "detection_rate_ci95": {k: [_r(ci[0, i]), _r(ci[1, i])] for i, k in enumerate(thresholds)},
        "mean_conf": _r(conf.mean()) if npres else None,
        "mean_conf_ci95": [_r(ci[0, -1]), _r(ci[1, -1])],
        "max_conf": _r(conf.max()) if npres else None,
        "ci_method": f"moving-block bootstrap over frames with the target, block {block} frames, "
                     f"{bootstrap.resamples} resamples, seed {bootstrap.seed}",
        "_boot": boots,  # (B, T+1) kept for ASR intervals; dropped before writing
    }
    posed = [r for r in present if r.get("pose")]
    out["frames_with_pose"] = len(posed)
    if posed:
        k = list(thresholds).index(conf_key)
        pf = np.array([r["detected"][thresholds[k]] for r in posed], dtype=np.float64)
        dist = np.array([r["pose"]["distance_m"] for r in posed])
        ang = np.array([r["pose"]["angle_deg"] for r in posed])
        out["by_distance"] = _bins(dist, pf, distance_bins, "m", "distance_m")
        out["by_angle"] = _bins(ang, pf, angle_bins, "deg", "angle_deg")
    return out


def asr_vs_control(test: dict, control: dict, thresholds: Sequence[str]) -> tuple[dict, dict]:
    """ASR of the test video(s) relative to the control: ``1 - rate_test / rate_control`` per
    threshold (None where the control rate is 0), and its bootstrap 95% interval (independent
    resamples of both videos)."""
    asr, ci = {}, {}
    bt, bc = test.get("_boot"), control.get("_boot")
    for i, k in enumerate(thresholds):
        rt, rc = test["detection_rate"].get(k), control["detection_rate"].get(k)
        if rt is None or rc is None or rc <= 0:
            asr[k], ci[k] = None, [None, None]
            continue
        asr[k] = _r(1.0 - rt / rc)
        if bt is not None and bc is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                s = 1.0 - bt[:, i] / bc[:, i]
            s = s[np.isfinite(s)]
            lo, hi = (np.percentile(s, [2.5, 97.5]) if len(s) else (np.nan, np.nan))
            ci[k] = [_r(lo), _r(hi)]
        else:
            ci[k] = [None, None]
    return asr, ci


def pooled(summaries: Sequence[dict], records: Sequence[Sequence[dict]], thresholds: Sequence[str], conf_key: str,
           fps: float, bootstrap: BootstrapConfig) -> dict:
    """One summary over several videos' records (e.g. all test videos against one control)."""
    if len(summaries) == 1:
        return summaries[0]
    allrec = []
    for recs in records:  # renumber frames so they stay in sequence
        off = len(allrec)
        allrec += [{**r, "frame": off + i} for i, r in enumerate(sorted(recs, key=lambda r: r["frame"]))]
    return summarize_video(allrec, thresholds, conf_key, fps, bootstrap)


def strip_private(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if not k.startswith("_")}


def touching_rates(frames_jsonl: str | Path, conf: float) -> dict[str, float]:
    """A looser reading than the detection rate, per role (``patch``, ``control``...): the
    fraction of frames with a known target box (``--reference boxes``) where any person box with
    confidence >= ``conf`` overlaps it at all (IoU > 0), so a patch that only breaks its wearer
    into smaller boxes does not count as hiding him. Read from the scorer's ``frames.jsonl``."""
    hits: dict[str, list[bool]] = {}
    for r in read_jsonl(frames_jsonl):
        truth = (r.get("target") or {}).get("box")
        if r.get("role") is None or not truth:
            continue
        boxes = np.asarray(r["boxes"], np.float64).reshape(-1, 6)
        boxes = boxes[boxes[:, 4] >= conf, :4]
        hits.setdefault(r["role"], []).append(bool((box_iou_numpy(np.asarray([truth], np.float64), boxes) > 0).any()))
    return {role: round(float(np.mean(v)), 6) for role, v in hits.items()}
