"""The training loop: scene batch -> EOT -> detector -> loss -> Adam step.

Logging, checkpoints, snapshots and the progress bar are callbacks (``engine/callbacks.py``).
Every random draw comes from generators seeded by ``(run.seed, epoch)`` for the data order and
``(run.seed, step)`` for EOT, so a run killed and resumed from its checkpoint produces the same
patch bits as an uninterrupted run.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from patchkit.config import dump_yaml, from_dict, read_yaml, to_dict
from patchkit.detectors import create_detector
from patchkit.device import resolve_device
from patchkit.detectors.base import RawOutput
from patchkit.engine.callbacks import Callback, Checkpointer, JsonlLogger, ProgressBar, Snapshotter
from patchkit.engine.config import DetectorConfig, TrainConfig
from patchkit.engine.distributed import DistContext, select_instances
from patchkit.engine.monitor import box_hit_rate
from patchkit.engine.multires import ResolutionSampler
from patchkit.engine.objective import AttackObjective
from patchkit.engine.self_ensemble import PatchCutout, ShakeDrop
from patchkit.eot.pipeline import EOTPipeline
from patchkit.eot.texture_pipeline import TexturePipeline
from patchkit.errors import PatchkitError
from patchkit.io import atomic_torch_save, atomic_write_text, save_image
from patchkit.patches import build_patch
from patchkit.patches.texture import Camouflage, camouflage_tau
from patchkit.scenes.placement import place_patches
from patchkit.scenes.scene import Scene, SceneConfig, load_scene
from patchkit.scenes.scene_masks import attach_masks, resolve_mask_folder

CHECKPOINT_VERSION = 1
log = logging.getLogger(__name__)


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


def _cpu_has_fast_bf16() -> bool:
    """Whether oneDNN runs bf16 natively on this CPU (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


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
        self.dist = DistContext.from_env(self.device)
        self.run_dir = Path(run_dir or cfg.run.out)
        # batches are built in the detector's layout (channels-last: no float copy before the paste)
        self.batch_layout = torch.channels_last if cfg.detector.channels_last else torch.contiguous_format
        dcfgs = [cfg.detector, *cfg.ensemble]
        self.det_devices = [self._detector_device(k, d) for k, d in enumerate(dcfgs)]
        if detector is None:
            detector = self._build_detector(cfg.detector, self.det_devices[0])
        self.detectors = [detector.to(self.det_devices[0])] + [
            self._build_detector(d, dev) for d, dev in zip(cfg.ensemble, self.det_devices[1:])]
        self.det_weights = [cfg.detector.weight] + [d.weight for d in cfg.ensemble]
        self.detector = self.detectors[0]
        self.is_texture = cfg.patch.kind == "texture"
        if scene is None:
            scenes = [self._load_scene(sc) for sc in [cfg.scene, *cfg.extra_scenes]]
            scene = scenes[0] if len(scenes) == 1 else Scene.concat(scenes)
        self.scene = scene
        self.resolution = ResolutionSampler(cfg.detector.imgsz, cfg.detector.imgsz_range)
        se = cfg.self_ensemble
        self.cutout = PatchCutout(se.cutout_p, se.cutout_fraction, se.cutout_fill)
        if self.device.type == "cuda":  # uint8 canvases live on the GPU: no host copies per step
            self.scene.images = self.scene.images.to(self.device)
        for det, dcfg in zip(self.detectors, [cfg.detector, *cfg.ensemble]):
            if dcfg.fuse or dcfg.channels_last:
                det.optimize_for_attack(fuse=dcfg.fuse, channels_last=dcfg.channels_last)
        self.shakedrops = [ShakeDrop(d, se.shakedrop_p, se.shakedrop_alpha) for d in self.detectors]
        self._forwards = [
            torch.compile(d.forward_letterboxed) if dc.compile else d.forward_letterboxed
            for d, dc in zip(self.detectors, [cfg.detector, *cfg.ensemble])
        ]
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.run.amp)
        if cfg.run.amp == "fp16" and self.device.type != "cuda":
            raise PatchkitError("run.amp=fp16 needs a CUDA device (use bf16 on CPU)")
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.run.amp == "fp16")
        printer = None
        if cfg.printer:
            from patchkit.printing import PrinterProfile

            printer = PrinterProfile.load(cfg.printer)
        self.eot = EOTPipeline(cfg.eot, printer=printer).to(self.device)
        if cfg.run.amp == "bf16" and self.device.type == "cpu" and not _cpu_has_fast_bf16():
            log.warning("run.amp=bf16: this CPU has no native bf16 (AVX512-BF16/AMX); autocast will be "
                        "much slower than fp32 here (measured 0.07x on yolov8n at 416)")
        from patchkit.printing.palette import load_palette, spread_colours  # imported only when a run needs it

        nps_palette = load_palette(cfg.loss.palette) if cfg.loss.nps_weight > 0 else None
        patch_palette = (load_palette(cfg.patch.palette, cfg.patch.palette_size)
                         if cfg.patch.parameterization in ("palette", "camouflage") else None)
        if cfg.patch.parameterization == "camouflage":  # K of the palette's colours, as far apart as possible
            patch_palette = spread_colours(patch_palette, cfg.patch.texture.colours)
        try:
            self.patch = build_patch(cfg.patch, patch_palette, _seeded(cfg.run.seed, 0, 0, torch.device("cpu"))).to(self.device)
        except ValueError as exc:
            raise PatchkitError(str(exc)) from exc
        self.texture = TexturePipeline(cfg.patch.texture, self.eot) if self.is_texture else None
        self.objective = AttackObjective(cfg.loss, nps_palette).to(self.device)
        self.optimizer = torch.optim.Adam(self.patch.parameters(), lr=cfg.optim.lr)
        # the patch's parameters averaged over steps (optim.ema), torch's own EMA of a module
        self.ema = (AveragedModel(self.patch, multi_avg_fn=get_ema_multi_avg_fn(cfg.optim.ema))
                    if cfg.optim.ema > 0 else None)
        self.steps_per_epoch = math.ceil(len(self.scene) / cfg.optim.batch_size)
        total = cfg.optim.epochs * self.steps_per_epoch
        self.total_steps = min(total, cfg.optim.max_steps) if cfg.optim.max_steps else total
        self.scheduler = self._make_scheduler()
        self.state = TrainState()
        self._loss_sum = torch.zeros((), device=self.device)  # this epoch's losses, on the device
        writers: list[Callback] = [
            ProgressBar(cfg.run.progress),
            JsonlLogger(self.run_dir),
            Snapshotter(self.run_dir, cfg.run.snapshot_every),
            Checkpointer(cfg.run.checkpoint_every),
        ]
        self.callbacks: list[Callback] = (writers if self.dist.is_main else []) + list(callbacks or [])

    def _detector_device(self, k: int, dcfg: DetectorConfig) -> torch.device:
        """``dcfg.device``, else ``run.device``; an ensemble on ``cuda`` in a single process with
        several GPUs is spread over them."""
        if dcfg.device:
            return resolve_device(dcfg.device)
        n_gpus = torch.cuda.device_count() if self.device.type == "cuda" else 0
        if self.cfg.ensemble and n_gpus > 1 and self.dist.world == 1 and self.device.index in (None, 0):
            return torch.device("cuda", k % n_gpus)
        return self.device

    def _load_scene(self, scfg: SceneConfig) -> Scene:
        """A scene at ``detector.imgsz``; for a texture, with its garment masks when it names some."""
        scene = load_scene(scfg, self.cfg.detector.imgsz, self.detector)
        folder = resolve_mask_folder(scfg.masks, scfg.path, scfg.split) if self.is_texture else None
        if folder is not None:
            t = self.cfg.patch.texture
            attach_masks(scene, folder, t.garment, t.edge, scfg.missing_masks, list(scfg.classes))
        return scene

    def _build_detector(self, dcfg: DetectorConfig, device: torch.device):
        if dcfg.imgsz != self.cfg.detector.imgsz:
            raise PatchkitError(f"ensemble detector {dcfg.weights}: imgsz must equal detector.imgsz ({self.cfg.detector.imgsz})")
        return create_detector(dcfg.weights, imgsz=dcfg.imgsz, letterbox="square", device=device)

    # -- pieces -------------------------------------------------------------------------------
    def _make_scheduler(self):
        o = self.cfg.optim
        if o.schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(
                self.optimizer, T_max=max(o.schedule_steps or self.total_steps, 1), eta_min=o.lr * o.min_lr_ratio
            )
        if o.schedule == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, factor=0.5, patience=o.patience)
        return None

    def current_patch(self, average: bool = True) -> Tensor:
        """The digital patch (or texture tile) ``(3, P, P)`` in [0, 1], detached; a camouflage
        tile hardened to its palette colours. With ``optim.ema`` on, the moving average of the
        parameters unless ``average=False`` (the last iterate)."""
        module: nn.Module = self.ema.module if average and self.ema is not None else self.patch
        with torch.no_grad():
            if isinstance(module, Camouflage):
                return module.harden()
            return module().detach().clamp(0, 1)

    def save_patch(self, path: str | Path) -> None:
        """Write :meth:`current_patch` to ``path`` (PNG); with ``optim.ema`` on, the last iterate
        beside it as ``<stem>_iterate.png``."""
        path = Path(path)
        save_image(path, self.current_patch())
        if self.ema is not None:
            save_image(path.with_name(f"{path.stem}_iterate{path.suffix}"), self.current_patch(average=False))

    def _tile(self, step: int) -> Tensor:
        """The patch or tile of this step (camouflage: annealed, Gumbel noise seeded by the step)."""
        if not isinstance(self.patch, Camouflage):
            return self.patch()
        self.patch.anneal(camouflage_tau(step, self.total_steps, self.cfg.patch.texture.tau))
        return self.patch(_seeded(self.cfg.run.seed, 6, step, torch.device("cpu")))

    def _emit(self, event: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, event)(self, *args)

    # -- checkpoints --------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        """Atomically write ``checkpoint.pt`` (loadable with ``weights_only=True``) and ``patch.png``."""
        if not self.dist.is_main:
            return
        self.state.loss_sum = float(self._loss_sum)
        ckpt = {
            "version": CHECKPOINT_VERSION,
            "patch": self.patch.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else {},
            "state": asdict(self.state),
            "config": to_dict(self.cfg),
            "ema": self.ema.state_dict() if self.ema is not None else {},
        }
        atomic_torch_save(ckpt, self.run_dir / "checkpoint.pt")
        self.save_patch(self.run_dir / "patch.png")

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
        if self.ema is not None and ckpt.get("ema"):  # a run without the average starts one now
            self.ema.load_state_dict(ckpt["ema"])
        self.state = TrainState(**ckpt["state"])
        self._loss_sum = torch.tensor(self.state.loss_sum, device=self.device)

    # -- the loop -----------------------------------------------------------------------------
    def _raw(self, k: int, adv: Tensor) -> RawOutput:
        """Detector ``k`` on ``adv`` (autocast when ``run.amp`` asks); outputs in fp32."""
        with torch.autocast(self.det_devices[k].type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
            raw = self._forwards[k](adv)
        if self.amp_dtype is None:
            return raw
        obj = raw.objectness.float() if raw.objectness is not None else None
        return RawOutput(raw.boxes.float(), raw.scores.float(), obj)

    def train_step(
        self,
        images: Tensor,
        boxes: Tensor,
        batch_idx: Tensor,
        generator: torch.Generator | None = None,
        params=None,
        n_global: int | None = None,
        masks: Tensor | None = None,
    ):
        """One optimiser step on a (shard of a) batch; returns ``(loss, parts, raw)`` (tensors,
        no host sync). ``params`` replays an EOT draw instead of sampling from ``generator``;
        ``n_global`` is the global batch size the detection loss is averaged over (data parallel);
        ``masks`` ``(N, S, S)`` are the persons' garments when training a texture (None: the
        box-derived clothing regions)."""
        seed, step = self.cfg.run.seed, self.state.step
        patch = self._tile(step)
        if self.cfg.detector.channels_last:  # before the paste, so the detector input needs no copy
            images = images.contiguous(memory_format=torch.channels_last)
        if self.texture is not None:
            adv, _ = self.texture(patch, images, boxes, batch_idx, masks, generator=generator, draw=params,
                                  inplace=not images.requires_grad)
        else:
            attacked = self.cutout(patch, _seeded(seed, 4, step, torch.device("cpu")))
            centers, sizes = place_patches(boxes, self.cfg.placement)
            # The batch is a fresh tensor every step: paste in place (saves a full-size copy).
            adv, _ = self.eot(attacked, images, centers, sizes, batch_idx, params=params, generator=generator,
                              inplace=not images.requires_grad)
        size = self.resolution.draw(_seeded(seed, 3, step, torch.device("cpu")))
        ratio = size / adv.shape[-1]
        adv = self.resolution.resize(adv, size)
        boxes_in = boxes * ratio  # target boxes in pixels of the detector input
        det = adv.new_zeros(())
        for k, weight in enumerate(self.det_weights):
            dev = self.det_devices[k]
            with self.shakedrops[k].active(_seeded(seed, 5 + k, step, torch.device("cpu"))):
                raw = self._raw(k, adv if dev == adv.device else adv.to(dev, non_blocking=True))
            det = det + weight * self.objective.detection(raw, boxes_in.to(dev), batch_idx.to(dev)).sum().to(det.device)
            if k == 0:
                first = raw
        det = det / (n_global or images.shape[0])
        if ratio != 1.0:  # the monitor reads boxes in canvas pixels
            first = RawOutput(first.boxes.detach() / ratio, first.scores.detach(),
                              None if first.objectness is None else first.objectness.detach())
        reg, parts = self.objective.regularisers(patch)
        loss = det + reg / self.dist.world  # summed over ranks: det of the global batch + reg once
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.dist.all_reduce_grads(self.patch.parameters())
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.patch.project_()
        if self.ema is not None:
            self.ema.update_parameters(self.patch)
        return loss.detach(), {"det": det.detach(), **parts}, first

    def _batch_masks(self, indices: Tensor) -> Tensor | None:
        """The garments of a batch's persons when training a texture (None for a patch, which
        does not use them); an image without masks wears the configured garment's box-derived
        region, like the persons of a scene without masks."""
        if not self.is_texture:
            return None
        t = self.cfg.patch.texture
        return self.scene.batch_masks(indices, t.garment, t.softness)

    def _next_batch(self, indices: Tensor, step: int):
        """This rank's images of the global batch ``indices`` and, when data parallel, the EOT
        draw of its instances (sampled for the whole global batch, so sharding changes nothing)."""
        generator = _seeded(self.cfg.run.seed, 2, step, self.device)
        if not self.dist.active:
            images, boxes, batch_idx = self.scene.batch(indices, self.batch_layout)
            return images, boxes, batch_idx, generator, None, self._batch_masks(indices)
        if self.is_texture:  # each rank draws for its own persons (a stream per rank)
            local = indices[self.dist.shard(len(indices))]
            images, boxes, batch_idx = self.scene.batch(local, self.batch_layout)
            gen = _seeded(self.cfg.run.seed * 131 + self.dist.rank, 2, step, self.device)
            return images, boxes, batch_idx, gen, None, self._batch_masks(local)
        boxes_all, idx_all = self.scene.batch_boxes(indices)
        centers, sizes = place_patches(boxes_all, self.cfg.placement)
        canvas = tuple(self.scene.images.shape[-2:])
        params = self.eot.sample(centers.to(self.device), sizes.to(self.device), idx_all.to(self.device), canvas, generator)
        local = self.dist.shard(len(indices))
        params = select_instances(params, torch.isin(idx_all, local).to(self.device))
        images, boxes, batch_idx = self.scene.batch(indices[local], self.batch_layout)
        return images, boxes, batch_idx, None, params, None

    def fit(self) -> Tensor:
        """Train until ``total_steps``; returns the final patch ``(3, P, P)``. Interrupted runs
        (Ctrl-C, crash) save a checkpoint first, so ``--resume`` continues exactly."""
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.run_dir / "config.yaml", dump_yaml(self.cfg))
        cfg, st = self.cfg, self.state
        self._emit("on_train_start")
        try:
            while st.step < self.total_steps:
                order = torch.randperm(len(self.scene), generator=_seeded(cfg.run.seed, 1, st.epoch, torch.device("cpu")))
                while st.batch < self.steps_per_epoch and st.step < self.total_steps:
                    bs = cfg.optim.batch_size
                    indices = order[st.batch * bs : (st.batch + 1) * bs]
                    images, boxes, batch_idx, gen, params, masks = self._next_batch(indices, st.step)
                    images, boxes, batch_idx = (t.to(self.device, non_blocking=True) for t in (images, boxes, batch_idx))
                    masks = masks.to(self.device, non_blocking=True) if masks is not None else None
                    loss, parts, raw = self.train_step(images, boxes, batch_idx, gen, params, n_global=len(indices),
                                                       masks=masks)
                    self._loss_sum += loss
                    st.step += 1
                    st.batch += 1
                    if isinstance(self.scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
                        self.scheduler.step()
                    if st.step % cfg.run.log_every == 0 or st.step == self.total_steps:
                        self._log(loss, parts, raw, boxes, batch_idx)
                    self._emit("on_step_end", st)
                if st.batch >= self.steps_per_epoch:
                    epoch_loss = self.dist.sum(self._loss_sum).item() / self.steps_per_epoch
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

    def _log(self, loss: Tensor, parts: dict, raw: RawOutput, boxes: Tensor, batch_idx: Tensor) -> None:
        """One log record (the loop's only host syncs), summed over ranks."""
        st = self.state
        hits = box_hit_rate(raw, boxes, batch_idx, self.cfg.loss.class_id) * boxes.shape[0]
        totals = self.dist.sum(torch.stack([loss, parts["det"], hits, hits.new_tensor(float(boxes.shape[0]))]))
        record = {"step": st.step, "epoch": st.epoch, "loss": round(totals[0].item(), 6), "det": round(totals[1].item(), 6)}
        record.update({k: round(v.item(), 6) for k, v in parts.items() if k != "det"})
        record["det_rate"] = round(totals[2].item() / max(totals[3].item(), 1.0), 4)
        record["lr"] = self.optimizer.param_groups[0]["lr"]
        if self.dist.is_main:
            self._emit("on_log", record)


def resume_config(run_dir: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """The resolved config saved in ``run_dir/config.yaml``, with optional overrides."""
    from patchkit.config import merge, parse_overrides

    data = read_yaml(Path(run_dir) / "config.yaml")
    if overrides:
        data = merge(data, parse_overrides(overrides))
    return from_dict(TrainConfig, data, source=str(Path(run_dir) / "config.yaml"))
