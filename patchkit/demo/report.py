"""The demo's report: ``summary.json`` (../shared/docs/interfaces.md), ``report.md``, plots, the table.

Digital rates are against the toy world's true person boxes (IoU 0.5); video rates are over the
frames in which the walker is in view (detected = a person box with IoU >= 0.5 on the walker's
true box), pooled over the walks, with moving-block bootstrap 95 % intervals.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from patchkit.config import to_dict
from patchkit.demo.config import DemoConfig
from patchkit.evaluation.digital import tkey
from patchkit.io import atomic_write_json, atomic_write_text, save_image
from patchkit.plotting import pyplot as _plt
from patchkit.scenes.placement import PlacementConfig
from patchkit.video.summary import touching_rates

DIGITAL = ("clean", "random", "gray", "patch")
VIDEO = (("control", "control"), ("patch", "test"))  # summary key, scoring role
EFFECT_TARGET = 0.5  # the trained print's video detection rate at most half the control's


def summarize(cfg: DemoConfig, digital: dict, video: dict, placement: PlacementConfig, seconds: dict,
              total: float) -> dict:
    """``summary.json``'s content: ``detection_rate`` (digital, conf ``cfg.conf``), ``video``
    (pooled detection rates), ``seconds`` and the details behind them."""
    key = tkey(cfg.conf)
    rows = {r["condition"]: r for r in digital["results"] if r["reference"] == "labels"}
    pooled = video.get("pooled", {})
    rate = {name: pooled[role]["detection_rate"][key] for name, role in VIDEO}
    ratio = rate["patch"] / rate["control"] if rate["control"] else None
    return {
        "detection_rate": {c: rows[c]["detection_rate"][key] for c in DIGITAL},
        "video": rate,
        "seconds": round(total, 1),
        "conf": cfg.conf,
        "ap50": {c: rows[c]["ap50"] for c in DIGITAL},
        "digital": {"reference": "the toy world's true person boxes, IoU 0.5", "images": rows["clean"]["n_images"],
                    "boxes": rows["clean"]["n_boxes"]},
        "video_ci95": {name: pooled[role]["detection_rate_ci95"][key] for name, role in VIDEO},
        "video_frames": {name: pooled[role]["frames_with_target"] for name, role in VIDEO},
        "video_mean_conf": {name: pooled[role]["mean_conf"] for name, role in VIDEO},
        "video_asr_vs_control": video.get("asr_vs_control", {}).get(key),
        "effect": {"video_patch_over_control": None if ratio is None else round(ratio, 4),
                   "target": f"<= {EFFECT_TARGET}", "met": ratio is not None and ratio <= EFFECT_TARGET},
        "step_seconds": seconds,
        "detector": cfg.detector,
        "printer": cfg.printer,
        "placement": asdict(placement),
        "print_mm": [round(v, 1) for v in cfg.film.print_size_mm()],
        "config": to_dict(cfg),
    }


def film_rows(s: dict, video: dict, conf: float, trained: str, header: str) -> list[str]:
    """The filmed rows of a demo table: detection rate with its 95 % CI, mean walker confidence,
    touching rate (when scored) and frames, for ``control`` and ``trained`` (keys of ``video``
    and of the summary's ``video_*`` entries)."""
    keys = ("control", trained)
    return [
        header,
        "|---|---|---|",
        f"| detection rate @{conf:g} (95% CI) | " + " | ".join(
            f"{video[k]:.3f} ({s['video_ci95'][k][0]:.2f}-{s['video_ci95'][k][1]:.2f})" for k in keys) + " |",
        "| mean walker confidence | " + " | ".join(f"{s['video_mean_conf'][k]:.3f}" for k in keys) + " |",
        *([f"| any person box @{conf:g} touching the walker | " + " | ".join(
            f"{s['video_touching'][k]:.3f}" for k in keys) + " |"] if "video_touching" in s else []),
        "| frames with the walker in view | " + " | ".join(str(s["video_frames"][k]) for k in keys) + " |",
    ]


def summary_table(s: dict) -> str:
    """The markdown table the CLI prints and the report opens with."""
    conf = s["conf"]
    d, a = s["detection_rate"], s["ap50"]
    lines = [
        f"| digital, {s['digital']['images']} unseen images | clean | random patch | gray patch | trained patch |",
        "|---|---|---|---|---|",
        f"| person detection rate @{conf:g} | " + " | ".join(f"{d[c]:.3f}" for c in DIGITAL) + " |",
        "| person AP50 | " + " | ".join(f"{a[c]:.3f}" for c in DIGITAL) + " |",
        "",
        *film_rows(s, s["video"], conf, "patch",
                   "| printed and filmed (walking figure) | control: random print | trained print |"),
    ]
    ratio = s["effect"]["video_patch_over_control"]
    if ratio is not None:
        verdict = "met" if s["effect"]["met"] else "NOT met"
        lines += ["", f"Trained print / control detection rate: {ratio:.2f} (target {s['effect']['target']}: {verdict})."]
    return "\n".join(lines)


def plot_rates(path: Path, s: dict) -> None:
    """Bar chart: digital detection rates (four conditions) beside the two videos' (with CIs)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), gridspec_kw={"width_ratios": [4, 2.4]})
    colours = {"clean": "#7f7f7f", "random": "#1f77b4", "gray": "#aec7e8", "patch": "#d62728", "control": "#1f77b4"}
    axes[0].bar(DIGITAL, [s["detection_rate"][c] for c in DIGITAL], color=[colours[c] for c in DIGITAL])
    axes[0].set_title(f"digital ({s['digital']['images']} unseen images)")
    names = ("control", "patch")
    vals = np.array([s["video"][k] for k in names])
    ci = np.array([s["video_ci95"][k] for k in names], dtype=float)
    err = np.abs(np.stack([vals - ci[:, 0], ci[:, 1] - vals]))
    axes[1].bar(["random print", "trained print"], vals, yerr=err, capsize=4, color=[colours[k] for k in names])
    axes[1].set_title("printed, worn, filmed")
    for ax in axes:
        ax.set_ylim(0, 1.05)
        ax.set_ylabel(f"person detection rate @{s['conf']:g}")
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _running_mean(values: list[float], window: int = 10) -> np.ndarray:
    """Trailing mean over up to ``window`` points (the first points average what there is)."""
    v = np.asarray(values, dtype=np.float64)
    c = np.cumsum(np.concatenate([[0.0], v]))
    lo = np.maximum(np.arange(1, len(v) + 1) - window, 0)
    return (c[1:] - c[lo]) / (np.arange(1, len(v) + 1) - lo)


def plot_training(path: Path, log_jsonl: Path) -> bool:
    """Loss and in-training detection rate against step, from the trainer's ``log.jsonl``."""
    if not log_jsonl.is_file():
        return False
    recs = [json.loads(line) for line in log_jsonl.read_text(encoding="utf-8").splitlines() if line.strip()]
    recs = [r for r in recs if "step" in r and "loss" in r]
    if not recs:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3))
    steps = [r["step"] for r in recs]
    ax.plot(steps, [r["loss"] for r in recs], color="#d62728", alpha=0.25)
    handles = ax.plot(steps, _running_mean([r["loss"] for r in recs]), color="#d62728", label="loss (running mean)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if all("det_rate" in r for r in recs):
        ax2 = ax.twinx()
        ax2.plot(steps, [r["det_rate"] for r in recs], color="#1f77b4", alpha=0.25)
        handles += ax2.plot(steps, _running_mean([r["det_rate"] for r in recs]), color="#1f77b4",
                            label="detection rate, training batch")
        ax2.set_ylabel("detection rate (EOT batch)")
        ax2.set_ylim(0, 1.05)
    ax.legend(handles=handles, loc="lower left", fontsize=8)
    ax.set_title("patch training")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def frame_strip(path: Path, videos: list[tuple[str, Path]], n: int = 4) -> bool:
    """Rows of ``n`` evenly spaced frames from each annotated video (label, path), side by side."""
    rows = []
    for label, video in videos:
        cap = cv2.VideoCapture(str(video))
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        frames = []
        for i in np.linspace(0, max(count - 1, 0), n).round().astype(int):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(i))
            ok, img = cap.read()
            if ok:
                frames.append(img)
        cap.release()
        if len(frames) != n:
            return False
        row = np.concatenate(frames, 1)
        bar = np.full((22, row.shape[1], 3), 255, np.uint8)
        cv2.putText(bar, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        rows.append(np.concatenate([bar, row], 0))
    if not rows:
        return False
    save_image(path, cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_BGR2RGB))
    return True


def write_demo_report(out: Path, cfg: DemoConfig, digital: dict, video: dict, placement: PlacementConfig,
                      seconds: dict, total: float) -> dict:
    """Write ``summary.json``, ``report.md`` and ``plots/``; returns the summary."""
    s = summarize(cfg, digital, video, placement, seconds, total)
    frames = Path(video.get("frames_jsonl", ""))
    if frames.is_file():
        by_role = touching_rates(frames, cfg.conf)
        s["video_touching"] = {name: by_role.get(role, 0.0) for name, role in VIDEO}
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    plot_rates(plots / "detection_rates.png", s)
    images = [("Detection rates", "plots/detection_rates.png")]
    annotated = [(label, out / "score" / f"walk0_{name}_{role}_annotated.mp4")
                 for label, name, role in (("control: random print", "control", "control"),
                                           ("trained print", "patch", "test"))]
    if all(p.is_file() for _, p in annotated) and frame_strip(plots / "frames.png", annotated):
        images.append(("Walk 0, annotated frames (red: walker detected, green: hidden, at the headline threshold)",
                       "plots/frames.png"))
    if plot_training(plots / "training.png", out / "train" / "log.jsonl"):
        images.append(("Training", "plots/training.png"))
    if (out / "score" / "timeseries.png").is_file():
        images.append(("Walker confidence per frame", "score/timeseries.png"))
    s["files"] = {
        "patch": "patch.png", "print_pdf": "film/patch.pdf", "control_pdf": "film/control.pdf",
        "videos": sorted(str(p.relative_to(out)) for p in (out / "film").glob("walk*.mp4")),
        "annotated_videos": sorted(str(p.relative_to(out)) for p in (out / "score").glob("*_annotated.mp4")),
        "digital_metrics": "eval/evaluation.json", "video_metrics": "score/summary.json",
        "frames": "score/frames.jsonl", "training_log": "train/log.jsonl", "report": "report.md",
        "plots": [p for _, p in images],
    }
    atomic_write_json(out / "summary.json", s)
    atomic_write_text(out / "report.md", report_markdown(s, images))
    return s


def report_markdown(s: dict, images: list[tuple[str, str]]) -> str:
    step = ", ".join(f"{k} {v:.0f} s" for k, v in s["step_seconds"].items())
    p = s["placement"]
    film = s["config"]["film"]
    worn = "a chest print" if film["aspect"] <= 1 else "an apron from the collar down"
    lines = [
        "# patchkit demo",
        "",
        f"A patch trained against `{s['detector']}`, evaluated digitally, exported for print, printed by the "
        f"simulated `{s['printer']}` printer, worn by walking figures as {worn} and filmed; "
        f"{s['seconds']:.0f} s in all ({step}).",
        "",
        summary_table(s),
        "",
        f"Digital: {s['digital']['reference']}; the patch is pasted at {p['scale']:.3f} x the box diagonal "
        f"(aspect {p['aspect']:.2f}, {abs(p['offset_y']):.2f} of the box height {'above' if p['offset_y'] < 0 else 'below'} "
        "its centre), where the "
        "print sits on the walkers. Video: frames with the walker in view; detected = a person box "
        "with IoU >= 0.5 on the walker's true box; pooled over the walks; moving-block bootstrap 95% CIs. "
        "'Touching' is looser: any person box overlapping the walker at all, so a print that only breaks "
        "him into smaller boxes is not counted as hiding him.",
        "",
        "![patch](patch.png)",
        "",
    ]
    for title, path in images:
        lines += [f"## {title}", "", f"![{title}]({path})", ""]
    f = s["files"]
    lines += [
        "## Files",
        "",
        f"- `{f['patch']}`: the digital patch; `{f['print_pdf']}`: print-ready PDF, "
        f"{s['print_mm'][0]:.0f} x {s['print_mm'][1]:.0f} mm (`{f['control_pdf']}`: the control).",
        "- `film/`: the filmed walks (MP4) with the walker's true box per frame (JSON beside each).",
        "- `score/`: per-frame records (`frames.jsonl`), annotated videos, `summary.json`, `report.md`.",
        "- `eval/`: digital metrics (`evaluation.json`, CSV, PR and ASR plots).",
        "- `train/`: the training run (`patch.png`, `checkpoint.pt`, `log.jsonl`, `config.yaml`).",
        "- `config.yaml`: the demo config; `patchkit demo --out DIR key=value ...` reruns it.",
        "",
    ]
    return "\n".join(lines)
