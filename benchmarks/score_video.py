"""Video scoring speed: ``patchkit score`` vs ultralytics' own ``predict(stream=True)`` and
``track(stream=True)``, as shipped, in the same run.

    python benchmarks/score_video.py [--videos real synthetic] [--frames 300] [--repeats 3] [--json FILE]

Two videos:

* real: ``../shared/data/video/one-by-one-person-detection.mp4`` (a real indoor camera, 768x432,
  10 fps; people walk in one at a time) with the official COCO ``yolov8n.pt``;
* synthetic: a generated 640x480 MP4 (Penn-Fudan photos from ../shared with an ArUco marker print
  composited on a pedestrian, or synthetic frames when ../shared is absent) with yolov8n built from
  its YAML (random weights, person bias shifted so that each frame yields a few dozen boxes; speed
  does not depend on the weights), saved with ultralytics' ``Model.save``.

Two modes, same model file, ``iou=0.45``, ``classes=[0]``, ``imgsz=640``:

* predict: ``YOLO(file).predict(source=video, stream=True, conf=0.25)`` vs patchkit's scoring
  pipeline (threaded OpenCV decode, ArUco detection in the decode thread for the marker video,
  batched inference on the fused, channels-last detector with in-place activations, one inference
  worker per core with one intra-op thread each, target selection, per-frame JSONL written and
  flushed; no annotated video or plots). Detections must agree: same count and classes, boxes
  within 0.01 px, confidences within 1e-5.
* track: ``YOLO(file).track(source=video, stream=True, tracker="bytetrack.yaml")`` (its default
  conf 0.1) vs the same pipeline with ``--tracker bytetrack`` (ultralytics' BYTETracker on
  patchkit's detections >= 0.1). The confirmed track ids must be the same in every frame.

Runs alternate (ultralytics, patchkit, ...) after one short warm-up each; frames/s are medians.
``ratio`` = patchkit / ultralytics. Also reported: frames per CPU-second (all threads of the
process), which does not depend on how many cores are free, and the load average.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from patchkit.detectors import create_detector  # noqa: E402
from patchkit.markers import PinholeCamera  # noqa: E402
from patchkit.video.scoring import ScoreOptions, score_source  # noqa: E402
from patchkit.video.sinks import JsonlSink  # noqa: E402
from patchkit.video.source import open_source  # noqa: E402
from patchkit.capture.board import board_pose, composite_board, render_board  # noqa: E402
from patchkit.io import write_video  # noqa: E402
from patchkit.video.target import EveryPersonReference, MarkerReference  # noqa: E402

PENNFUDAN = REPO.parent / "shared" / "data" / "pennfudan" / "test"
REAL_VIDEO = REPO.parent / "shared" / "data" / "video" / "one-by-one-person-detection.mp4"
REAL_WEIGHTS = REPO.parent / "shared" / "data" / "weights" / "yolov8n.pt"
W, H = 640, 480


@contextmanager
def preserve_threads():
    """Put torch's and OpenCV's thread counts back after ultralytics changes them."""
    n_torch, n_cv2 = torch.get_num_threads(), cv2.getNumThreads()
    try:
        yield
    finally:
        torch.set_num_threads(n_torch)
        cv2.setNumThreads(n_cv2)


def make_video(path: Path, n: int, seed: int = 0) -> tuple[str, object]:
    """``n`` frames of 640x480: photos held for 10 frames each with a slow pan, a marker print on
    the first labelled pedestrian. Returns (description, board)."""
    rng = np.random.default_rng(seed)
    board = render_board(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8), patch_mm=(120, 120), marker_mm=40,
                         margin_mm=5, px_per_mm=2.0)
    cam = PinholeCamera.from_hfov(W, H, 65.0)
    photos = sorted((PENNFUDAN / "images").glob("*.png")) if PENNFUDAN.is_dir() else []
    source = "pennfudan test photos" if photos else "synthetic frames"

    def frames():
        for k in range(n):
            j = k // 10
            if photos:
                p = photos[j % len(photos)]
                img = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
                lab = PENNFUDAN / "labels" / (p.stem + ".txt")
                box = np.loadtxt(lab).reshape(-1, 5)[0] if lab.is_file() else np.array([0, 0.5, 0.5, 0.3, 0.6])
            else:
                img = np.full((H, W, 3), 100, np.uint8)
                img[:, :, 0] = np.linspace(60, 200, W, dtype=np.uint8)[None]
                box = np.array([0, 0.5, 0.5, 0.3, 0.6])
            s = 1.0 + 0.02 * (k % 10)  # slow zoom-pan within each shot
            big = cv2.resize(img, (int(W * s), int(H * s)), interpolation=cv2.INTER_LINEAR)
            ox, oy = (big.shape[1] - W) // 2, (big.shape[0] - H) // 2
            frame = np.ascontiguousarray(big[oy:oy + H, ox:ox + W])
            cx = float(np.clip(box[1] * W * s - ox, 80, W - 80))
            cy = float(np.clip((box[2] - 0.1) * H * s - oy, 80, H - 80))
            rot, t = board_pose(cam, (cx, cy), 1.6 + 0.05 * (k % 10), yaw_deg=20 * math.sin(k / 15))
            yield composite_board(frame, board, cam, rot, t)[0]

    write_video(path, frames(), fps=30.0)
    return source, board


def build_model(path: Path, video: Path, seed: int = 0, target_per_frame: int = 40) -> None:
    """yolov8n from its YAML with random weights; shift the person-class bias so that about
    ``target_per_frame`` anchors per frame score >= 0.25; save with ultralytics' Model.save."""
    with preserve_threads():
        from ultralytics import YOLO

        torch.manual_seed(seed)
        model = YOLO("yolov8n.yaml")
    net = model.model.eval()
    cap = cv2.VideoCapture(str(video))
    xs = []
    for _ in range(8):
        ok, bgr = cap.read()
        xs.append(torch.from_numpy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).permute(2, 0, 1).float() / 255)
    cap.release()
    head = net.model[-1]
    finals = [b[-1] for b in head.cv3] + [b[-1] for b in (getattr(head, "one2one_cv3", None) or [])]

    def person_logits() -> torch.Tensor:
        y = net(torch.stack(xs))
        y = y[0] if isinstance(y, (list, tuple)) else y  # (B, 4 + nc, A), class scores after sigmoid
        p = y[:, 4].double().clamp(1e-12, 1 - 1e-12)
        return torch.log(p / (1 - p))

    with torch.no_grad():
        # random init makes activations vanish with depth (near-constant outputs): re-estimate
        # every BatchNorm's statistics on the frames (data-dependent init), so that outputs depend
        # on the image; then shift the person logit so a few dozen anchors per frame pass 0.25
        bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration pass
        net.train()
        net(torch.stack(xs))
        net.eval()
        for conv in finals:
            conv.bias[0] = 0.0
        logit = person_logits()
        q = torch.quantile(logit.flatten(), 1 - target_per_frame / logit.shape[1])
        for conv in finals:
            conv.bias[0] = math.log(0.25 / 0.75) - float(q)
    model.save(str(path))


def run_ultralytics(weights: Path, video: Path, frames: int, mode: str, imgsz: int) -> tuple[float, list, float]:
    """ultralytics as shipped: ``predict`` (conf 0.25) or ``track`` (its default conf 0.1 and
    bytetrack.yaml), ``stream=True``, the first ``frames`` frames."""
    with preserve_threads():  # as shipped inside, but do not leak its thread count to patchkit
        from ultralytics import YOLO

        model = YOLO(str(weights))
        kw = dict(source=str(video), stream=True, iou=0.45, classes=[0], imgsz=imgsz, device="cpu", verbose=False)
        out = []
        c0, t0 = time.process_time(), time.perf_counter()
        gen = model.predict(conf=0.25, **kw) if mode == "predict" else model.track(tracker="bytetrack.yaml", **kw)
        for r in gen:
            b = r.boxes
            ids = b.id.numpy().astype(int).tolist() if b.id is not None else []
            out.append((b.xyxy.numpy().copy(), b.conf.numpy().copy(), b.cls.numpy().copy(), sorted(ids)))
            if len(out) == frames:
                break
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return len(out) / dt, out, len(out) / cpu


def run_patchkit(detector, video: Path, frames: int, batch: int, reference, markers, out_dir: Path,
                 workers: int | None, tracker: str | None) -> tuple[float, list, float]:
    """The ``patchkit score`` pipeline on the first ``frames`` frames (JSONL written and flushed)."""
    opts = ScoreOptions(conf=0.25, thresholds=(0.1, 0.25) if tracker else (0.25,), iou=0.45, target_class=0,
                        batch=batch, hfov_deg=65.0, workers=workers, tracker=tracker)
    out = []
    c0, t0 = time.process_time(), time.perf_counter()
    src = open_source(video)
    with JsonlSink(out_dir / "frames.jsonl", append=False) as sink:
        for rec in score_source(src, detector, opts, reference, markers, "test"):
            sink.write(rec)
            b = np.asarray([x[:4] for x in rec["boxes"]], dtype=np.float64).reshape(-1, 4)
            ids = sorted(t for t in rec.get("track_ids", []) if t >= 0)
            out.append((b, np.asarray([x[4] for x in rec["boxes"]]), np.asarray([x[5] for x in rec["boxes"]]), ids,
                        rec["pose"] is not None))
            if len(out) == frames:
                break
    src.close()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return len(out) / dt, out, len(out) / cpu


def compare(ul: list, pk: list, tracked: bool) -> dict:
    """Frame-by-frame agreement: same boxes (0.01 px, the JSONL's rounding) and confidences (1e-5);
    with a tracker, the same confirmed track ids in every frame."""
    same = len(ul) == len(pk)
    max_box, max_conf, n_boxes, mismatched, id_frames = 0.0, 0.0, 0, 0, 0
    for (ub, uc, ucl, uid), (pb, pc, pcl, pid, _) in zip(ul, pk):
        if tracked:  # ultralytics' track() shows only the boxes in confirmed tracks
            id_frames += uid != pid
            continue
        n_boxes += len(ub)
        if len(ub) != len(pb) or not np.array_equal(np.sort(ucl), np.sort(pcl)):
            mismatched += 1
            continue
        if len(ub) == 0:
            continue
        ou, op = np.argsort(-uc, kind="stable"), np.argsort(-pc, kind="stable")
        max_box = max(max_box, float(np.abs(ub[ou] - pb[op]).max()))
        max_conf = max(max_conf, float(np.abs(uc[ou] - pc[op]).max()))
    identical = same and mismatched == 0 and id_frames == 0 and max_box <= 0.01 and max_conf <= 1e-5
    return {"identical": bool(identical), "frames_compared": min(len(ul), len(pk)), "frames_mismatched": mismatched,
            "frames_with_other_track_ids": id_frames, "max_box_diff_px": round(max_box, 6),
            "max_conf_diff": float(f"{max_conf:.3g}"), "boxes_per_frame": round(n_boxes / max(1, len(ul)), 2)}


def bench(name: str, weights: Path, video: Path, args, reference, markers, work: Path) -> list[dict]:
    """Both modes (predict, track) on one video: alternating runs after a warm-up, medians."""
    detector = create_detector(weights, imgsz=args.imgsz).optimize_for_attack()
    rows = []
    for mode in ("predict", "track"):
        tracker = "bytetrack" if mode == "track" else None
        ul_fps, pk_fps, ul_cpu, pk_cpu, agreement = [], [], [], [], None
        run_ultralytics(weights, video, min(args.frames, 16), mode, args.imgsz)  # warm-up, not timed
        torch.set_num_threads(args.threads)
        run_patchkit(detector, video, min(args.frames, 16), args.batch, reference(), markers, work, args.workers, tracker)
        for k in range(args.repeats):
            f, ul, c = run_ultralytics(weights, video, args.frames, mode, args.imgsz)
            ul_fps.append(f)
            ul_cpu.append(c)
            torch.set_num_threads(args.threads)  # ultralytics' device selection changes it process-wide
            f, pk, c = run_patchkit(detector, video, args.frames, args.batch, reference(), markers, work, args.workers,
                                    tracker)
            pk_fps.append(f)
            pk_cpu.append(c)
            print(f"{name} {mode} run {k + 1}/{args.repeats}: ultralytics {ul_fps[-1]:.2f} fps, patchkit {f:.2f} fps",
                  file=sys.stderr)
            agreement = compare(ul, pk, tracked=tracker is not None)
        u, p = statistics.median(ul_fps), statistics.median(pk_fps)
        rows.append({"video": name, "mode": mode, "frames": args.frames, "ultralytics_fps": round(u, 2),
                     "patchkit_fps": round(p, 2), "ratio": round(p / u, 3),
                     "ultralytics_runs": [round(x, 2) for x in ul_fps], "patchkit_runs": [round(x, 2) for x in pk_fps],
                     "ultralytics_frames_per_cpu_s": round(statistics.median(ul_cpu), 2),
                     "patchkit_frames_per_cpu_s": round(statistics.median(pk_cpu), 2), **(agreement or {})})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="also write the numbers to this JSON file")
    ap.add_argument("--frames", type=int, default=300, help="frames scored per run and video (default 300)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--videos", nargs="+", choices=("real", "synthetic"), default=["real", "synthetic"])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--workers", type=int, default=None, help="patchkit inference workers (default: --threads)")
    ap.add_argument("--keep", default=None, help="keep the video and model in this folder")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    work = Path(args.keep or tempfile.mkdtemp(prefix="patchkit_bench_score_"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    if "real" in args.videos and REAL_VIDEO.is_file() and REAL_WEIGHTS.is_file():
        rows += bench(f"real: {REAL_VIDEO.name} (768x432, 10 fps), official yolov8n", REAL_WEIGHTS, REAL_VIDEO, args,
                      EveryPersonReference, None, work)
    elif "real" in args.videos:
        print("real video or yolov8n.pt not found in ../shared: skipped", file=sys.stderr)
    if "synthetic" in args.videos:
        video, weights = work / "bench_640x480.mp4", work / "bench_yolov8n.pt"
        source, board = make_video(video, args.frames)
        build_model(weights, video)
        torch.set_num_threads(args.threads)
        rows += bench(f"synthetic: 640x480 ({source}, marker print), yolov8n random weights", weights, video, args,
                      MarkerReference, board.spec, work)
    print("| video | ultralytics, as shipped | frames/s | patchkit score | frames/s | ratio | same output |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        ul = "predict(stream=True)" if r["mode"] == "predict" else "track(stream=True), bytetrack"
        pk = "per-frame records" if r["mode"] == "predict" else "--tracker bytetrack"
        print(f"| {r['video']} | {ul} | {r['ultralytics_fps']:.2f} | {pk} | {r['patchkit_fps']:.2f} | "
              f"{r['ratio']:.2f}x | {'yes' if r['identical'] else 'NO'} |")
    print()
    print(f"{args.frames} frames per run, medians of {args.repeats} alternating runs; torch threads {args.threads}, "
          f"batch {args.batch}, imgsz {args.imgsz}, torch {torch.__version__}; load average "
          f"{[round(x, 2) for x in os.getloadavg()]} on {os.cpu_count()} cores")
    for r in rows:
        print(f"{r['video']} {r['mode']}: frames per CPU-second ultralytics {r['ultralytics_frames_per_cpu_s']}, "
              f"patchkit {r['patchkit_frames_per_cpu_s']}; {r['boxes_per_frame']} boxes/frame, max box diff "
              f"{r['max_box_diff_px']} px, max conf diff {r['max_conf_diff']}, frames with other track ids "
              f"{r['frames_with_other_track_ids']}")
    if args.json:
        from patchkit.io import atomic_write_json

        atomic_write_json(args.json, {"rows": rows, "torch": torch.__version__})
    return 0 if all(r["identical"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
