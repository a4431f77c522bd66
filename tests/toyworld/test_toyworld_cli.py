"""``patchkit toyworld``: datasets usable by ultralytics and by patchkit scenes, offline."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from patchkit.cli.main import main


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy")
    assert main(["toyworld", "generate", "--out", str(out), "--n-train", "2", "--n-val", "1", "--n-test", "2", "--seed", "3"]) == 0
    return out


def test_generate_writes_yolo_layout(dataset):
    data = yaml.safe_load((dataset / "data.yaml").read_text())
    assert data["names"] == {0: "person"}
    for split, n in (("train", 2), ("val", 1), ("test", 2)):
        assert len(list((dataset / data[split]).glob("*.jpg"))) == n
        assert len(list((dataset / "labels" / split).glob("*.txt"))) == n
    info = json.loads((dataset / "toyworld.json").read_text())
    assert info["seed"] == 3 and info["images"] == {"train": 2, "val": 1, "test": 2}


def test_scene_yaml_loads_as_a_patchkit_scene(dataset):
    from patchkit.scenes.scene import SceneConfig, load_scene

    scene = load_scene(SceneConfig(path=str(dataset / "scene.yaml"), split="test", labels="official", min_size=1.0), imgsz=320,
                       keep_empty=True)
    lines = sum(len(p.read_text().splitlines()) for p in (dataset / "labels" / "test").glob("*.txt"))
    assert len(scene) == 2 and scene.n_boxes == lines


def test_ultralytics_accepts_the_dataset_offline(dataset):
    from patchkit.toyworld.offline import offline_ultralytics

    with offline_ultralytics():
        from ultralytics.data.utils import check_det_dataset

        data = check_det_dataset(str(dataset / "data.yaml"))
    assert data["nc"] == 1 and data["names"] == {0: "person"}


def test_offline_guard_blocks_downloads(tmp_path):
    from patchkit.toyworld.offline import DownloadBlocked, offline_ultralytics

    local = tmp_path / "w.pt"
    local.write_bytes(b"x")
    with offline_ultralytics():
        from ultralytics.utils import checks, downloads

        with pytest.raises(DownloadBlocked):
            downloads.safe_download("https://example.com/yolo11n.pt")
        with pytest.raises(DownloadBlocked):
            downloads.attempt_download_asset("yolo11n.pt")
        assert downloads.attempt_download_asset(str(local)) == str(local)
        assert checks.check_font("Arial.ttf") is None
        blocked = downloads.safe_download
    from ultralytics.utils import downloads as after

    assert after.safe_download is not blocked  # restored on exit


def test_bad_input_is_a_one_line_error(tmp_path, capsys):
    assert main(["toyworld", "generate", "--out", str(tmp_path), "--n-train", "-1"]) == 2
    bad = tmp_path / "gen.yaml"
    bad.write_text("generator:\n  persns: [1, 2]\n")
    assert main(["toyworld", "generate", "--out", str(tmp_path), "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "persns" in err[-1] and "persons" in err[-1]


def test_video_command(tmp_path, capsys):
    assert main(["toyworld", "video", "--out", str(tmp_path), "--frames", "3", "--seed", "1"]) == 0
    js = json.loads((tmp_path / "walk.json").read_text())
    assert len(js["frames"]) == 3 and (tmp_path / "walk.mp4").stat().st_size > 0
    chest = np.array(js["frames"][0]["patch_quad"])
    apron = tmp_path / "apron"
    assert main(["toyworld", "video", "--out", str(apron), "--frames", "3", "--seed", "1",
                 "--width", "1.7", "--aspect", "2"]) == 0
    quad = np.array(json.loads((apron / "walk.json").read_text())["frames"][0]["patch_quad"])
    width = np.linalg.norm(quad[1] - quad[0]) / np.linalg.norm(chest[1] - chest[0])
    height = np.linalg.norm(quad[3] - quad[0]) / np.linalg.norm(chest[3] - chest[0])
    assert width == pytest.approx(2.0, rel=0.01)  # 1.7 vs the default 0.85 shoulder widths
    assert height == pytest.approx(4.0, rel=0.01)  # twice as wide and twice as tall as wide
    capsys.readouterr()
    assert main(["toyworld", "video", "--out", str(apron), "--aspect", "0", "--exist-ok"]) == 2  # apron holds a walk
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--aspect" in err[0]


def test_score_a_rendered_walk_against_its_true_boxes(tmp_path, capsys):
    """``toyworld video`` writes walk.json beside walk.mp4; ``score --reference boxes`` reads it."""
    assert main(["toyworld", "video", "--out", str(tmp_path), "--frames", "8", "--seed", "2"]) == 0
    out = tmp_path / "score"
    args = ["score", str(tmp_path / "walk.mp4"), "--detector", "toy", "--imgsz", "320", "--reference", "boxes",
            "--out", str(out), "--json", str(tmp_path / "s.json"), "--quiet", "--no-video", "--bootstrap", "50"]
    assert main(args) == 0
    video = json.loads((tmp_path / "s.json").read_text())["videos"][0]
    assert video["frames"] == 8 and video["frames_with_target"] == 8
    assert video["detection_rate"]["0.25"] >= 0.5  # the toy detector finds the walker (random-noise print)
    (tmp_path / "walk.json").unlink()
    capsys.readouterr()
    assert main(args + ["--exist-ok"]) == 2  # OUT holds the first scoring
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "walk.json" in err[0] and "per-frame boxes" in err[0]
