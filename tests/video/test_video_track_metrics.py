"""Track-level metrics on hand-made sequences with known answers."""

import numpy as np
import pytest

from patchkit.video.track_metrics import alarm_index, frame_durations, track_metrics


def _records(ids, present=None, fps=10.0, times=None):
    present = [True] * len(ids) if present is None else present
    return [{"frame": k, "time": (k / fps) if times is None else times[k],
             "target": {"present": p, "track_id": tid}} for k, (tid, p) in enumerate(zip(ids, present))]


def test_an_unbroken_track_is_one_fragment_and_fires_the_alarm_after_n_frames():
    ids = [None, None, 3, 3, 3, 3, 3, 3]
    m = track_metrics(_records(ids), fps=10.0, alarm_frames=4)
    assert m["fragments"] == 1 and m["track_ids"] == [3]
    assert m["tracked_fraction"] == pytest.approx(6 / 8)
    assert m["first_track_s"] == pytest.approx(0.2)
    assert m["longest_untracked_s"] == pytest.approx(0.2)
    assert m["alarm"] and m["alarm_frame"] == 5 and m["alarm_time_s"] == pytest.approx(0.5)


def test_a_broken_track_counts_its_fragments_and_never_alarms_when_no_piece_is_long_enough():
    # three ids, each alive for 3 frames at most, separated by gaps of 2 and 4 frames
    ids = [1, 1, 1, None, None, 2, 2, None, None, None, None, 5, 5, 5]
    m = track_metrics(_records(ids), fps=10.0, alarm_frames=4)
    assert m["fragments"] == 3 and m["track_ids"] == [1, 2, 5]
    assert m["longest_untracked_s"] == pytest.approx(0.4)
    assert not m["alarm"] and m["alarm_frame"] is None
    assert track_metrics(_records(ids), fps=10.0, alarm_frames=3)["alarm_frame"] == 2


def test_an_id_switch_restarts_the_alarm_count():
    assert alarm_index(np.array([1, 1, 2, 2, 2]), 3) == 4
    assert alarm_index(np.array([1, 1, -1, 1, 1]), 3) is None
    assert alarm_index(np.array([-1, -1]), 1) is None
    assert alarm_index(np.array([7]), 1) == 0


def test_frames_out_of_view_are_not_counted_and_break_runs():
    ids = [4, 4, None, 4, 4]
    present = [True, True, False, True, True]
    m = track_metrics(_records(ids, present), fps=10.0, alarm_frames=3)
    assert m["frames_in_view"] == 4 and m["tracked_fraction"] == 1.0 and m["longest_untracked_s"] == 0.0
    assert not m["alarm"]  # the out-of-view frame breaks the run of 4


def test_seconds_follow_the_timestamps_of_a_variable_frame_rate():
    times = [0.0, 0.1, 0.2, 0.7, 1.2, 1.3]
    ids = [1, None, None, None, 1, 1]
    m = track_metrics(_records(ids, times=times), fps=10.0, alarm_frames=2)
    assert m["longest_untracked_s"] == pytest.approx(1.1)  # frames 1-3 last from 0.1 to 1.2
    assert m["alarm_time_s"] == pytest.approx(1.3) and m["alarm_delay_s"] == pytest.approx(1.3)
    assert frame_durations(np.array(times))[-1] == pytest.approx(0.1)


def test_a_target_never_in_view_or_never_tracked():
    m = track_metrics(_records([None, None], [False, False]), fps=10.0, alarm_frames=1)
    assert m["frames_in_view"] == 0 and m["tracked_fraction"] is None and not m["alarm"]
    m = track_metrics(_records([None, None, None]), fps=10.0, alarm_frames=1)
    assert m["fragments"] == 0 and m["tracked_fraction"] == 0.0 and m["first_track_s"] is None
    assert m["longest_untracked_s"] == pytest.approx(0.3)
