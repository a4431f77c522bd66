"""`patchkit chart` and `patchkit calibrate` end to end (files, sizes, messages, exit codes)."""

import json
import re
import zlib

import numpy as np
import pytest
from _printing_sim import scenario
from PIL import Image

from patchkit.cli.main import main
from patchkit.printing import PrinterProfile
from patchkit.printing.chart import ChartLayout, layout_for_key
from patchkit.printing.measure import detect_markers


def test_chart_writes_pdf_png_and_layout(tmp_path, capsys):
    assert main(["chart", "--out", str(tmp_path), "--page", "letter", "--dpi", "150"]) == 0
    layout = ChartLayout.load(tmp_path / "chart.json")
    assert layout.fingerprint() == layout_for_key(0, "letter").fingerprint()
    assert layout.n_swatches >= 400 and layout.marker_ids == [0, 1, 2, 3]
    data = json.loads((tmp_path / "chart.json").read_text())
    assert len(data["swatches"]) == layout.n_swatches and data["marker_size_mm"] == 18.0

    png = Image.open(tmp_path / "chart.png")
    assert png.size == (round(215.9 / 25.4 * 150), round(279.4 / 25.4 * 150))
    assert png.info["dpi"][0] == pytest.approx(150, abs=0.05)  # pHYs stores whole px per metre
    # markers in the raster have their exact physical size (18 mm)
    found = detect_markers(np.asarray(png.convert("RGB")))
    assert sorted(found) == [0, 1, 2, 3]
    side = np.mean([np.linalg.norm(c[1] - c[0]) for c in found.values()])
    assert side == pytest.approx(18.0 / 25.4 * 150, abs=1.0)

    pdf = (tmp_path / "chart.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and b"/DCTDecode" not in pdf
    assert re.search(rb"/MediaBox \[0 0 612 792\]", pdf)  # Letter in points, exact
    content = b"".join(
        zlib.decompress(m) if m[:1] == b"x" else m
        for m in re.findall(rb"stream\n(.*?)\nendstream", pdf, re.S)
    )
    module_pt = f"{3.0 * 72 / 25.4:.4f}".rstrip("0").encode()  # 3 mm ArUco module, vector rectangles
    assert content.count(b" " + module_pt + b" re f") >= 16
    assert "print at 100%" in capsys.readouterr().out


def test_calibrate_cli_writes_a_loadable_profile(tmp_path, capsys):
    photo = tmp_path / "chart_photo.png"
    Image.fromarray(scenario("halftone", False).photo).save(photo)
    out = tmp_path / "printers" / "sim"
    rc = main(["calibrate", str(photo), "-o", str(out), "--printer", "sim halftone", "--json", str(tmp_path / "r.json")])
    assert rc == 0
    text = capsys.readouterr().out
    assert "cross-validated dE2000: mean" in text and "saved" in text
    prof = PrinterProfile.load(out)
    assert prof.meta["name"] == "sim" and prof.meta["notes"]["printer"] == "sim halftone"
    assert prof.meta["chart_id"] == "patchkit-chart-v1-k0" and prof.meta["fit"]["n_used"] >= 400
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["cv"]["mean"] == pytest.approx(prof.meta["fit"]["cv_mean"])
    assert report["sha256"] == prof.meta["sha256"]


def test_calibrate_cli_non_image_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("not a photo")
    out = tmp_path / "printers" / "bad"
    assert main(["calibrate", str(bad), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "notes.txt" in err and "cannot read image" in err and len(err.splitlines()) == 1
    assert not out.exists()
    assert main(["calibrate", str(tmp_path / "missing.jpg"), "-o", str(out)]) == 2
    assert "not found" in capsys.readouterr().err
    # a photo of chart k0 checked against the layout file of chart k1
    photo = tmp_path / "k0.png"
    Image.fromarray(scenario("halftone", False).photo).save(photo)
    assert main(["chart", "--out", str(tmp_path / "k1"), "--key", "1", "--dpi", "50"]) == 0
    capsys.readouterr()
    assert main(["calibrate", str(photo), "--chart", str(tmp_path / "k1" / "chart.json"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "photo shows chart k0" in err and len(err.strip().splitlines()) == 1 and not out.exists()


def test_calibrate_from_a_short_video(tmp_path, capsys):
    import cv2

    from _printing_sim import make_scenario

    frames = [scenario("gamut", False).photo, make_scenario("gamut", False, shot=1).photo]
    frames.append(np.full_like(frames[0], 128))  # a frame without the chart is skipped
    path = tmp_path / "chart.avi"
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (w, h))
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    out = tmp_path / "video_profile"
    assert main(["calibrate", str(path), "-o", str(out), "--json", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["n_photos"] == 2 and report["cross_photo"]["mean"] < 1.0
    assert report["cv"]["mean"] < 1.5 and any("skipped 1 video frame" in w for w in report["warnings"])
    assert PrinterProfile.load(out).meta["sources"][0]["source"].endswith("#frame0")
