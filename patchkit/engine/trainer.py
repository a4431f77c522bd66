"""The training loop: scene batch -> EOT -> detector -> loss -> Adam step.

Logging, checkpoints, snapshots and the progress bar are callbacks (``engine/callbacks.py``).
Every random draw comes from generators seeded by ``(run.seed, epoch)`` for the data order and
``(run.seed, step)`` for EOT, so a run killed and resumed from its checkpoint produces the same
patch bits as an uninterrupted run.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor

from patchkit.cli.common import resolve_device
from patchkit.config import dump_yaml, from_dict, read_yaml, to_dict
from patchkit.detectors import create_detector
from patchkit.engine.callbacks import Callback, Checkpointer, JsonlLogger, ProgressBar, Snapshotter
from patchkit.engine.config import TrainConfig
from patchkit.engine.monitor import box_hit_rate
from patchkit.engine.objective import AttackObjective
from patchkit.eot.pipeline import EOTPipeline
from patchkit.errors import PatchkitError
from patchkit.io import atomic_torch_save, atomic_write_text, save_image
from patchkit.patches import build_patch
from patchkit.scenes.placement import place_patches
from patchkit.scenes.scene import Scene, load_scene

CHECKPOINT_VERSION = 1


@dataclass
class TrainState:
    """Where the loop is: ``step`` counts optimiser steps done; ``batch`` is the next batch of
    ``epoch``; ``loss_sum`` sums the current epoch's losses so far (for the plateau schedule)."""

    step: int = 0
    epoch: int = 0
    batch: int = 0
    loss_sum: float = 0.0


def _seeded(seed: int, stream: int, index: int, device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed((seed * 1_000_003 + stream * 7_919 + index) % (2**63 - 1))
    return g


def load_palette(name: str) -> Tensor:
    """``legacy`` -> the literature's 30 colours; else a printer profile's derived palette."""
    from patchkit.printing import palette as palettes  # printing is optional for most runs

    if name == "legacy":
        return palettes.legacy_nps_palette()
    from patchkit.printing import PrinterProfile

    return palettes.palette_from_profile(PrinterProfile.load(name), 32)


class Trainer:
    """Trains one universal patch.

    Args:
        cfg: the resolved training config.
        detector: an already built detector (else built from ``cfg.detector``).
        scene: an already loaded scene (else loaded from ``cfg.scene``).
        callbacks: extra callbacks, run after the built-in ones.
        run_dir: overrides ``cfg.run.out``.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        detector=None,
        scene: Scene | None = None,
        callbacks: list[Callback] | None = None,
        run_dir: str | Path | None = None,
    ):
        self.cfg = cfg
        self.device = resolve_device(cfg.run.device)
        self.run_dir = Path(run_dir or cfg.run.out)
        if detector is None:
            detector = create_detector(
                cfg.detector.weights, imgsz=cfg.detector.imgsz, letterbox="square", device=self.device
            )
        self.detector = detector.to(self.device)
        self.scene = scene if scene is not None else load_scene(cfg.scene, cfg.detector.imgsz, self.detector)
        if cfg.detector.fuse or cfg.detector.channels_last:
            self.detector.optimize_for_attack(fuse=cfg.detector.fuse, channels_last=cfg.detector.channels_last)
        printer = None
        if cfg.printer:
            from patchkit.printing import PrinterProfile

            printer = PrinterProfile.load(cfg.printer)
        self.eot = EOTPipeline(cfg.eot, printer=printer).to(self.device)
        needs_palette = cfg.loss.nps_weight > 0 or cfg.patch.parameterization == "palette"
        palette = load_palette(cfg.loss.palette if cfg.loss.nps_weight > 0 else cfg.patch.palette) if needs_palette else None
        self.patch = build_patch(cfg.patch, palette, _seeded(cfg.run.seed, 0, 0, torch.device("cpu"))).to(self.device)
        self.objective = AttackObjective(cfg.loss, palette).to(self.device)
        self.optimizer = torch.optim.Adam(self.patch.parameters(), lr=cfg.optim.lr)
        self.steps_per_epoch = math.ceil(len(self.scene) / cfg.optim.batch_size)
        total = cfg.optim.epochs * self.steps_per_epoch
        self.total_steps = min(total, cfg.optim.max_steps) if cfg.optim.max_steps else total
        self.scheduler = self._make_scheduler()
        self.state = TrainState()
        self._loss_sum = torch.zeros((), device=self.device)  # this epoch's losses, on the device
        self.callbacks: list[Callback] = [
            ProgressBar(cfg.run.progress),
            JsonlLogger(self.run_dir),
            Snapshotter(self.run_dir, cfg.run.snapshot_every),
            Checkpointer(cfg.run.checkpoint_every),
            *(callbacks or []),
        ]

    # -- pieces -------------------------------------------------------------------------------
    def _make_scheduler(self):
        o = self.cfg.optim
        if o.schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(
                self.optimizer, T_max=max(self.total_steps, 1), eta_min=o.lr * o.min_lr_ratio
            )
        if o.schedule == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, factor=0.5, patience=o.patience)
        return None

    def current_patch(self) -> Tensor:
        """The digital patch ``(3, P, P)`` in [0, 1], detached."""
        with torch.no_grad():
            return self.patch().detach().clamp(0, 1)

    def _emit(self, event: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, event)(self, *args)

    # -- checkpoints --------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        """Atomically write ``checkpoint.pt`` (loadable with ``weights_only=True``) and ``patch.png``."""
        self.state.loss_sum = float(self._loss_sum)
        ckpt = {
            "version": CHECKPOINT_VERSION,
            "patch": self.patch.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else {},
            "state": asdict(self.state),
            "config": to_dict(self.cfg),
        }
        atomic_torch_save(ckpt, self.run_dir / "checkpoint.pt")
        save_image(self.run_dir / "patch.png", self.current_patch())

    def load_checkpoint(self, path: str | Path) -> None:
        path = Path(path)
        try:
            ckpt = torch.load(path, map_location=self.device, weights_only=True)
        except FileNotFoundError as exc:
            raise PatchkitError("checkpoint not found", path) from exc
        except Exception as exc:  # corrupt / foreign file
            raise PatchkitError(f"not a patchkit checkpoint ({type(exc).__name__})", path) from exc
        if not isinstance(ckpt, dict) or ckpt.get("version") != CHECKPOINT_VERSION:
            raise PatchkitError("not a patchkit checkpoint (unknown version)", path)
        self.patch.load_state_dict(ckpt["patch"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt["scheduler"]:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        self.state = TrainState(**ckpt["state"])
        self._loss_sum = torch.tensor(self.state.loss_sum, device=self.device)

    # -- the loop -----------------------------------------------------------------------------
    def train_step(self, images: Tensor, boxes: Tensor, batch_idx: Tensor, generator: torch.Generator):
        """One optimiser step; returns ``(loss, parts, raw)`` (tensors, no host sync)."""
        patch = self.patch()
        centers, sizes = place_patches(boxes, self.cfg.placement)
        adv, _ = self.eot(patch, images, centers, sizes, batch_idx, generator=generator)
        if self.cfg.detector.channels_last:
            adv = adv.contiguous(memory_format=torch.channels_last)
        raw = self.detector.forward_letterboxed(adv)
        loss, parts = self.objective(raw, patch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.patch.project_()
        return loss.detach(), parts, raw

    def fit(self) -> Tensor:
        """Train until ``total_steps``; returns the final patch ``(3, P, P)``. Interrupted runs
        (Ctrl-C, crash) save a checkpoint first, so ``--resume`` continues exactly."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.run_dir / "config.yaml", dump_yaml(self.cfg))
        cfg, st = self.cfg, self.state
        self._emit("on_train_start")
        try:
            while st.step < self.total_steps:
                order = torch.randperm(len(self.scene), generator=_seeded(cfg.run.seed, 1, st.epoch, torch.device("cpu")))
                while st.batch < self.steps_per_epoch and st.step < self.total_steps:
                    bs = cfg.optim.batch_size
                    images, boxes, batch_idx = self.scene.batch(order[st.batch * bs : (st.batch + 1) * bs])
                    images, boxes, batch_idx = (t.to(self.device, non_blocking=True) for t in (images, boxes, batch_idx))
                    loss, parts, raw = self.train_step(images, boxes, batch_idx, _seeded(cfg.run.seed, 2, st.step, self.device))
                    self._loss_sum += loss
                    st.step += 1
                    st.batch += 1
                    if isinstance(self.scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
                        self.scheduler.step()
                    if st.step % cfg.run.log_every == 0 or st.step == self.total_steps:
                        rate = box_hit_rate(raw, boxes, batch_idx, cfg.loss.class_id)
                        record = {"step": st.step, "epoch": st.epoch, "loss": round(loss.item(), 6)}
                        record.update({k: round(v.item(), 6) for k, v in parts.items()})
                        record["det_rate"] = round(rate.item(), 4)
                        record["lr"] = self.optimizer.param_groups[0]["lr"]
                        self._emit("on_log", record)
                    self._emit("on_step_end", st)
                if st.batch >= self.steps_per_epoch:
                    epoch_loss = self._loss_sum.item() / self.steps_per_epoch
                    if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                        self.scheduler.step(epoch_loss)
                    self._loss_sum.zero_()
                    st.epoch += 1
                    st.batch = 0
        except BaseException:
            self.save_checkpoint()  # nothing computed is lost
            raise
        self._emit("on_train_end", st)
        return self.current_patch()


def resume_config(run_dir: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """The resolved config saved in ``run_dir/config.yaml``, with optional overrides."""
    from patchkit.config import merge, parse_overrides

    data = read_yaml(Path(run_dir) / "config.yaml")
    if overrides:
        data = merge(data, parse_overrides(overrides))
    return from_dict(TrainConfig, data, source=str(Path(run_dir) / "config.yaml"))
