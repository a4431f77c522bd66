"""``patchkit demo``: the whole workflow on the toy world, offline, in minutes.

Steps (each prints its wall time; everything lands in ``cfg.out``):

1. ``world/``: toy-world images (a seed the toy detector never saw), YOLO labels.
2. ``train/``: a patch trained against the detector, with the default EOT and the calibrated
   profile of the simulated printer (``printers/NAME``).
3. ``eval/``: digital evaluation on unseen images: clean, random noise, gray, trained patch.
4. ``film/``: the patch and the random control exported as print-ready PDFs, printed by the
   simulated printer, worn by walking figures and filmed by the simulated camera.
5. ``score/``: both sets of videos scored against the detector (true box per frame).
6. ``summary.json``, ``report.md`` and plots (:mod:`patchkit.demo.report`).

With ``texture.enabled`` (``patchkit demo --texture``) the texture steps follow
(:mod:`patchkit.demo.texture`: a suit of a trained periodic texture, filmed beside a random-texture
suit) and the summary gains a ``texture`` key; ``texture.only`` skips the patch steps.

Running again into the same folder with the same config reuses the world and the training (a
finished run is kept; an interrupted one resumes exactly from its checkpoint); the other steps
are cheap and run again.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch

from patchkit.config import dump_yaml, from_dict, to_dict
from patchkit.demo.config import DemoConfig
from patchkit.capture.film import film, walk_placement
from patchkit.demo.report import write_demo_report
from patchkit.detectors import create_detector
from patchkit.device import resolve_device
from patchkit.engine.config import TrainConfig
from patchkit.engine.trainer import Trainer
from patchkit.eot.config import EOTConfig
from patchkit.errors import PatchkitError
from patchkit.evaluation.conditions import build_conditions
from patchkit.evaluation.digital import DEFAULT_SWEEP, EvalOptions
from patchkit.evaluation.runner import load_image_set, run_evaluation
from patchkit.io import atomic_write_text, save_image, tensor_to_uint8
from patchkit.printing.profile import PrinterProfile
from patchkit.scenes.placement import PlacementConfig
from patchkit.toyworld.config import ToyWorldConfig
from patchkit.toyworld.dataset import generate_dataset, same_dataset
from patchkit.video.parallel import DetectorSpec
from patchkit.video.runner import ScoreRunConfig, score_inputs
from patchkit.video.scoring import DEFAULT_THRESHOLDS, ScoreOptions
from patchkit.video.target import ReferenceFactory

REPO_ROOT = Path(__file__).resolve().parents[2]


def printer_profile(name: str) -> tuple[Path, PrinterProfile]:
    """The calibrated profile shipped as ``printers/NAME`` (its folder and the loaded module)."""
    path = REPO_ROOT / "printers" / name
    if not path.is_dir():
        raise PatchkitError(f"no shipped printer profile {name!r} (use sim-halftone or sim-gamut)", path)
    return path, PrinterProfile.load(path)


class _Steps:
    """Prints ``[k/N] what`` before each step and its wall time after; collects the times."""

    def __init__(self, echo: Callable[[str], None], total: int = 5, first: int = 0) -> None:
        self.echo, self.seconds, self.k, self.total = echo, {}, first, total
        self._name, self._t0 = "", 0.0

    def start(self, name: str, what: str) -> None:
        self.stop()
        self.k += 1
        self._name, self._t0 = name, time.perf_counter()
        self.echo(f"[{self.k}/{self.total}] {what}")

    def stop(self) -> None:
        if self._name:
            self.seconds[self._name] = round(time.perf_counter() - self._t0, 1)
            self.echo(f"      {self.seconds[self._name]:.1f} s")
            self._name = ""


def make_world(cfg: DemoConfig, root: Path) -> Path:
    """Write (or reuse: generation is deterministic) the demo's toy-world images; returns the
    scene YAML."""
    w = cfg.world
    world = ToyWorldConfig(persons=list(w.persons), person_height=list(w.person_height))
    if not same_dataset(root, w.n_train, 0, w.n_test, w.seed, world):
        generate_dataset(root, w.n_train, 0, w.n_test, w.seed, world, progress=cfg.progress)
    return root / "scene.yaml"


def train_config(cfg: DemoConfig, scene_yaml: Path, placement: PlacementConfig, profile: Path) -> TrainConfig:
    """The patch-training config the demo runs (``train/config.yaml`` records it)."""
    eot = EOTConfig() if cfg.attack.eot else EOTConfig.all_disabled()
    return from_dict(TrainConfig, {
        "detector": {"weights": cfg.detector, "imgsz": cfg.imgsz},
        "scene": {"path": str(scene_yaml), "split": "train", "labels": "official"},
        "placement": asdict(placement),
        "eot": to_dict(eot),
        "patch": {"size": cfg.attack.patch_px, "init": "gray"},
        "optim": {"epochs": cfg.attack.epochs, "batch_size": cfg.attack.batch_size, "lr": cfg.attack.lr},
        "run": {"out": str(Path(cfg.out) / "train"), "seed": 0, "device": cfg.device, "log_every": 5,
                "checkpoint_every": 50, "progress": cfg.progress},
        "printer": str(profile),
    }, source="demo config")


def _resumable(checkpoint: Path, tcfg: TrainConfig) -> bool:
    """Whether ``checkpoint`` is from a run with this very config (then it is continued)."""
    if not checkpoint.is_file():
        return False
    try:
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True).get("config")
    except Exception:  # a broken checkpoint: train afresh
        return False
    mine = to_dict(tcfg)
    for d in (saved, mine):
        if isinstance(d, dict):
            d.get("run", {}).pop("progress", None)
    return saved == mine


def run_demo(cfg: DemoConfig, echo: Callable[[str], None] = print) -> dict:
    """Run the demo; returns the summary (also written to ``OUT/summary.json``)."""
    try:
        cfg.validate()
    except ValueError as exc:
        raise PatchkitError(str(exc)) from exc
    t_start = time.perf_counter()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    profile_dir, profile = printer_profile(cfg.printer)
    atomic_write_text(out / "config.yaml", dump_yaml(cfg))
    tex = cfg.texture
    if tex.enabled and tex.only:
        return _texture_only(cfg, out, device, profile_dir, profile, echo, t_start)
    steps = _Steps(echo, 10 if tex.enabled else 5)

    steps.start("world", f"toy world: {cfg.world.n_train} training + {cfg.world.n_test} test images "
                         f"(seed {cfg.world.seed})")
    scene_yaml = make_world(cfg, out / "world")

    steps.start("train", f"train a patch against '{cfg.detector}' (EOT {'on' if cfg.attack.eot else 'off'}, "
                         f"printer profile {cfg.printer})")
    placement = walk_placement(cfg.film.width, cfg.film.aspect)
    tcfg = train_config(cfg, scene_yaml, placement, profile_dir)
    detector = create_detector(cfg.detector, imgsz=cfg.imgsz, letterbox="square", device=device)
    trainer = Trainer(tcfg, detector=detector)
    checkpoint = trainer.run_dir / "checkpoint.pt"
    if _resumable(checkpoint, tcfg):
        trainer.load_checkpoint(checkpoint)
        echo(f"      continuing {checkpoint} from step {trainer.state.step}/{trainer.total_steps}")
    patch = trainer.fit().cpu()
    patch_png = out / "patch.png"
    save_image(patch_png, patch)

    steps.start("eval", f"digital evaluation on {cfg.world.n_test} unseen images: clean / random / gray / patch")
    thresholds = tuple(sorted(set(DEFAULT_SWEEP) | {cfg.conf}))
    images, labels, _ = load_image_set(scene_yaml, "test", "official", cfg.imgsz, 0)
    conditions, _ = build_conditions([patch_png], seed=cfg.world.seed)
    opts = EvalOptions(placement=placement, thresholds=thresholds)
    digital = run_evaluation([(cfg.detector, detector)], images, labels, conditions, opts,
                             references=("labels", "self"), meta={"scene": str(scene_yaml)}, out_dir=out / "eval")
    random_patch = tensor_to_uint8(next(c.patch for c in conditions if c.name == "random"))

    w_mm, h_mm = cfg.film.print_size_mm()
    steps.start("film", f"print ({w_mm:.0f} x {h_mm:.0f} mm PDF, {cfg.printer}) and film "
                        f"{cfg.film.walks} walk(s) x {cfg.film.frames} frames, trained patch and random control")
    filmed = {name: film(p, name, cfg.film, cfg.printer, profile, out / "film")
              for name, p in (("patch", tensor_to_uint8(patch)), ("control", random_patch))}

    steps.start("score", "score the videos (detected = a person box with IoU >= 0.5 on the walker)")
    scorer = DetectorSpec(cfg.detector, cfg.imgsz, device=str(device)).build()
    options = ScoreOptions(conf=cfg.conf, thresholds=tuple(sorted(set(DEFAULT_THRESHOLDS) | {cfg.conf})),
                           target_class=0, batch=8)
    video = score_inputs(
        [str(v) for v in filmed["patch"]], scorer, options,
        ReferenceFactory("boxes"),
        control=[str(v) for v in filmed["control"]],
        config=ScoreRunConfig(out_dir=out / "score", progress=cfg.progress),
        meta={"detector": cfg.detector, "reference": "boxes", "imgsz": cfg.imgsz},
    )

    steps.stop()
    summary = write_demo_report(out, cfg, digital, video, placement, seconds=steps.seconds,
                                total=time.perf_counter() - t_start)
    if tex.enabled:
        summary = _add_texture(cfg, summary, out, detector, device, profile_dir, profile, echo, t_start,
                               _Steps(echo, steps.total, steps.k))
    return summary


def _add_texture(cfg: DemoConfig, summary: dict, out: Path, detector, device, profile_dir: Path, profile,
                 echo: Callable[[str], None], t_start: float, steps: _Steps) -> dict:
    """Run the texture steps after the patch's; ``summary["texture"]`` holds them (the patch's keys
    are left as they are, but ``seconds``, the whole run). Rewrites ``summary.json`` and appends
    the texture's table to ``report.md``."""
    from patchkit.demo.texture import texture_steps, texture_table
    from patchkit.io import atomic_write_json

    t0 = time.perf_counter()
    texture = texture_steps(cfg, steps, detector, device, profile_dir, profile, out, echo)
    texture["seconds"] = round(time.perf_counter() - t0, 1)
    texture["step_seconds"] = steps.seconds
    summary["texture"] = texture
    summary["seconds"] = round(time.perf_counter() - t_start, 1)
    atomic_write_json(out / "summary.json", summary)
    report = out / "report.md"
    text = report.read_text(encoding="utf-8") if report.is_file() else ""
    atomic_write_text(report, text + "\n## Texture suit (adversarial clothing)\n\n" + texture_table(texture, cfg.conf)
                      + "\n\nDetails: `texture/report.md`.\n")
    return summary


def _texture_only(cfg: DemoConfig, out: Path, device, profile_dir: Path, profile, echo: Callable[[str], None],
                  t_start: float) -> dict:
    """``texture.only``: the texture steps alone; ``summary.json`` holds ``texture``, ``seconds``,
    ``conf``, ``detector``, ``printer`` and ``config``."""
    from patchkit.demo.texture import texture_steps
    from patchkit.io import atomic_write_json

    detector = create_detector(cfg.detector, imgsz=cfg.imgsz, letterbox="square", device=device)
    steps = _Steps(echo, 5)
    texture = texture_steps(cfg, steps, detector, device, profile_dir, profile, out, echo)
    texture["step_seconds"] = steps.seconds
    total = round(time.perf_counter() - t_start, 1)
    texture["seconds"] = total
    summary = {"texture": texture, "seconds": total, "conf": cfg.conf, "detector": cfg.detector,
               "printer": cfg.printer, "config": to_dict(cfg)}
    atomic_write_json(out / "summary.json", summary)
    return summary
