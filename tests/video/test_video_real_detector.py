"""End to end with the real yolov5n: a Penn-Fudan pedestrian wearing a marker print, filmed at
known poses, scored through the ``patchkit score`` command."""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np
import pytest
import torch

from patchkit.markers import PinholeCamera
from patchkit.capture.board import board_pose, composite_board, render_board
from patchkit.io import write_video

POSES = [(0.9, 0), (0.9, 30), (1.2, 0), (1.2, 35), (1.6, 0), (1.6, 20)]


@pytest.mark.shared
def test_score_cli_on_pennfudan_person_with_markers(shared_data, tmp_path):
    from patchkit.cli import score as score_cli
    from patchkit.detectors import create_detector

    img = cv2.cvtColor(cv2.imread(str(shared_data / "pennfudan" / "test" / "images" / "FudanPed00003.png")),
                       cv2.COLOR_BGR2RGB)
    img = cv2.resize(img, (img.shape[1] * 2, img.shape[0] * 2), interpolation=cv2.INTER_LINEAR)
    h, w = img.shape[:2]
    lab = np.loadtxt(shared_data / "pennfudan" / "test" / "labels" / "FudanPed00003.txt").reshape(-1, 5)[0]
    centre = (lab[1] * w, (lab[2] - 0.08) * h)  # on the torso of the labelled pedestrian
    cam = PinholeCamera.from_hfov(w, h, 65.0)
    rng = np.random.default_rng(0)
    board = render_board(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8), patch_mm=(80, 80), marker_mm=35,
                         margin_mm=5, ids=(10, 11, 12, 13), px_per_mm=3.0)
    frames, truths = [], []
    for dist, yaw in POSES:
        rot, t = board_pose(cam, centre, dist, yaw)
        frames.append(composite_board(img, board, cam, rot, t)[0])
        truths.append(np.linalg.norm(t) / 1000.0)
    frames.append(img)  # the print out of view
    video = tmp_path / "pedestrian.mp4"
    write_video(video, frames, fps=5.0)
    spec = {"markers": {"dictionary": board.spec.dictionary, "size_mm": board.spec.size_mm,
                        "layout": [{"id": k, "corners_mm": v.tolist()} for k, v in board.spec.layout_mm.items()]}}
    (tmp_path / "print.json").write_text(json.dumps(spec))

    parser = argparse.ArgumentParser()
    score_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["score", str(video), "--detector", str(shared_data / "weights" / "yolov5n-v7.0.pt"),
                              "--markers", str(tmp_path / "print.json"), "--thresholds", "0.1,0.25,0.5",
                              "--hfov", "65", "--batch", "4", "--out", str(tmp_path / "out"),
                              "--json", str(tmp_path / "score.json"), "--quiet", "--bootstrap", "100", "--no-plots"])
    assert args.func(args) == 0
    recs = [json.loads(x) for x in (tmp_path / "out" / "frames.jsonl").read_text().splitlines()]
    assert len(recs) == len(frames)

    # independent reference: decode again, one frame per detect() call through the detector's own
    # uint8 path, and take the most confident person box that contains the print's centre
    det = create_detector(shared_data / "weights" / "yolov5n-v7.0.pt")
    cap = cv2.VideoCapture(str(video))
    for k, rec in enumerate(recs):
        ok, bgr = cap.read()
        assert ok
        if k == len(POSES):
            assert rec["target"]["present"] is False and rec["detected"] is None
            continue
        with torch.no_grad():
            d = det.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), conf=0.1, iou=0.45, classes=[0])[0]
        c = np.asarray(rec["markers"]["corners"]).reshape(-1, 2).mean(0)
        inside = ((d.xyxy[:, 0] <= c[0]) & (d.xyxy[:, 2] >= c[0]) & (d.xyxy[:, 1] <= c[1]) & (d.xyxy[:, 3] >= c[1]))
        ref = float(d.conf[inside].max()) if inside.any() else 0.0
        assert rec["target"]["present"] is True and len(rec["markers"]["ids"]) == 4
        assert rec["target"]["conf"] == pytest.approx(ref, abs=1e-4), k
        assert rec["detected"] == {t: ref >= float(t) for t in ("0.1", "0.25", "0.5")}
        assert abs(rec["pose"]["distance_m"] - truths[k]) / truths[k] < 0.10
    assert sum(r["detected"]["0.25"] for r in recs if r["detected"]) >= 4  # the pedestrian is found
    out = json.loads((tmp_path / "score.json").read_text())
    v = out["videos"][0]
    assert v["frames"] == 7 and v["frames_with_target"] == 6 and v["frames_without_target"] == 1
    assert set(v["detection_rate"]) == {"0.1", "0.25", "0.5"}
    assert sum(b["frames"] for b in v["by_distance"]) == 6
