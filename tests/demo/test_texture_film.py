"""Filming a texture suit (issue 15): printed tile, suit walk, deterministic for a seed."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from patchkit.capture.film_texture import film_texture, printed_tile, texture_walk, tile_to_uint8
from patchkit.demo.pipeline import printer_profile

PRINTER = "sim-halftone"


def _frames(path):
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        out.append(f)
    cap.release()
    return np.stack(out)


@pytest.fixture(scope="module")
def tile():
    return torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(7))


def test_texture_walk_is_deterministic_for_a_seed(tile):
    raster = np.kron(tile_to_uint8(tile), np.ones((4, 4, 1), np.uint8))
    look = printed_tile(raster, PRINTER)
    assert look.shape == (3, 128, 128) and 0.0 <= float(look.min()) <= float(look.max()) <= 1.0
    a = texture_walk(look, 20.0, seed=1, frames=5, printer=PRINTER, size=(208, 160))
    b = texture_walk(look, 20.0, seed=1, frames=5, printer=PRINTER, size=(208, 160))
    c = texture_walk(look, 20.0, seed=2, frames=5, printer=PRINTER, size=(208, 160))
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.boxes, b.boxes)
    assert not np.array_equal(a.frames, c.frames)


def test_film_texture_writes_the_print_and_reproducible_videos(tmp_path, tile):
    _, profile = printer_profile(PRINTER)
    runs = [film_texture(tile, "suit", 20.0, PRINTER, profile, tmp_path / k, walks=1, frames=6, dpi=50.0)
            for k in ("a", "b")]
    for videos in runs:
        assert [v.name for v in videos] == ["walk0_suit.mp4"]
    assert (tmp_path / "a" / "suit.pdf").read_bytes().startswith(b"%PDF")
    layout = json.loads((tmp_path / "a" / "suit.json").read_text(encoding="utf-8"))
    assert layout["size_mm"] == pytest.approx([200.0, 200.0], abs=0.5)
    fa, fb = _frames(runs[0][0]), _frames(runs[1][0])
    assert fa.shape[0] == 6 and np.array_equal(fa, fb)
    ja = json.loads(runs[0][0].with_suffix(".json").read_text(encoding="utf-8"))
    jb = json.loads(runs[1][0].with_suffix(".json").read_text(encoding="utf-8"))
    assert ja == jb and all(f["person_box"][2] > f["person_box"][0] for f in ja["frames"])


def test_control_suit_has_the_same_coverage(tmp_path, tile):
    """A random-texture control walk is the same walk: same walker boxes frame by frame."""
    _, profile = printer_profile(PRINTER)
    control = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(8))
    v1 = film_texture(tile, "texture", 20.0, PRINTER, profile, tmp_path, walks=1, frames=4, dpi=50.0)
    v2 = film_texture(control, "control", 20.0, PRINTER, profile, tmp_path, walks=1, frames=4, dpi=50.0)
    j1 = json.loads(v1[0].with_suffix(".json").read_text(encoding="utf-8"))
    j2 = json.loads(v2[0].with_suffix(".json").read_text(encoding="utf-8"))
    assert [f["person_box"] for f in j1["frames"]] == [f["person_box"] for f in j2["frames"]]
    assert not np.array_equal(_frames(v1[0]), _frames(v2[0]))


def test_digital_printed_condition_matches_the_film_print(tile):
    """The digital ``printed`` condition (the calibrated profile's colours, what the training EOT
    prints with) tracks the film's printed tile up to the camera's exposure: same contrast loss."""
    from patchkit.demo.texture import printed_colours

    _, profile = printer_profile(PRINTER)
    pred = printed_colours(tile, profile)
    assert pred.shape == tile.shape and 0.0 <= float(pred.min()) and float(pred.max()) <= 1.0
    assert printed_colours(tile, None) is tile
    look = torch.nn.functional.avg_pool2d(printed_tile(np.repeat(np.repeat(tile_to_uint8(tile), 4, 0), 4, 1),
                                                       PRINTER)[None], 4)[0]
    corr = np.corrcoef(pred.flatten().numpy(), look.flatten().numpy())[0, 1]
    assert corr > 0.95, corr
    assert float(pred.std()) < float(tile.std())  # the print loses contrast
