"""Plots and the markdown report of a scoring run (matplotlib, Agg backend, PNG files)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from patchkit.io import atomic_write_text
from patchkit.plotting import pyplot as _plt
from patchkit.video.timeline import plot_timeline


def plot_timeseries(path: str | Path, series: Sequence[tuple[str, Sequence[dict]]], conf: float) -> None:
    """Target confidence over time, one panel per video; gaps where the target is not in view,
    the threshold as a dashed line."""
    plt = _plt()
    fig, axes = plt.subplots(len(series), 1, figsize=(10, 2.6 * len(series)), squeeze=False, sharey=True)
    for ax, (label, recs) in zip(axes[:, 0], series):
        recs = sorted(recs, key=lambda r: r["frame"])
        use_time = all(r.get("time") is not None for r in recs)
        x = np.array([r["time"] if use_time else r["frame"] for r in recs], dtype=float)
        y = np.array([r["target"]["conf"] if r["target"]["present"] else np.nan for r in recs], dtype=float)
        ax.plot(x, y, lw=1.0, color="tab:blue", label="target confidence")
        absent = np.isnan(y)
        if absent.any():
            ax.scatter(x[absent], np.zeros(absent.sum()) - 0.03, s=4, color="0.6", marker="|", label="not in view")
        ax.axhline(conf, ls="--", color="tab:red", lw=1, label=f"threshold {conf:g}")
        ax.set_ylim(-0.06, 1.0)
        ax.set_ylabel("confidence")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("time (s)" if use_time else "frame")
        ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7, borderaxespad=0.0)  # beside, not over, the data
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_bins(path: str | Path, summaries: Sequence[dict], key: str, xlabel: str, conf_key: str) -> bool:
    """Grouped bars of the detection rate per pose bin (``key`` = ``by_distance``/``by_angle``);
    False when no video has pose data."""
    rows = [s for s in summaries if s.get(key)]
    if not rows:
        return False
    plt = _plt()
    labels = [b["bin"] for b in rows[0][key]]
    for s in rows[1:]:
        for b in s[key]:
            if b["bin"] not in labels:
                labels.append(b["bin"])
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(labels)), 3.5))
    w = 0.8 / len(rows)
    for j, s in enumerate(rows):
        by = {b["bin"]: b for b in s[key]}
        vals = [by.get(lb, {}).get("detection_rate") for lb in labels]
        xs = np.arange(len(labels)) + (j - (len(rows) - 1) / 2) * w
        ax.bar(xs, [v if v is not None else 0 for v in vals], w, label=f"{s['role']}: {Path(s['path']).name}")
        for x, lb in zip(xs, labels):
            n = by.get(lb, {}).get("frames", 0)
            ax.text(x, 0.01, f"n={n}", ha="center", va="bottom", fontsize=6, rotation=90)
    ax.set_xticks(np.arange(len(labels)), labels, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(f"detection rate @ {conf_key}")
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def markdown_report(result: dict, conf_key: str, images: Sequence[str] = ()) -> str:
    """Markdown summary: one row per video, ASR vs control, pose bins, warnings, plots."""
    keys = list(result["thresholds"])
    lines = [f"# patchkit score: {result.get('detector', '')}", ""]
    target = result.get("target") if result.get("target") is not None else result.get("target_class", "person")
    lines.append(f"Target class `{target}`, headline threshold {conf_key}, reference "
                 f"`{result.get('reference')}`. {result['videos'][0]['ci_method'] if result['videos'] else ''}.")
    lines += ["", "| video | role | frames | with target | " + " | ".join(f"DR@{k}" for k in keys) + " | mean conf | max conf |",
              "|---|---|---|---|" + "---|" * len(keys) + "---|---|"]
    for v in result["videos"]:
        cells = []
        for k in keys:
            r, ci = v["detection_rate"].get(k), v["detection_rate_ci95"].get(k, [None, None])
            cells.append("–" if r is None else f"{r:.3f} [{_fmt(ci[0])}, {_fmt(ci[1])}]")
        lines.append(f"| {Path(v['path']).name} | {v['role']} | {v['frames']} | {v['frames_with_target']} | "
                     + " | ".join(cells) + f" | {_fmt(v['mean_conf'])} | {_fmt(v['max_conf'])} |")
    if result.get("tracker"):
        lines += _tracking_table(result, conf_key)
    if result.get("asr_vs_control"):
        ci = result.get("asr_vs_control_ci95", {})
        lines += ["", "ASR vs control (1 - DR_test / DR_control): "
                  + ", ".join(f"@{k}: {_fmt(a)}" + (f" [{_fmt(ci[k][0])}, {_fmt(ci[k][1])}]" if k in ci else "")
                              for k, a in result["asr_vs_control"].items())]
    for v in result["videos"]:
        for key, title in (("by_distance", "distance"), ("by_angle", "viewing angle")):
            if v.get(key):
                lines += ["", f"{Path(v['path']).name} ({v['role']}) by {title}, DR@{conf_key}:", "",
                          "| bin | frames | detection rate |", "|---|---|---|"]
                lines += [f"| {b['bin']} | {b['frames']} | {_fmt(b['detection_rate'])} |" for b in v[key]]
    if result.get("warnings"):
        lines += ["", "Warnings:", ""] + [f"- {w}" for w in result["warnings"]]
    if images:
        lines += [""] + [f"![{Path(p).stem}]({Path(p).name})" for p in images]
    return "\n".join(lines) + "\n"


def _tracking_table(result: dict, conf_key: str) -> list[str]:
    """Frame-level and track-level numbers side by side, one row per video."""
    lines = ["", f"Frame level vs track level (tracker `{result['tracker']}`; a frame is tracked when a "
             "confirmed track covers the target; the alarm fires when one track lives on the target for "
             "the stated number of frames):", "",
             f"| video | role | DR@{conf_key} | tracked | tracks on target | first track (s) | "
             "longest untracked (s) | alarm |", "|---|---|---|---|---|---|---|---|"]
    for v in result["videos"]:
        t = v.get("tracking") or {}
        if not t.get("frames_in_view"):
            continue
        alarm = (f"at {t['alarm_time_s']:.1f} s ({t['alarm_delay_s']:.1f} s in view)" if t["alarm"]
                 else "no") + f", {t['alarm_frames']} frames"
        lines.append(f"| {Path(v['path']).name} | {v['role']} | {_fmt(v['detection_rate'].get(conf_key))} | "
                     f"{_fmt(t['tracked_fraction'])} | {t['fragments']} | {_fmt(t['first_track_s'])} | "
                     f"{_fmt(t['longest_untracked_s'])} | {alarm} |")
    for role, pool in result.get("pooled", {}).items():
        t = pool.get("tracking")
        if t:
            lines.append(f"| all {role} videos | {role} | {_fmt(pool['detection_rate'].get(conf_key))} | "
                         f"{_fmt(t['tracked_fraction'])} | {_fmt(t['fragments'])} (mean) | {_fmt(t['first_track_s'])} | "
                         f"{_fmt(t['longest_untracked_s'])} | {t['alarms']}/{t['videos']} videos |")
    return lines


def write_report(out_dir: str | Path, result: dict, records: dict[tuple[str, str], list[dict]], conf: float,
                 conf_key: str, plots: bool = True) -> list[str]:
    """Write ``timeseries.png``, a ``timeline_<video>_<role>.png`` per video, ``by_distance.png``,
    ``by_angle.png`` and ``report.md`` into ``out_dir`` (``records`` keyed by ``(path, role)``);
    returns the files written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    series = [(f"{v['role']}: {Path(v['path']).name}", records.get((v["path"], v["role"]), []))
              for v in result["videos"]]
    if series and plots:
        plot_timeseries(out / "timeseries.png", series, conf)
        files.append(str(out / "timeseries.png"))
        for v in result["videos"]:
            recs = records.get((v["path"], v["role"]), [])
            if recs:
                png = out / f"timeline_{Path(v['path']).stem or 'camera'}_{v['role']}.png"
                plot_timeline(png, f"{Path(v['path']).name} ({v['role']})", recs, conf, v.get("fps") or 0.0,
                              v.get("tracking"))
                files.append(str(png))
    if plots and plot_bins(out / "by_distance.png", result["videos"], "by_distance", "distance", conf_key):
        files.append(str(out / "by_distance.png"))
    if plots and plot_bins(out / "by_angle.png", result["videos"], "by_angle", "viewing angle", conf_key):
        files.append(str(out / "by_angle.png"))
    atomic_write_text(out / "report.md", markdown_report(result, conf_key, files))
    files.append(str(out / "report.md"))
    return files
