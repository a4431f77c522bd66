"""``patchkit evaluate``: digital scores of patches against one or more detectors.

Example::

    patchkit evaluate --detector yolov5n.pt yolov8n.pt --scene scenes/pennfudan.yaml --split test \\
        --patch examples/patches/yolov5n_pennfudan.png --eot-samples 8 --json eval.json --out runs/eval

Conditions: clean, random noise, gray, and each patch (same size and placement). References: the
detector's own clean detections (``self``) and the scene's official labels when present
(``labels``). Prints a markdown table; ``--json``/``--csv``/``--out`` write the rest.

Clothing textures (a ``--patch`` whose sidecar says ``"kind": "texture"``) are rendered tiled on each
person's garment instead of pasted; conditions clean, random (a random tile, same coverage), gray and
each texture; rows add ``kind`` and ``coverage``. Person masks come from ``--masks`` (ultralytics
polygon labels ``{stem}.txt`` or instance-mask PNGs ``{stem}.png`` / ``{stem}_mask.png``), else from
the box (an approximation)::

    patchkit evaluate --detector yolov8n.pt --scene scenes/pennfudan.yaml --split test \
        --patch examples/textures/yolov8n.png --masks ../shared/data/pennfudan/test/masks --json tex.json
"""

from __future__ import annotations

import argparse
import logging
import sys

from patchkit.cli.common import add_device_option, add_quiet_option, float_list, resolve_device
from patchkit.errors import PatchkitError, suggest

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("evaluate", help="digital evaluation of patches: AP, ASR, detection rate, transfer",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--detector", nargs="+", required=True, metavar="W", help="weights files, YAMLs or registered names")
    p.add_argument("--scene", required=True, metavar="SCENE",
                   help="scene YAML, ultralytics dataset YAML, YOLO dataset folder, COCO JSON or image folder")
    p.add_argument("--split", default="test", help="split of a scene / dataset YAML or YOLO folder (default test)")
    p.add_argument("--labels", default=None,
                   help="label set name or YOLO label folder for the 'labels' reference (default: 'official' "
                        "when the scene has it; 'none' to skip)")
    p.add_argument("--patch", nargs="*", default=[], metavar="PATCH.png",
                   help="patch images (RGB PNG) or folders of them (every image inside, sorted)")
    p.add_argument("--reference", nargs="+", choices=("self", "labels"), default=["self", "labels"],
                   help="boxes the patches go on and are scored against: the detector's own clean detections "
                        "(self) and/or the scene's labels (default both)")
    p.add_argument("--target", default="person", help="target class name or id (default person)")
    p.add_argument("--imgsz", type=int, default=640, help="square canvas / detector input size (default 640)")
    p.add_argument("--thresholds", type=float_list, default=None, help="confidence sweep (default 0.1,0.2,0.25,...,0.9)")
    p.add_argument("--conf", type=float, default=0.25,
                   help="headline confidence: the detection rate and ASR in the table are at this threshold (added "
                        "to the sweep; AP uses --score-conf)")
    p.add_argument("--score-conf", type=float, default=0.01, help="detection threshold for AP (default 0.01)")
    p.add_argument("--ref-conf", type=float, default=0.4, help="confidence of the clean detections used as the "
                                                               "'self' reference (default 0.4)")
    p.add_argument("--iou", type=float, default=0.45, help="NMS IoU (default 0.45)")
    p.add_argument("--scale", type=float, default=None, help="patch side / box diagonal (default: sidecar, else 0.2)")
    p.add_argument("--offset-x", type=float, default=None, help="patch centre offset / box width")
    p.add_argument("--offset-y", type=float, default=None, help="patch centre offset / box height")
    p.add_argument("--eot-samples", type=int, default=0,
                   help="test-time EOT: score each image under N seeded physical draws (default 0: flat paste)")
    p.add_argument("--eot-config", default=None, metavar="YAML",
                   help="EOT settings (an 'eot:' section or bare keys; default: the sidecar's, else the defaults)")
    p.add_argument("--masks", default=None, metavar="DIR",
                   help="textures: folder of person masks per image stem, ultralytics polygon labels ({stem}.txt) "
                        "or instance-mask PNGs ({stem}.png, {stem}_mask.png; 0 = background, k = instance k) "
                        "(default: the box-derived clothing region, an approximation)")
    p.add_argument("--missing-masks", choices=("warn", "error", "box"), default="box",
                   help="textures: a person with no mask: warn (no texture), error, or box (warn and use the "
                        "box-derived clothing region; default)")
    p.add_argument("--garment", choices=("upper", "lower", "both"), default="both",
                   help="textures: the garment the texture covers (default both)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random-noise control and of EOT draw 0")
    p.add_argument("--batch", type=int, default=8, help="images per detector call (default 8)")
    p.add_argument("--max-images", type=int, default=0, help="use at most N images (0 = all)")
    p.add_argument("--json", default=None, metavar="FILE", help="write every metric as JSON (the README's contract)")
    p.add_argument("--csv", default=None, metavar="FILE", help="write one CSV line per detector x reference x condition")
    p.add_argument("-o", "--out", default=None, metavar="DIR", help="folder for evaluation.json/.csv and the PNG plots")
    p.add_argument("--no-plots", action="store_true", help="do not draw the PR and ASR plots into --out")
    add_quiet_option(p)
    add_device_option(p)
    p.set_defaults(func=run)
    return p


def _target_class(target: str, names: dict[int, str]) -> int:
    if target.isdigit():
        return int(target)
    by_name = {v: k for k, v in names.items()}
    if target not in by_name:
        raise PatchkitError(f"--target {target!r} is not a class of the detector{suggest(target, by_name)}")
    return by_name[target]


def _eot_config(args, conditions):
    from patchkit.config import from_dict, read_yaml
    from patchkit.eot import EOTConfig

    if args.eot_samples <= 0:
        return None
    if args.eot_config:
        data = read_yaml(args.eot_config) or {}
        data = data.get("eot", data) if isinstance(data, dict) else data
        return from_dict(EOTConfig, data, source=str(args.eot_config), prefix="eot.")
    for c in conditions:
        eot = (c.sidecar.get("config") or {}).get("eot") if c.sidecar else None
        if isinstance(eot, dict):
            return from_dict(EOTConfig, eot, source=f"{c.path} sidecar", prefix="eot.")
    return EOTConfig()


def run(args: argparse.Namespace) -> int:
    from patchkit.detectors import create_detector
    from patchkit.evaluation.conditions import build_conditions, placement_from_sidecar
    from patchkit.evaluation.digital import DEFAULT_SWEEP, EvalOptions, tkey
    from patchkit.evaluation.report import markdown_table, markdown_transfer
    from patchkit.evaluation.runner import load_image_set, run_evaluation
    from patchkit.scenes.placement import PlacementConfig

    for name in ("conf", "score_conf", "ref_conf", "iou"):
        v = getattr(args, name)
        if not 0.0 <= v <= 1.0:
            raise PatchkitError(f"--{name.replace('_', '-')} must be in [0, 1], got {v}")
    if args.thresholds and not all(0.0 <= t <= 1.0 for t in args.thresholds):
        raise PatchkitError("--thresholds must be in [0, 1]")
    from patchkit.evaluation.protocol import expand_patch_paths

    from patchkit.evaluation.conditions import read_sidecar
    from patchkit.evaluation.textures import is_texture

    patch_paths = expand_patch_paths(args.patch)
    kinds = [is_texture(read_sidecar(p)) for p in patch_paths]
    if any(kinds):
        if not all(kinds):
            tex = [str(p) for p, t in zip(patch_paths, kinds) if t]
            pat = [str(p) for p, t in zip(patch_paths, kinds) if not t]
            raise PatchkitError(f"cannot evaluate patches and textures in one call (textures: {', '.join(tex[:3])}; "
                                f"patches: {', '.join(pat[:3])}); run them separately")
        return _run_textures(args, patch_paths)
    if args.masks:
        print("patchkit evaluate: warning: --masks only applies to textures (a sidecar with \"kind\": \"texture\"); "
              "ignored", file=sys.stderr)
    conditions, warnings = build_conditions(patch_paths, args.seed)
    for w in warnings:
        print(f"patchkit evaluate: warning: {w}", file=sys.stderr)
    placement = {}
    for c in conditions:  # the first sidecar with a placement rule
        placement = placement_from_sidecar(c.sidecar)
        if placement:
            break
    for key in ("scale", "offset_x", "offset_y"):
        if getattr(args, key) is not None:
            placement[key] = getattr(args, key)
    try:
        placement_cfg = PlacementConfig(**placement)
        placement_cfg.validate()
    except (TypeError, ValueError) as exc:
        raise PatchkitError(f"placement: {exc}") from exc
    device = resolve_device(args.device)
    detectors = []
    for w in args.detector:
        det = create_detector(w, imgsz=args.imgsz, letterbox="square", device=device)
        detectors.append((str(w), det))
    target = _target_class(args.target, getattr(detectors[0][1], "names", {}) or {})
    thresholds = tuple(sorted(set(args.thresholds or DEFAULT_SWEEP) | {args.conf}))
    opts = EvalOptions(thresholds=thresholds, score_conf=args.score_conf, ref_conf=args.ref_conf, iou=args.iou,
                       target_class=target, placement=placement_cfg, eot=_eot_config(args, conditions),
                       samples=max(1, args.eot_samples), seed=args.seed, batch=args.batch)
    images, labels, paths = load_image_set(args.scene, args.split, args.labels, args.imgsz, target, args.max_images)
    if "labels" in args.reference and labels is None and args.labels not in ("none",):
        print(f"patchkit evaluate: warning: {args.scene}: no labels for split '{args.split}'; "
              "only the 'self' reference is scored", file=sys.stderr)
    meta = {"detectors": [{"name": n, "family": d.info.family, "sha256": d.info.sha256} for n, d in detectors],
            "scene": str(args.scene), "split": args.split, "target": args.target, "target_class": target,
            "imgsz": args.imgsz, "patches": [{"condition": c.name, "path": c.path, "trained_on": c.trained_on}
                                             for c in conditions if c.path],
            "command": "patchkit evaluate " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else None}
    result = run_evaluation(detectors, images, labels, conditions, opts, args.reference, meta, args.out,
                            args.json, args.csv, plots=not args.no_plots)
    print(markdown_table(result["results"], tkey(args.conf)))
    if len(detectors) > 1 and any(c.path for c in conditions):
        for t in result["transfer"]:
            if t["metric"] == "asr":
                print(markdown_transfer(t))
    return 0


def _texture_eot(args: argparse.Namespace, conditions, device):
    """With ``--eot-samples K``: the texture EOT (the EOT settings as for patches; how the cloth is
    worn from the first texture sidecar's ``patch.texture``, else the defaults), else None."""
    eot = _eot_config(args, conditions)
    if eot is None:
        return None
    from patchkit.config import from_dict
    from patchkit.eot import EOTPipeline
    from patchkit.eot.texture_pipeline import TexturePipeline
    from patchkit.patches.parameterization import TextureConfig

    tcfg = TextureConfig()
    for c in conditions:
        worn = ((c.sidecar or {}).get("config") or {}).get("patch", {}).get("texture")
        if isinstance(worn, dict):
            tcfg = from_dict(TextureConfig, worn, source=f"{c.path} sidecar", prefix="patch.texture.")
            break
    tcfg.garment = args.garment
    return TexturePipeline(tcfg, EOTPipeline(eot)).to(device)


def _run_textures(args: argparse.Namespace, texture_paths) -> int:
    """``patchkit evaluate`` on clothing textures: tiles rendered on each person's garment mask."""
    from patchkit.detectors import create_detector
    from patchkit.evaluation.digital import DEFAULT_SWEEP, EvalOptions, tkey
    from patchkit.evaluation.report import markdown_table, markdown_transfer
    from patchkit.evaluation.runner import load_image_set, run_evaluation
    from patchkit.evaluation.textures import TextureSetup, build_texture_conditions, load_instance_masks

    conditions, warnings, repeat_cm = build_texture_conditions(texture_paths, args.seed)
    for w in warnings:
        print(f"patchkit evaluate: warning: {w}", file=sys.stderr)
    device = resolve_device(args.device)
    detectors = [(str(w), create_detector(w, imgsz=args.imgsz, letterbox="square", device=device))
                 for w in args.detector]
    target = _target_class(args.target, getattr(detectors[0][1], "names", {}) or {})
    thresholds = tuple(sorted(set(args.thresholds or DEFAULT_SWEEP) | {args.conf}))
    opts = EvalOptions(thresholds=thresholds, score_conf=args.score_conf, ref_conf=args.ref_conf, iou=args.iou,
                       target_class=target, eot=None, samples=max(1, args.eot_samples), seed=args.seed,
                       batch=args.batch)
    images, labels, paths = load_image_set(args.scene, args.split, args.labels, args.imgsz, target, args.max_images)
    if "labels" in args.reference and labels is None and args.labels not in ("none",):
        print(f"patchkit evaluate: warning: {args.scene}: no labels for split '{args.split}'; "
              "only the 'self' reference is scored", file=sys.stderr)
    if args.masks:
        instances, files = load_instance_masks(paths, args.imgsz, args.masks, classes=(target,))
    else:
        instances, files = None, None
        print("patchkit evaluate: warning: no --masks: textures cover the box-derived clothing region of each "
              "person (an approximation of the garment)", file=sys.stderr)
    setup = TextureSetup(images, instances, repeat_cm, opts, garment=args.garment, missing=args.missing_masks,
                         mask_files=files, mask_dir=args.masks, image_paths=list(paths),
                         eot=_texture_eot(args, conditions, device))
    meta = {"detectors": [{"name": n, "family": d.info.family, "sha256": d.info.sha256} for n, d in detectors],
            "scene": str(args.scene), "split": args.split, "target": args.target, "target_class": target,
            "imgsz": args.imgsz, "textures": [{"condition": c.name, "path": c.path, "trained_on": c.trained_on,
                                               "tile_cm": repeat_cm.get(c.name)} for c in conditions if c.path],
            "command": "patchkit evaluate " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else None}
    result = run_evaluation(detectors, images, labels, conditions, opts, args.reference, meta, args.out,
                            args.json, args.csv, plots=not args.no_plots, texture=setup)
    print(markdown_table(result["results"], tkey(args.conf)))
    cov = sorted({r["reference"]: r["coverage"] for r in result["results"] if r["condition"] != "clean"}.items())
    print("texture coverage (garment mask / box area): "
          + ", ".join(f"{ref} {c:.3f}" for ref, c in cov if c is not None))
    if len(detectors) > 1:
        for t in result["transfer"]:
            if t["metric"] == "asr":
                print(markdown_transfer(t))
    return 0
