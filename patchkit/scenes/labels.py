"""YOLO-format label files: ``class cx cy w h`` per line, normalised to [0, 1]."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from patchkit.errors import PatchkitError

# A label may overshoot the image by rounding; more than this (normalised) is an error.
_TOLERANCE = 1e-3


def read_yolo_labels(path: str | Path, width: int, height: int) -> tuple[Tensor, Tensor]:
    """Read a YOLO label file for an image of ``width`` x ``height`` pixels.

    Returns:
        ``(classes (M,) long, boxes (M, 4) float xyxy in image pixels)``. A missing file means
        no objects. Malformed lines and boxes outside the image raise :class:`PatchkitError`
        naming the file and line.
    """
    path = Path(path)
    if not path.exists():
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, 4)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PatchkitError(f"cannot read label file ({exc})", path) from exc
    classes, rows = [], []
    for lineno, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 5:
            raise PatchkitError(
                f"line {lineno}: expected 'class cx cy w h', got {len(parts)} fields", path
            )
        try:
            cls = int(parts[0])
            cx, cy, w, h = (float(p) for p in parts[1:])
        except ValueError as exc:
            raise PatchkitError(f"line {lineno}: not numbers: {line.strip()!r}", path) from exc
        if cls < 0 or w <= 0 or h <= 0:
            raise PatchkitError(f"line {lineno}: negative class or empty box: {line.strip()!r}", path)
        x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
        if min(x1, y1) < -_TOLERANCE or max(x2, y2) > 1 + _TOLERANCE:
            raise PatchkitError(f"line {lineno}: box outside the image: {line.strip()!r}", path)
        classes.append(cls)
        rows.append([x1, y1, x2, y2])
    if not rows:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, 4)
    boxes = torch.tensor(rows).clamp_(0, 1) * torch.tensor([width, height, width, height])
    return torch.tensor(classes, dtype=torch.long), boxes


def format_yolo_labels(classes: Tensor, boxes: Tensor, width: int, height: int) -> str:
    """Inverse of :func:`read_yolo_labels`: xyxy pixels -> YOLO lines."""
    lines = []
    for c, (x1, y1, x2, y2) in zip(classes.tolist(), boxes.tolist()):
        cx, cy = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height
        w, h = (x2 - x1) / width, (y2 - y1) / height
        lines.append(f"{c} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
    return "\n".join(lines) + ("\n" if lines else "")
