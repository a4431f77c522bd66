"""The training config schema: ``patchkit train CONFIG.yaml`` and the Python API share it."""

from __future__ import annotations

from dataclasses import dataclass, field

from patchkit.engine.multires import sizes_in_range
from patchkit.losses.config import LossConfig
from patchkit.engine.self_ensemble import SelfEnsembleConfig
from patchkit.eot.config import EOTConfig
from patchkit.patches import PatchConfig
from patchkit.scenes.placement import PlacementConfig
from patchkit.scenes.scene import SceneConfig

SCHEDULES = ("constant", "cosine", "plateau")


@dataclass
class DetectorConfig:
    """The attacked detector.

    Attributes:
        weights: an ultralytics checkpoint or model YAML, an original YOLOv5 checkpoint, or ``toy``.
        imgsz: training canvas side in pixels (square letterbox, the form training batches use).
        imgsz_range: ``[lo, hi]`` pixels (``hi <= imgsz``): multi-resolution training, each batch
            resized to a size drawn uniformly from the multiples of 32 in the range (see
            :mod:`patchkit.engine.multires`); empty: every batch at ``imgsz``.
        fuse: fuse Conv+BN for speed (outputs unchanged within float tolerance).
        channels_last: channels-last memory format for speed.
        compile: wrap the detector's forward in ``torch.compile`` (first steps are slow).
        weight: weight of this detector's loss in an ensemble.
        device: where this detector runs (``cuda:1``...); empty: ``run.device``, except that an
            ensemble trained on ``cuda`` in one process with several GPUs is spread over them
            (detector ``k`` on ``cuda:k % n_gpus``). The adversarial batch is copied to it and its
            loss back; gradients flow across devices.
    """

    weights: str = ""
    imgsz: int = 416
    imgsz_range: list[int] = field(default_factory=list)
    fuse: bool = True
    channels_last: bool = True
    compile: bool = False
    weight: float = 1.0
    device: str = ""

    def validate(self) -> None:
        if not self.weights:
            raise ValueError("detector.weights is required (a weights file, model YAML or 'toy')")
        if self.imgsz < 32 or self.imgsz % 32:
            raise ValueError(f"detector.imgsz must be a multiple of 32, got {self.imgsz}")
        if self.imgsz_range:
            r = self.imgsz_range
            if len(r) != 2 or not 32 <= r[0] <= r[1] <= self.imgsz or not sizes_in_range(r[0], r[1]):
                raise ValueError(f"detector.imgsz_range must be [lo, hi] with 32 <= lo <= hi <= imgsz "
                                 f"({self.imgsz}) and a multiple of 32 between them, got {list(r)}")


@dataclass
class OptimConfig:
    """Adam with a schedule.

    Attributes:
        lr: learning rate (patch pixels are in [0, 1]).
        schedule: ``constant`` | ``cosine`` (to ``lr * min_lr_ratio``) | ``plateau`` (x0.5 after
            ``patience`` epochs without improvement of the epoch-mean loss).
        epochs: passes over the scene.
        batch_size: images per step.
        max_steps: stop after this many steps in total (0 = epochs decide).
        schedule_steps: length of the cosine schedule in steps (0 = the run's total steps); with
            ``max_steps`` below it, a run stops early on the schedule of a longer one (a stopped
            long run is reproduced exactly by ``max_steps=N schedule_steps=<its total>``).
        ema: decay in [0, 1) of an exponential moving average of the patch's parameters, updated
            after every step (0 = off; 0.99 averages about the last 100 steps). With it on, the
            run's product (``patch.png``, snapshots, the returned patch) is the average, and
            ``patch_iterate.png`` / ``step_XXXXXX_iterate.png`` hold the last iterate beside it.
    """

    lr: float = 0.03
    schedule: str = "cosine"
    min_lr_ratio: float = 0.1
    patience: int = 10
    epochs: int = 100
    batch_size: int = 8
    max_steps: int = 0
    schedule_steps: int = 0
    ema: float = 0.0

    def validate(self) -> None:
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"optim.ema must be in [0, 1) (0 = off), got {self.ema}")
        if self.max_steps < 0 or self.schedule_steps < 0:
            raise ValueError("optim.max_steps and optim.schedule_steps must be >= 0")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"optim.schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.lr <= 0 or self.epochs < 1 or self.batch_size < 1:
            raise ValueError("optim.lr must be > 0, optim.epochs and optim.batch_size >= 1")


@dataclass
class RunConfig:
    """Where and how the run is written.

    Attributes:
        out: run folder (``patch.png``, ``checkpoint.pt``, ``log.jsonl``, ``config.yaml``).
        seed: seeds the data order and every EOT draw (same seed = same patch bits).
        device: ``cpu`` | ``cuda`` | ``cuda:N`` | ``auto``.
        log_every: steps between log records (the only host-device syncs of the loop).
        checkpoint_every: steps between atomic checkpoints (and at the end).
        snapshot_every: steps between patch PNG snapshots (0 = none).
        progress: show a tqdm bar.
        amp: ``off`` | ``bf16`` | ``fp16`` (CUDA only): autocast of the detector forward and
            backward; the patch, EOT and loss stay in fp32.
    """

    out: str = "runs/train"
    seed: int = 0
    device: str = "cpu"
    log_every: int = 10
    checkpoint_every: int = 50
    snapshot_every: int = 0
    progress: bool = True
    amp: str = "off"

    def validate(self) -> None:
        if self.amp not in ("off", "bf16", "fp16"):
            raise ValueError(f"run.amp must be off, bf16 or fp16, got {self.amp!r}")
        if self.log_every < 1:
            raise ValueError("run.log_every must be >= 1")


@dataclass
class TrainConfig:
    """Everything ``patchkit train`` needs; see ``examples/train_pennfudan.yaml``.

    ``ensemble`` lists further detectors attacked together with ``detector`` (T-SEA style), each
    loss weighted by its ``weight``; they share ``detector.imgsz``. ``extra_scenes`` are loaded
    like ``scene`` and trained on together with it (e.g. INRIA train + Penn-Fudan train).
    ``self_ensemble`` holds T-SEA's patch cutout and ShakeDrop (off by default).
    """

    detector: DetectorConfig = field(default_factory=DetectorConfig)
    ensemble: list[DetectorConfig] = field(default_factory=list)
    scene: SceneConfig = field(default_factory=SceneConfig)
    extra_scenes: list[SceneConfig] = field(default_factory=list)
    placement: PlacementConfig = field(default_factory=PlacementConfig)
    eot: EOTConfig = field(default_factory=EOTConfig)
    patch: PatchConfig = field(default_factory=PatchConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    self_ensemble: SelfEnsembleConfig = field(default_factory=SelfEnsembleConfig)
    run: RunConfig = field(default_factory=RunConfig)
    printer: str = ""
