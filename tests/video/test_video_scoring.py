"""Captured-video scoring on synthetic videos with known marker poses and known verdicts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from patchkit.video import (
    BootstrapConfig,
    PinholeCamera,
    MarkerDetector,
    MarkerReference,
    MarkerSpec,
    ScoreRunConfig,
    ScoreOptions,
    estimate_pose,
    score_inputs,
)
from patchkit.video.sinks import read_jsonl
from patchkit.capture.board import board_pose, composite_board, render_board
from patchkit.io import write_video

# frame plan: (target conf, board pose or None = patch out of view, distractor conf)
PLAN = [
    (0.80, {"distance": 0.8, "yaw": 0}, 0.9),
    (0.55, {"distance": 0.8, "yaw": 35}, 0.9),
    (0.30, {"distance": 1.5, "yaw": 0}, 0.9),
    (0.05, {"distance": 1.5, "yaw": 20}, 0.9),   # hidden: no box at all
    (0.95, None, 0.9),                           # markers out of view: not counted
    (0.18, {"distance": 1.2, "yaw": 50}, 0.9),
    (0.45, {"distance": 0.9, "yaw": 10}, None),
    (0.05, {"distance": 1.8, "yaw": 0}, 0.9),
]


@pytest.mark.parametrize("distance,yaw", [(0.6, 0), (1.0, 30), (1.6, 0), (2.2, 40), (3.0, 15)])
@pytest.mark.parametrize("with_layout", [True, False])
def test_pose_from_markers_recovers_distance(distance, yaw, with_layout):
    board = render_board(marker_mm=50.0, px_per_mm=2.0)
    cam = PinholeCamera.from_hfov(1280, 720, 65.0)
    rng = np.random.default_rng(0)
    frame = np.clip(rng.normal(120, 6, (720, 1280, 3)), 0, 255).astype(np.uint8)
    rot, t = board_pose(cam, (700, 330), distance, yaw)
    frame, _ = composite_board(frame, board, cam, rot, t)
    spec = board.spec if with_layout else MarkerSpec(board.spec.dictionary, board.spec.size_mm, board.spec.ids)
    obs = MarkerDetector(spec).detect(frame)
    assert sorted(obs.ids.tolist()) == [0, 1, 2, 3]
    pose = estimate_pose(obs, spec, cam)
    true_d = np.linalg.norm(t) / 1000.0
    assert abs(pose.distance_m - true_d) / true_d < (0.02 if with_layout else 0.10)
    if with_layout:  # joint pose of four markers: the viewing angle too
        true_a = np.degrees(np.arccos(abs(rot[:, 2] @ (t / np.linalg.norm(t)))))
        assert abs(pose.angle_deg - true_a) < 3.0


def test_marker_spec_from_export_json(tmp_path):
    # the layout record of `patchkit export --markers` (patch mm, origin top-left, y down)
    rec = {"markers": {"dictionary": "DICT_4X4_50", "size_mm": 20.0, "gap_mm": 4.0, "markers": [
        {"id": 40, "corners_patch_mm": [[-24, -24], [-4, -24], [-4, -4], [-24, -4]]},
        {"id": 41, "corners_patch_mm": [[104, -24], [124, -24], [124, -4], [104, -4]]}]}}
    (tmp_path / "print.json").write_text(json.dumps(rec))
    spec = MarkerSpec.from_json(tmp_path / "print.json")
    assert spec.ids == (40, 41) and spec.size_mm == 20.0
    np.testing.assert_allclose(spec.layout_mm[41][2], [124, -4])
    p = tmp_path / "export.json"
    p.write_text(json.dumps({"markers": {"dictionary": "4X4_50", "size_mm": 30,
                                         "layout": [{"id": 7, "x_mm": 5, "y_mm": 5}, {"id": 9, "x_mm": 200, "y_mm": 5}]}}))
    spec = MarkerSpec.from_json(p)
    assert spec.dictionary == "DICT_4X4_50" and spec.size_mm == 30 and spec.ids == (7, 9)
    np.testing.assert_allclose(spec.layout_mm[9][2], [230, 35])
    with pytest.raises(Exception, match="export.json"):
        (tmp_path / "export.json").write_text("{")
        MarkerSpec.from_json(p)


def _write_plan(path, scene, plan=PLAN):
    render_frame, board, _ = scene
    truths = []

    def frames():
        for k, (conf, pose, distractor) in enumerate(plan):
            f, truth = render_frame(k, conf, pose, distractor)
            truths.append(truth)
            yield f

    n = write_video(path, frames(), fps=10.0)
    return n, truths


def test_score_synthetic_video_verdicts_and_pose(tmp_path, scene, color_detector):
    render_frame, board, hfov = scene
    video = tmp_path / "walk.mp4"
    n, truths = _write_plan(video, scene)
    opts = ScoreOptions(conf=0.25, thresholds=(0.1, 0.25, 0.5, 0.75), batch=3, hfov_deg=hfov)
    result = score_inputs([str(video)], color_detector(), opts, lambda _: MarkerReference(), board.spec,
                          config=ScoreRunConfig(out_dir=tmp_path / "out", progress=False,
                                           bootstrap=BootstrapConfig(resamples=200)))
    recs = {r["frame"]: r for r in read_jsonl(tmp_path / "out" / "frames.jsonl")}
    assert len(recs) == n == len(PLAN)
    for k, (conf, pose, _) in enumerate(PLAN):
        r = recs[k]
        if pose is None:
            assert r["target"]["present"] is False and r["detected"] is None and r["pose"] is None
            continue
        assert r["target"]["present"] is True
        # the person wearing the markers, never the more confident distractor
        reported = conf if conf >= 0.1 else 0.0
        assert r["target"]["conf"] == pytest.approx(reported, abs=0.02)
        for t in ("0.1", "0.25", "0.5", "0.75"):
            assert r["detected"][t] == (conf >= float(t)), (k, t)
        assert abs(r["pose"]["distance_m"] - truths[k]["distance_m"]) / truths[k]["distance_m"] < 0.10
        assert abs(r["pose"]["angle_deg"] - truths[k]["angle_deg"]) < 5.0
    v = result["videos"][0]
    present = [c for c, p, _ in PLAN if p is not None]
    assert v["frames"] == len(PLAN) and v["frames_with_target"] == len(present) and v["frames_without_target"] == 1
    assert v["detection_rate"]["0.25"] == pytest.approx(np.mean([c >= 0.25 for c in present]), abs=1e-4)
    lo, hi = v["detection_rate_ci95"]["0.25"]
    assert lo <= v["detection_rate"]["0.25"] <= hi
    bins = {b["bin"]: b for b in v["by_distance"]}
    near = [c for c, p, _ in PLAN if p is not None and p["distance"] < 1.0]
    assert bins["0-1 m"]["frames"] == len(near)
    assert bins["0-1 m"]["detection_rate"] == pytest.approx(np.mean([c >= 0.25 for c in near]), abs=1e-4)
    assert bins["1-2 m"]["frames"] == len(present) - len(near)
    out = tmp_path / "out"
    for f in ("summary.json", "report.md", "timeseries.png", "by_distance.png", "by_angle.png",
              "walk_test_annotated.mp4"):
        assert (out / f).is_file(), f
    assert json.loads((out / "summary.json").read_text())["videos"][0]["frames"] == len(PLAN)


def test_control_asr_and_resolution_warning(tmp_path, scene, color_detector):
    render_frame, board, hfov = scene
    test_plan = [(0.05, {"distance": 1.0, "yaw": 0}, None)] * 3 + [(0.6, {"distance": 1.0, "yaw": 0}, None)]
    ctrl_plan = [(0.7, {"distance": 1.0, "yaw": 0}, None)] * 4
    _write_plan(tmp_path / "patch.mp4", scene, test_plan)
    _write_plan(tmp_path / "control.mp4", scene, ctrl_plan)
    small = [np.ascontiguousarray(render_frame(0, 0.7, {"distance": 0.7}, None)[0][::2, ::2]) for _ in range(3)]
    write_video(tmp_path / "control_small.mp4", small, fps=10.0)
    opts = ScoreOptions(conf=0.25, thresholds=(0.25,), batch=4, hfov_deg=hfov)
    result = score_inputs([str(tmp_path / "patch.mp4")], color_detector(), opts, lambda _: MarkerReference(), board.spec,
                          control=[str(tmp_path / "control.mp4"), str(tmp_path / "control_small.mp4")],
                          config=ScoreRunConfig(out_dir=tmp_path / "out", progress=False, annotate=False, plots=False,
                                           bootstrap=BootstrapConfig(resamples=200)))
    roles = [v["role"] for v in result["videos"]]
    assert roles == ["test", "control", "control"]
    assert result["videos"][0]["detection_rate"]["0.25"] == 0.25
    # pooled control: 4/4 and 3/3 detected -> ASR = 1 - 0.25 / 1
    assert result["asr_vs_control"]["0.25"] == pytest.approx(0.75)
    assert any("control_small.mp4" in w and "resolution" in w for w in result["warnings"])


def test_interrupt_keeps_flushed_frames_and_resume_finishes(tmp_path, scene, color_detector):
    render_frame, board, hfov = scene
    video = tmp_path / "long.mp4"
    plan = [(0.6 if k % 2 else 0.05, {"distance": 1.0, "yaw": 0}, None) for k in range(10)]
    _write_plan(video, scene, plan)
    opts = ScoreOptions(conf=0.25, thresholds=(0.25,), batch=2, hfov_deg=hfov)
    cfg = ScoreRunConfig(out_dir=tmp_path / "out", progress=False, annotate=False, plots=False, bootstrap=BootstrapConfig(resamples=50))
    with pytest.raises(KeyboardInterrupt):
        score_inputs([str(video)], color_detector(interrupt_after=3), opts, lambda _: MarkerReference(), board.spec, config=cfg)
    lines = (tmp_path / "out" / "frames.jsonl").read_text().splitlines()
    assert len(lines) == 6  # three batches of two were scored and flushed
    assert [json.loads(x)["frame"] for x in lines] == list(range(6))
    partial = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert partial["interrupted"] is True and partial["videos"][0]["frames"] == 6
    # a torn last line (a crash mid-write) is ignored when resuming
    with open(tmp_path / "out" / "frames.jsonl", "a") as f:
        f.write('{"video": "x", "fra')
    cfg.resume = True
    det = color_detector()
    result = score_inputs([str(video)], det, opts, lambda _: MarkerReference(), board.spec, config=cfg)
    assert det.calls == 2  # only frames 6..9 were run through the detector
    v = result["videos"][0]
    assert v["frames"] == 10 and v["detection_rate"]["0.25"] == 0.5


def test_bad_inputs_are_named_and_good_ones_scored(tmp_path, scene, color_detector):
    render_frame, board, hfov = scene
    good = tmp_path / "good.mp4"
    _write_plan(good, scene, PLAN[:3])
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "garbage.mp4").write_bytes(np.random.default_rng(0).integers(0, 255, 5000, dtype=np.uint8).tobytes())
    # a truncated MJPG AVI: the header announces 30 frames, the data stops early
    avi = tmp_path / "cut.avi"
    write_video(avi, (render_frame(k, 0.6, {"distance": 1.0}, None)[0] for k in range(30)), fps=10.0, fourcc="MJPG")
    data = avi.read_bytes()
    avi.write_bytes(data[: len(data) // 2])
    photos = tmp_path / "photos"
    photos.mkdir()
    import cv2

    for k in range(2):
        cv2.imwrite(str(photos / f"p{k}.png"), cv2.cvtColor(render_frame(k, 0.6, {"distance": 1.0}, None)[0],
                                                            cv2.COLOR_RGB2BGR))
    (photos / "notes.txt").write_text("not an image")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    opts = ScoreOptions(conf=0.25, thresholds=(0.25,), batch=4, hfov_deg=hfov)
    inputs = [str(p) for p in (tmp_path / "empty.mp4", tmp_path / "garbage.mp4", tmp_path / "missing.mp4",
                               good, avi, photos)]
    result = score_inputs(inputs, color_detector(), opts, lambda _: MarkerReference(), board.spec,
                          config=ScoreRunConfig(out_dir=tmp_path / "out", progress=False, plots=False,
                                           bootstrap=BootstrapConfig(resamples=50)))
    failed = {f["path"].split("/")[-1]: f["error"] for f in result["failed"]}
    assert set(failed) == {"empty.mp4", "garbage.mp4", "missing.mp4"}
    assert all("\n" not in e and name in e for name, e in failed.items())
    scored = {v["path"].split("/")[-1]: v for v in result["videos"]}
    assert scored["good.mp4"]["frames"] == 3
    assert 0 < scored["cut.avi"]["frames"] < 30
    assert scored["photos"]["frames"] == 2
    w = " | ".join(result["warnings"])
    assert "cut.avi" in w and "truncated" in w
    assert "notes.txt" in w and "broken.jpg" in w
    assert (tmp_path / "out" / "photos_test_annotated" / "p0.jpg").is_file()


def test_parallel_workers_keep_order_and_results(tmp_path, scene, color_detector):
    import torch

    from patchkit.video import score_source
    from patchkit.video.source import open_source
    from patchkit.video.target import MarkerReference as Ref

    render_frame, board, hfov = scene
    video = tmp_path / "v.mp4"
    _write_plan(video, scene)
    threads = torch.get_num_threads()
    runs = []
    for workers in (1, 3):
        opts = ScoreOptions(thresholds=(0.25,), batch=2, hfov_deg=hfov, workers=workers)
        runs.append(list(score_source(open_source(video), color_detector(), opts, Ref(), board.spec)))
        assert torch.get_num_threads() == threads  # restored
    assert [r["frame"] for r in runs[1]] == list(range(len(PLAN)))
    assert runs[0] == runs[1]


@pytest.mark.parametrize("value", ["0", "-5"])
def test_a_bootstrap_below_one_is_refused_before_any_frame_is_scored(tmp_path, capsys, value):
    from patchkit.cli.main import main

    video = tmp_path / "never_opened.mp4"  # refused before the video is even read
    code = main(["score", str(video), "--detector", "yolov8n.yaml", "--bootstrap", value, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--bootstrap must be >= 1" in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "o").exists()


def test_version_flag(capsys):
    from patchkit import __version__
    from patchkit.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"patchkit {__version__}"


def test_a_video_where_no_marker_is_ever_found_is_an_error_not_an_empty_table(tmp_path, capsys):
    from patchkit.cli.main import main

    video = tmp_path / "blank.mp4"
    write_video(video, (np.full((96, 128, 3), 120, np.uint8) for _ in range(4)), fps=5.0)
    code = main(["score", str(video), "--detector", "yolov8n.yaml", "--target", "0", "--imgsz", "64", "--out", str(tmp_path / "o"),
                 "--quiet", "--no-video", "--no-plots", "--bootstrap", "10"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "blank.mp4: the target was never found" in err[-1] and "ArUco" in err[-1]
    assert (tmp_path / "o" / "frames.jsonl").is_file()  # the frames scored are kept


def test_partial_boxes_on_a_hidden_target_are_drawn_and_named():
    from patchkit.video.report import markdown_report
    from patchkit.video.sinks import ORANGE, _partial_boxes, annotate

    target = {"present": True, "box": [20, 10, 60, 110], "conf": 0.0}
    boxes = [[20, 10, 60, 50, 0.44, 0], [100, 10, 120, 40, 0.9, 0], [20, 10, 60, 105, 0.1, 0]]
    assert _partial_boxes(boxes, target, 0.25) == [(20.0, 10.0, 60.0, 50.0, 0.44)]  # IoU 0.4, above conf
    img = annotate(np.zeros((120, 160, 3), np.uint8), {"frame": 3, "boxes": boxes, "target": target}, 0.25)
    assert (img[50, 40] == ORANGE).all()  # the partial box's bottom edge, in orange (RGB)
    report = markdown_report({"detector": "d", "thresholds": ["0.25"], "videos": [], "target_class": 0,
                              "reference": "markers"}, "0.25")
    assert "Target class `0`" in report and "None" not in report
