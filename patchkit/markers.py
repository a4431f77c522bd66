"""ArUco markers, one module for all their uses: dictionaries, drawing, detection and pose.

The colour chart (:mod:`patchkit.printing.chart`), the printed patch
(:mod:`patchkit.printing.export`), the simulated prints (:mod:`patchkit.capture.board`), the chart
and print photos (:mod:`patchkit.printing.measure`) and the scored videos (:mod:`patchkit.video`)
all go through here:

* dictionaries: :data:`ARUCO_DICTS`, :func:`check_dictionary`, :func:`aruco_dictionary`;
* drawing: :func:`marker_image` (a raster marker), :func:`marker_bits` (its module grid, for vector
  drawing);
* detection: :func:`aruco_detector` with the parameters of each use (:data:`VIDEO_PARAMS`,
  :data:`PHOTO_PARAMS`), :func:`detect_raw`, and :class:`MarkerDetector` (the markers of one
  :class:`MarkerSpec` in a frame);
* pose: :class:`PinholeCamera`, :func:`estimate_pose` -> :class:`MarkerPose`.

``patchkit export --markers`` surrounds the patch with ArUco markers of a known physical size and
records their ids and positions. In a captured frame the markers say where the patch is (so which
person wears it) and, with ``cv2.solvePnP`` and the camera's focal length, how far away it is and
at which angle it is seen.

Conventions: marker corners are in OpenCV's ArUco order (top-left, top-right, bottom-right,
bottom-left of the marker as printed). Layout coordinates are millimetres in the print plane, x to
the right and y down, like the page. Distances are metres from the camera centre to the centre of
the observed markers; the viewing angle is in degrees between the print's normal and the line of
sight (0 = facing the camera, 90 = edge-on).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import cv2
import numpy as np

from patchkit.errors import PatchkitError, suggest

ARUCO_DICTS = sorted(n for n in dir(cv2.aruco) if n.startswith("DICT_"))
"""Names of OpenCV's predefined ArUco dictionaries."""

DEFAULT_DICTIONARY = "DICT_4X4_50"
"""The dictionary of the chart's and the export's markers (and the default for video)."""

VIDEO_PARAMS: Mapping[str, Any] = MappingProxyType({"cornerRefinementMethod": cv2.aruco.CORNER_REFINE_SUBPIX})
"""Detector parameters for video frames (:class:`MarkerDetector`): OpenCV's defaults, sub-pixel corners."""

PHOTO_PARAMS: Mapping[str, Any] = MappingProxyType({
    "cornerRefinementMethod": cv2.aruco.CORNER_REFINE_SUBPIX,
    "cornerRefinementWinSize": 5,
    # finer bit sampling: blurred, foreshortened markers in 1 MP photos decode reliably
    "perspectiveRemovePixelPerCell": 8,
    "perspectiveRemoveIgnoredMarginPerCell": 0.2,
})
"""Detector parameters for photos of the chart or of a print (:mod:`patchkit.printing.measure`)."""


def check_dictionary(name: str) -> str:
    """``name`` when it is an OpenCV ArUco dictionary; otherwise :class:`PatchkitError` with the
    closest name."""
    if name not in ARUCO_DICTS:
        raise PatchkitError(f"unknown ArUco dictionary {name!r}{suggest(name, ARUCO_DICTS)}")
    return name


def aruco_dictionary(name: str = DEFAULT_DICTIONARY) -> cv2.aruco.Dictionary:
    """The predefined OpenCV dictionary called ``name`` (checked by :func:`check_dictionary`)."""
    return cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, check_dictionary(name)))


def marker_image(marker_id: int, side_px: int, dictionary: str = DEFAULT_DICTIONARY, border_bits: int = 1) -> np.ndarray:
    """``(side_px, side_px)`` uint8 image of one marker (black 0 on white 255), ``border_bits``
    modules of black border included (``cv2.aruco.generateImageMarker``)."""
    return cv2.aruco.generateImageMarker(aruco_dictionary(dictionary), int(marker_id), int(side_px),
                                         borderBits=border_bits)


def marker_bits(marker_id: int, dictionary: str = DEFAULT_DICTIONARY) -> np.ndarray:
    """``(n + 2, n + 2)`` bool module grid of a marker (True = black), its one-module border
    included; ``n`` is the dictionary's marker size (4 for ``DICT_4X4_50``: a ``(6, 6)`` grid)."""
    modules = aruco_dictionary(dictionary).markerSize + 2
    return marker_image(marker_id, modules, dictionary, border_bits=1) < 128


def aruco_detector(dictionary: str = DEFAULT_DICTIONARY, params: Mapping[str, Any] = VIDEO_PARAMS
                   ) -> cv2.aruco.ArucoDetector:
    """An OpenCV ArUco detector for ``dictionary``; ``params`` sets ``cv2.aruco.DetectorParameters``
    attributes over OpenCV's defaults (:data:`VIDEO_PARAMS`, :data:`PHOTO_PARAMS`)."""
    detector_params = cv2.aruco.DetectorParameters()
    for key, value in params.items():
        setattr(detector_params, key, value)
    return cv2.aruco.ArucoDetector(aruco_dictionary(dictionary), detector_params)


def detect_raw(detector: cv2.aruco.ArucoDetector, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every marker the detector finds in a gray uint8 image, duplicates included, in OpenCV's
    order: ``ids`` ``(K,)`` int64 and ``corners`` ``(K, 4, 2)`` float64 pixels (TL, TR, BR, BL)."""
    corners, ids, _ = detector.detectMarkers(gray)
    if ids is None or len(ids) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 4, 2), dtype=np.float64)
    return ids.reshape(-1).astype(np.int64), np.stack([c.reshape(4, 2) for c in corners]).astype(np.float64)


@dataclass
class MarkerSpec:
    """What to look for and how big it is.

    Attributes:
        dictionary: an OpenCV ArUco dictionary name, e.g. ``"DICT_4X4_50"``.
        size_mm: side of one marker's black square in millimetres (``None``: no pose).
        ids: marker ids that belong to the patch (``None``: any id of the dictionary).
        layout_mm: per id, ``(4, 2)`` corner positions in the print plane (mm, x right, y down),
            in ArUco corner order. When known, all visible corners give one joint pose.
    """

    dictionary: str = DEFAULT_DICTIONARY
    size_mm: float | None = None
    ids: tuple[int, ...] | None = None
    layout_mm: dict[int, np.ndarray] | None = None

    def __post_init__(self) -> None:
        check_dictionary(self.dictionary)
        if self.size_mm is not None and not self.size_mm > 0:
            raise PatchkitError(f"marker size must be > 0 mm, got {self.size_mm}")
        if self.layout_mm is not None:
            self.layout_mm = {int(k): np.asarray(v, dtype=np.float64).reshape(4, 2) for k, v in self.layout_mm.items()}
            if self.ids is None:
                self.ids = tuple(sorted(self.layout_mm))

    @classmethod
    def from_json(cls, path: str | Path) -> "MarkerSpec":
        """Read the marker description written by ``patchkit export --markers`` (its JSON sidecar).

        The export writes ``{"markers": {"dictionary": "DICT_4X4_50", "size_mm": s, "markers":
        [{"id": 40, "corners_patch_mm": [[x, y] x4]}, ...]}}`` (patch mm, y down). Also accepted:
        ``marker_size_mm``, ``ids``, the list under ``layout``/``positions``, and entries as
        ``{"id": 3, "corners_mm": [[x, y] x4]}`` or ``{"id": 3, "x_mm": .., "y_mm": .., "size_mm": ..}``
        (top-left corner of the marker).
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise PatchkitError("marker file not found", path) from exc
        except (OSError, ValueError) as exc:
            raise PatchkitError(f"cannot read marker JSON ({exc})", path) from exc
        m = data.get("markers", data) if isinstance(data, dict) else None
        if isinstance(m, list):
            m = {"layout": m, **{k: v for k, v in data.items() if k != "markers"}}
        if not isinstance(m, dict):
            raise PatchkitError("no 'markers' section", path)
        dictionary = str(m.get("dictionary", m.get("dict", DEFAULT_DICTIONARY)))
        if not dictionary.startswith("DICT_"):
            dictionary = "DICT_" + dictionary.upper()
        size = m.get("size_mm", m.get("marker_size_mm"))
        layout: dict[int, np.ndarray] = {}
        entries = m.get("layout", m.get("positions", m.get("markers", [])))
        for item in entries if isinstance(entries, list) else []:
            try:
                mid = int(item["id"])
                corners = item.get("corners_mm", item.get("corners_patch_mm"))
                if corners is not None:
                    layout[mid] = np.asarray(corners, dtype=np.float64).reshape(4, 2)
                else:
                    s = float(item.get("size_mm", size))
                    x, y = float(item["x_mm"]), float(item["y_mm"])
                    layout[mid] = np.array([[x, y], [x + s, y], [x + s, y + s], [x, y + s]])
                    size = size if size is not None else s
            except (KeyError, TypeError, ValueError) as exc:
                raise PatchkitError(f"bad marker layout entry {item!r}", path) from exc
        ids = m.get("ids")
        ids = tuple(int(i) for i in ids) if ids is not None else (tuple(sorted(layout)) or None)
        if size is None and layout:
            size = float(np.linalg.norm(next(iter(layout.values()))[1] - next(iter(layout.values()))[0]))
        return cls(dictionary, float(size) if size is not None else None, ids, layout or None)


@dataclass
class MarkerObservation:
    """Markers found in one frame: ``ids`` ``(K,)`` int, ``corners`` ``(K, 4, 2)`` float pixels."""

    ids: np.ndarray
    corners: np.ndarray

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def points(self) -> np.ndarray:
        """All corners ``(4K, 2)``."""
        return self.corners.reshape(-1, 2)

    def to_dict(self) -> dict:
        """JSON record: ids and corners (pixels, 2 decimals)."""
        return {"ids": self.ids.astype(int).tolist(), "corners": np.round(self.corners, 2).tolist()}


@dataclass
class PinholeCamera:
    """Pinhole camera: focal lengths and principal point in pixels, optional distortion."""

    fx: float
    fy: float
    cx: float
    cy: float
    dist: np.ndarray = field(default_factory=lambda: np.zeros(5))

    @classmethod
    def from_hfov(cls, width: int, height: int, hfov_deg: float) -> "PinholeCamera":
        """Square pixels, centred principal point, focal from the horizontal field of view."""
        f = (width / 2.0) / np.tan(np.deg2rad(hfov_deg) / 2.0)
        return cls(f, f, width / 2.0, height / 2.0)

    @classmethod
    def from_focal(cls, width: int, height: int, focal_px: float) -> "PinholeCamera":
        """Square pixels, centred principal point, focal length ``focal_px`` in pixels."""
        return cls(focal_px, focal_px, width / 2.0, height / 2.0)

    @property
    def matrix(self) -> np.ndarray:
        """``(3, 3)`` intrinsic matrix ``K``."""
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1]], dtype=np.float64)


@dataclass
class MarkerPose:
    """Camera pose of the marked print in one frame.

    Attributes:
        distance_m: camera centre to the centre of the observed markers, metres.
        angle_deg: between the print's normal and the line of sight, degrees in [0, 90].
        rvec, tvec: OpenCV rotation (Rodrigues) and translation (mm) of the print frame.
        reproj_px: RMS reprojection error of the corners, pixels.
        n_markers: markers used.
    """

    distance_m: float
    angle_deg: float
    rvec: np.ndarray
    tvec: np.ndarray
    reproj_px: float
    n_markers: int

    def to_dict(self) -> dict:
        """JSON record: distance, angle, reprojection error (rounded) and markers used."""
        return {"distance_m": round(self.distance_m, 4), "angle_deg": round(self.angle_deg, 2),
                "reproj_px": round(self.reproj_px, 3), "n_markers": self.n_markers}


class MarkerDetector:
    """ArUco detection restricted to the spec's dictionary and ids (:data:`VIDEO_PARAMS`)."""

    def __init__(self, spec: MarkerSpec) -> None:
        self.spec = spec
        self._detector = aruco_detector(spec.dictionary, VIDEO_PARAMS)
        self._ids = None if spec.ids is None else np.asarray(spec.ids)

    def detect(self, image: np.ndarray) -> MarkerObservation:
        """Markers in an RGB ``(H, W, 3)`` or gray ``(H, W)`` uint8 image."""
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        ids, corners = detect_raw(self._detector, gray)
        if len(ids) == 0:
            return MarkerObservation(ids, corners)
        keep = np.ones(len(ids), bool) if self._ids is None else np.isin(ids, self._ids)
        # one observation per id (a duplicate id is a false detection or a second print)
        ids, corners = ids[keep], corners[keep]
        _, first = np.unique(ids, return_index=True)
        first = np.sort(first)
        return MarkerObservation(ids[first], corners[first])


def _angle_and_distance(rvec: np.ndarray, tvec: np.ndarray, centre_obj: np.ndarray) -> tuple[float, float]:
    rot, _ = cv2.Rodrigues(rvec)
    centre_cam = rot @ centre_obj.reshape(3) + tvec.reshape(3)
    dist = float(np.linalg.norm(centre_cam))
    normal = rot[:, 2]
    cosang = abs(float(normal @ centre_cam)) / max(dist, 1e-12)
    return dist / 1000.0, float(np.degrees(np.arccos(np.clip(cosang, 0.0, 1.0))))


def estimate_pose(obs: MarkerObservation, spec: MarkerSpec, camera: PinholeCamera) -> MarkerPose | None:
    """Pose of the print from the observed markers; ``None`` without markers or a known size.

    With a known layout, all visible corners are solved jointly (``SOLVEPNP_IPPE``, planar);
    otherwise each marker is solved alone (``SOLVEPNP_IPPE_SQUARE``) and the medians are taken.
    Single small markers have the planar pose ambiguity: their distance is good to a few
    percent but their angle near frontal views can be off by 10-15 degrees, so pass the export's
    layout (``--markers FILE.json``) for angle bins. Distances scale with the focal length.
    """
    if len(obs) == 0:
        return None
    K, dist = camera.matrix, camera.dist
    layout = spec.layout_mm or {}
    known = [k for k, i in enumerate(obs.ids) if int(i) in layout]
    if known:
        obj2d = np.concatenate([layout[int(obs.ids[k])] for k in known])
        obj = np.concatenate([obj2d, np.zeros((len(obj2d), 1))], 1)
        img = obs.corners[known].reshape(-1, 2)
        ok, rvec, tvec = cv2.solvePnP(obj, img, K, dist, flags=cv2.SOLVEPNP_IPPE)
        if not ok:
            return None
        proj, _ = cv2.projectPoints(obj, rvec, tvec, K, dist)
        err = float(np.sqrt(np.mean(np.sum((proj.reshape(-1, 2) - img) ** 2, 1))))
        d, a = _angle_and_distance(rvec, tvec, obj.mean(0))
        return MarkerPose(d, a, rvec.reshape(3), tvec.reshape(3), err, len(known))
    if spec.size_mm is None:
        return None
    s = spec.size_mm / 2.0
    obj = np.array([[-s, s, 0], [s, s, 0], [s, -s, 0], [-s, -s, 0]], dtype=np.float64)
    ds, angs, errs, sols = [], [], [], []
    for c in obs.corners:
        ok, rvec, tvec = cv2.solvePnP(obj, c, K, dist, flags=cv2.SOLVEPNP_IPPE_SQUARE)
        if not ok:
            continue
        proj, _ = cv2.projectPoints(obj, rvec, tvec, K, dist)
        errs.append(float(np.sqrt(np.mean(np.sum((proj.reshape(-1, 2) - c) ** 2, 1)))))
        d, a = _angle_and_distance(rvec, tvec, np.zeros(3))
        ds.append(d)
        angs.append(a)
        sols.append((rvec, tvec))
    if not ds:
        return None
    k = int(np.argsort(ds)[len(ds) // 2])
    return MarkerPose(float(np.median(ds)), float(np.median(angs)), sols[k][0].reshape(3), sols[k][1].reshape(3),
                float(np.sqrt(np.mean(np.square(errs)))), len(ds))
