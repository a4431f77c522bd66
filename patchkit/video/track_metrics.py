"""Track-level numbers for the target person: what a tracker and an alarm rule make of a video.

Input: one video's per-frame records (``frames.jsonl``) in frame order, each with
``target.present`` and ``target.track_id`` (the id of the confirmed track on the target in that
frame, ``None`` when none; see :mod:`patchkit.video.tracking`) and ``time`` (seconds).

Definitions (frames "in view" are those with ``target.present``):

* ``tracked_fraction``: share of in-view frames where the target is covered by a live track.
* ``track_ids`` / ``fragments``: the distinct track ids seen on the target, and how many (one
  unbroken track = 1; a patch that breaks tracks raises it; 0 = never tracked).
* ``first_track_s``: seconds from the target's first in-view frame to its first tracked frame.
* ``longest_untracked_s``: the longest run of consecutive in-view frames without a track, in seconds.
* the alarm: fires at the first frame where one track id has been on the target for
  ``alarm_frames`` consecutive frames (``alarm_frame``, ``alarm_time_s`` in video time,
  ``alarm_delay_s`` since the target came into view).

Seconds come from the frames' timestamps (so variable frame rates are measured right); a frame
lasts until the next frame's timestamp, the last one the median frame interval.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def frame_times(records: Sequence[dict], fps: float) -> np.ndarray:
    """Seconds of each record: its ``time``, else ``frame / fps`` (photos: ``frame / 1``)."""
    rate = fps if fps and fps > 0 else 1.0
    return np.asarray([r["time"] if r.get("time") is not None else r["frame"] / rate for r in records], np.float64)


def frame_durations(times: np.ndarray) -> np.ndarray:
    """How long each frame is shown: the gap to the next timestamp; the last, the median gap."""
    if len(times) == 0:
        return times
    gaps = np.diff(times)
    last = float(np.median(gaps)) if len(gaps) else 0.0
    return np.append(gaps, last)


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` index ranges of the True runs of a 1-D bool array."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def alarm_index(ids: np.ndarray, alarm_frames: int) -> int | None:
    """Index of the first frame where the same id (>= 0) has held for ``alarm_frames`` frames in a row."""
    if alarm_frames < 1:
        raise ValueError("alarm_frames must be >= 1")
    run = 0
    for k, tid in enumerate(ids):
        if tid < 0:
            run = 0
        elif run > 0 and tid == ids[k - 1]:
            run += 1
        else:
            run = 1
        if run >= alarm_frames:
            return k
    return None


def track_metrics(records: Sequence[dict], fps: float, alarm_frames: int) -> dict[str, Any]:
    """The definitions of the module docstring for one video's records (frame order).

    Args:
        records: per-frame records with ``frame``, ``time``, ``target.present``, ``target.track_id``.
        fps: the video's nominal frame rate (for records without a timestamp).
        alarm_frames: frames a track must live on the target before the alarm fires (>= 1).
    """
    records = sorted(records, key=lambda r: r["frame"])
    times = frame_times(records, fps)
    durations = frame_durations(times)
    present = np.asarray([bool((r.get("target") or {}).get("present")) for r in records], bool)
    ids = np.asarray([_track_id(r) if p else -1 for r, p in zip(records, present)], np.int64)
    tracked = ids >= 0
    out: dict[str, Any] = {"frames_in_view": int(present.sum()), "alarm_frames": int(alarm_frames)}
    if not present.any():
        return out | {"tracked_fraction": None, "track_ids": [], "fragments": 0, "first_track_s": None,
                      "longest_untracked_s": None, "alarm": False, "alarm_frame": None, "alarm_time_s": None,
                      "alarm_delay_s": None}
    first_in_view = int(np.flatnonzero(present)[0])
    untracked = present & ~tracked
    gaps = [float(durations[a:b].sum()) for a, b in _runs(untracked)]
    seen = [int(i) for i in ids[tracked]]
    alarm = alarm_index(ids, alarm_frames)
    first_tracked = int(np.flatnonzero(tracked)[0]) if tracked.any() else None
    return out | {
        "tracked_fraction": round(float(tracked[present].mean()), 6),
        "track_ids": sorted(set(seen)),
        "fragments": len(set(seen)),
        "first_track_s": None if first_tracked is None else round(float(times[first_tracked] - times[first_in_view]), 4),
        "longest_untracked_s": round(max(gaps, default=0.0), 4),
        "alarm": alarm is not None,
        "alarm_frame": None if alarm is None else int(records[alarm]["frame"]),
        "alarm_time_s": None if alarm is None else round(float(times[alarm]), 4),
        "alarm_delay_s": None if alarm is None else round(float(times[alarm] - times[first_in_view]), 4),
    }


def _track_id(record: dict) -> int:
    tid = (record.get("target") or {}).get("track_id")
    return -1 if tid is None else int(tid)
