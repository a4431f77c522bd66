"""Where the cloth is: per-person instance masks and garment regions (issue 15).

Two sources of a person's silhouette:

- an **instance mask** file: a Penn-Fudan style PNG (0 = background, k = instance k;
  :func:`read_instance_mask`) or an ultralytics segmentation label file (one polygon per line,
  ``cls x1 y1 x2 y2 ...`` normalised to [0, 1]; :func:`read_polygon_labels`,
  :func:`rasterize_polygons`), matched to the labelled boxes by :func:`match_masks_to_boxes`;
- **no mask**: :func:`garment_region` derives an approximate clothing region from the box alone.

:func:`garment_from_mask` cuts a mask to the garment's vertical band of its box (the head is
always removed) with a soft inner edge, so a texture never covers faces.

Conventions: boxes are ``(N, 4)`` float xyxy in image pixels (pixel ``i`` covers ``[i, i + 1)``);
``image_size`` and ``size`` are ``(H, W)`` in pixels (torch's order, *not* the ``width, height``
of :func:`~patchkit.scenes.labels.read_yolo_labels`); masks are ``(K, H, W)`` bool and garment
regions ``(N, H, W)`` float in [0, 1]. Per-person work is vectorised (broadcast over persons);
only file loading loops, over lines of a file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from patchkit.errors import PatchkitError, suggest
from patchkit.metrics.ap import box_iou

log = logging.getLogger(__name__)

Garment = Literal["upper", "lower", "both"]
MissingPolicy = Literal["warn", "error", "box"]
GARMENTS: tuple[str, ...] = ("upper", "lower", "both")
MISSING_POLICIES: tuple[str, ...] = ("warn", "error", "box")

# Body proportions of a standing person, as fractions of the box height measured from its top.
# An approximation (a box says nothing about pose, crops or bags): the head and neck are the
# top HEAD_FRACTION, the upper garment runs from there to WAIST_FRACTION, the lower garment from
# WAIST_FRACTION to HEM_FRACTION (the feet below are left bare).
HEAD_FRACTION = 0.17
WAIST_FRACTION = 0.55
HEM_FRACTION = 0.95
# The box-derived region is narrower than the box: this fraction of the box width is left out
# on each side (the arms swing, and the box has some margin around the body).
SIDE_INSET_FRACTION = 0.12

# Normalised polygon points further than this outside [0, 1] are reported when clipped
# (rounding in exported labels overshoots by less).
_TOLERANCE = 1e-3
# Sub-pixel bits of cv2.fillPoly.
_SHIFT = 4


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise PatchkitError(
            f"{name} must be one of {', '.join(choices)}, got '{value}'{suggest(str(value), choices)}"
        )


def _size(image_size: Sequence[int]) -> tuple[int, int]:
    h, w = (int(v) for v in image_size)
    if h <= 0 or w <= 0:
        raise PatchkitError(f"image size must be positive (H, W), got {tuple(image_size)}")
    return h, w


# --------------------------------------------------------------------------------------------
# Loading


def read_instance_mask(path: str | Path, image_size: Sequence[int]) -> Tensor:
    """Read a Penn-Fudan style instance mask PNG (0 = background, k = instance k).

    Args:
        path: a single-channel image (modes L, P, I, I;16).
        image_size: ``(H, W)`` of the photo it belongs to, in pixels.

    Returns:
        ``(K, H, W)`` bool, one channel per distinct non-zero value in increasing order
        (Penn-Fudan: channel ``k - 1`` is pedestrian ``k``). A mask with no instance gives
        ``(0, H, W)``. A missing or unreadable file, a colour image, or a size other than the
        photo's raises :class:`PatchkitError` naming the file.
    """
    path = Path(path)
    h, w = _size(image_size)
    if not path.is_file():
        raise PatchkitError("mask file not found", path)
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode not in ("L", "P", "I", "I;16", "1"):
                raise PatchkitError(
                    f"expected a single-channel instance mask (0 = background, k = instance k), got mode {im.mode}",
                    path,
                )
            arr = np.array(im)
    except PatchkitError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise PatchkitError(f"cannot read mask ({exc})", path) from exc
    if arr.shape != (h, w):
        raise PatchkitError(
            f"mask is {arr.shape[1]}x{arr.shape[0]} px but its image is {w}x{h} px (W x H)", path
        )
    values = torch.from_numpy(arr.astype(np.int64))
    ids = values.unique()
    ids = ids[ids > 0]
    return values[None] == ids[:, None, None]


def read_polygon_labels(path: str | Path, image_size: Sequence[int]) -> list[tuple[int, np.ndarray]]:
    """Read an ultralytics segmentation label file: ``cls x1 y1 x2 y2 ...`` per line, normalised.

    Args:
        path: the ``.txt`` label file; a missing file means no objects (as for box labels).
        image_size: ``(H, W)`` of the image, in pixels.

    Returns:
        One ``(cls, points)`` per non-empty line, ``points`` a ``(P, 2)`` float32 array of
        ``(x, y)`` in image pixels. Points outside [0, 1] are clipped to the image border, with
        one warning naming the file and lines. A line with non-numeric fields, a negative class,
        an odd number of coordinates or fewer than 3 points raises :class:`PatchkitError` naming
        the file and line.
    """
    path = Path(path)
    h, w = _size(image_size)
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PatchkitError(f"cannot read label file ({exc})", path) from exc
    out: list[tuple[int, np.ndarray]] = []
    clipped: list[int] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        coords = parts[1:]
        if len(coords) % 2:
            raise PatchkitError(
                f"line {lineno}: odd number of coordinates ({len(coords)}); expected 'cls x1 y1 x2 y2 ...'",
                path,
            )
        if len(coords) < 6:
            raise PatchkitError(
                f"line {lineno}: {len(coords) // 2} points, a polygon needs at least 3 "
                "(is this a box label file?)",
                path,
            )
        try:
            cls = int(parts[0])
            xy = np.array([float(c) for c in coords], dtype=np.float64).reshape(-1, 2)
        except ValueError as exc:
            raise PatchkitError(f"line {lineno}: not numbers: {line.strip()[:60]!r}", path) from exc
        if cls < 0:
            raise PatchkitError(f"line {lineno}: negative class {cls}", path)
        if not np.isfinite(xy).all():
            raise PatchkitError(f"line {lineno}: non-finite coordinate", path)
        if (xy < -_TOLERANCE).any() or (xy > 1 + _TOLERANCE).any():
            clipped.append(lineno)
        xy = np.clip(xy, 0.0, 1.0) * np.array([w, h], dtype=np.float64)
        out.append((cls, xy.astype(np.float32)))
    if clipped:
        lines = ", ".join(str(n) for n in clipped[:10]) + (", ..." if len(clipped) > 10 else "")
        log.warning("%s: line%s %s: polygon points outside the image clipped to its border",
                    path, "s" if len(clipped) > 1 else "", lines)
    return out


def rasterize_polygons(polygons: Sequence[np.ndarray | Tensor], image_size: Sequence[int]) -> Tensor:
    """Fill polygons (one per instance) into masks with :func:`cv2.fillPoly`.

    Args:
        polygons: ``(P, 2)`` arrays of ``(x, y)`` in image pixels (e.g. the points of
            :func:`read_polygon_labels`).
        image_size: ``(H, W)`` in pixels.

    Returns:
        ``(K, H, W)`` bool. Vertices are taken at pixel-centre precision (1/16 px) and the
        boundary is filled inclusively, as OpenCV does: a rectangle ``[x1, x2) x [y1, y2)`` gets
        at most one extra column and row of pixels at its right and bottom edges.
    """
    h, w = _size(image_size)
    out = np.zeros((len(polygons), h, w), dtype=np.uint8)
    for k, pts in enumerate(polygons):  # loading, not a training step
        pts = np.asarray(pts.detach().cpu() if isinstance(pts, Tensor) else pts, dtype=np.float64)
        fixed = np.round((pts.reshape(-1, 2) - 0.5) * (1 << _SHIFT)).astype(np.int32)
        cv2.fillPoly(out[k], [fixed], 1, lineType=cv2.LINE_8, shift=_SHIFT)
    return torch.from_numpy(out).bool()


def read_polygon_masks(path: str | Path, image_size: Sequence[int],
                       classes: Sequence[int] | None = (0,)) -> Tensor:
    """:func:`read_polygon_labels` then :func:`rasterize_polygons`, keeping ``classes``
    (``None`` keeps all). Returns ``(K, H, W)`` bool."""
    polys = [p for c, p in read_polygon_labels(path, image_size) if classes is None or c in classes]
    return rasterize_polygons(polys, image_size)


def read_masks(path: str | Path, image_size: Sequence[int],
               classes: Sequence[int] | None = (0,)) -> Tensor:
    """Instance masks ``(K, H, W)`` bool from either format, by suffix: ``.txt`` is an
    ultralytics polygon label file (``classes`` kept), anything else an instance-mask image."""
    if Path(path).suffix.lower() == ".txt":
        return read_polygon_masks(path, image_size, classes)
    return read_instance_mask(path, image_size)


# --------------------------------------------------------------------------------------------
# Matching masks to boxes


def mask_boxes(masks: Tensor) -> Tensor:
    """Bounding boxes of ``(K, H, W)`` bool masks -> ``(K, 4)`` float xyxy in pixels (right and
    bottom exclusive); an empty mask gives ``[0, 0, 0, 0]``."""
    k, h, w = masks.shape
    rows = masks.any(dim=2)  # (K, H)
    cols = masks.any(dim=1)  # (K, W)
    y1 = rows.int().argmax(dim=1)
    y2 = h - rows.flip(1).int().argmax(dim=1)
    x1 = cols.int().argmax(dim=1)
    x2 = w - cols.flip(1).int().argmax(dim=1)
    boxes = torch.stack([x1, y1, x2, y2], dim=1).float()
    return torch.where(rows.any(dim=1, keepdim=True), boxes, torch.zeros_like(boxes))


def match_masks_to_boxes(
    masks: Tensor,
    boxes: Tensor,
    missing: MissingPolicy = "warn",
    min_iou: float = 0.3,
    path: str | Path | None = None,
) -> tuple[Tensor, Tensor]:
    """Give each labelled box the instance mask that overlaps it best.

    The score is the IoU of each mask's bounding box with the box; the assignment is one-to-one
    (Hungarian, so two boxes never share a mask) and pairs scoring below ``min_iou`` are
    rejected. Masks left without a box are ignored.

    Args:
        masks: ``(K, H, W)`` bool instance masks of one image.
        boxes: ``(N, 4)`` float xyxy in pixels.
        missing: what to do with boxes left without a mask, reported in one line naming
            ``path`` with how many: ``"warn"`` (log a warning; their mask is all False),
            ``"error"`` (raise :class:`PatchkitError`), ``"box"`` (warn; their mask is the
            box-derived clothing region of :func:`garment_region`, an approximation).
        min_iou: lowest accepted IoU, in [0, 1].
        path: the mask file, named in messages.

    Returns:
        ``(masks (N, H, W) bool, missing (M,) long)``: one mask per box, in box order, and the
        indices of the boxes that got no instance mask.
    """
    _check_choice("missing", missing, MISSING_POLICIES)
    if masks.ndim != 3:
        raise PatchkitError(f"masks must be (K, H, W), got shape {tuple(masks.shape)}", path)
    masks = masks.bool()
    boxes = boxes.reshape(-1, 4).float()
    n, (k, h, w) = boxes.shape[0], masks.shape
    chosen = torch.full((n,), -1, dtype=torch.long)
    if n and k:
        iou = box_iou(boxes.cpu(), mask_boxes(masks).cpu())  # (N, K)
        import lap  # the linear assignment ultralytics' trackers use (a patchkit dependency)

        _, assigned, _ = lap.lapjv((1.0 - iou).double().numpy(), extend_cost=True)  # one-to-one, max total IoU
        rows = torch.as_tensor(np.flatnonzero(assigned >= 0), dtype=torch.long)
        cols = torch.as_tensor(assigned[assigned >= 0], dtype=torch.long)
        good = iou[rows, cols] >= min_iou
        chosen[rows[good]] = cols[good]
    lost = (chosen < 0).nonzero().flatten()
    padded = torch.cat([masks, masks.new_zeros(1, h, w)])  # index -1 -> all False
    out = padded[chosen.to(masks.device)]
    if lost.numel():
        where = f"{path}: " if path is not None else ""
        msg = (f"{lost.numel()} of {n} persons have no instance mask "
               f"(boxes {lost.tolist()[:10]}{'...' if lost.numel() > 10 else ''})")
        if missing == "error":
            raise PatchkitError(msg, path)
        if missing == "box":
            region = garment_region(boxes[lost].to(masks.device), (h, w), "both", softness=0.0)
            out[lost.to(masks.device)] = region > 0
            log.warning("%s%s; using the box-derived clothing region (an approximation)", where, msg)
        else:
            log.warning("%s%s; they get an empty mask", where, msg)
    return out, lost


# --------------------------------------------------------------------------------------------
# Garment regions


_BANDS = {
    "upper": (HEAD_FRACTION, WAIST_FRACTION),
    "lower": (WAIST_FRACTION, HEM_FRACTION),
    "both": (HEAD_FRACTION, HEM_FRACTION),
}


def garment_band(boxes: Tensor, garment: Garment = "both") -> Tensor:
    """Vertical band of the garment in each box: ``(N, 2)`` float ``(top, bottom)`` in pixels,
    from the fractions :data:`HEAD_FRACTION`, :data:`WAIST_FRACTION`, :data:`HEM_FRACTION`."""
    _check_choice("garment", garment, GARMENTS)
    lo, hi = _BANDS[garment]
    y1, y2 = boxes[:, 1:2], boxes[:, 3:4]
    return torch.cat([y1 + lo * (y2 - y1), y1 + hi * (y2 - y1)], dim=1)


def _ramp(coord: Tensor, lo: Tensor, hi: Tensor, width: Tensor) -> Tensor:
    """1 inside ``[lo, hi]`` at least ``width`` from both ends, 0 outside, linear in between.
    ``coord (L,)``, ``lo, hi, width (N, 1)`` -> ``(N, L)``."""
    width = width.clamp(min=1e-6)
    return ((coord - lo) / width).clamp(0, 1) * ((hi - coord) / width).clamp(0, 1)


def garment_region(
    boxes: Tensor,
    size: Sequence[int],
    garment: Garment = "both",
    softness: float = 0.05,
) -> Tensor:
    """Approximate clothing region of each person from the box alone (no mask).

    An approximation of a standing, upright person: below the head (top :data:`HEAD_FRACTION`
    of the box height), the upper garment to :data:`WAIST_FRACTION`, the lower garment to
    :data:`HEM_FRACTION`, inset by :data:`SIDE_INSET_FRACTION` of the box width on each side.
    It ignores pose, occlusion and crops; use an instance mask when there is one.

    Args:
        boxes: ``(N, 4)`` float xyxy in pixels.
        size: ``(H, W)`` of the image, in pixels.
        garment: ``"upper"``, ``"lower"`` or ``"both"``.
        softness: width of the soft edge as a fraction of the box height (top and bottom) and
            width (sides); the region fades from 1 to 0 over it, *inside* the band, so the head
            band stays exactly 0. 0 gives hard edges.

    Returns:
        ``(N, H, W)`` float in [0, 1], on ``boxes``' device. Separable: one ``(N, H)`` and one
        ``(N, W)`` profile, multiplied by broadcasting.
    """
    _check_choice("garment", garment, GARMENTS)
    if softness < 0:
        raise PatchkitError(f"softness must be >= 0, got {softness}")
    h, w = _size(size)
    boxes = boxes.reshape(-1, 4).float()
    band = garment_band(boxes, garment)  # (N, 2)
    bw = (boxes[:, 2:3] - boxes[:, 0:1]).clamp(min=0)
    bh = (boxes[:, 3:4] - boxes[:, 1:2]).clamp(min=0)
    ys = torch.arange(h, device=boxes.device, dtype=boxes.dtype) + 0.5  # pixel centres
    xs = torch.arange(w, device=boxes.device, dtype=boxes.dtype) + 0.5
    left = boxes[:, 0:1] + SIDE_INSET_FRACTION * bw
    right = boxes[:, 2:3] - SIDE_INSET_FRACTION * bw
    vert = _ramp(ys, band[:, 0:1], band[:, 1:2], softness * bh)  # (N, H)
    horiz = _ramp(xs, left, right, softness * bw)  # (N, W)
    return vert[:, :, None] * horiz[:, None, :]


def garment_from_mask(
    mask: Tensor,
    boxes: Tensor,
    garment: Garment = "both",
    edge: int = 5,
) -> Tensor:
    """A person's instance mask cut to the garment's vertical band of its box, soft-edged.

    Args:
        mask: ``(N, H, W)`` bool, one per box (e.g. from :func:`match_masks_to_boxes`).
        boxes: ``(N, 4)`` float xyxy in pixels.
        garment: ``"upper"``, ``"lower"`` or ``"both"`` (band as in :func:`garment_band`; the
            head, top :data:`HEAD_FRACTION` of the box, is always outside).
        edge: side in pixels of the box filter softening the edge (odd; 1 = hard edges). The
            blur is multiplied by the cut mask, so the edge fades *inward* and nothing lands
            outside the person or in the head band.

    Returns:
        ``(N, H, W)`` float in [0, 1]; the face is always 0.
    """
    _check_choice("garment", garment, GARMENTS)
    if edge < 1 or edge % 2 == 0:
        raise PatchkitError(f"edge must be an odd number of pixels >= 1, got {edge}")
    if mask.ndim != 3:
        raise PatchkitError(f"mask must be (N, H, W), got shape {tuple(mask.shape)}")
    n, h, w = mask.shape
    boxes = boxes.reshape(-1, 4).float().to(mask.device)
    if boxes.shape[0] != n:
        raise PatchkitError(f"{n} masks but {boxes.shape[0]} boxes")
    band = garment_band(boxes, garment)
    ys = torch.arange(h, device=mask.device, dtype=torch.float32) + 0.5
    rows = (ys >= band[:, 0:1]) & (ys < band[:, 1:2])  # (N, H)
    cut = (mask.bool() & rows[:, :, None]).float()
    if edge == 1 or n == 0:
        return cut
    pad = edge // 2  # separable box filter: rows, then columns
    blurred = F.avg_pool2d(cut[:, None], (1, edge), stride=1, padding=(0, pad), count_include_pad=False)
    blurred = F.avg_pool2d(blurred, (edge, 1), stride=1, padding=(pad, 0), count_include_pad=False)
    return blurred[:, 0] * cut
