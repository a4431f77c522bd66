"""The literature protocol shared by benchmarks/patch_zoo.py and ``evaluate --patch FOLDER``."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from PIL import Image

from patchkit.errors import PatchkitError
from patchkit.evaluation.conditions import build_conditions
from patchkit.evaluation.protocol import LITERATURE_PLACEMENT, ProtocolCache, expand_patch_paths, score_patches

BLUE = torch.tensor([0.0, 0.0, 1.0]).view(3, 1, 1)


def test_folders_expand_to_their_patches_sorted_and_recursively(tmp_path):
    for rel in ("a/z.png", "a/b.png", "a/sub/c.png", "d.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(tmp_path / rel)
    (tmp_path / "a" / "notes.txt").write_text("not a patch")
    got = expand_patch_paths([tmp_path / "a", tmp_path / "d.png"])
    assert [p.relative_to(tmp_path).as_posix() for p in got] == ["a/b.png", "a/sub/c.png", "a/z.png", "d.png"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(PatchkitError, match="empty"):
        expand_patch_paths([tmp_path / "empty"])


def test_two_patches_with_one_name_are_renamed_with_a_warning(tmp_path):
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / folder / "gray.png")
    conditions, warnings = build_conditions(expand_patch_paths([tmp_path / "x", tmp_path / "y"]))
    assert [c.name for c in conditions][3:] == ["gray_2", "gray_3"]  # 'gray' is the control's name
    assert len(warnings) == 2 and all("reported as" in w for w in warnings)


def test_protocol_scores_the_patch_effect_and_caches_it(tmp_path, blue_detector, canvases):
    images, boxes = canvases(6)
    det = blue_detector(sensitivity=10.0)  # the 0.2 x diagonal patch covers 12 % of a box
    patches = {"clean": None, "gray": torch.full((3, 32, 32), 0.5), "blue": BLUE.expand(3, 32, 32).clone()}
    cache = ProtocolCache(tmp_path / "scores.json")
    scores = score_patches(det, "fakesha", images, boxes, patches, 192, cache=cache)
    assert scores["clean"].detection_rate == 1.0 and scores["gray"].detection_rate == 1.0
    assert scores["blue"].detection_rate == 0.0 and scores["blue"].ap50 < 0.5
    assert LITERATURE_PLACEMENT.scale == 0.2 and LITERATURE_PLACEMENT.offset_y == 0.0
    saved = json.loads((tmp_path / "scores.json").read_text())
    assert len(saved) == 3
    # a re-run reads the cache: a detector that would now see nothing is never called
    again = score_patches(blue_detector(sensitivity=100.0, base=0.0), "fakesha", images, boxes, patches, 192,
                          cache=ProtocolCache(tmp_path / "scores.json"))
    assert again == scores
    (tmp_path / "scores.json").write_text("{broken")
    with pytest.raises(PatchkitError, match="scores.json"):
        ProtocolCache(tmp_path / "scores.json")


@pytest.mark.shared
def test_evaluate_takes_a_folder_of_patches(shared_data, tmp_path):
    from patchkit.cli import evaluate as evaluate_cli

    rng = np.random.default_rng(0)
    (tmp_path / "zoo").mkdir()
    for name in ("one", "two"):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "zoo" / f"{name}.png")
    parser = argparse.ArgumentParser()
    evaluate_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args([
        "evaluate", "--detector", str(shared_data / "weights" / "yolov5n-v7.0.pt"), "--scene", "scenes/pennfudan.yaml",
        "--max-images", "2", "--imgsz", "256", "--patch", str(tmp_path / "zoo"), "--no-plots",
        "--reference", "labels", "--json", str(tmp_path / "eval.json")])
    assert args.func(args) == 0
    conditions = {r["condition"] for r in json.loads((tmp_path / "eval.json").read_text())["results"]}
    assert conditions == {"clean", "random", "gray", "one", "two"}
