"""``patchkit detect``: plain detection, the reference for every other command.

Images are read as uint8 RGB and letterboxed with OpenCV exactly like ultralytics' / yolov5's
predict, so the boxes match theirs; boxes are reported in original-image pixels, sorted by
descending confidence. A bad image is reported on stderr (one line naming the file) and skipped;
the exit status is then 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from patchkit.cli.common import add_device_option, add_quiet_option, resolve_device
from patchkit.errors import PatchkitError
from patchkit.io import IMAGE_SUFFIXES, atomic_write_json, list_images, read_image


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "detect",
        help="detect objects in images (the reference detection)",
        description="Detect objects in images; boxes in original-image pixels, sorted by confidence.",
    )
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files or folders of images")
    p.add_argument(
        "--detector",
        required=True,
        metavar="WEIGHTS",
        help="ultralytics checkpoint or model YAML, original YOLOv5 checkpoint, or a registered name (toy)",
    )
    p.add_argument("--conf", type=float, default=0.25, help="confidence threshold (default 0.25)")
    p.add_argument("--iou", type=float, default=0.45, help="NMS IoU threshold (default 0.45)")
    p.add_argument("--imgsz", type=int, default=640, help="letterbox long side in pixels (default 640)")
    p.add_argument(
        "--letterbox", choices=["rect", "square"], default="rect", help="rect: minimum rectangle (default); square"
    )
    p.add_argument("--classes", type=int, nargs="+", metavar="ID", help="keep only these class ids")
    p.add_argument("--max-det", type=int, default=300, help="maximum detections per image (default 300)")
    p.add_argument("--json", metavar="FILE", help="write the detections as JSON (the README's contract)")
    p.add_argument("-o", "--out", metavar="DIR", help="also write DIR/detections.json (the same JSON)")
    add_quiet_option(p)
    add_device_option(p)
    p.set_defaults(func=run)


def _check_args(args: argparse.Namespace) -> None:
    for key in ("conf", "iou"):
        value = getattr(args, key)
        if not 0.0 <= value <= 1.0:
            raise PatchkitError(f"--{key} {value} is outside [0, 1]")
    if args.max_det < 1:
        raise PatchkitError(f"--max-det {args.max_det} must be at least 1")


def _expand(inputs: list[str]) -> list[Path]:
    """Files as given, folders expanded to their images (sorted); missing paths are kept so that
    they are reported per file like unreadable images."""
    paths: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = list_images(path)
            if not found:
                raise PatchkitError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in the folder", path)
            paths.extend(found)
        else:
            paths.append(path)
    return paths


def _record(path: Path, width: int, height: int, dets: Any, names: dict[int, str]) -> dict:
    boxes = [
        {
            "xyxy": [round(float(v), 2) for v in box],
            "conf": round(float(c), 5),
            "cls": int(k),
            "name": names.get(int(k), str(int(k))),
        }
        for box, c, k in zip(dets.xyxy.tolist(), dets.conf.tolist(), dets.cls.tolist())
    ]
    return {"path": str(path), "width": width, "height": height, "boxes": boxes}


def _print_table(rec: dict) -> None:
    n = len(rec["boxes"])
    print(f"{rec['path']} ({rec['width']}x{rec['height']}): {n} box{'es' if n != 1 else ''}")
    if n:
        print(f"  {'conf':>6} {'cls':>4}  {'name':<16}{'x1':>8}{'y1':>8}{'x2':>8}{'y2':>8}")
    for b in rec["boxes"]:
        x1, y1, x2, y2 = b["xyxy"]
        print(f"  {b['conf']:6.3f} {b['cls']:4d}  {b['name'][:15]:<16}{x1:8.1f}{y1:8.1f}{x2:8.1f}{y2:8.1f}")


def run(args: argparse.Namespace) -> int:
    from patchkit.detectors import create_detector

    _check_args(args)
    device = resolve_device(args.device)
    paths = _expand(args.inputs)
    detector = create_detector(args.detector, imgsz=args.imgsz, letterbox=args.letterbox, device=device)
    nc = len(detector.names)
    if args.classes is not None:
        bad = [c for c in args.classes if not 0 <= c < nc]
        if bad:
            raise PatchkitError(f"--classes {bad}: class ids must be in 0..{nc - 1} for this detector")

    images: list[dict] = []
    failed: list[dict] = []
    for path in paths:
        try:
            arr = read_image(path)
        except PatchkitError as exc:
            print(f"patchkit detect: error: {exc}", file=sys.stderr)
            failed.append({"path": str(path), "error": str(exc)})
            continue
        dets = detector.detect(arr, conf=args.conf, iou=args.iou, classes=args.classes, max_det=args.max_det)[0]
        rec = _record(path, int(arr.shape[1]), int(arr.shape[0]), dets.to("cpu"), detector.names)
        images.append(rec)
        _print_table(rec)

    targets = [Path(args.json)] if args.json else []
    if args.out:
        targets.append(Path(args.out) / "detections.json")
    for target in targets:
        atomic_write_json(
            target,
            {
                "detector": str(args.detector),
                "imgsz": detector.info.imgsz,
                "conf": args.conf,
                "iou": args.iou,
                "letterbox": detector.info.letterbox,
                "classes": args.classes,
                "images": images,
                "failed": failed,
            },
        )
    if failed:
        names = ", ".join(f["path"] for f in failed)
        print(f"patchkit detect: {len(failed)} of {len(paths)} images failed: {names}", file=sys.stderr)
        return 2
    return 0
