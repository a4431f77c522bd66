"""Synthetic captures with a known camera pose, for tests, demos and benchmarks.

:func:`render_board` draws a patch with ArUco markers around it, as a print would look;
:func:`composite_board` pastes that print into a frame as a pinhole camera at a given pose sees
it (``cv2.warpPerspective`` of the plane homography ``K [r1 r2 t]``). Frames are RGB uint8;
:func:`patchkit.io.write_video` writes them to a file.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from patchkit.markers import DEFAULT_DICTIONARY, MarkerSpec, PinholeCamera, marker_image


@dataclass
class Board:
    """A rendered print: ``image`` ``(H, W, 3)`` uint8 RGB at ``px_per_mm``, and the spec (sizes
    and layout in mm, origin at the top-left of the print)."""

    image: np.ndarray
    px_per_mm: float
    spec: MarkerSpec

    @property
    def size_mm(self) -> tuple[float, float]:
        h, w = self.image.shape[:2]
        return w / self.px_per_mm, h / self.px_per_mm


def render_board(
    patch: np.ndarray | None = None,
    patch_mm: tuple[float, float] = (200.0, 200.0),
    marker_mm: float = 50.0,
    margin_mm: float = 10.0,
    ids: tuple[int, int, int, int] = (0, 1, 2, 3),
    dictionary: str = DEFAULT_DICTIONARY,
    px_per_mm: float = 2.0,
) -> Board:
    """A patch (RGB uint8, resized to ``patch_mm``; gray when ``None``) with one marker outside
    each corner, on white paper with a ``margin_mm`` white border."""
    pw, ph = patch_mm
    W = pw + 2 * (marker_mm + 2 * margin_mm)
    H = ph + 2 * (marker_mm + 2 * margin_mm)
    img = np.full((int(round(H * px_per_mm)), int(round(W * px_per_mm)), 3), 255, np.uint8)
    x0 = y0 = marker_mm + 2 * margin_mm
    if patch is None:
        patch = np.full((8, 8, 3), 128, np.uint8)
    pw_px, ph_px = int(round(pw * px_per_mm)), int(round(ph * px_per_mm))
    img[int(round(y0 * px_per_mm)):int(round(y0 * px_per_mm)) + ph_px,
        int(round(x0 * px_per_mm)):int(round(x0 * px_per_mm)) + pw_px] = cv2.resize(
        patch, (pw_px, ph_px), interpolation=cv2.INTER_AREA)
    m_px = int(round(marker_mm * px_per_mm))
    tl = [(margin_mm, margin_mm), (W - margin_mm - marker_mm, margin_mm),
          (W - margin_mm - marker_mm, H - margin_mm - marker_mm), (margin_mm, H - margin_mm - marker_mm)]
    layout = {}
    for mid, (x, y) in zip(ids, tl):
        mk = marker_image(mid, m_px, dictionary)
        xi, yi = int(round(x * px_per_mm)), int(round(y * px_per_mm))
        img[yi:yi + m_px, xi:xi + m_px] = mk[..., None]
        xs, ys = xi / px_per_mm, yi / px_per_mm  # the rounded position actually drawn
        s = m_px / px_per_mm
        layout[int(mid)] = np.array([[xs, ys], [xs + s, ys], [xs + s, ys + s], [xs, ys + s]])
    return Board(img, px_per_mm, MarkerSpec(dictionary, m_px / px_per_mm, tuple(int(i) for i in ids), layout))


def rotation(yaw_deg: float = 0.0, pitch_deg: float = 0.0, roll_deg: float = 0.0) -> np.ndarray:
    """``(3, 3)`` rotation of the print: yaw about the vertical axis, then pitch, then roll."""
    y, p, r = np.radians([yaw_deg, pitch_deg, roll_deg])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return ry @ rx @ rz


def board_pose(camera: PinholeCamera, centre_px: tuple[float, float], distance_m: float,
               yaw_deg: float = 0.0, pitch_deg: float = 0.0, roll_deg: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Rotation and translation (mm) placing the print's centre on the ray through ``centre_px``
    at ``distance_m`` metres from the camera."""
    ray = np.linalg.solve(camera.matrix, np.array([centre_px[0], centre_px[1], 1.0]))
    t = ray / np.linalg.norm(ray) * distance_m * 1000.0
    return rotation(yaw_deg, pitch_deg, roll_deg), t


def board_homography(board: Board, camera: PinholeCamera, rot: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``(3, 3)`` homography from board pixels to frame pixels (print centred at ``t``)."""
    w_mm, h_mm = board.size_mm
    s = 1.0 / board.px_per_mm
    to_mm = np.array([[s, 0, -w_mm / 2], [0, s, -h_mm / 2], [0, 0, 1]])
    plane = np.column_stack([rot[:, 0], rot[:, 1], t])
    return camera.matrix @ plane @ to_mm


def composite_board(frame: np.ndarray, board: Board, camera: PinholeCamera, rot: np.ndarray,
                    t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Paste the print into an RGB frame as seen at pose ``(rot, t)``.

    Returns the new frame and the ``(4, 2)`` frame-pixel corners of the whole print.
    """
    H = board_homography(board, camera, rot, t)
    h, w = frame.shape[:2]
    warped = cv2.warpPerspective(board.image, H, (w, h), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.full(board.image.shape[:2], 255, np.uint8), H, (w, h), flags=cv2.INTER_LINEAR)
    a = (mask.astype(np.float32) / 255.0)[..., None]
    out = (frame.astype(np.float32) * (1 - a) + warped.astype(np.float32) * a).round().astype(np.uint8)
    bh, bw = board.image.shape[:2]
    corners = cv2.perspectiveTransform(np.array([[[0, 0], [bw, 0], [bw, bh], [0, bh]]], np.float64), H)[0]
    return out, corners
