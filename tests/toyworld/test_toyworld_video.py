"""Walking sequences: the worn patch follows the body, the figure approaches."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from patchkit.capture.film import camera_filter, printed_appearance
from patchkit.toyworld import render_walk

SIZE = (208, 160)


@pytest.fixture(scope="module")
def walks():
    rng = np.random.default_rng(0)
    patch = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    control = np.full((32, 32, 3), 127, np.uint8)
    return render_walk(patch, seed=2, n_frames=10, size=SIZE), render_walk(control, seed=2, n_frames=10, size=SIZE)


def test_shapes(walks):
    seq, _ = walks
    assert seq.frames.shape == (10, SIZE[1], SIZE[0], 3) and seq.frames.dtype == np.uint8
    assert seq.boxes.shape == (10, 4) and seq.quads.shape == (10, 4, 2)
    js = seq.to_json()
    assert len(js["frames"]) == 10 and js["frames"][0]["patch_quad"] is not None


def test_patch_quad_inside_person_box(walks):
    seq, _ = walks
    assert not np.isnan(seq.quads).any()
    x1, y1, x2, y2 = (seq.boxes[:, i, None] for i in range(4))
    qx, qy = seq.quads[..., 0], seq.quads[..., 1]
    assert ((qx >= x1) & (qx <= x2) & (qy >= y1) & (qy <= y2)).all()
    # on the torso: the upper half of the figure, and narrower than it
    cy = qy.mean(1)
    assert ((cy > y1[:, 0]) & (cy < (y1[:, 0] + y2[:, 0]) / 2)).all()
    assert ((qx.max(1) - qx.min(1)) < 0.8 * (x2 - x1)[:, 0]).all()


def test_figure_grows_as_it_approaches(walks):
    seq, _ = walks
    h = seq.boxes[:, 3] - seq.boxes[:, 1]
    assert h[-1] > 2.5 * h[0]
    assert (np.diff(h) > -2).all()  # walking towards the camera: never shrinks (beyond the gait)
    side = seq.quads[:, 1, 0] - seq.quads[:, 0, 0]
    assert side[-1] > 2.5 * side[0]
    assert abs(seq.boxes[-1].mean() - seq.boxes[0].mean()) > 5  # it moves across, too


def test_patch_and_control_differ_only_on_the_patch(walks):
    seq, ctrl = walks
    assert np.array_equal(seq.boxes, ctrl.boxes) and np.array_equal(seq.quads, ctrl.quads, equal_nan=True)
    for t in (0, 9):
        diff = np.abs(seq.frames[t].astype(int) - ctrl.frames[t].astype(int)).max(-1)
        q = seq.quads[t]
        m = 4  # blur and anti-aliasing reach a few pixels
        ys, xs = np.nonzero(diff)
        assert len(xs) > 0
        assert xs.min() >= q[:, 0].min() - m and xs.max() <= q[:, 0].max() + m
        assert ys.min() >= q[:, 1].min() - m and ys.max() <= q[:, 1].max() + m


def test_printer_and_camera_simulator_plug_in():
    from patchkit.capture.presets import preset

    pr = preset("sim-gamut")
    patch = np.random.default_rng(1).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    plain = render_walk(patch, seed=3, n_frames=2, size=SIZE)
    sim = render_walk(patch, seed=3, n_frames=2, size=SIZE, appearance=printed_appearance(pr.printer()),
                      frame_filter=camera_filter(pr.camera(), seed=0))
    assert sim.frames.shape == plain.frames.shape
    assert np.array_equal(sim.boxes, plain.boxes)
    assert not np.array_equal(sim.frames, plain.frames)
    # the printed patch is duller than the digital one (printers compress the gamut)
    q = plain.quads[-1]
    x0, x1 = int(q[:, 0].min()) + 2, int(q[:, 0].max()) - 2
    y0, y1 = int(q[:, 1].min()) + 2, int(q[:, 1].max()) - 2
    assert sim.frames[-1, y0:y1, x0:x1].std() < plain.frames[-1, y0:y1, x0:x1].std()


def test_a_tall_print_hangs_from_the_collar_like_an_apron(walks):
    """``patch_aspect`` > 1: same width, ``aspect`` x as tall, top edge near the shoulders, down
    over the legs; the walk itself (boxes) is unchanged where the print does not widen it."""
    chest, _ = walks
    patch = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    apron = render_walk(patch, seed=2, n_frames=10, size=SIZE, patch_aspect=2.4)
    w = np.linalg.norm(apron.quads[:, 1] - apron.quads[:, 0], axis=1)
    h = np.linalg.norm(apron.quads[:, 3] - apron.quads[:, 0], axis=1)
    np.testing.assert_allclose(w, np.linalg.norm(chest.quads[:, 1] - chest.quads[:, 0], axis=1), rtol=2e-3)  # weak perspective: depth moves
    chest_h = np.linalg.norm(chest.quads[:, 3] - chest.quads[:, 0], axis=1)
    np.testing.assert_allclose(h / chest_h, 2.4, rtol=2e-3)  # in the image, the yaw narrows both alike
    y1, y2 = apron.boxes[:, 1], apron.boxes[:, 3]
    top, bottom = apron.quads[:, :2, 1].mean(1), apron.quads[:, 2:, 1].mean(1)
    assert ((top - y1) / (y2 - y1) < 0.25).all()  # at the collar, below the head
    assert ((bottom - y1) / (y2 - y1) > 0.55).all()  # down over the thighs
    long = render_walk(patch, seed=2, n_frames=10, size=SIZE, patch_size=1.6, patch_aspect=2.4)  # the demo's
    y1, y2 = long.boxes[:, 1], long.boxes[:, 3]
    assert ((long.quads[:, 2:, 1].mean(1) - y1) / (y2 - y1) > 0.85).all()  # to the shins
    with pytest.raises(ValueError, match="aspect"):
        render_walk(patch, n_frames=1, size=SIZE, patch_aspect=0.0)


def test_an_apron_hangs_in_front_of_the_legs_and_behind_the_arms():
    """Where the apron shows: the pixels that change between a black and a white apron. Over the
    legs (its lower half) it shows everywhere, in every frame: a leg cannot step through cloth
    hanging in front of it. In its upper half the arms, which stay outside an apron, cover part."""
    kw = dict(seed=2, n_frames=10, size=SIZE, patch_size=1.8, patch_aspect=2.2)
    black = render_walk(np.zeros((8, 8, 3), np.uint8), **kw)
    white = render_walk(np.full((8, 8, 3), 255, np.uint8), **kw)
    upper, lower = [], []
    for a, b, quad in zip(black.frames, white.frames, black.quads):
        shown = np.abs(a.astype(int) - b.astype(int)).sum(-1) > 60
        inside = np.zeros(shown.shape, np.uint8)
        cv2.fillPoly(inside, [np.round(quad).astype(np.int32)], 1)
        inside = cv2.erode(inside, np.ones((3, 3), np.uint8)).astype(bool)  # not its anti-aliased rim
        mid = int(quad[:, 1].mean())
        upper.append(shown[:mid][inside[:mid]].mean())
        lower.append(shown[mid:][inside[mid:]].mean())
    assert min(lower) >= 0.99
    assert max(upper) < 0.97
