"""`export`: exact size, bit-exact lossless image data, marks, markers, tiling, CLI."""

import json
import re

import numpy as np
import pytest
from PIL import Image
from _pdf import pdf_images
from _printing_sim import PRINTERS

from patchkit.cli.main import main
from patchkit.errors import PatchkitError
from patchkit.printing import PrinterProfile
from patchkit.printing.drawing import rasterize
from patchkit.printing.export import EXPORT_MARKER_IDS, export_patch, export_pixels, nearest_resize
from patchkit.printing.measure import detect_markers

PT = 72.0 / 25.4




def _content(pdf: bytes) -> bytes:
    return b"\n".join(s for s in re.findall(rb"stream\n(.*?)\nendstream", pdf, re.S) if b" re f" in s or b"Tj" in s)


def test_image_in_pdf_is_bit_exact_and_placed_at_exact_size():
    rng = np.random.default_rng(0)
    patch = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)  # noise: any lossy codec would show
    exp = export_patch(patch, 123.4, 91.0, dpi=300, qa_strip=False)
    nx, ny = export_pixels(123.4, 91.0, 300)
    assert (nx, ny) == (round(123.4 / 25.4 * 300), round(91.0 / 25.4 * 300))
    assert exp.image.shape == (ny, nx, 3)
    assert np.array_equal(exp.image, nearest_resize(patch, nx, ny))
    imgs = pdf_images(exp.pdf)
    assert len(imgs) == 1 and np.array_equal(imgs[0], exp.image)
    assert b"/DCTDecode" not in exp.pdf
    # the placement matrix declares the exact physical size in points
    m = re.search(rb"q ([\d.]+) 0 0 ([\d.]+) [\d.]+ [\d.]+ cm /Im0 Do Q", exp.pdf)
    assert float(m.group(1)) == pytest.approx(123.4 * PT, abs=1e-4)
    assert float(m.group(2)) == pytest.approx(91.0 * PT, abs=1e-4)
    # a patch already at print resolution is embedded unchanged
    same = rng.integers(0, 256, (ny, nx, 3), dtype=np.uint8)
    assert np.array_equal(pdf_images(export_patch(same, 123.4, 91.0, dpi=300).pdf)[0], same)


def test_pdf_reads_back_bit_exact_with_pypdf():
    pypdf = pytest.importorskip("pypdf")
    import io

    patch = np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    exp = export_patch(patch, 100.0, dpi=200)
    reader = pypdf.PdfReader(io.BytesIO(exp.pdf))
    page = reader.pages[0]
    assert float(page.mediabox.width) == pytest.approx(210 * PT, abs=1e-3)
    imgs = [np.asarray(im.image.convert("RGB")) for im in page.images]
    assert any(i.shape == exp.image.shape and np.array_equal(i, exp.image) for i in imgs)
    assert "patchkit patch 100 x 100 mm" in page.extract_text()


def test_marks_label_scale_bar_qa_strip_and_markers(tmp_path):
    profile = PrinterProfile.load(PRINTERS / "sim-halftone")
    patch = np.random.default_rng(2).integers(0, 256, (30, 30, 3), dtype=np.uint8)
    exp = export_patch(patch, 110.0, markers=True, profile=profile)
    content = _content(exp.pdf)
    assert f"{100 * PT:.4f}".encode() in content  # 100 mm scale bar
    assert f"{7 * PT:.4f}".rstrip("0").encode() in content  # 7 mm crop-mark lines
    assert profile.sha256[:12].encode() in content and b"110 x 110 mm" in content
    qa = exp.meta["qa_strip"]
    assert len(qa) == 19 and all(len(s["predicted_capture"]) == 3 for s in qa)
    mk = exp.meta["markers"]
    assert [m["id"] for m in mk["markers"]] == list(EXPORT_MARKER_IDS) and 10 <= mk["size_mm"] <= 40
    # markers detectable at their recorded physical size and position
    ppm = 6.0
    raster = rasterize(exp.pages[0], ppm)
    found = detect_markers(raster)
    assert sorted(found) == list(EXPORT_MARKER_IDS)
    place = exp.meta["placement_mm"]
    for rec in mk["markers"]:
        want = (np.array(rec["corners_patch_mm"]) + [place["x"], place["y"]]) * ppm - 0.5
        assert np.abs(found[rec["id"]] - want).max() < 1.0


def test_too_large_needs_tiling_and_tiles_are_exact_crops():
    patch = np.random.default_rng(3).integers(0, 256, (90, 80, 3), dtype=np.uint8)
    with pytest.raises(PatchkitError, match="--tile"):
        export_patch(patch, 400.0, 450.0, page="letter")
    exp = export_patch(patch, 400.0, 450.0, dpi=150, page="letter", tile=True)
    t = exp.meta["tiles"]
    assert exp.meta["pages"] == 1 + t["rows"] * t["cols"] and t["rows"] * t["cols"] >= 4
    imgs = pdf_images(exp.pdf)[1:]  # page 1 is the stitching guide (thumbnail)
    cover = np.zeros(exp.image.shape[:2], bool)
    pitch = exp.meta["pixel_pitch_mm"][0]
    for tile, img in zip(t["tiles"], imgs):
        x0, y0, x1, y1 = tile["pixels"]
        assert np.array_equal(img, exp.image[y0:y1, x0:x1])
        assert tile["placement_mm"]["width"] == pytest.approx((x1 - x0) * pitch)
        cover[y0:y1, x0:x1] = True
    assert cover.all()
    first, second = t["tiles"][0], t["tiles"][1]
    overlap_mm = (first["pixels"][2] - second["pixels"][0]) * pitch
    assert overlap_mm == pytest.approx(10.0, abs=2 * pitch)
    assert exp.pdf.count(b"/Type /Page ") == exp.meta["pages"]


def test_export_and_preview_cli(tmp_path, capsys):
    patch = np.zeros((32, 32, 3), np.uint8)
    patch[:, :16] = (255, 0, 0)
    patch[:, 16:] = (120, 120, 120)
    src = tmp_path / "patch.png"
    Image.fromarray(patch).save(src)
    out = tmp_path / "print.pdf"
    rc = main(["export", str(src), "--width-mm", "80", "--markers", "--printer", str(PRINTERS / "sim-gamut"), "--out", str(out)])
    assert rc == 0 and out.read_bytes().startswith(b"%PDF")
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["size_mm"] == [80.0, 80.0] and meta["pixels"] == [945, 945] and meta["markers"]["size_mm"] >= 10
    assert meta["profile"]["name"] == "sim-gamut"
    png = tmp_path / "print.png"
    assert main(["export", str(src), "--width-mm", "80", "--dpi", "200", "--out", str(png)]) == 0
    im = Image.open(png)
    assert im.size == (630, 630) and im.info["dpi"][0] == pytest.approx(200, abs=0.05)
    assert main(["export", str(src), "--width-mm", "80", "--out", str(tmp_path / "x.jpg")]) == 2
    assert ".pdf or .png" in capsys.readouterr().err

    prev = tmp_path / "prev.png"
    assert main(["preview", str(src), "--printer", str(PRINTERS / "sim-gamut"), "--out", str(prev), "--json", str(tmp_path / "p.json")]) == 0
    text = capsys.readouterr().out
    assert "of pixels out of gamut" in text and prev.is_file()
    share = json.loads((tmp_path / "p.json").read_text())["share_out_of_gamut"]
    assert 0.4 < share < 0.6  # saturated red cannot be printed by the gamut printer; grey can
    assert main(["preview", str(src), "--printer", str(PRINTERS / "identity"), "--json", str(tmp_path / "q.json")]) == 0
    assert json.loads((tmp_path / "q.json").read_text())["share_out_of_gamut"] == 0.0
    assert main(["preview", str(src), "--printer", str(tmp_path / "nope")]) == 2


def test_export_into_the_patch_folder_never_replaces_the_patch_or_its_sidecar(tmp_path, capsys):
    patch = tmp_path / "patch.png"
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(patch)
    (tmp_path / "patch.json").write_text('{"detector": "x"}')
    assert main(["export", str(patch), "--width-mm", "50", "--out", str(tmp_path)]) == 2
    assert "would overwrite the patch or its sidecar" in capsys.readouterr().err
    assert json.loads((tmp_path / "patch.json").read_text()) == {"detector": "x"}
    assert main(["export", str(patch), "--width-mm", "50", "--out", str(tmp_path / "print.pdf")]) == 0
