"""patchkit.metrics.ap against independent references: pycocotools (COCO matching, 101-point),
ultralytics' own PR envelope (all-point) and a plain port of the PASCAL VOC devkit's voc_eval."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou as tv_box_iou

from patchkit.detections import Detections
from patchkit.metrics import ap as apm


def random_set(seed: int, n_images: int = 12, max_refs: int = 6):
    """Random references, jittered true detections, duplicates and false positives."""
    rng = np.random.default_rng(seed)
    dets, refs = [], []
    for _ in range(n_images):
        m = int(rng.integers(0, max_refs + 1))
        xy = rng.uniform(0, 500, (m, 2))
        wh = rng.uniform(20, 200, (m, 2))
        r = np.concatenate([xy, xy + wh], 1)
        keep = rng.random(m) < 0.8
        base = np.concatenate([r[keep], r[rng.random(m) < 0.3]])  # some duplicates
        jit = base + rng.normal(0, 1, base.shape) * np.tile(wh.mean() if m else 10.0, (1, 4)) * 0.15
        fxy = rng.uniform(0, 500, (int(rng.integers(0, 4)), 2))
        fp = np.concatenate([fxy, fxy + rng.uniform(10, 150, fxy.shape)], 1)
        d = np.concatenate([jit, fp]).reshape(-1, 4)
        d[:, 2:] = np.maximum(d[:, 2:], d[:, :2] + 1)
        conf = rng.random(len(d))
        dets.append(Detections(torch.tensor(d, dtype=torch.float32), torch.tensor(conf, dtype=torch.float32),
                               torch.zeros(len(d), dtype=torch.long)))
        refs.append(torch.tensor(r, dtype=torch.float32))
    return dets, refs


def coco_eval(dets, refs, iou_thrs):
    """Run pycocotools on the same boxes; returns (precision array over thresholds, evalImgs)."""
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, anns, res = [], [], []
    for k, (d, r) in enumerate(zip(dets, refs)):
        images.append({"id": k, "width": 800, "height": 800})
        for b in r.double().tolist():
            w, h = b[2] - b[0], b[3] - b[1]
            anns.append({"id": len(anns) + 1, "image_id": k, "category_id": 1, "bbox": [b[0], b[1], w, h],
                         "area": w * h, "iscrowd": 0})
        for b, c in zip(d.xyxy.double().tolist(), d.conf.double().tolist()):
            res.append({"image_id": k, "category_id": 1, "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "score": c})
    gt = COCO()
    gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes(res) if res else COCO()
        ev = COCOeval(gt, dt, "bbox")
        ev.params.iouThrs = np.asarray(iou_thrs, dtype=np.float64)
        ev.params.maxDets = [10000]
        ev.params.areaRng = [[0, 1e10]]
        ev.params.areaRngLbl = ["all"]
        ev.evaluate()
        ev.accumulate()
    return ev


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_box_iou_matches_torchvision(seed):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(7, 2, generator=g) * 100
    a = torch.cat([a, a + torch.rand(7, 2, generator=g) * 50 + 1], 1)
    b = torch.rand(5, 2, generator=g) * 100
    b = torch.cat([b, b + torch.rand(5, 2, generator=g) * 50 + 1], 1)
    torch.testing.assert_close(apm.box_iou(a, b), tv_box_iou(a, b))
    assert apm.box_iou(a, b[:0]).shape == (7, 0)
    assert apm.box_iou(a[:0], b).shape == (0, 5)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_coco_rule_equals_pycocotools(seed):
    dets, refs = random_set(seed)
    ev = coco_eval(dets, refs, np.linspace(0.5, 0.95, 10))
    prec = ev.eval["precision"][:, :, 0, 0, 0]  # (T, 101)
    ref_ap = [float(np.mean(p)) for p in prec]
    thr = ev.params.iouThrs
    table = apm.match(dets, refs, thr, rule="coco")
    ours = [table.average_precision(t, "coco101") for t in thr]
    np.testing.assert_allclose(ours, ref_ap, atol=1e-6)
    assert abs(table.ap50_95("coco101") - float(np.mean(prec))) < 1e-6
    assert abs(apm.ap50_95(dets, refs, rule="coco", interp="coco101") - float(np.mean(prec))) < 1e-6
    # recall at the end of the list equals pycocotools' recall
    np.testing.assert_allclose(table.detection_rate([0.0] * 1, 0.5), ev.eval["recall"][0, 0, 0, 0], atol=1e-12)


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_all_point_ap_equals_ultralytics_envelope(seed):
    """Matching from pycocotools, PR envelope from ultralytics' compute_ap, integrated where recall
    changes (ultralytics' former method='continuous', i.e. VOC all-point): equals ours."""
    from patchkit.detectors._isolation import preserve_process_state

    with preserve_process_state():  # importing ultralytics patches PIL, torch.save, threads...
        from ultralytics.utils.metrics import compute_ap

    dets, refs = random_set(seed, n_images=15)
    ev = coco_eval(dets, refs, [0.5])
    # pool pycocotools' per-image matches in its own order, as accumulate() does
    ei = [e for e in ev.evalImgs if e is not None]
    scores = np.concatenate([e["dtScores"] for e in ei])
    matched = np.concatenate([e["dtMatches"][0] for e in ei]) > 0
    inds = np.argsort(-scores, kind="mergesort")
    tp = matched[inds].astype(float)
    n_refs = sum(len(r) for r in refs)
    tpc = np.cumsum(tp)
    _, mpre, mrec = compute_ap(tpc / n_refs, tpc / np.arange(1, len(tp) + 1))
    i = np.where(mrec[1:] != mrec[:-1])[0]
    ref_ap = float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))
    assert abs(apm.average_precision(dets, refs, 0.5, rule="coco", interp="all") - ref_ap) < 1e-6


def voc_eval_port(dets, refs, ovthresh):
    """PASCAL VOC devkit voc_eval (py-faster-rcnn), one class, all-point AP; pixel '+1' removed."""
    class_recs = {k: {"bbox": r.double().numpy(), "det": [False] * len(r)} for k, r in enumerate(refs)}
    npos = sum(len(r) for r in refs)
    image_ids = [k for k, d in enumerate(dets) for _ in range(len(d))]
    confidence = np.concatenate([d.conf.double().numpy() for d in dets])
    BB = np.concatenate([d.xyxy.double().numpy().reshape(-1, 4) for d in dets])
    sorted_ind = np.argsort(-confidence, kind="mergesort")
    BB = BB[sorted_ind, :]
    image_ids = [image_ids[x] for x in sorted_ind]
    nd = len(image_ids)
    tp, fp = np.zeros(nd), np.zeros(nd)
    for d in range(nd):
        R = class_recs[image_ids[d]]
        bb = BB[d, :]
        ovmax = -np.inf
        BBGT = R["bbox"]
        if BBGT.size > 0:
            ixmin = np.maximum(BBGT[:, 0], bb[0])
            iymin = np.maximum(BBGT[:, 1], bb[1])
            ixmax = np.minimum(BBGT[:, 2], bb[2])
            iymax = np.minimum(BBGT[:, 3], bb[3])
            iw = np.maximum(ixmax - ixmin, 0.0)
            ih = np.maximum(iymax - iymin, 0.0)
            inters = iw * ih
            uni = (bb[2] - bb[0]) * (bb[3] - bb[1]) + (BBGT[:, 2] - BBGT[:, 0]) * (BBGT[:, 3] - BBGT[:, 1]) - inters
            overlaps = inters / uni
            ovmax = np.max(overlaps)
            jmax = np.argmax(overlaps)
        if ovmax > ovthresh:
            if not R["det"][jmax]:
                tp[d] = 1.0
                R["det"][jmax] = 1
            else:
                fp[d] = 1.0
        else:
            fp[d] = 1.0
    fp, tp = np.cumsum(fp), np.cumsum(tp)
    rec = tp / float(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])), rec


@pytest.mark.parametrize("seed", [10, 11, 12, 13])
@pytest.mark.parametrize("iou", [0.5, 0.75])
def test_voc_rule_equals_devkit(seed, iou):
    dets, refs = random_set(seed, n_images=10)
    ref_ap, rec = voc_eval_port(dets, refs, iou)
    assert abs(apm.average_precision(dets, refs, iou) - ref_ap) < 1e-6
    np.testing.assert_allclose(apm.pr_curve(dets, refs, iou).recall, rec, atol=1e-12)


def test_rules_differ_where_they_should():
    # two references; the high-conf detection takes A; the second detection overlaps A best but
    # B above 0.5: VOC calls it a false positive, COCO matches it to B.
    refs = [torch.tensor([[0.0, 0, 100, 100], [20.0, 0, 120, 100]])]
    d = Detections(torch.tensor([[0.0, 0, 100, 100], [8.0, 0, 108, 100]]), torch.tensor([0.9, 0.8]),
                   torch.zeros(2, dtype=torch.long))
    assert apm.detection_rate([d], refs, 0.1, rule="voc") == 0.5
    assert apm.detection_rate([d], refs, 0.1, rule="coco") == 1.0


def test_detection_rate_prefix_property_and_asr():
    dets, refs = random_set(21, n_images=20)
    table = apm.match(dets, refs, 0.5)
    for t in (0.1, 0.25, 0.5, 0.9):
        kept = [d[d.conf >= t] for d in dets]
        direct = apm.match(kept, refs, 0.5)
        assert table.detection_rate(t) == pytest.approx(direct.detection_rate(0.0), abs=1e-12)
        assert apm.attack_success_rate(dets, refs, t) == pytest.approx(1 - table.detection_rate(t))
    rates = table.detection_rate([0.1, 0.5, 0.9])
    assert rates.shape == (3,) and np.all(np.diff(rates) <= 0)


def test_edge_cases():
    empty = Detections.empty()
    box = torch.tensor([[10.0, 10, 50, 80]])
    one = Detections(box.clone(), torch.tensor([0.7]), torch.zeros(1, dtype=torch.long))
    # no references at all: undefined
    assert np.isnan(apm.average_precision([one], [torch.zeros(0, 4)]))
    assert np.isnan(apm.detection_rate([one], [torch.zeros(0, 4)], 0.25))
    assert apm.hallucinations_per_image([one], [torch.zeros(0, 4)], 0.25) == 1.0
    # references but no detections: AP 0, nothing detected
    assert apm.average_precision([empty], [box]) == 0.0
    assert apm.ap50_95([empty], [box]) == 0.0
    assert apm.attack_success_rate([empty], [box], 0.25) == 1.0
    # all matched exactly: AP 1 at every IoU, detection rate 1 up to the detection's conf only
    assert apm.average_precision([one, one], [box, box]) == 1.0
    assert apm.ap50_95([one], [box]) == 1.0
    assert apm.ap50_95([one], [box], rule="coco", interp="coco101") == 1.0
    assert apm.detection_rate([one], [box], 0.7) == 1.0
    assert apm.detection_rate([one], [box], 0.71) == 0.0
    # a Detections object works as the reference (self reference)
    assert apm.average_precision([one], [one]) == 1.0
    # no images
    assert np.isnan(apm.average_precision([], []))
    with pytest.raises(ValueError):
        apm.match([one], [])


def test_hallucinations_classes_and_asr_from_ap():
    refs = [torch.tensor([[0.0, 0, 100, 100]]), torch.zeros(0, 4)]
    d0 = Detections(torch.tensor([[0.0, 0, 100, 100], [1.0, 1, 99, 99], [300.0, 300, 400, 400]]),
                    torch.tensor([0.9, 0.8, 0.6]), torch.tensor([0, 0, 2]))
    d1 = Detections(torch.tensor([[5.0, 5, 50, 50]]), torch.tensor([0.3]), torch.tensor([0]))
    # duplicate at (1,1,99,99) overlaps the reference: not a hallucination
    assert apm.hallucinations_per_image([d0, d1], refs, 0.25) == 1.0  # (300..400) and d1
    assert apm.hallucinations_per_image([d0, d1], refs, 0.5) == 0.5
    assert apm.hallucinations_per_image([d0, d1], refs, 0.25, classes=[0]) == 0.5
    curve = apm.pr_curve([d0, d1], refs)
    np.testing.assert_allclose(curve.precision, [1, 0.5, 1 / 3, 0.25])
    np.testing.assert_allclose(curve.recall, [1, 1, 1, 1])
    mrec, mpre = curve.envelope()
    assert mrec[0] == 0 and mrec[-1] == 1 and np.all(np.diff(mpre) <= 0)
    assert apm.asr_from_ap(0.2, 0.8) == pytest.approx(0.75)
    assert np.isnan(apm.asr_from_ap(0.2, 0.0))
