"""Scoring many videos with several worker processes gives the single-process report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from patchkit.io import atomic_write_json
from patchkit.toyworld import render_walk
from patchkit.video import ScoreRunConfig, ScoreOptions, score_inputs
from patchkit.video.parallel import DetectorSpec, score_parallel
from patchkit.video.summary import BootstrapConfig
from patchkit.io import write_video
from patchkit.video.target import ReferenceFactory


@pytest.fixture(scope="module")
def walks(tmp_path_factory):
    root = tmp_path_factory.mktemp("walks")
    rng = np.random.default_rng(0)
    paths = []
    for seed in range(3):
        seq = render_walk(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), seed=seed, n_frames=6)
        write_video(root / f"walk{seed}.mp4", seq.frames, fps=seq.fps)
        atomic_write_json(root / f"walk{seed}.json", seq.to_json())
        paths.append(str(root / f"walk{seed}.mp4"))
    return paths


def _strip(result: dict) -> dict:
    drop = {"seconds", "frames_per_second", "frames_jsonl", "files", "jobs"}
    return json.loads(json.dumps({k: v for k, v in result.items() if k not in drop}))


def test_two_workers_give_the_single_process_report(walks, tmp_path):
    spec = DetectorSpec("toy", imgsz=320)
    opts = ScoreOptions(thresholds=(0.1, 0.25), batch=4)
    boot = BootstrapConfig(resamples=200, seed=0)
    refs = ReferenceFactory("boxes")
    one = score_inputs(walks[:2], spec.build(), opts, refs, control=walks[2:],
                       config=ScoreRunConfig(out_dir=tmp_path / "one", progress=False, bootstrap=boot))
    two = score_parallel(walks[:2], spec, opts, refs, control=walks[2:],
                         config=ScoreRunConfig(out_dir=tmp_path / "two", progress=False, bootstrap=boot), jobs=2)
    assert two["jobs"] == 2
    assert _strip(two) == _strip(one)
    lines = (tmp_path / "two" / "frames.jsonl").read_text().splitlines()
    assert len(lines) == 18 and {json.loads(x)["video"] for x in lines} == set(walks)
    assert sorted(p.name for p in (tmp_path / "two").glob("*_annotated.mp4")) == sorted(
        p.name for p in (tmp_path / "one").glob("*_annotated.mp4"))
    assert (tmp_path / "two" / "report.md").is_file()


def test_cli_jobs_flag(walks, tmp_path, capsys):
    from patchkit.cli.main import main

    args = ["score", *walks[:2], "--control", walks[2], "--detector", "toy", "--imgsz", "320", "--reference", "boxes",
            "--out", str(tmp_path), "--quiet", "--no-video", "--bootstrap", "50", "--json", str(tmp_path / "s.json")]
    assert main(args + ["--jobs", "2"]) == 0
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["jobs"] == 2 and len(s["videos"]) == 3 and s["pooled"]["test"]["videos"] == 2
    assert main(args + ["--jobs", "0", "--exist-ok"]) == 2  # OUT holds the first scoring
    assert "--jobs" in capsys.readouterr().err
