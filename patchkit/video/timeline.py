"""A timeline picture per video: what the detector and the tracker saw of the target, over time.

Top panel: the target's confidence (gaps where it is not in view), the threshold, the frames where
it counts as detected. Bottom panel (with a tracker): one coloured bar per track id on the target,
spanning the frames it covered, and the moment the alarm fired. People read this faster than a table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from patchkit.plotting import pyplot
from patchkit.video.track_metrics import frame_durations, frame_times


def plot_timeline(path: str | Path, title: str, records: Sequence[dict], conf: float, fps: float,
                  tracking: dict[str, Any] | None = None) -> None:
    """Write the timeline PNG of one video.

    Args:
        path: the PNG to write.
        title: the panel title (video name and role).
        records: the video's per-frame records (``frame``, ``time``, ``target``).
        conf: the headline confidence threshold in [0, 1].
        fps: the video's nominal frame rate (for records without timestamps).
        tracking: :func:`patchkit.video.track_metrics.track_metrics` of this video, or ``None``
            without a tracker (then the track panel is left out).
    """
    plt = pyplot()
    recs = sorted(records, key=lambda r: r["frame"])
    t = frame_times(recs, fps)
    dur = frame_durations(t)
    present = np.array([bool(r["target"]["present"]) for r in recs])
    y = np.array([r["target"]["conf"] if p else np.nan for r, p in zip(recs, present)], dtype=float)
    rows = 2 if tracking is not None else 1
    fig, axes = plt.subplots(rows, 1, figsize=(10, 2.4 + 1.0 * (rows - 1)), sharex=True, squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1][:rows]})
    ax = axes[0, 0]
    ax.plot(t, y, lw=1.0, color="tab:blue", label="target confidence")
    hit = present & (np.nan_to_num(y) >= np.float32(conf))
    if hit.any():
        ax.scatter(t[hit], np.full(hit.sum(), 1.02), s=6, marker="|", color="tab:red", label="detected")
    if (~present).any():
        ax.scatter(t[~present], np.full((~present).sum(), -0.04), s=4, marker="|", color="0.6", label="not in view")
    ax.axhline(conf, ls="--", color="tab:red", lw=1, label=f"threshold {conf:g}")
    ax.set_ylim(-0.08, 1.06)
    ax.set_ylabel("confidence")
    ax.set_title(title, fontsize=9)
    if tracking is not None:
        _track_panel(axes[1, 0], recs, t, dur, tracking)
        if tracking.get("alarm"):
            for a in axes[:, 0]:
                a.axvline(tracking["alarm_time_s"], color="black", lw=1.2)
            ax.text(tracking["alarm_time_s"], 0.5, " alarm", fontsize=8, va="center")
    axes[-1, 0].set_xlabel("time (s)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7, borderaxespad=0.0)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _track_panel(ax, recs: Sequence[dict], t: np.ndarray, dur: np.ndarray, tracking: dict[str, Any]) -> None:
    """One row of bars per track id on the target, coloured by id."""
    ids = np.array([(r["target"].get("track_id") if r["target"]["present"] else None) for r in recs], dtype=object)
    seen = tracking.get("track_ids") or []
    cmap = pyplot().get_cmap("tab10")
    for row, tid in enumerate(seen):
        on = np.array([v == tid for v in ids])
        spans = [(float(t[k]), float(max(dur[k], 1e-3))) for k in np.flatnonzero(on)]
        ax.broken_barh(spans, (row - 0.4, 0.8), color=cmap(row % 10))
    ax.set_yticks(range(len(seen)))
    ax.set_yticklabels([f"id {tid}" for tid in seen], fontsize=7)
    ax.set_ylim(-0.6, max(len(seen), 1) - 0.4)
    frag = tracking.get("fragments", 0)
    alarm = (f"alarm at {tracking['alarm_time_s']:.1f} s" if tracking.get("alarm")
             else f"no alarm ({tracking.get('alarm_frames')} frames needed)")
    ax.set_ylabel("tracks", fontsize=8)
    ax.set_title(f"{frag} track{'s' if frag != 1 else ''} on the target, tracked "
                 f"{100 * (tracking.get('tracked_fraction') or 0):.0f}% of frames in view; {alarm}", fontsize=8)
