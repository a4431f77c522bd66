"""``patchkit score``: score captured videos, photo folders or a live camera against a detector.

Example::

    patchkit score walk_patch.mp4 --control walk_random.mp4 --detector yolov5n.pt \\
        --markers patch_print.json --out runs/score --json score.json

Per-frame records are appended to ``OUT/frames.jsonl`` as they are scored (Ctrl-C keeps them;
``--resume`` continues). ``OUT`` also gets ``summary.json``, ``report.md``, plots and annotated
videos. See ../shared/docs/interfaces.md for the ``--json`` fields.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from patchkit.cli.common import add_device_option, float_list, resolve_device
from patchkit.errors import PatchkitError, suggest
from patchkit.io import atomic_write_json

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "score",
        help="score captured video / photos / a camera: does the patched person get detected?",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("inputs", nargs="*", metavar="VIDEO_OR_DIR",
                   help="video files, photo folders, photos, or a camera index (0) or stream URL for live scoring")
    p.add_argument("--source", action="append", default=[], metavar="CAMERA_OR_URL",
                   help="a live input: a camera index (0, camera:0) or a stream URL (rtsp://, http(s)://, "
                        "udp://, ...); repeatable, scored after VIDEO_OR_DIR. Ctrl-C stops and writes the report "
                        "for what was scored")
    p.add_argument("--fps", type=float, default=None, metavar="F",
                   help="frame rate of photo folders (frames sorted by name): frame time = index / F seconds "
                        "(default: photos have no time; videos and live sources keep their own)")
    p.add_argument("--detector", required=True, metavar="WEIGHTS", help="weights file, model YAML or registered name")
    p.add_argument("--control", nargs="+", default=[], metavar="VIDEO", help="control video(s): same scene, no/random patch")
    p.add_argument("--target", default="person", help="target class name or id (default: person)")
    p.add_argument("--conf", type=float, default=0.25, help="headline confidence threshold (default 0.25)")
    p.add_argument("--thresholds", type=float_list, default=None,
                   help="comma-separated thresholds to report (default 0.1,0.25,0.4,0.5,0.6,0.75,0.9)")
    p.add_argument("--iou", type=float, default=0.45, help="NMS IoU threshold (default 0.45)")
    p.add_argument("--imgsz", type=int, default=640, help="detector input size, long side in pixels (default 640)")
    p.add_argument("--letterbox", choices=("rect", "square"), default="rect",
                   help="rect: minimum stride-multiple padding, as ultralytics predict (default); square: imgsz x imgsz")
    p.add_argument("--batch", type=int, default=4, help="frames per detector call (default 4, the fastest on a 2-core CPU; 1 for a camera)")
    p.add_argument("--reference", choices=("markers", "every", "box", "boxes"), default="markers",
                   help="which person wears the patch: the one containing the ArUco markers (default), "
                        "every person (the best box of each frame), --box tracked from the first frame, or "
                        "boxes: the true box of every frame, read from VIDEO.json beside each video (as "
                        "'patchkit toyworld video' writes it; detected = IoU >= 0.5)")
    p.add_argument("--box", default=None, metavar="X1,Y1,X2,Y2", help="first-frame box of the target (--reference box)")
    p.add_argument("--tracker", default=None, metavar="NAME",
                   help="also track the detections with ultralytics' own tracker, bytetrack or botsort (its default "
                        "YAML), and report track-level numbers: tracked share, fragments, alarm")
    p.add_argument("--alarm-frames", type=int, default=None, metavar="N",
                   help="the alarm fires when one track lives on the target for N consecutive frames "
                        "(default: one second of video)")
    p.add_argument("--markers", default=None, metavar="JSON", help="the export's JSON sidecar (marker ids, size, layout)")
    p.add_argument("--marker-size-mm", type=float, default=None, help="marker side in mm (without --markers)")
    p.add_argument("--marker-dict", default="DICT_4X4_50", help="ArUco dictionary (default DICT_4X4_50)")
    p.add_argument("--marker-ids", type=float_list, default=None, help="comma-separated marker ids of the patch")
    p.add_argument("--hfov", type=float, default=65.0, help="camera horizontal field of view in degrees (default 65)")
    p.add_argument("--focal-px", type=float, default=None, help="camera focal length in pixels (overrides --hfov)")
    p.add_argument("--distance-bins", type=float_list, default=None, help="distance bin edges in metres")
    p.add_argument("--angle-bins", type=float_list, default=None, help="viewing-angle bin edges in degrees")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% CIs (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("-o", "--out", default="runs/score", metavar="DIR", help="output folder (default runs/score)")
    p.add_argument("--json", default=None, metavar="FILE", help="write the summary JSON here too")
    p.add_argument("--no-video", action="store_true", help="do not write annotated videos")
    p.add_argument("--no-plots", action="store_true", help="do not write the PNG plots")
    p.add_argument("--resume", action="store_true", help="keep OUT/frames.jsonl and skip frames already scored")
    p.add_argument("--jobs", type=int, default=1,
                   help="worker processes, the videos dealt among them (one per GPU with --device cuda); "
                        "one merged report (default 1)")
    p.add_argument("--show", action="store_true", help="live window with the annotated frames (q quits)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_device_option(p)
    p.set_defaults(func=run)
    return p


def _target_class(target: str, names: dict[int, str]) -> int:
    if target.isdigit():
        cid = int(target)
        if names and cid not in names:
            raise PatchkitError(f"--target {target}: the detector has no class {cid}")
        return cid
    by_name = {v: k for k, v in names.items()}
    if target not in by_name:
        raise PatchkitError(f"--target {target!r} is not a class of the detector{suggest(target, by_name)}")
    return by_name[target]


def _marker_spec(args: argparse.Namespace):
    from patchkit.markers import MarkerSpec

    if args.markers:
        return MarkerSpec.from_json(args.markers)
    ids = tuple(int(i) for i in args.marker_ids) if args.marker_ids else None
    if args.reference == "markers" or args.marker_size_mm or ids:
        return MarkerSpec(args.marker_dict, args.marker_size_mm, ids)
    return None


def run(args: argparse.Namespace) -> int:
    from patchkit.video.runner import ScoreRunConfig, score_inputs
    from patchkit.video.scoring import DEFAULT_THRESHOLDS, ScoreOptions
    from patchkit.video.summary import DEFAULT_ANGLE_BINS_DEG, DEFAULT_DISTANCE_BINS_M, BootstrapConfig
    from patchkit.video.parallel import DetectorSpec, score_parallel
    from patchkit.video.target import ReferenceFactory, parse_box

    for name, v in (("--conf", args.conf), ("--iou", args.iou)):
        if not 0.0 <= v <= 1.0:
            raise PatchkitError(f"{name} must be in [0, 1], got {v}")
    if args.thresholds and not all(0.0 <= t <= 1.0 for t in args.thresholds):
        raise PatchkitError("--thresholds must be in [0, 1]")
    if args.batch < 1:
        raise PatchkitError("--batch must be >= 1")
    if args.jobs < 1:
        raise PatchkitError("--jobs must be >= 1")
    from patchkit.video.source import is_live, probe_live

    args.inputs = list(args.inputs) + list(getattr(args, "source", None) or [])
    if not args.inputs:
        raise PatchkitError("no input: give VIDEO_OR_DIR (videos, photo folders) or --source CAMERA_OR_URL")
    fps = getattr(args, "fps", None)
    if fps is not None and not 0 < fps < float("inf"):
        raise PatchkitError(f"--fps must be > 0 frames per second, got {fps}")
    live = [str(i) for i in args.inputs + list(args.control) if is_live(i)]
    if live and args.jobs > 1:
        raise PatchkitError(f"--jobs {args.jobs} deals whole videos to workers; {live[0]} is live: use --jobs 1")
    for source in live:  # a camera or stream that is not there: one line, before the detector loads
        probe_live(source)
    if args.tracker is not None:
        from patchkit.video.tracking import check_tracker

        check_tracker(args.tracker)
    if args.alarm_frames is not None and args.alarm_frames < 1:
        raise PatchkitError(f"--alarm-frames must be >= 1, got {args.alarm_frames}")
    if args.bootstrap < 1:  # checked before any frame is scored (it used to crash after)
        raise PatchkitError(f"--bootstrap must be >= 1 resample, got {args.bootstrap}")
    first_box = parse_box(args.box) if args.reference == "box" and args.box else None
    make_reference = ReferenceFactory(args.reference, first_box)
    for path in list(args.inputs) + list(args.control):  # a missing --box or boxes file fails before any scoring
        make_reference(path)
    markers = _marker_spec(args)
    device = resolve_device(args.device)
    spec = DetectorSpec(args.detector, args.imgsz, args.letterbox, str(device))
    detector = spec.build()  # Conv+BN fused, channels_last: same outputs, faster
    target = _target_class(args.target, getattr(detector, "names", {}) or {})
    camera_input = any(is_live(i) for i in args.inputs)
    options = ScoreOptions(
        conf=args.conf,
        thresholds=tuple(args.thresholds) if args.thresholds else DEFAULT_THRESHOLDS,
        iou=args.iou,
        target_class=target,
        batch=1 if camera_input else args.batch,
        workers=1 if camera_input else None,  # live: each frame recorded as soon as it is scored
        hfov_deg=args.hfov,
        focal_px=args.focal_px,
        tracker=args.tracker,
        alarm_frames=args.alarm_frames,
    )
    config = ScoreRunConfig(
        out_dir=args.out,
        annotate=not args.no_video,
        resume=args.resume,
        show=args.show,
        plots=not args.no_plots,
        progress=not args.quiet,
        bootstrap=BootstrapConfig(resamples=args.bootstrap, seed=args.seed),
        distance_bins=args.distance_bins or DEFAULT_DISTANCE_BINS_M,
        angle_bins=args.angle_bins or DEFAULT_ANGLE_BINS_DEG,
        fps=fps,
    )
    meta = {"detector": str(args.detector), "target": args.target, "target_class": target,
            "reference": args.reference, "iou": args.iou, "imgsz": args.imgsz,
            "markers": None if markers is None else {"dictionary": markers.dictionary, "size_mm": markers.size_mm,
                                                     "ids": list(markers.ids) if markers.ids else None}}
    try:
        if args.jobs > 1:
            result = score_parallel(args.inputs, spec, options, make_reference, markers, args.control, config, meta,
                                    jobs=args.jobs)
        else:
            result = score_inputs(args.inputs, detector, options, make_reference, markers, args.control, config, meta)
    except KeyboardInterrupt:
        if args.json:
            import json

            summary = Path(args.out) / "summary.json"
            if summary.is_file():
                atomic_write_json(args.json, json.loads(summary.read_text(encoding="utf-8")))
        raise
    # warnings were already logged as they happened; they are also in the report and the JSON
    if args.json:
        atomic_write_json(args.json, {k: v for k, v in result.items() if k != "files"})
    print((Path(args.out) / "report.md").read_text(encoding="utf-8"))
    unseen = [Path(v["path"]).name for v in result.get("videos", [])
              if v.get("role") == "test" and v.get("frames") and not v.get("frames_with_target")]
    if unseen and len(unseen) == sum(v.get("role") == "test" for v in result.get("videos", [])):
        hint = {"markers": "no ArUco marker of the patch was detected in any frame (check --markers / "
                           "--marker-dict / --marker-ids, focus and resolution)",
                "box": "the --box target was never found", "boxes": "no true box in VIDEO.json was matched",
                "every": "no person was detected"}.get(args.reference, "the target was never found")
        raise PatchkitError(f"{', '.join(unseen)}: the target was never found: {hint}; nothing to score "
                            f"(the report for the frames is in {args.out})")
    return 0
