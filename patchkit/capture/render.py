"""Render prints as photographed: charts, patches and composites into scenes and video frames.

Coordinates: photo/frame pixel coordinates use OpenCV's convention (pixel ``(i, j)`` has its
centre at ``x = j, y = i``). A print is a flat sheet of ``width x height`` mm; a *pose* is the
4 corners of the sheet in the photo (top-left, top-right, bottom-right, bottom-left) and
``homography_mm`` maps sheet mm to photo pixels.

Functions:
* :func:`photograph_sheet`: a page raster (digital uint8, e.g. a chart or an export page)
  -> printed -> lit -> photographed on a table (uint8 photo + the true pose).
* :func:`random_sheet_pose` / :func:`project_plane`: poses from a random perspective jitter
  or from a 3-D pose (distance, yaw, pitch, roll, focal length).
* :func:`composite_print`: paste a printed patch into a scene image or video frame at a
  known pose (for the video scorer and the demo).
* :func:`simulated_truth`: the noise-free, paper-white-relative capture of digital colours,
  which a calibration should predict.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from patchkit.capture.camera import SimulatedCamera, jpeg_round_trip
from patchkit.capture.printers import print_reflectance
from patchkit.printing.colour import linear_to_srgb_np, srgb_to_linear_np


_dec = srgb_to_linear_np
_enc = linear_to_srgb_np


@dataclass
class SheetPose:
    """Where a sheet lies in a photo: ``corners`` ``(4, 2)`` px (TL, TR, BR, BL) and the
    homography ``homography_mm`` (3x3) mapping sheet mm to photo px."""

    corners: np.ndarray
    homography_mm: np.ndarray
    sheet_mm: tuple[float, float]

    @classmethod
    def from_corners(cls, corners: np.ndarray, sheet_mm: tuple[float, float]) -> "SheetPose":
        w, h = sheet_mm
        src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
        corners = np.asarray(corners, dtype=np.float64)
        H = cv2.getPerspectiveTransform(src.astype(np.float32), corners.astype(np.float32)).astype(np.float64)
        return cls(corners, H, (float(w), float(h)))

    def project(self, points_mm: np.ndarray) -> np.ndarray:
        """Sheet mm ``(N, 2)`` -> photo px ``(N, 2)``."""
        p = np.asarray(points_mm, dtype=np.float64).reshape(-1, 1, 2)
        return cv2.perspectiveTransform(p, self.homography_mm).reshape(-1, 2)


def random_sheet_pose(
    sheet_mm: tuple[float, float],
    photo_size: tuple[int, int],
    rng: np.random.Generator,
    fill: float = 0.8,
    perspective: float = 0.08,
    max_rotation_deg: float = 4.0,
) -> SheetPose:
    """A random pose of a sheet filling about ``fill`` of the photo (``photo_size`` = (W, H)),
    each corner displaced by up to ``perspective`` x the sheet's size in the photo."""
    w, h = sheet_mm
    pw, ph = photo_size
    scale = fill * min(pw / w, ph / h)
    sw, sh = w * scale, h * scale
    c = np.array([[-sw / 2, -sh / 2], [sw / 2, -sh / 2], [sw / 2, sh / 2], [-sw / 2, sh / 2]])
    a = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg))
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    c = c @ rot.T
    c = c + rng.uniform(-perspective, perspective, (4, 2)) * np.array([sw, sh])
    centre = np.array([pw / 2, ph / 2]) + rng.uniform(-0.03, 0.03, 2) * np.array([pw, ph])
    # keep the whole sheet inside the frame with a small margin (shrink, then shift)
    margin = 0.01 * min(pw, ph) + 4
    room = np.array([pw, ph]) - 2 * margin
    c = c * min(1.0, float(np.min(room / (c.max(0) - c.min(0)))))
    corners = c + centre
    lo, hi = corners.min(0), corners.max(0)
    shift = np.maximum(0, margin - lo) - np.maximum(0, hi - (np.array([pw, ph]) - margin))
    return SheetPose.from_corners(corners + shift, sheet_mm)


def project_plane(
    sheet_mm: tuple[float, float],
    image_size: tuple[int, int],
    distance_mm: float,
    yaw_deg: float = 0.0,
    pitch_deg: float = 0.0,
    roll_deg: float = 0.0,
    focal_px: float | None = None,
    centre_px: tuple[float, float] | None = None,
) -> SheetPose:
    """Pose of a flat sheet seen by a pinhole camera: the sheet's centre is ``distance_mm`` in
    front of the camera, on the ray through ``centre_px`` (default: image centre), rotated by
    yaw (about the vertical axis), pitch and roll. ``focal_px`` defaults to the image width
    (about a 53 degree horizontal field of view)."""
    w, h = sheet_mm
    iw, ih = image_size
    f = float(focal_px or iw)
    cx, cy = iw / 2.0 - 0.5, ih / 2.0 - 0.5
    ux, uy = centre_px if centre_px is not None else (cx, cy)
    y, p, r = np.deg2rad([yaw_deg, pitch_deg, roll_deg])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    rot = rz @ rx @ ry
    ray = np.array([(ux - cx) / f, (uy - cy) / f, 1.0])
    centre = ray / np.linalg.norm(ray) * distance_mm
    local = np.array([[-w / 2, -h / 2, 0], [w / 2, -h / 2, 0], [w / 2, h / 2, 0], [-w / 2, h / 2, 0]])
    pts = local @ rot.T + centre
    if (pts[:, 2] <= 1.0).any():
        raise ValueError("the sheet crosses the camera plane; increase distance_mm")
    corners = np.stack([f * pts[:, 0] / pts[:, 2] + cx, f * pts[:, 1] / pts[:, 2] + cy], 1)
    return SheetPose.from_corners(corners, sheet_mm)


def _warp_sheet(
    image: np.ndarray, sheet_mm: tuple[float, float], pose: SheetPose, photo_size: tuple[int, int], ss: int
) -> tuple[np.ndarray, np.ndarray]:
    """Warp a float image of the sheet into a photo-sized canvas, anti-aliased by ``ss``x
    supersampling; returns (warped image, coverage in [0, 1])."""
    pw, ph = photo_size
    ih, iw = image.shape[:2]
    w, h = sheet_mm
    # sheet raster centre coords u = mm * ppm - 0.5; canvas centre coords q = ss * (p + 0.5) - 0.5
    a_src = np.array([[iw / w, 0, -0.5], [0, ih / h, -0.5], [0, 0, 1]])
    a_dst = np.array([[ss, 0, ss * 0.5 - 0.5], [0, ss, ss * 0.5 - 0.5], [0, 0, 1]])
    m = a_dst @ pose.homography_mm @ np.linalg.inv(a_src)
    size = (pw * ss, ph * ss)
    warped = cv2.warpPerspective(image, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    mask = cv2.warpPerspective(np.ones((ih, iw), np.float32), m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if ss > 1:
        warped = cv2.resize(warped, (pw, ph), interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask, (pw, ph), interpolation=cv2.INTER_AREA)
    return warped, mask


def photograph_sheet(
    sheet_digital: np.ndarray,
    sheet_mm: tuple[float, float],
    printer,
    camera: SimulatedCamera,
    pose: SheetPose,
    photo_size: tuple[int, int],
    seed: int = 0,
    glare: tuple[float, float, float, float] | None = None,
    background: float = 0.25,
    supersample: int = 2,
) -> np.ndarray:
    """Print ``sheet_digital`` (uint8 RGB raster of the whole sheet) with ``printer``, lay it on
    a table at ``pose`` and photograph it with ``camera``; returns the uint8 RGB photo.

    ``glare = (x, y, radius, strength)`` (photo px, px, radiance units) adds a specular blob.
    The raster should have at least ``supersample`` x the photo's pixels per mm.
    """
    rng = np.random.default_rng(seed)
    pw, ph = photo_size
    refl = print_reflectance(printer, sheet_digital)
    warped, mask = _warp_sheet(refl, sheet_mm, pose, photo_size, supersample)
    # table: a dull, slightly textured surface
    tex = cv2.GaussianBlur(rng.standard_normal((ph, pw)).astype(np.float32), (0, 0), 6.0)
    table = (background * (1.0 + 0.6 * tex))[..., None] * np.array([1.0, 0.9, 0.75], np.float32)
    scene = warped + (1.0 - mask[..., None]) * table
    radiance = scene * camera.field(ph, pw)[..., None].astype(np.float32) * camera.illuminant.astype(np.float32)
    if glare is not None:
        gx, gy, gr, gs = glare
        yy, xx = np.mgrid[0:ph, 0:pw]
        blob = gs * np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2.0 * gr**2))
        radiance = radiance + blob[..., None].astype(np.float32)
    return camera.capture(radiance, rng)


def simulated_truth(printer, camera: SimulatedCamera, digital: np.ndarray) -> np.ndarray:
    """What a perfect calibration predicts: the noise-free capture of digital colours
    ``(N, 3)`` in [0, 1] under uniform light, paper-white relative (sRGB-encoded)."""
    digital = np.asarray(digital, dtype=np.float64)
    refl = printer.reflectance(np.concatenate([digital, np.ones((1, 3))]))
    enc = camera.respond(refl * camera.illuminant)
    lin = _dec(enc)
    return _enc(lin[:-1] / lin[-1:])


def composite_print(
    frame: np.ndarray,
    print_digital: np.ndarray,
    pose: SheetPose,
    printer,
    camera: SimulatedCamera | None = None,
    illumination: float = 1.0,
    seed: int = 0,
    degrade: bool = True,
    supersample: int = 2,
) -> np.ndarray:
    """Paste a printed sheet into a scene image or video frame.

    Args:
        frame: ``(H, W, 3)`` uint8 RGB scene (already camera-encoded).
        print_digital: ``(h, w, 3)`` uint8 digital raster of the sheet (the patch, or an export
            page raster with markers); it covers the sheet ``pose.sheet_mm`` exactly.
        pose: where the sheet's corners land in the frame (see :func:`project_plane`).
        printer: a simulated printer (:mod:`patchkit.capture.printers`).
        camera: colour response for the sheet (default: a neutral camera that records paper
            white at about 0.9); its blur, noise and JPEG are applied to the whole frame when
            ``degrade`` is true.
        illumination: light on the sheet relative to the nominal exposure.
    Returns:
        ``(H, W, 3)`` uint8 frame.
    """
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError("frame must be (H, W, 3) uint8 RGB")
    fh, fw = frame.shape[:2]
    camera = camera or SimulatedCamera(exposure=0.9 / 0.88)
    refl = print_reflectance(printer, print_digital)
    appearance = _dec(camera.respond(refl.astype(np.float64) * illumination * camera.illuminant)).astype(np.float32)
    warped, mask = _warp_sheet(appearance, pose.sheet_mm, pose, (fw, fh), supersample)
    lin = _dec(frame.astype(np.float64) / 255.0).astype(np.float32)
    out = lin * (1.0 - mask[..., None]) + warped
    rng = np.random.default_rng(seed)
    if degrade and camera.blur_sigma > 0:
        out = cv2.GaussianBlur(out, (0, 0), camera.blur_sigma)
    if degrade and (camera.shot_noise > 0 or camera.read_noise > 0):
        std = np.sqrt(np.clip(out, 0, None) * camera.shot_noise + camera.read_noise**2)
        out = out + rng.standard_normal(out.shape, dtype=np.float32) * std
    img = np.clip(np.round(_enc(np.clip(out, 0, 1).astype(np.float64)) * 255.0), 0, 255).astype(np.uint8)
    if degrade and camera.jpeg_quality is not None:
        img = jpeg_round_trip(img, camera.jpeg_quality)
    return img


def photograph_chart(
    layout,
    printer,
    camera: SimulatedCamera,
    photo_size: tuple[int, int] = (960, 1280),
    seed: int = 0,
    perspective: float = 0.08,
    fill: float = 0.85,
    glare: tuple[float, float, float, float] | None = None,
) -> tuple[np.ndarray, SheetPose]:
    """Print a calibration chart (:class:`~patchkit.printing.chart.ChartLayout`) and photograph
    it. Returns the uint8 photo and the pose of the *page* (page mm -> photo px); chart frame
    mm are page mm minus ``layout.origin_mm``."""
    from patchkit.printing.chart import chart_page
    from patchkit.printing.drawing import PAGE_SIZES_MM, rasterize

    rng = np.random.default_rng(seed)
    sheet = PAGE_SIZES_MM[layout.page]
    pose = random_sheet_pose(sheet, photo_size, rng, fill=fill, perspective=perspective)
    # raster resolution: 2 px per photo px along the sheet's largest scale (the 2x supersampling)
    scale = max(
        np.linalg.norm(pose.corners[1] - pose.corners[0]) / sheet[0],
        np.linalg.norm(pose.corners[2] - pose.corners[3]) / sheet[0],
        np.linalg.norm(pose.corners[3] - pose.corners[0]) / sheet[1],
        np.linalg.norm(pose.corners[2] - pose.corners[1]) / sheet[1],
    )
    raster = rasterize(chart_page(layout, date="simulated"), px_per_mm=2.0 * scale)
    photo = photograph_sheet(raster, sheet, printer, camera, pose, photo_size, seed=seed + 1, glare=glare)
    return photo, pose
