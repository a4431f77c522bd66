"""``patchkit evaluate`` on clothing textures (issue 15): masks from any scene plus a ``--masks``
folder (polygon labels or instance PNGs), texture conditions in the patch JSON, errors."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from patchkit.errors import PatchkitError
from patchkit.evaluation.runner import load_image_set
from patchkit.evaluation.textures import find_mask_file, garment_masks, load_instance_masks

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("PATCHKIT_SHARED", REPO.parent / "shared")) / "data"
PENNFUDAN = SHARED / "pennfudan"
YOLOV8N = SHARED / "weights" / "yolov8n.pt"
needs_shared = pytest.mark.skipif(
    not (PENNFUDAN / "test" / "masks").is_dir() or not YOLOV8N.is_file(),
    reason="../shared/data (Penn-Fudan masks, yolov8n) not available",
)
SCHEMA = {"detector", "condition", "reference", "ap50", "ap50_95", "asr", "detection_rate", "n_images", "n_boxes",
          "coverage", "kind"}


def _write_dataset(root: Path, images: list[np.ndarray], boxes: list[list[list[float]]]) -> Path:
    """A YOLO dataset folder (images/test, labels/test) of uint8 HxWx3 images and pixel xyxy boxes."""
    (root / "images" / "test").mkdir(parents=True)
    (root / "labels" / "test").mkdir(parents=True)
    for i, (img, bb) in enumerate(zip(images, boxes)):
        h, w = img.shape[:2]
        Image.fromarray(img).save(root / "images" / "test" / f"im{i}.png")
        lines = [f"0 {(x0 + x1) / 2 / w:.6f} {(y0 + y1) / 2 / h:.6f} {(x1 - x0) / w:.6f} {(y1 - y0) / h:.6f}"
                 for x0, y0, x1, y1 in bb]
        (root / "labels" / "test" / f"im{i}.txt").write_text("\n".join(lines) + "\n")
    return root


def _write_masks(poly_dir: Path, png_dir: Path, sizes, persons, png_name="{stem}_mask.png"):
    """The same persons as polygon label files and as instance-mask PNGs.

    ``persons``: per image, a list of polygons ``(P, 2)`` in pixels (x, y), in instance order."""
    import cv2

    poly_dir.mkdir(parents=True, exist_ok=True)
    png_dir.mkdir(parents=True, exist_ok=True)
    for i, ((h, w), polys) in enumerate(zip(sizes, persons)):
        stem = f"im{i}"
        lines = []
        inst = np.zeros((h, w), np.uint8)
        for k, pts in enumerate(polys, start=1):
            norm = (np.asarray(pts, float) / [w, h]).reshape(-1)
            lines.append("0 " + " ".join(f"{v:.6f}" for v in norm))
            cv2.fillPoly(inst, [np.round(np.asarray(pts)).astype(np.int32)], k)
        (poly_dir / f"{stem}.txt").write_text("\n".join(lines) + "\n")
        Image.fromarray(inst, "L").save(png_dir / png_name.format(stem=stem))


def _person_polygon(x0, y0, x1, y1):
    """A person-ish octagon inside the box (narrower at the head and feet)."""
    w, h = x1 - x0, y1 - y0
    return [(x0 + 0.35 * w, y0), (x0 + 0.65 * w, y0), (x1, y0 + 0.2 * h), (x1, y0 + 0.8 * h),
            (x0 + 0.7 * w, y1), (x0 + 0.3 * w, y1), (x0, y0 + 0.8 * h), (x0, y0 + 0.2 * h)]


def test_polygon_and_png_masks_agree(tmp_path, caplog):
    rng = np.random.default_rng(0)
    sizes = [(120, 200), (150, 100), (90, 90)]  # (H, W): landscape, portrait and square letterboxes
    images, boxes, persons = [], [], []
    for h, w in sizes:
        images.append(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        bb = [[0.1 * w, 0.1 * h, 0.4 * w, 0.95 * h], [0.55 * w, 0.2 * h, 0.9 * w, 0.9 * h]]
        boxes.append(bb)
        persons.append([_person_polygon(*b) for b in bb])
    ds = _write_dataset(tmp_path / "ds", images, boxes)
    _write_masks(tmp_path / "poly", tmp_path / "png", sizes, persons)
    # both PNG names are found: rename one to {stem}.png
    (tmp_path / "png" / "im1_mask.png").rename(tmp_path / "png" / "im1.png")
    assert find_mask_file(tmp_path / "png", "im1").name == "im1.png"
    assert find_mask_file(tmp_path / "png", "im0").name == "im0_mask.png"
    assert find_mask_file(tmp_path / "poly", "im0").name == "im0.txt"

    s = 96
    canvases, labels, paths = load_image_set(ds, "test", None, s, 0)
    assert labels is not None and [len(b) for b in labels] == [2, 2, 2]
    got = {}
    for fmt in ("poly", "png"):
        inst, files = load_instance_masks(paths, s, tmp_path / fmt)
        assert all(f is not None for f in files) and all(m.shape == (2, s, s) for m in inst)
        with caplog.at_level(logging.WARNING):
            caplog.clear()
            got[fmt] = garment_masks(inst, labels, s, "both", "error", 1, files, tmp_path / fmt, paths)
            assert not caplog.records  # every person has its mask
    for b, mp, mg in zip(labels, got["poly"], got["png"]):
        assert mp.shape == mg.shape == (2, s, s)
        inter = (mp * mg).flatten(1).sum(1)
        union = ((mp + mg) > 0).float().flatten(1).sum(1)
        assert (inter / union > 0.85).all()  # same masks up to rasterisation at the polygon edges
        for k, (x0, y0, x1, y1) in enumerate(b.tolist()):  # letterboxed like the image: inside the box
            ys, xs = mp[k].nonzero(as_tuple=True)
            assert xs.min() >= x0 - 1 and xs.max() <= x1 + 1 and ys.min() >= y0 + 0.17 * (y1 - y0) - 1
            assert ys.max() <= y1 + 1

    # polygons outside the image: clipped, with a warning naming the file
    (tmp_path / "poly" / "im2.txt").write_text("0 -0.2 0.1 0.5 0.1 0.5 1.3 -0.2 1.3\n")
    with caplog.at_level(logging.WARNING):
        caplog.clear()
        inst, _ = load_instance_masks(paths, s, tmp_path / "poly")
    assert any("im2.txt" in r.getMessage() and "clipped" in r.getMessage() for r in caplog.records)
    assert inst[2].shape == (1, s, s) and inst[2].any()

    # a missing mask file: policy error names the image, policy box warns with a count
    (tmp_path / "poly" / "im0.txt").unlink()
    inst, files = load_instance_masks(paths, s, tmp_path / "poly")
    with pytest.raises(PatchkitError, match=r"im0"):
        garment_masks(inst, labels, s, "both", "error", 1, files, tmp_path / "poly", paths)
    with caplog.at_level(logging.WARNING):
        caplog.clear()
        masks = garment_masks(inst, labels, s, "upper", "box", 1, files, tmp_path / "poly", paths)
    assert any("have no instance mask" in r.getMessage() and r.getMessage().startswith("3 of 6 persons")
               for r in caplog.records)
    assert masks[0].flatten(1).sum(1).gt(0).all()  # box-derived region used


# --------------------------------------------------------------------------- CLI, synthetic


@pytest.fixture
def synthetic(tmp_path, monkeypatch, blue_detector, canvases):
    """A YOLO dataset of red persons on 192 px canvases, PNG instance masks, a blue texture with a
    sidecar, and ``create_detector`` patched to the blue-sensitive stand-in detector."""
    import patchkit.detectors as detectors

    canv, boxes = canvases(4)
    imgs = [c.permute(1, 2, 0).numpy() for c in canv]
    bb = [b.tolist() for b in boxes]
    ds = _write_dataset(tmp_path / "ds", imgs, bb)
    rects = [[[(x0, y0), (x1 - 1, y0), (x1 - 1, y1 - 1), (x0, y1 - 1)] for x0, y0, x1, y1 in b] for b in bb]
    _write_masks(tmp_path / "poly", tmp_path / "masks", [(192, 192)] * 4, rects)
    tile = np.zeros((16, 16, 3), np.uint8)
    tile[..., 2] = 255
    Image.fromarray(tile).save(tmp_path / "bluetex.png")
    (tmp_path / "bluetex.json").write_text(json.dumps({"kind": "texture", "tile_cm": 15,
                                                       "detector": {"file": "blue10"}}))
    monkeypatch.setattr(detectors, "create_detector", lambda w, **kw: blue_detector(10.0))
    return tmp_path, ds


def _cli(*argv) -> int:
    from patchkit.cli.main import main

    return main(["evaluate", *map(str, argv)])


def test_cli_texture_writes_conditions(synthetic, capsys):
    tmp, ds = synthetic
    rc = _cli("--detector", "blue", "--scene", ds, "--imgsz", 192, "--patch", tmp / "bluetex.png",
              "--masks", tmp / "masks", "--reference", "labels", "--thresholds", "0.1,0.25,0.5",
              "--json", tmp / "tex.json", "--no-plots", "--eot-samples", 2, "--batch", 3, "--missing-masks", "error")
    out = capsys.readouterr()
    assert rc == 0, out.err
    data = json.loads((tmp / "tex.json").read_text())
    rows = {r["condition"]: r for r in data["results"]}
    assert set(rows) == {"clean", "random", "gray", "bluetex"}
    for r in rows.values():
        assert SCHEMA <= set(r) and r["kind"] == "texture" and r["reference"] == "labels"
        assert r["n_images"] == 4 and r["n_boxes"] == 6
        assert set(r["detection_rate"]) >= {"0.1", "0.25", "0.5"}
    assert rows["clean"]["coverage"] == 0.0 and rows["clean"]["detection_rate"]["0.5"] == 1.0
    cov = rows["random"]["coverage"]
    assert 0.5 < cov < 1.0 and rows["gray"]["coverage"] == cov == rows["bluetex"]["coverage"]  # same masks
    assert rows["bluetex"]["tile_cm"] == 15 and rows["random"]["tile_cm"] == 15
    assert rows["bluetex"]["eot_samples"] == 2 and len(rows["bluetex"]["ap50_samples"]) == 2
    # the stand-in finds red bodies: clothing them (in any colour) leaves only the head's red
    assert rows["bluetex"]["detection_rate"]["0.5"] < 0.5 and rows["bluetex"]["asr"] > 0.5
    assert rows["gray"]["detection_rate"]["0.5"] < 0.5
    assert data["meta"]["kind"] == "texture" and data["meta"]["eot_samples"] == 2
    assert data["meta"]["masks"] == str(tmp / "masks")
    assert "bluetex" in out.out and "coverage" in out.out

    # polygon labels give the same coverage; no masks: the box-derived region, said once
    assert _cli("--detector", "blue", "--scene", ds, "--imgsz", 192, "--patch", tmp / "bluetex.png",
                "--masks", tmp / "poly", "--reference", "labels", "--json", tmp / "poly.json", "--no-plots") == 0
    poly = {r["condition"]: r for r in json.loads((tmp / "poly.json").read_text())["results"]}
    assert poly["random"]["coverage"] == pytest.approx(cov, rel=0.05)
    capsys.readouterr()
    assert _cli("--detector", "blue", "--scene", ds, "--imgsz", 192, "--patch", tmp / "bluetex.png",
                "--json", tmp / "box.json", "--no-plots") == 0
    err = capsys.readouterr().err
    assert sum("box-derived" in line for line in err.splitlines()) == 1
    box = json.loads((tmp / "box.json").read_text())
    assert {r["reference"] for r in box["results"]} == {"self", "labels"}
    assert box["meta"]["masks"] is None


def test_cli_texture_errors(synthetic, capsys):
    tmp, ds = synthetic
    # a mask PNG whose size is not its image's: exit 2, one line naming the file
    Image.fromarray(np.zeros((100, 192), np.uint8), "L").save(tmp / "masks" / "im2_mask.png")
    rc = _cli("--detector", "blue", "--scene", ds, "--imgsz", 192, "--patch", tmp / "bluetex.png",
              "--masks", tmp / "masks", "--no-plots")
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    errors = [line for line in err if "error" in line]
    assert len(errors) == 1 and "im2_mask.png" in errors[0] and errors[0].startswith("patchkit evaluate: error:")
    # mixing a patch and a texture is refused in one line
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp / "plain.png")
    rc = _cli("--detector", "blue", "--scene", ds, "--imgsz", 192, "--patch", tmp / "bluetex.png", tmp / "plain.png")
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "patches and textures" in err[0]


# --------------------------------------------------------------------------- real data


@needs_shared
@pytest.mark.shared
def test_pennfudan_yolov8n_texture_controls(tmp_path, capsys):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "noise_tex.png")
    (tmp_path / "noise_tex.json").write_text(json.dumps({"kind": "texture", "tile_cm": 20}))
    rc = _cli("--detector", YOLOV8N, "--scene", REPO / "scenes" / "pennfudan.yaml", "--split", "test",
              "--max-images", 4, "--imgsz", 320, "--patch", tmp_path / "noise_tex.png",
              "--masks", PENNFUDAN / "test" / "masks", "--reference", "labels", "--thresholds", "0.1,0.25,0.5",
              "--json", tmp_path / "pf.json", "--no-plots")
    out = capsys.readouterr()
    assert rc == 0, out.err
    rows = {r["condition"]: r for r in json.loads((tmp_path / "pf.json").read_text())["results"]}
    assert set(rows) == {"clean", "random", "gray", "noise_tex"}
    for name in ("random", "gray", "noise_tex"):
        r = rows[name]
        assert r["kind"] == "texture" and r["n_images"] == 4 and r["n_boxes"] >= 4
        for t in ("0.1", "0.25", "0.5"):
            assert 0.0 <= r["detection_rate"][t] <= 1.0
        assert r["coverage"] > 0.2
        assert 0.0 <= r["ap50"] <= 1.0
    assert rows["clean"]["detection_rate"]["0.25"] > 0.5
