"""``patchkit score --tracker``: ultralytics' own trackers on patchkit's detections, on the demo's
simulated film (a printed patch worn by a toy-world walker, filmed through the simulated camera)."""

import json

import numpy as np
import pytest

from patchkit.capture.film import FilmConfig, film
from patchkit.cli.main import main
from patchkit.video.scoring import target_track_id
from patchkit.video.tracking import TRACKERS, FrameTracker


@pytest.fixture(scope="module")
def filmed(tmp_path_factory):
    """Two walks wearing a random print, as the demo films them (24 frames each, 12 fps)."""
    patch = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    out = tmp_path_factory.mktemp("film")
    return film(patch, "random", FilmConfig(walks=2, frames=24), "sim-halftone", None, out)


def _score(video, out, *extra):
    return main(["score", *map(str, video), "--detector", "toy", "--imgsz", "416", "--reference", "boxes",
                 "--bootstrap", "20", "--quiet", "-o", str(out), *map(str, extra)])


def _records(out):
    return [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def scored(filmed, tmp_path_factory):
    out = tmp_path_factory.mktemp("scored") / "score"
    assert _score(filmed[:1], out, "--tracker", "bytetrack", "--control", filmed[1]) == 0
    return out


def test_every_record_has_a_track_id_per_box_and_one_on_the_target(scored):
    records = _records(scored)
    assert len(records) == 48
    for r in records:
        assert len(r["track_ids"]) == len(r["boxes"])
        assert "track_id" in r["target"]
    walker = [r["target"]["track_id"] for r in records if r["role"] == "test" and r["target"]["conf"] >= 0.25]
    assert walker and all(t is not None for t in walker)
    assert len(set(walker)) == 1  # the walker keeps one id while he is detected


def test_the_summary_puts_frame_and_track_level_numbers_side_by_side(scored):
    summary = json.loads((scored / "summary.json").read_text())
    assert summary["tracker"] == "bytetrack"
    for v in summary["videos"]:
        t = v["tracking"]
        assert t["alarm_frames"] == 12  # one second at 12 fps
        assert t["fragments"] == len(t["track_ids"]) >= 1
        assert 0.0 <= t["tracked_fraction"] <= 1.0
        assert t["alarm"] == (t["alarm_frame"] is not None)
    assert set(summary["pooled"]) == {"test", "control"}
    assert all("tracking" in p for p in summary["pooled"].values())
    report = (scored / "report.md").read_text()
    assert "Frame level vs track level" in report and "all control videos" in report
    for role, name in (("test", "walk0_random"), ("control", "walk1_random")):
        assert (scored / f"timeline_{name}_{role}.png").is_file()
        assert (scored / f"{name}_{role}_annotated.mp4").stat().st_size > 0


def test_a_resumed_run_continues_the_same_tracks(filmed, scored, tmp_path, monkeypatch):
    full = _records(scored)
    out = tmp_path / "resumed"
    out.mkdir()
    head = (scored / "frames.jsonl").read_text().splitlines()[:10]  # as if stopped after 10 frames
    (out / "frames.jsonl").write_text("\n".join(head) + "\n")
    calls = []
    update = FrameTracker.update
    monkeypatch.setattr(FrameTracker, "update", lambda self, *a: calls.append(1) or update(self, *a))
    assert _score(filmed[:1], out, "--tracker", "bytetrack", "--control", filmed[1], "--resume") == 0
    assert len(calls) == 48  # the 10 frames scored before were replayed through the tracker, not skipped
    resumed = _records(out)
    assert [(r["frame"], r["role"]) for r in resumed] == [(r["frame"], r["role"]) for r in full]
    assert [r["track_ids"] for r in resumed] == [r["track_ids"] for r in full]


def test_an_unknown_tracker_is_one_line_listing_the_valid_ones(filmed, tmp_path, capsys):
    assert _score(filmed[:1], tmp_path / "o", "--tracker", "bytetrak") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bytetrak" in err[0] and "bytetrack, botsort" in err[0]
    assert not (tmp_path / "o" / "frames.jsonl").exists()
    assert _score(filmed[:1], tmp_path / "o", "--tracker", "bytetrack", "--alarm-frames", "0") == 2


@pytest.mark.parametrize("name", TRACKERS)
def test_the_tracker_keeps_an_id_on_a_moving_box_and_leaves_a_faint_one_out(name):
    tracker = FrameTracker(name)
    frame = np.zeros((240, 320, 3), np.uint8)
    ids = []
    for k in range(10):
        boxes = np.array([[10 + 3 * k, 20, 60 + 3 * k, 140, 0.9, 0], [200, 40, 240, 120, 0.05, 0]], np.float32)
        ids.append(tracker.update(boxes, frame))
    ids = np.stack(ids)
    assert (ids[:, 0] == ids[0, 0]).all() and ids[0, 0] >= 1  # one id, from the first frame
    assert (ids[:, 1] == -1).all()  # below ByteTrack's low threshold (0.1): never tracked


def test_the_target_takes_the_id_of_the_tracked_box_that_overlaps_it():
    boxes = np.array([[0, 0, 10, 10, 0.9, 0], [20, 20, 40, 40, 0.8, 0]], np.float32)
    assert target_track_id([21, 21, 40, 40], boxes, np.array([3, 7])) == 7
    assert target_track_id([21, 21, 40, 40], boxes, np.array([3, -1])) is None  # its box is not tracked
    assert target_track_id([100, 100, 110, 110], boxes, np.array([3, 7])) is None  # nothing overlaps
    assert target_track_id(None, boxes, np.array([3, 7])) is None


def test_two_processes_track_as_one_does(filmed, scored, tmp_path):
    """--jobs 2 deals the two walks to two processes; each video is tracked whole in one of them."""
    out = tmp_path / "jobs"
    assert _score(filmed[:1], out, "--tracker", "bytetrack", "--control", filmed[1], "--jobs", "2") == 0
    one, two = _records(scored), _records(out)
    key = lambda r: (r["role"], r["frame"])  # noqa: E731
    assert [r["track_ids"] for r in sorted(two, key=key)] == [r["track_ids"] for r in sorted(one, key=key)]
    summary = json.loads((out / "summary.json").read_text())
    assert [v["tracking"]["track_ids"] for v in summary["videos"]] == [
        v["tracking"]["track_ids"] for v in json.loads((scored / "summary.json").read_text())["videos"]]
