"""``patchkit demo``: the shortened demo end to end, offline, with a real effect."""

from __future__ import annotations

import json

import pytest

from patchkit.cli.main import main


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--quick", "--out", str(out), "--quiet"]) == 0
    return out, json.loads((out / "summary.json").read_text(encoding="utf-8"))


def test_summary_follows_the_interface(demo):
    _, s = demo
    assert set(s["detection_rate"]) >= {"clean", "random", "patch"}
    assert set(s["video"]) == {"control", "patch"}
    rates = list(s["detection_rate"].values()) + list(s["video"].values())
    assert all(0.0 <= r <= 1.0 for r in rates)
    assert s["seconds"] > 0 and s["conf"] == 0.25
    assert s["video_frames"]["patch"] == s["video_frames"]["control"] > 0


def test_trained_patch_lowers_detection_where_a_random_patch_does_not(demo):
    """Digital, on unseen images, and printed, worn and filmed. The shortened demo trains 128
    steps, so the digital margins are modest; filmed, it already meets the issue's target (at most
    half the control's detection rate). The full demo's numbers are in the README."""
    _, s = demo
    assert s["detection_rate"]["patch"] <= s["detection_rate"]["random"] - 0.05
    assert s["ap50"]["patch"] <= s["ap50"]["random"] - 0.07
    assert s["video_mean_conf"]["patch"] <= s["video_mean_conf"]["control"] - 0.2
    assert s["video"]["patch"] <= 0.5 * s["video"]["control"]
    # the looser reading (any person box touching the walker) counts every IoU-0.5 hit and more
    for k in ("control", "patch"):
        assert s["video"][k] <= s["video_touching"][k] <= 1.0
    assert s["video_touching"]["patch"] < s["video_touching"]["control"]


def test_report_folder_has_everything_it_links(demo):
    out, s = demo
    assert (out / "patch.png").is_file() and (out / "film" / "patch.pdf").read_bytes().startswith(b"%PDF")
    report = (out / "report.md").read_text(encoding="utf-8")
    for plot in s["files"]["plots"]:
        assert (out / plot).is_file() and plot in report
    assert "plots/detection_rates.png" in s["files"]["plots"] and "plots/frames.png" in s["files"]["plots"]
    assert s["files"]["annotated_videos"] and all((out / v).stat().st_size > 0 for v in s["files"]["annotated_videos"])
    frames = (out / "score" / "frames.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(frames) == 2 * s["video_frames"]["patch"]  # every frame of both videos, flushed
    assert json.loads((out / "film" / "walk0_patch.json").read_text())["frames"][0]["person_box"]
    # printed at the size it is worn: an apron 1.8 shoulder widths (340 mm) wide, 2.2 x as tall
    layout = json.loads((out / "film" / "patch.json").read_text(encoding="utf-8"))
    assert layout["size_mm"] == pytest.approx([612.0, 1346.4], abs=0.5) == s["print_mm"]


def test_rerun_reuses_the_training_and_reproduces_the_numbers(demo, capsys):
    out, s = demo
    capsys.readouterr()
    assert main(["demo", "--quick", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "continuing" in printed and "trained print" in printed
    again = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert again["detection_rate"] == s["detection_rate"] and again["video"] == s["video"]


@pytest.mark.parametrize("override, words", [("attack.epochs=0", "attack.epochs=0"),
                                             ("atack.epochs=3", "attack"),
                                             ("printer=sim-laser", "sim-laser"),
                                             ("film.aspect=0", "film.aspect=0")])
def test_bad_config_is_a_one_line_error(tmp_path, capsys, override, words):
    assert main(["demo", "--out", str(tmp_path), "--quiet", override]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]
