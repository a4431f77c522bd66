"""Digital evaluation: conditions, references, metrics, test-time EOT, transfer matrix, outputs."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from patchkit.eot import EOTConfig
from patchkit.errors import PatchkitError
from patchkit.evaluation import EvalOptions, build_conditions, load_patch, run_evaluation

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = {"detector", "condition", "reference", "ap50", "ap50_95", "asr", "detection_rate", "n_images", "n_boxes"}


def _blue_patch(tmp_path: Path, trained_on: str = "blueA") -> Path:
    p = tmp_path / "blue.png"
    Image.fromarray(np.tile(np.array([0, 0, 255], np.uint8), (32, 32, 1))).save(p)
    p.with_suffix(".json").write_text(json.dumps({"detector": {"file": trained_on, "sha256": "x"},
                                                  "placement": {"scale": 0.2, "offset_x": 0.0, "offset_y": 0.0}}))
    return p


def _run(tmp_path, blue_detector, canvases, eot=None, samples=1, out="out", sens=(10.0, 1.0), refs=("self", "labels")):
    images, boxes = canvases()
    conditions, warnings = build_conditions([_blue_patch(tmp_path)], seed=0)
    assert [c.name for c in conditions] == ["clean", "random", "gray", "blue"] and not warnings
    opts = EvalOptions(thresholds=(0.1, 0.25, 0.5, 0.9), eot=eot, samples=samples, batch=4)
    dets = [(name, blue_detector(s)) for name, s in zip("AB", sens)]
    return run_evaluation(dets, images, boxes, conditions, opts, refs, {"scene": "synthetic"},
                          out_dir=tmp_path / out, json_path=tmp_path / f"{out}.json", plots=out == "out")


def test_metrics_per_detector_reference_condition(tmp_path, blue_detector, canvases):
    res = _run(tmp_path, blue_detector, canvases)
    rows = {(r["detector"], r["reference"], r["condition"]): r for r in res["results"]}
    assert len(rows) == 2 * 2 * 4
    for r in rows.values():
        assert SCHEMA <= set(r)
        assert r["n_images"] == 6 and r["n_boxes"] == 9
        assert set(r["detection_rate"]) == {"0.1", "0.25", "0.5", "0.9"}
    for det in ("A", "B"):
        for ref in ("self", "labels"):
            clean = rows[(det, ref, "clean")]
            assert clean["ap50"] == 1.0 and clean["ap50_95"] == 1.0 and clean["asr"] == 0.0
            assert clean["detection_rate"] == {"0.1": 1.0, "0.25": 1.0, "0.5": 1.0, "0.9": 1.0}
            for control in ("random", "gray"):  # same size and placement, no effect
                assert rows[(det, ref, control)]["detection_rate"]["0.5"] == 1.0
                assert rows[(det, ref, control)]["asr"] == pytest.approx(0.0, abs=1e-9)
    # detector A (sensitive): the blue patch hides every person
    a = rows[("A", "labels", "blue")]
    assert a["ap50"] == 0.0 and a["asr"] == 1.0 and a["asr_at"]["0.1"] == 1.0
    assert a["hallucinations_per_image"]["0.1"] == 0.0
    # detector B: persons still found, with lower confidence (~0.9 * (1 - 1 * 0.124))
    b = rows[("B", "labels", "blue")]
    assert b["ap50"] == 1.0 and b["detection_rate"]["0.5"] == 1.0 and b["detection_rate"]["0.9"] == 0.0
    assert b["asr_at"]["0.9"] == 1.0 and b["asr"] == 0.0
    t = next(t for t in res["transfer"] if t["metric"] == "asr" and t["reference"] == "labels")
    assert t["rows"] == ["blue"] and t["trained_on"] == ["blueA"] and t["columns"] == ["A", "B"]
    assert t["values"] == [[1.0, 0.0]]
    # outputs: JSON (strict), CSV, plots
    data = json.loads((tmp_path / "out.json").read_text())
    assert len(data["results"]) == 16 and data["meta"]["placement"]["scale"] == 0.2
    with open(tmp_path / "out" / "evaluation.csv") as f:
        lines = list(csv.DictReader(f))
    assert len(lines) == 16 and float(lines[0]["detection_rate@0.5"]) == 1.0
    for stem in ("A_self", "A_labels", "B_self", "B_labels"):
        assert (tmp_path / "out" / f"pr_{stem}.png").is_file() and (tmp_path / "out" / f"asr_{stem}.png").is_file()


def test_test_time_eot_is_seeded_and_reports_spread(tmp_path, blue_detector, canvases):
    cfg = EOTConfig()
    kw = dict(eot=cfg, samples=3, sens=(2.0,), refs=("self",))
    r1 = _run(tmp_path, blue_detector, canvases, out="e1", **kw)
    r2 = _run(tmp_path, blue_detector, canvases, out="e2", **kw)
    assert [r["ap50_samples"] for r in r1["results"]] == [r["ap50_samples"] for r in r2["results"]]
    assert [r["detection_rate"] for r in r1["results"]] == [r["detection_rate"] for r in r2["results"]]
    b = next(r for r in r1["results"] if r["condition"] == "blue")
    assert b["eot_samples"] == 3 and len(b["ap50_samples"]) == 3 and b["ap50_std"] is not None
    assert b["ap50"] == pytest.approx(np.mean(b["ap50_samples"]))
    assert set(b["detection_rate_std"]) == {"0.1", "0.25", "0.5", "0.9"}
    clean = next(r for r in r1["results"] if r["condition"] == "clean")
    assert clean["eot_samples"] == 1  # no patch, no draw


def test_patch_modes(tmp_path):
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 3] = 128
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    patch, warnings = load_patch(tmp_path / "alpha.png")
    assert patch.shape == (3, 16, 16) and any("transparent" in w and "alpha.png" in w for w in warnings)
    # a half-transparent black patch prints as mid gray on white paper, not as black
    assert patch.mean().item() == pytest.approx(127 / 255, abs=1 / 255)
    opaque = np.zeros((16, 16, 4), np.uint8)
    opaque[..., 3] = 255
    Image.fromarray(opaque, "RGBA").save(tmp_path / "opaque.png")
    solid, quiet = load_patch(tmp_path / "opaque.png")
    assert solid.max().item() == 0.0 and not quiet
    Image.fromarray(np.full((16, 16), 90, np.uint8), "L").save(tmp_path / "gray.png")
    assert any("gray-scale" in w for w in load_patch(tmp_path / "gray.png")[1])
    Image.new("CMYK", (16, 16)).save(tmp_path / "cmyk.jpg")
    with pytest.raises(PatchkitError, match=r"cmyk\.jpg.*mode CMYK"):
        load_patch(tmp_path / "cmyk.jpg")
    Image.fromarray(np.zeros((16, 16), np.uint16)).save(tmp_path / "deep.png")
    with pytest.raises(PatchkitError, match=r"deep\.png"):
        load_patch(tmp_path / "deep.png")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(PatchkitError, match=r"junk\.png"):
        build_conditions([tmp_path / "junk.png"])


@pytest.mark.shared
def test_evaluate_cli_pennfudan_yolov5n(shared_data, tmp_path):
    from patchkit.cli import evaluate as evaluate_cli

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "noise_patch.png")
    parser = argparse.ArgumentParser()
    evaluate_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args([
        "evaluate", "--detector", str(shared_data / "weights" / "yolov5n-v7.0.pt"),
        "--scene", str(ROOT / "scenes" / "pennfudan.yaml"), "--split", "test", "--max-images", "3",
        "--imgsz", "320", "--patch", str(tmp_path / "noise_patch.png"), "--no-plots",
        "--thresholds", "0.25,0.5", "--json", str(tmp_path / "eval.json"), "--out", str(tmp_path / "out")])
    assert args.func(args) == 0
    data = json.loads((tmp_path / "eval.json").read_text())
    rows = {(r["reference"], r["condition"]): r for r in data["results"]}
    assert set(rows) == {(ref, c) for ref in ("self", "labels") for c in ("clean", "random", "gray", "noise_patch")}
    assert rows[("self", "clean")]["ap50"] == 1.0  # the literature's convention, by construction
    assert rows[("labels", "clean")]["n_boxes"] >= 3 and 0 < rows[("labels", "clean")]["ap50"] <= 1
    for r in data["results"]:
        assert SCHEMA <= set(r) and r["n_images"] == 3
        assert 0.0 <= r["ap50"] <= 1.0 and set(r["detection_rate"]) == {"0.25", "0.5"}
    assert (tmp_path / "out" / "evaluation.csv").is_file()
