"""Outputs of ``patchkit evaluate``: JSON, CSV, transfer matrix, PR and ASR-vs-threshold plots,
and the markdown table."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from patchkit.io import atomic_write_json, atomic_write_text
from patchkit.metrics.ap import PRCurve
from patchkit.plotting import pyplot as _plt


def clean_json(obj):
    """NaN/inf -> None (strict JSON), recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_json(v) for v in obj]
    return obj


def transfer_matrix(rows: Sequence[dict], reference: str, metric: str = "asr") -> dict:
    """Rows: each patch condition (with the detector it was trained on); columns: evaluated
    detectors; values: ``metric`` under ``reference``."""
    patches = []
    for r in rows:
        if r["condition"] not in ("clean", "random", "gray") and r["condition"] not in [p["condition"] for p in patches]:
            patches.append({"condition": r["condition"], "trained_on": r.get("trained_on")})
    dets = list(dict.fromkeys(r["detector"] for r in rows))
    by = {(r["condition"], r["detector"]): r.get(metric) for r in rows if r["reference"] == reference}
    return {"metric": metric, "reference": reference,
            "rows": [p["condition"] for p in patches], "trained_on": [p["trained_on"] for p in patches],
            "columns": dets, "values": [[by.get((p["condition"], d)) for d in dets] for p in patches]}


CSV_FIELDS = ("detector", "reference", "condition", "ap50", "ap50_std", "ap50_95", "ap50_95_std", "asr", "asr_std",
              "n_images", "n_boxes", "eot_samples", "trained_on", "patch")


def to_csv(rows: Sequence[dict], thresholds: Sequence[str]) -> str:
    """One line per detector x reference x condition; sweep metrics as ``detection_rate@t`` etc."""
    buf = io.StringIO()
    cols = list(CSV_FIELDS) + [f"{m}@{t}" for m in ("detection_rate", "asr_at", "precision",
                                                   "hallucinations_per_image") for t in thresholds]
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        line = {k: r.get(k) for k in CSV_FIELDS}
        for m in ("detection_rate", "asr_at", "precision", "hallucinations_per_image"):
            for t in thresholds:
                line[f"{m}@{t}"] = (r.get(m) or {}).get(t)
        w.writerow({k: ("" if v is None else (f"{v:.6g}" if isinstance(v, float) else v)) for k, v in line.items()})
    return buf.getvalue()


def _f(v, nd=3) -> str:
    return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{nd}f}"


def markdown_table(rows: Sequence[dict], conf_key: str) -> str:
    """Markdown summary: AP50, AP50:95, ASR, detection rate and ASR at ``conf_key``."""
    lines = [f"| detector | reference | condition | AP50 | AP50:95 | ASR (1-AP/AP_clean) | DR@{conf_key} | "
             f"ASR@{conf_key} | halluc./img@{conf_key} | images | boxes |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        spread = f" ± {_f(r['ap50_std'])}" if r.get("eot_samples", 1) > 1 and r.get("ap50_std") is not None else ""
        lines.append(
            f"| {Path(r['detector']).name} | {r['reference']} | {r['condition']} | {_f(r['ap50'])}{spread} | "
            f"{_f(r['ap50_95'])} | {_f(r['asr'])} | {_f(r['detection_rate'].get(conf_key))} | "
            f"{_f(r['asr_at'].get(conf_key))} | {_f(r['hallucinations_per_image'].get(conf_key), 2)} | "
            f"{r['n_images']} | {r['n_boxes']} |")
    return "\n".join(lines) + "\n"


def markdown_transfer(t: dict) -> str:
    if not t["rows"] or len(t["columns"]) < 1:
        return ""
    head = "| patch (trained on) | " + " | ".join(Path(c).name for c in t["columns"]) + " |"
    lines = [f"Transfer ({t['metric']}, reference {t['reference']}):", "", head,
             "|---|" + "---|" * len(t["columns"])]
    for name, src, vals in zip(t["rows"], t["trained_on"], t["values"]):
        lines.append(f"| {name} ({src or '?'}) | " + " | ".join(_f(v) for v in vals) + " |")
    return "\n".join(lines) + "\n"


def plot_pr(path: str | Path, curves: dict[str, PRCurve], title: str) -> None:
    """PR curves (monotone envelope) of several conditions."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, c in curves.items():
        rec, pre = c.envelope()
        ax.step(rec, pre, where="post", label=name, lw=1.2)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_asr_vs_threshold(path: str | Path, rows: Sequence[dict], thresholds: Sequence[str], title: str) -> None:
    """Box-level ASR (share of reference boxes not detected) against the confidence threshold;
    the band is the EOT spread (± 1 std)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    x = np.array([float(t) for t in thresholds])
    for r in rows:
        y = np.array([np.nan if r["asr_at"].get(t) is None else r["asr_at"][t] for t in thresholds])
        sd = np.array([np.nan if (r.get("detection_rate_std") or {}).get(t) is None else r["detection_rate_std"][t]
                       for t in thresholds])
        (line,) = ax.plot(x, y, marker="o", ms=3, label=r["condition"])
        if r.get("eot_samples", 1) > 1:
            ax.fill_between(x, y - sd, y + sd, alpha=0.2, color=line.get_color())
    ax.set_xlabel("confidence threshold")
    ax.set_ylabel("ASR (reference boxes not detected)")
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(out_dir: str | Path | None, result: dict, curves: dict, thresholds: Sequence[str],
                  json_path: str | Path | None = None, csv_path: str | Path | None = None,
                  plots: bool = True) -> list[str]:
    """Write JSON, CSV and plots; returns the files written."""
    files: list[str] = []
    payload = clean_json(result)
    if json_path:
        atomic_write_json(json_path, payload)
        files.append(str(json_path))
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "evaluation.json", payload)
        files.append(str(out / "evaluation.json"))
        csv_path = csv_path or out / "evaluation.csv"
        if plots:
            for (det, ref), by_cond in curves.items():
                stem = f"{Path(det).stem}_{ref}"
                plot_pr(out / f"pr_{stem}.png", by_cond, f"{Path(det).name}, reference {ref}, IoU 0.5")
                rows = [r for r in result["results"] if r["detector"] == det and r["reference"] == ref]
                plot_asr_vs_threshold(out / f"asr_{stem}.png", rows, thresholds,
                                      f"{Path(det).name}, reference {ref}, IoU 0.5")
                files += [str(out / f"pr_{stem}.png"), str(out / f"asr_{stem}.png")]
    if csv_path:
        atomic_write_text(csv_path, to_csv(result["results"], thresholds))
        files.append(str(csv_path))
    return files
