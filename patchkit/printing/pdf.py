"""A minimal PDF 1.4 writer for :class:`~patchkit.printing.drawing.Page` lists.

Why not a library: Pillow's PDF writer JPEG-compresses RGB images, and the project does not
depend on reportlab or img2pdf. This writer stores every picture as raw 8-bit RGB compressed
with Flate (lossless, no predictor, no resampling), places it with an exact ``cm`` matrix in
points (1 mm = 72 / 25.4 pt), draws rectangles as vector fills and text with the standard
Helvetica font (no embedding needed). Output is deterministic (no dates, fixed ids).
"""

from __future__ import annotations

import zlib

from patchkit.printing.drawing import Page, Picture, Rect, Text

PT_PER_MM = 72.0 / 25.4


def _num(v: float) -> str:
    s = f"{v:.4f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _colour(fill) -> str:
    return " ".join(_num(c / 255.0) for c in fill)


def write_pdf(pages: list[Page], title: str = "patchkit") -> bytes:
    """Serialise pages to PDF bytes (each page sized exactly ``width x height`` mm)."""
    objects: list[bytes] = []  # object n is objects[n - 1]

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    def stream(dict_entries: str, data: bytes) -> bytes:
        return f"<< {dict_entries} /Length {len(data)} >>\nstream\n".encode("latin-1") + data + b"\nendstream"

    catalog = add(b"")  # placeholders filled at the end
    pages_obj = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    info = add(f"<< /Title ({_escape(title)}) /Producer (patchkit) >>".encode("latin-1"))
    page_ids = []
    for page in pages:
        h_pt = page.height * PT_PER_MM
        ops: list[str] = []
        xobjects: dict[str, int] = {}
        for item in page.items:
            if isinstance(item, Rect):
                x, y = item.x * PT_PER_MM, h_pt - (item.y + item.h) * PT_PER_MM
                ops.append(
                    f"{_colour(item.fill)} rg {_num(x)} {_num(y)} {_num(item.w * PT_PER_MM)} {_num(item.h * PT_PER_MM)} re f"
                )
            elif isinstance(item, Text):
                size = item.size * PT_PER_MM
                ops.append(
                    f"BT /F1 {_num(size)} Tf {_colour(item.fill)} rg {_num(item.x * PT_PER_MM)} "
                    f"{_num(h_pt - item.y * PT_PER_MM)} Td ({_escape(item.text)}) Tj ET"
                )
            elif isinstance(item, Picture):
                ph, pw = item.pixels.shape[:2]
                data = zlib.compress(item.pixels.tobytes(), 9)
                img = add(
                    stream(
                        f"/Type /XObject /Subtype /Image /Width {pw} /Height {ph} /ColorSpace /DeviceRGB "
                        f"/BitsPerComponent 8 /Interpolate false /Filter /FlateDecode",
                        data,
                    )
                )
                name = f"Im{len(xobjects)}"
                xobjects[name] = img
                x, y = item.x * PT_PER_MM, h_pt - (item.y + item.h) * PT_PER_MM
                ops.append(
                    f"q {_num(item.w * PT_PER_MM)} 0 0 {_num(item.h * PT_PER_MM)} {_num(x)} {_num(y)} cm /{name} Do Q"
                )
        content = add(stream("", "\n".join(ops).encode("latin-1")))
        xo = " ".join(f"/{k} {v} 0 R" for k, v in xobjects.items())
        resources = f"<< /Font << /F1 {font} 0 R >> /XObject << {xo} >> >>"
        page_ids.append(
            add(
                f"<< /Type /Page /Parent {pages_obj} 0 R /MediaBox [0 0 {_num(page.width * PT_PER_MM)} {_num(h_pt)}] "
                f"/Resources {resources} /Contents {content} 0 R >>".encode("latin-1")
            )
        )
    objects[catalog - 1] = f"<< /Type /Catalog /Pages {pages_obj} 0 R >>".encode("latin-1")
    kids = " ".join(f"{p} 0 R" for p in page_ids)
    objects[pages_obj - 1] = f"<< /Type /Pages /Kids [{kids}] /Count {len(page_ids)} >>".encode("latin-1")

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode("latin-1") + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode("latin-1")
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode("latin-1")
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root {catalog} 0 R /Info {info} 0 R >>\n"
        f"startxref\n{xref}\n%%EOF\n"
    ).encode("latin-1")
    return bytes(out)
