"""``patchkit detect`` writes the JSON of docs/interfaces.md and reports bad inputs per file."""

from __future__ import annotations

import json
import shutil

import pytest

from patchkit.cli.main import main


def _check_schema(doc: dict, detector: str, n_images: int) -> None:
    assert doc["detector"] == detector and doc["imgsz"] == 320
    assert doc["conf"] == pytest.approx(0.3) and doc["iou"] == pytest.approx(0.5)
    assert len(doc["images"]) == n_images
    for rec in doc["images"]:
        assert set(rec) >= {"path", "width", "height", "boxes"}
        assert isinstance(rec["width"], int) and isinstance(rec["height"], int)
        confs = [b["conf"] for b in rec["boxes"]]
        assert confs == sorted(confs, reverse=True)
        for b in rec["boxes"]:
            assert set(b) == {"xyxy", "conf", "cls", "name"}
            x1, y1, x2, y2 = b["xyxy"]
            assert 0 <= x1 <= x2 <= rec["width"] and 0 <= y1 <= y2 <= rec["height"]
            assert 0.3 < b["conf"] <= 1 and isinstance(b["cls"], int) and isinstance(b["name"], str)


def test_cli_writes_the_json_contract(tmp_path, assets, lively_checkpoint, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    shutil.copy(assets / "zidane.jpg", folder / "zidane.jpg")
    ckpt = lively_checkpoint("yolov8n.yaml")
    out = tmp_path / "out" / "dets.json"
    argv = ["detect", str(assets / "bus.jpg"), str(folder), "--detector", str(ckpt), "--imgsz", "320",
            "--conf", "0.3", "--iou", "0.5", "--json", str(out)]
    assert main(argv) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    _check_schema(doc, str(ckpt), 2)
    assert [r["path"] for r in doc["images"]] == [str(assets / "bus.jpg"), str(folder / "zidane.jpg")]
    assert (doc["images"][0]["width"], doc["images"][0]["height"]) == (810, 1080)
    assert sum(len(r["boxes"]) for r in doc["images"]) > 0
    stdout = capsys.readouterr().out
    assert "bus.jpg (810x1080)" in stdout and "zidane.jpg (1280x720)" in stdout
    assert not list(out.parent.glob(".*"))  # atomic write left no temporary file

    wanted = doc["images"][0]["boxes"][0]["cls"]
    assert main(argv[:-2] + ["--classes", str(wanted), "--json", str(out)]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert all(b["cls"] == wanted for r in doc["images"] for b in r["boxes"])


def test_cli_bad_images_are_reported_and_skipped(tmp_path, assets, lively_checkpoint, capsys):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    missing = tmp_path / "missing.png"
    out = tmp_path / "dets.json"
    argv = ["detect", str(bad), str(assets / "bus.jpg"), str(missing), "--detector",
            str(lively_checkpoint("yolov8n.yaml")), "--imgsz", "320", "--conf", "0.3", "--iou", "0.5", "--json", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert any(str(bad) in line for line in err) and any(str(missing) in line for line in err)
    assert "2 of 3 images failed" in err[-1]
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert [r["path"] for r in doc["images"]] == [str(assets / "bus.jpg")]
    assert {f["path"] for f in doc["failed"]} == {str(bad), str(missing)}


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--detector", "nothere.pt"], "not found"),
        (["--detector", "yolov8n.yaml", "--conf", "1.5"], "--conf"),
        (["--detector", "yolov8n.yaml", "--classes", "80"], "--classes"),
    ],
)
def test_cli_usage_errors_exit_2_with_one_line(assets, capsys, extra, words):
    assert main(["detect", str(assets / "bus.jpg"), "--imgsz", "320", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]


@pytest.mark.shared
def test_cli_yolov5_finds_the_people_on_the_bus(shared_data, assets, tmp_path):
    out = tmp_path / "dets.json"
    assert main(["detect", str(assets / "bus.jpg"), "--detector", str(shared_data / "weights" / "yolov5n-v7.0.pt"),
                 "--json", str(out), "--classes", "0"]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["imgsz"] == 640 and doc["conf"] == 0.25 and doc["iou"] == 0.45
    boxes = doc["images"][0]["boxes"]
    assert [b["name"] for b in boxes] == ["person"] * 4
    assert [round(b["conf"], 2) for b in boxes] == pytest.approx([0.87, 0.77, 0.76, 0.48], abs=0.011)
