"""Summaries: block bootstrap intervals, ASR vs control, partial records."""

from __future__ import annotations

import numpy as np
import pytest

from patchkit.video.summary import (
    BootstrapConfig,
    asr_vs_control,
    block_bootstrap_means,
    percentile_ci,
    summarize_video,
)


def _records(flags, role="test", fps_present=None):
    out = []
    for k, f in enumerate(flags):
        present = f is not None
        out.append({"video": f"{role}.mp4", "role": role, "frame": k, "time": k / 30,
                    "target": {"present": present, "box": None, "conf": 0.9 if f else 0.0},
                    "detected": {"0.25": bool(f)} if present else None, "pose": None})
    return out


def test_bootstrap_interval_iid_width():
    rng = np.random.default_rng(1)
    x = (rng.random(2000) < 0.3).astype(float)[:, None]
    lo, hi = percentile_ci(block_bootstrap_means(x, 1, 2000, 0))[:, 0]
    se = np.sqrt(0.21 / 2000)
    assert lo < x.mean() < hi
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_block_bootstrap_widens_for_correlated_frames():
    rng = np.random.default_rng(2)
    runs = np.repeat(rng.random(60) < 0.5, 30).astype(float)[:, None]  # 1800 frames in 1 s runs
    iid = percentile_ci(block_bootstrap_means(runs, 1, 1000, 0))[:, 0]
    blk = percentile_ci(block_bootstrap_means(runs, 30, 1000, 0))[:, 0]
    assert (blk[1] - blk[0]) > 3 * (iid[1] - iid[0])
    # the same seed gives the same interval
    np.testing.assert_array_equal(blk, percentile_ci(block_bootstrap_means(runs, 30, 1000, 0))[:, 0])


def test_summary_counts_absent_frames_separately_and_asr():
    test = summarize_video(_records([True, False, False, None, None, False]), ["0.25"], "0.25", fps=30,
                           bootstrap=BootstrapConfig(resamples=300))
    assert test["frames"] == 6 and test["frames_with_target"] == 4 and test["frames_without_target"] == 2
    assert test["detection_rate"]["0.25"] == 0.25
    ctrl = summarize_video(_records([True, True, False, True], "control"), ["0.25"], "0.25", fps=30,
                           bootstrap=BootstrapConfig(resamples=300))
    asr, ci = asr_vs_control(test, ctrl, ["0.25"])
    assert asr["0.25"] == pytest.approx(1 - 0.25 / 0.75)
    assert ci["0.25"][0] <= asr["0.25"] <= ci["0.25"][1]
    none = summarize_video(_records([False, False], "control"), ["0.25"], "0.25")
    assert asr_vs_control(test, none, ["0.25"])[0]["0.25"] is None  # control never detected: undefined
    empty = summarize_video(_records([None, None]), ["0.25"], "0.25")
    assert empty["frames_with_target"] == 0 and empty["detection_rate"]["0.25"] is None
