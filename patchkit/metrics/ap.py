"""Box matching and detection metrics: the one module for AP, detection rate and ASR.

Conventions (the literature's, see ../shared/docs/peers.md section 4):

* Boxes are ``xyxy`` in pixels (continuous coordinates, no ``+1``).
* A detection matches a reference box when their IoU is ``>= iou`` (inclusive).
* Matching is greedy over detections in descending confidence, pooled over all images
  (stable sort, so ties keep image order then detection order). Two rules:

  - ``"voc"`` (default; PASCAL VOC devkit and the Cartucho mAP code): each detection looks at the
    reference with the highest IoU; if that reference is already taken the detection is a false
    positive.
  - ``"coco"`` (pycocotools): each detection takes the best *still unmatched* reference with
    IoU ``>= iou``.

* AP interpolation: ``"all"`` (default) is VOC's all-point interpolation (area under the monotone
  precision envelope, recall from 0 to 1); ``"coco101"`` is pycocotools' 101 recall points.
* All AP, rates and recalls are fractions in [0, 1]; ``nan`` when there are no reference boxes.

Greedy matching is sequential by nature, so the per-detection step is a short NumPy loop that is
vectorised over IoU thresholds and references; detections that overlap no reference at the lowest
threshold skip it. One :class:`MatchTable` gives every metric below, so match once and read many.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import torch
import torchvision
from torch import Tensor

from patchkit.detections import Detections

IOU_50_95: tuple[float, ...] = tuple(np.round(np.linspace(0.5, 0.95, 10), 2).tolist())
"""COCO IoU thresholds 0.50, 0.55, ..., 0.95."""

MatchRule = Literal["voc", "coco"]
Interp = Literal["all", "coco101"]

BoxesLike = Tensor | np.ndarray | Detections


def box_iou(a: Tensor | np.ndarray, b: Tensor | np.ndarray) -> Tensor:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` xyxy boxes -> ``(N, M)`` float tensor in [0, 1].

    :func:`torchvision.ops.box_iou`, broadcast over both sets (empty inputs give an empty
    matrix), except that degenerate boxes (zero area) have IoU 0 with everything (torchvision
    gives 0/0 = nan when both are degenerate). Computed in the inputs' float dtype (float64 stays
    float64; integer boxes become float32).
    """
    a = torch.as_tensor(a)
    b = torch.as_tensor(b)
    dtype = torch.promote_types(a.dtype, b.dtype)
    if not dtype.is_floating_point:
        dtype = torch.float32
    a = a.to(dtype).reshape(-1, 4)
    b = b.to(dtype).reshape(-1, 4).to(a.device)
    iou = torchvision.ops.box_iou(a, b)
    return torch.where(iou > 0, iou, torch.zeros_like(iou))


def box_iou_numpy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """NumPy wrapper of :func:`box_iou`: ``(N, 4)``, ``(M, 4)`` xyxy -> ``(N, M)`` float64
    (float32 when both are float32)."""
    a, b = np.asarray(a), np.asarray(b)
    dtype = np.result_type(a, b)
    if not np.issubdtype(dtype, np.floating):
        dtype = np.float64
    return box_iou(torch.tensor(a.astype(dtype)), torch.tensor(b.astype(dtype))).numpy()


def aligned_box_iou(a: Tensor, b: Tensor, eps: float = 1e-9) -> Tensor:
    """Elementwise IoU of boxes ``a (..., 4)`` and ``b (..., 4)`` (xyxy, broadcast), differentiable;
    ``eps`` is added to the union (torchvision has no elementwise IoU)."""
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[..., 2:] - a[..., :2]).clamp(min=0).prod(-1)
    area_b = (b[..., 2:] - b[..., :2]).clamp(min=0).prod(-1)
    return inter / (area_a + area_b - inter + eps)


def _as_boxes(x: BoxesLike) -> np.ndarray:
    if isinstance(x, Detections):
        x = x.xyxy
    if isinstance(x, Tensor):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64).reshape(-1, 4)


def _det_arrays(d: Detections, classes: Sequence[int] | None) -> tuple[np.ndarray, np.ndarray]:
    boxes = _as_boxes(d.xyxy)
    conf = d.conf.detach().cpu().float().numpy().reshape(-1)
    if classes is not None and len(conf):
        keep = np.isin(d.cls.detach().cpu().numpy().reshape(-1), np.asarray(list(classes)))
        boxes, conf = boxes[keep], conf[keep]
    return boxes, conf


def match_image(
    det_boxes: np.ndarray,
    det_conf: np.ndarray,
    ref_boxes: np.ndarray,
    iou_thresholds: Sequence[float] = (0.5,),
    rule: MatchRule = "voc",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy matching of one image's detections to its reference boxes.

    Args:
        det_boxes: ``(N, 4)`` xyxy pixels. det_conf: ``(N,)``. ref_boxes: ``(M, 4)`` xyxy pixels.
        iou_thresholds: ``T`` thresholds; a match needs IoU ``>= t``.
        rule: ``"voc"`` or ``"coco"`` (see the module docstring).

    Returns:
        ``order`` ``(N,)`` the detection indices in matching order (descending conf, stable),
        ``matched`` ``(N, T)`` int, the reference index each detection (in ``order``) took, or -1,
        ``max_iou`` ``(N,)`` each detection's (in ``order``) highest IoU with any reference (0 if none).
    """
    if rule not in ("voc", "coco"):
        raise ValueError(f"unknown matching rule {rule!r} (use 'voc' or 'coco')")
    thr = np.asarray(iou_thresholds, dtype=np.float64).reshape(-1)
    n, m, t = len(det_conf), len(ref_boxes), len(thr)
    order = np.argsort(-np.asarray(det_conf, dtype=np.float64), kind="mergesort")
    matched = np.full((n, t), -1, dtype=np.int64)
    if n == 0 or m == 0:
        return order, matched, np.zeros(n)
    ious = box_iou_numpy(det_boxes[order], ref_boxes)  # (N, M)
    max_iou = ious.max(1)
    taken = np.zeros((t, m), dtype=bool)
    cols = np.arange(t)
    tmin = thr.min()
    for i in np.flatnonzero(max_iou >= tmin):  # the others match nothing at any threshold
        row = ious[i]
        if rule == "voc":
            j = int(row.argmax())
            ok = (row[j] >= thr) & ~taken[:, j]
            taken[ok, j] = True
            matched[i, ok] = j
        else:
            # best still-free reference per threshold; ties go to the later reference (pycocotools)
            free = np.where(taken, -1.0, row[None, :])  # (T, M)
            jr = free[:, ::-1].argmax(1)
            j = m - 1 - jr
            best = free[cols, j]
            ok = best >= thr
            taken[cols[ok], j[ok]] = True
            matched[i, ok] = j[ok]
    return order, matched, max_iou


@dataclass
class MatchTable:
    """Matches of a whole image set, pooled and sorted by descending confidence.

    Attributes:
        iou_thresholds: ``(T,)`` IoU thresholds the matching was done at.
        conf: ``(D,)`` float32 confidence of every detection, descending (thresholds are compared
            in float32, as the detector's own NMS does, so ``conf=0.7`` keeps a 0.7 detection).
        tp: ``(D, T)`` bool, detection is a true positive at each IoU threshold.
        image: ``(D,)`` image index of each detection.
        max_iou: ``(D,)`` highest IoU of each detection with any reference box of its image.
        ref_conf: ``(R, T)`` confidence of the detection that matched each reference box
            (``-inf`` when unmatched); references are ordered image by image.
        ref_image: ``(R,)`` image index of each reference box.
        n_images: number of images.
    """

    iou_thresholds: np.ndarray
    conf: np.ndarray
    tp: np.ndarray
    image: np.ndarray
    max_iou: np.ndarray
    ref_conf: np.ndarray
    ref_image: np.ndarray
    n_images: int

    @property
    def n_refs(self) -> int:
        return int(self.ref_conf.shape[0])

    def column(self, iou: float) -> int:
        """Index of IoU threshold ``iou`` in :attr:`iou_thresholds` (``tp[:, k]``, ``ref_conf[:, k]``)."""
        hit = np.flatnonzero(np.isclose(self.iou_thresholds, iou))
        if not len(hit):
            raise ValueError(f"IoU {iou} was not matched (have {self.iou_thresholds.tolist()})")
        return int(hit[0])

    def average_precision(self, iou: float = 0.5, interp: Interp = "all") -> float:
        """AP at one IoU threshold (fraction in [0, 1]; nan without references)."""
        return _ap(self.tp[:, self.column(iou)], self.n_refs, interp)

    def ap50_95(self, interp: Interp = "all") -> float:
        """Mean AP over the matched thresholds (COCO's 0.50:0.95 when matched at IOU_50_95)."""
        if self.n_refs == 0:
            return float("nan")
        return float(np.mean([_ap(self.tp[:, k], self.n_refs, interp) for k in range(self.tp.shape[1])]))

    def detection_rate(self, conf: float | Sequence[float], iou: float = 0.5) -> float | np.ndarray:
        """Share of reference boxes matched by a detection with confidence ``>= conf``.

        Greedy matching in descending confidence makes the matches among detections above ``conf``
        independent of those below it, so one matching serves every threshold. Accepts a sequence
        of thresholds (returns an array). nan without references.
        """
        rc = self.ref_conf[:, self.column(iou)]
        c = np.asarray(conf, dtype=np.float32)  # compare as the detector does, in float32
        if self.n_refs == 0:
            out = np.full(c.shape, np.nan)
        else:
            out = (rc[None, :] >= c.reshape(-1, 1)).mean(1).reshape(c.shape)
        return float(out) if out.ndim == 0 else out

    def hallucinations_per_image(self, conf: float, iou: float = 0.5) -> float:
        """Detections with confidence ``>= conf`` whose IoU with every reference box is ``< iou``,
        per image (duplicates of a matched box are not counted). 0 for an empty image set."""
        if self.n_images == 0:
            return 0.0
        n = int(((self.conf >= np.float32(conf)) & (self.max_iou < iou)).sum())
        return n / self.n_images

    def pr_curve(self, iou: float = 0.5) -> "PRCurve":
        """Precision and recall after each detection in confidence order."""
        tp = self.tp[:, self.column(iou)]
        tpc = np.cumsum(tp)
        k = np.arange(1, len(tp) + 1)
        recall = tpc / self.n_refs if self.n_refs else np.full(len(tp), np.nan)
        precision = tpc / k if len(tp) else np.zeros(0)
        return PRCurve(precision=precision.astype(np.float64), recall=recall.astype(np.float64),
                       conf=self.conf.copy())


@dataclass
class PRCurve:
    """Precision-recall curve for plotting: one point per detection in descending confidence.

    Attributes: precision, recall, conf: ``(D,)`` float64 arrays.
    """

    precision: np.ndarray
    recall: np.ndarray
    conf: np.ndarray

    def envelope(self) -> tuple[np.ndarray, np.ndarray]:
        """(recall, precision) of the monotone envelope with sentinels at recall 0 and 1."""
        mrec = np.concatenate(([0.0], np.nan_to_num(self.recall), [1.0]))
        mpre = np.concatenate(([0.0], self.precision, [0.0]))
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        return mrec, mpre


def _ap(tp: np.ndarray, n_refs: int, interp: Interp) -> float:
    if n_refs == 0:
        return float("nan")
    if len(tp) == 0:
        return 0.0
    tpc = np.cumsum(tp, dtype=np.float64)
    recall = tpc / n_refs
    precision = tpc / np.arange(1, len(tp) + 1)
    if interp == "all":
        mrec = np.concatenate(([0.0], recall, [1.0]))
        mpre = np.concatenate(([0.0], precision, [0.0]))
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        i = np.flatnonzero(mrec[1:] != mrec[:-1])
        return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))
    if interp == "coco101":
        env = np.maximum.accumulate(precision[::-1])[::-1]
        rs = np.linspace(0.0, 1.0, 101)
        idx = np.searchsorted(recall, rs, side="left")
        q = np.where(idx < len(env), env[np.minimum(idx, len(env) - 1)], 0.0)
        return float(q.mean())
    raise ValueError(f"unknown interpolation {interp!r} (use 'all' or 'coco101')")


def match(
    detections: Sequence[Detections],
    references: Sequence[BoxesLike],
    iou_thresholds: Sequence[float] | float = 0.5,
    rule: MatchRule = "voc",
    classes: Sequence[int] | None = None,
) -> MatchTable:
    """Match every image's detections to its reference boxes and pool the result.

    Args:
        detections: one :class:`Detections` per image.
        references: one ``(M, 4)`` xyxy tensor/array (or a :class:`Detections`, e.g. the
            detector's own clean detections) per image, in the same pixel frame.
        iou_thresholds: one threshold or several (e.g. :data:`IOU_50_95`).
        rule: ``"voc"`` (default) or ``"coco"``.
        classes: keep only detections of these class ids (``None``: all).
    """
    if len(detections) != len(references):
        raise ValueError(f"{len(detections)} detection lists but {len(references)} reference lists")
    thr = np.atleast_1d(np.asarray(iou_thresholds, dtype=np.float64))
    confs, tps, imgs, mious, rconfs, rimgs = [], [], [], [], [], []
    for k, (d, r) in enumerate(zip(detections, references)):
        boxes, conf = _det_arrays(d, classes)
        refs = _as_boxes(r)
        order, matched, max_iou = match_image(boxes, conf, refs, thr, rule)
        conf = conf[order]
        confs.append(conf)
        tps.append(matched >= 0)
        imgs.append(np.full(len(conf), k, dtype=np.int64))
        mious.append(max_iou)
        rc = np.full((len(refs), len(thr)), -np.inf, dtype=np.float32)
        di, ti = np.nonzero(matched >= 0)
        rc[matched[di, ti], ti] = conf[di]
        rconfs.append(rc)
        rimgs.append(np.full(len(refs), k, dtype=np.int64))
    conf = np.concatenate(confs) if confs else np.zeros(0, dtype=np.float32)
    order = np.argsort(-conf, kind="mergesort")  # stable: image order, then per-image order
    cat = lambda xs, shape: np.concatenate(xs) if xs else np.zeros(shape)  # noqa: E731
    return MatchTable(
        iou_thresholds=thr,
        conf=conf[order],
        tp=cat(tps, (0, len(thr))).astype(bool)[order],
        image=cat(imgs, (0,)).astype(np.int64)[order],
        max_iou=cat(mious, (0,))[order],
        ref_conf=cat(rconfs, (0, len(thr))).astype(np.float32),
        ref_image=cat(rimgs, (0,)).astype(np.int64),
        n_images=len(detections),
    )


def average_precision(
    detections: Sequence[Detections],
    references: Sequence[BoxesLike],
    iou: float = 0.5,
    rule: MatchRule = "voc",
    interp: Interp = "all",
    classes: Sequence[int] | None = None,
) -> float:
    """AP at one IoU threshold (all-point VOC by default); fraction in [0, 1], nan without references."""
    return match(detections, references, iou, rule, classes).average_precision(iou, interp)


def ap50_95(
    detections: Sequence[Detections],
    references: Sequence[BoxesLike],
    rule: MatchRule = "voc",
    interp: Interp = "all",
    classes: Sequence[int] | None = None,
) -> float:
    """Mean AP over IoU 0.50:0.05:0.95; fraction in [0, 1], nan without references."""
    return match(detections, references, IOU_50_95, rule, classes).ap50_95(interp)


def detection_rate(
    detections: Sequence[Detections],
    references: Sequence[BoxesLike],
    conf: float,
    iou: float = 0.5,
    rule: MatchRule = "voc",
    classes: Sequence[int] | None = None,
) -> float:
    """Share of reference boxes matched (IoU ``>= iou``) by a detection with confidence ``>= conf``."""
    return match(detections, references, iou, rule, classes).detection_rate(conf, iou)


def attack_success_rate(
    detections: Sequence[Detections],
    references: Sequence[BoxesLike],
    conf: float,
    iou: float = 0.5,
    rule: MatchRule = "voc",
    classes: Sequence[int] | None = None,
) -> float:
    """Share of reference boxes *not* detected at IoU ``>= iou`` and confidence ``>= conf``
    (``1 - detection_rate``)."""
    return 1.0 - detection_rate(detections, references, conf, iou, rule, classes)


def asr_from_ap(ap_adv: float, ap_clean: float) -> float:
    """ASR as ``1 - AP_adv / AP_clean`` (PADetBench); nan when ``AP_clean`` is 0 or nan."""
    if not np.isfinite(ap_clean) or ap_clean <= 0 or not np.isfinite(ap_adv):
        return float("nan")
    return float(1.0 - ap_adv / ap_clean)


def hallucinations_per_image(
    detections: Sequence[Detections],
    references: Sequence[BoxesLike],
    conf: float,
    iou: float = 0.5,
    classes: Sequence[int] | None = None,
) -> float:
    """Detections (confidence ``>= conf``) overlapping no reference box at IoU ``>= iou``, per image."""
    return match(detections, references, iou, "voc", classes).hallucinations_per_image(conf, iou)


def pr_curve(
    detections: Sequence[Detections],
    references: Sequence[BoxesLike],
    iou: float = 0.5,
    rule: MatchRule = "voc",
    classes: Sequence[int] | None = None,
) -> PRCurve:
    """Precision/recall/confidence arrays for plotting a PR curve."""
    return match(detections, references, iou, rule, classes).pr_curve(iou)
