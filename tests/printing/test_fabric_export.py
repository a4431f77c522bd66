"""Fabric export of clothing textures: exact repeat, size, errors, profile label, CLI end to end."""

import json
import re

import numpy as np
import pytest
from PIL import Image

from _pdf import pdf_images
from patchkit.cli.main import main
from patchkit.errors import PatchkitError
from patchkit.printing import PrinterProfile
from patchkit.printing.fabric import (MAX_SIDE_PX, check_fabric, export_fabric, fabric_pixels, repeat_pixels,
                                      resample_tile, tile_pattern, working_dpis)

PT = 72.0 / 25.4


def _tile(n: int = 10, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, n, 3), dtype=np.uint8)




def _assert_periodic(img: np.ndarray, r: int) -> None:
    first = img[:r, :r]
    for y in range(0, img.shape[0] - r + 1, r):
        for x in range(0, img.shape[1] - r + 1, r):
            assert np.array_equal(img[y : y + r, x : x + r], first), (y, x)
    # the cropped last partial repeat is the start of the tile
    ry, rx = img.shape[0] % r, img.shape[1] % r
    if rx:
        assert np.array_equal(img[:r, -rx:], first[:, :rx])
    if ry:
        assert np.array_equal(img[-ry:, :r], first[:ry])


def test_repeat_is_exact_and_the_fabric_has_its_size_in_pixels():
    tile = _tile(10)
    exp = export_fabric(tile, 5.0, 30.0, 20.0, dpi=127, source="tile.png")  # 5 cm @ 127 dpi = 250 px
    r = exp.meta["repeat_px"]
    assert r == 250 and exp.meta["resampling"] == "nearest"
    nx, ny = exp.meta["pixels"]
    assert abs(nx - 30 / 2.54 * 127) <= 1 and abs(ny - 20 / 2.54 * 127) <= 1
    assert exp.pattern.shape == exp.image.shape == (ny, nx, 3)
    _assert_periodic(exp.pattern, r)
    assert np.array_equal(exp.pattern[:r, :r], np.repeat(np.repeat(tile, 25, 0), 25, 1))  # nearest: no new colours
    # the PDF holds the pattern bit-exact on a page of exactly the fabric size
    (img,) = pdf_images(exp.pdf)
    assert np.array_equal(img, exp.pattern)
    box = re.search(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", exp.pdf)
    assert float(box.group(1)) == pytest.approx(300 * PT, abs=1e-3)
    assert float(box.group(2)) == pytest.approx(200 * PT, abs=1e-3)
    m = re.search(rb"q ([\d.]+) 0 0 ([\d.]+) [\d.]+ [\d.]+ cm /Im0 Do Q", exp.pdf)
    assert float(m.group(1)) / PT == pytest.approx(nx * 25.4 / 127, abs=1e-3)  # exact pixel pitch
    # the PNG is the pattern except in the mark bands (rulers top and left, label bottom)
    ppm = 127 / 25.4
    bands = exp.meta["marks"]["bands_mm"]
    t, left, b = (int(np.ceil((bands[k] + 1) * ppm)) for k in ("top", "left", "bottom"))
    assert np.array_equal(exp.image[t : ny - b, left:], exp.pattern[t : ny - b, left:])
    assert not np.array_equal(exp.image[:t], exp.pattern[:t])  # the ruler is there
    assert b"repeat 5.0 cm = 250 px @ 127 dpi \\(tile 10 px\\)" in exp.pdf  # PDF string escapes
    meta = exp.meta
    assert meta["fabric_cm"] == [30.0, 20.0] and meta["dpi"] == 127.0 and meta["repeat_cm"] == 5.0
    assert meta["tile_px"] == [10, 10] and meta["repeats"] == pytest.approx([6.0, 4.0])


def test_non_integer_resampling_is_seamless_and_periodic():
    tile = _tile(16, 1)
    # 2.54 cm at 100 dpi = 100 px per repeat from a 16 px tile: not an integer factor
    exp = export_fabric(tile, 2.54, 7.0, 6.0, dpi=100, marks=False)
    r = exp.meta["repeat_px"]
    assert r == 100 and exp.meta["resampling"] == "bilinear-antialiased-periodic"
    _assert_periodic(exp.image, r)
    # periodic filter: resampling a tile rolled by a whole number of source pixels rolls the result
    rolled = resample_tile(np.roll(tile, 4, axis=1), 100)
    assert np.abs(rolled.astype(int) - np.roll(resample_tile(tile, 100), 25, axis=1).astype(int)).max() <= 1
    # a constant tile stays constant (weights sum to 1); integer downscale is the block mean
    assert np.all(resample_tile(np.full((16, 16, 3), 77, np.uint8), 37) == 77)
    f = np.random.default_rng(2).random((8, 8, 3)).astype(np.float32)
    assert np.allclose(resample_tile(f, 4), f.reshape(4, 2, 4, 2, 3).mean(axis=(1, 3)))
    assert tile_pattern(np.zeros((3, 3, 3), np.uint8), 7, 5).shape == (5, 7, 3)


def test_repeat_that_is_not_whole_pixels_is_a_one_line_error_naming_the_file():
    with pytest.raises(PatchkitError) as err:
        export_fabric(_tile(10), 5.0, 30.0, 20.0, dpi=150, source="tile.png")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("tile.png: ")
    assert "295.276" in msg and "127" in msg and "px per inch" in msg
    assert 127 in working_dpis(5.0, 150) and 150 not in working_dpis(5.0, 150)
    assert repeat_pixels(2.54, 150) == 150 and repeat_pixels(20.0, 127) == 1000


def test_fabric_too_small_too_big_not_positive_and_non_square_tile():
    with pytest.raises(PatchkitError, match=r"^tile.png: .*smaller than one 5.0 cm repeat"):
        export_fabric(_tile(10), 5.0, 4.0, 20.0, dpi=127, source="tile.png")
    with pytest.raises(PatchkitError, match="positive"):
        export_fabric(_tile(10), 5.0, 0.0, dpi=127, source="tile.png")
    with pytest.raises(PatchkitError, match=r"more than 20000 px per side; at 127 dpi the fabric can be at most 400 cm"
                       ):
        export_fabric(_tile(10), 5.0, 401.0, 10.0, dpi=127, source="tile.png")  # checked before any pixels
    with pytest.raises(PatchkitError, match="must be square, got 8 x 10 px"):
        export_fabric(_tile(10)[:, :8], 5.0, 30.0, dpi=127, source="tile.png")
    assert check_fabric(400.0, 5.0, 5.0, 127) == fabric_pixels(400.0, 5.0, 127) == (MAX_SIDE_PX, 250)


def _texture(tmp_path, sidecar: dict | None = None, n: int = 10):
    path = tmp_path / "tile.png"
    Image.fromarray(_tile(n)).save(path)
    if sidecar is not None:
        (tmp_path / "tile.json").write_text(json.dumps(sidecar))
    return path


def test_cli_writes_pdf_png_and_json(tmp_path, capsys):
    tile = _texture(tmp_path, {"kind": "texture", "tile_cm": 20.0})
    out = tmp_path / "x.pdf"
    argv = ["export", str(tile), "--fabric-cm", "30", "20", "--dpi", "127", "--tile-cm", "5", "--out", str(out)]
    assert main(argv) == 0
    assert out.read_bytes().startswith(b"%PDF")
    png = Image.open(tmp_path / "x.png")
    assert png.size == (1500, 1000) and round(png.info["dpi"][0]) == 127
    meta = json.loads((tmp_path / "x.json").read_text())
    assert meta["repeat_cm"] == 5.0 and meta["repeat_px"] == 250 and meta["fabric_cm"] == [30.0, 20.0]
    assert meta["repeats"] == [6.0, 4.0] and meta["tile_px"] == [10, 10] and meta["dpi"] == 127.0
    assert "wrote" in capsys.readouterr().out
    # the sidecar's kind and tile_cm are enough; H defaults to W; a folder --out does not overwrite the tile
    assert main(["export", str(tile), "--fabric-cm", "25", "--dpi", "127", "--out", str(tmp_path)]) == 0
    meta = json.loads((tmp_path / "tile_fabric.json").read_text())
    assert meta["repeat_cm"] == 20.0 and meta["fabric_cm"] == [25.0, 25.0] and meta["repeat_px"] == 1000
    assert json.loads((tmp_path / "tile.json").read_text())["kind"] == "texture"


def test_cli_printer_profile_goes_on_the_label(tmp_path):
    tile = _texture(tmp_path, {"kind": "texture", "tile_cm": 5.0})
    prof = PrinterProfile.identity(name="fabricprinter")
    prof.save(tmp_path / "prof")
    assert main(["export", str(tile), "--fabric-cm", "20", "--dpi", "127", "--printer", str(tmp_path / "prof"),
                 "--out", str(tmp_path / "f.pdf")]) == 0
    meta = json.loads((tmp_path / "f.json").read_text())
    assert meta["profile"]["name"] == "fabricprinter" and meta["profile"]["sha256"] == prof.sha256
    assert b"fabricprinter" in (tmp_path / "f.pdf").read_bytes()


@pytest.mark.parametrize(
    "extra, sidecar, needle",
    [
        (["--fabric-cm", "30", "20", "--dpi", "150", "--tile-cm", "5"], None, "not a whole number"),
        (["--fabric-cm", "30"], None, "no repeat length"),
        ([], {"kind": "texture", "tile_cm": 5}, "--fabric-cm W [H]"),
        (["--fabric-cm", "3", "--dpi", "127"], {"kind": "texture", "tile_cm": 5}, "smaller than one"),
    ],
)
def test_cli_errors_exit_2_with_one_line(tmp_path, capsys, extra, sidecar, needle):
    tile = _texture(tmp_path, sidecar)
    assert main(["export", str(tile), *extra, "--out", str(tmp_path / "x.pdf")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("patchkit export: error: ")
    assert needle in err and str(tile) in err
    assert not (tmp_path / "x.pdf").exists()
