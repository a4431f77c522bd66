"""The demo's config: one dataclass tree, shared by ``patchkit demo`` (``key=value`` overrides)
and the Python API (:func:`patchkit.demo.run_demo`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from patchkit.capture.film import FilmConfig

@dataclass
class WorldConfig:
    """The toy-world images the patch is trained and evaluated on.

    Attributes:
        seed: generator seed; the default 1 is a world the toy detector never saw (it was
            trained on seed 0).
        n_train: images the patch is trained on.
        n_test: unseen images for the digital evaluation.
        persons: pedestrians per image (range): few, as in the walking videos.
        person_height: pedestrian height range in image pixels (images are 320-416 px): people
            near enough for a worn print to matter, as in the walking videos.
    """

    seed: int = 1
    n_train: int = 192
    n_test: int = 64
    persons: list[int] = field(default_factory=lambda: [1, 2])
    person_height: list[float] = field(default_factory=lambda: [64.0, 360.0])


@dataclass
class AttackConfig:
    """Patch training (see :class:`patchkit.engine.config.TrainConfig` for the full schema).

    Attributes:
        epochs: passes over the training images.
        batch_size: images per step.
        lr: Adam learning rate (patch pixels are in [0, 1]).
        patch_px: side of the digital patch in pixels.
        eot: use the default expectation-over-transformation pipeline (geometry, light, camera).
    """

    epochs: int = 40
    batch_size: int = 8
    lr: float = 0.05
    patch_px: int = 96
    eot: bool = True


@dataclass
class TextureDemoConfig:
    """Adversarial clothing (issue 15): a periodic texture trained and worn as a suit.

    ``patchkit demo --texture`` (or ``texture.enabled=true``) runs these steps after the patch's:
    a texture training scene (the world's images, pedestrians in a gray suit, with suit masks), a
    tile trained against the detector (``patch.kind: texture``), its digital detection rate on the
    unseen images (clean, random, gray, trained texture), and a walker filmed in a suit of the
    printed tile beside a control walk in a random-texture suit of the same coverage. The summary
    gains a ``texture`` key; nothing of the patch's changes.

    Attributes:
        enabled: run the texture steps.
        only: skip the patch steps (the summary then holds only ``texture``, ``seconds``, ``conf``).
        tile_px: side of the digital tile in pixels.
        tile_cm: its physical repeat length in centimetres (on a 170 cm person).
        parameterization: ``lowres`` (seamless wrap-around upsampling) or ``raw``.
        lowres_factor: tile pixels per parameter of ``lowres``.
        epochs: passes over the training images.
        batch_size: images per step.
        lr: Adam learning rate.
        n_train, n_test: training and unseen images (0 = the world's ``n_train`` / ``n_test``).
        walks, frames: filmed walks per condition and frames per walk (0 = the film's).

    The defaults (a 64 px ``lowres`` tile of 16 x 16 colours, 60 cm repeat, 40 epochs over 256
    images, about 1080 steps, lr 0.1) gave the best film of the runs tried: 4.7 minutes of training
    on 2 lightly shared CPU cores (10 under heavy load), digital 0.62 (0.65 in printer colours) vs
    0.93 random, filmed 0.64 vs 1.00 on the demo's 3 walks. The 3 walks are a noisy sample: over
    10 walks the same tile is filmed at about 0.83, as are the other runs' tiles. An 8 x 8 grid or
    lr 0.2 learns less in the same steps; 500 steps leave the 3-walk film above 0.8.
    """

    enabled: bool = False
    only: bool = False
    tile_px: int = 64
    tile_cm: float = 60.0
    parameterization: str = "lowres"
    lowres_factor: int = 4
    epochs: int = 40
    batch_size: int = 8
    lr: float = 0.1
    n_train: int = 256
    n_test: int = 0
    walks: int = 0
    frames: int = 0


@dataclass
class DemoConfig:
    """The whole offline demo.

    Attributes:
        out: report folder (``summary.json``, ``report.md``, patch, PDF, videos, plots).
        detector: weights or registered name; ``toy`` is the detector shipped with patchkit.
        imgsz: detector input side in pixels.
        printer: simulated printer set-up (``sim-halftone`` or ``sim-gamut``): its calibrated
            profile in ``printers/`` is used in training, its simulated printer and camera in
            the film.
        conf: detection threshold for the headline rates, in [0, 1].
        device: ``cpu`` | ``cuda`` | ``cuda:N`` | ``auto``.
        progress: show progress bars.
    """

    out: str = "runs/demo"
    detector: str = "toy"
    imgsz: int = 320
    printer: str = "sim-halftone"
    conf: float = 0.25
    device: str = "cpu"
    progress: bool = True
    world: WorldConfig = field(default_factory=WorldConfig)
    attack: AttackConfig = field(default_factory=AttackConfig)
    film: FilmConfig = field(default_factory=FilmConfig)
    texture: TextureDemoConfig = field(default_factory=TextureDemoConfig)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the key for an out-of-range value."""
        checks = {
            "imgsz": self.imgsz >= 32, "conf": 0.0 <= self.conf <= 1.0,
            "world.n_train": self.world.n_train >= 1, "world.n_test": self.world.n_test >= 1,
            "world.persons": len(self.world.persons) == 2 and 1 <= self.world.persons[0] <= self.world.persons[1],
            "world.person_height": len(self.world.person_height) == 2 and 0 < self.world.person_height[0] <= self.world.person_height[1],
            "attack.epochs": self.attack.epochs >= 1, "attack.batch_size": self.attack.batch_size >= 1,
            "attack.lr": self.attack.lr > 0, "attack.patch_px": self.attack.patch_px >= 8,
            "film.walks": self.film.walks >= 1, "film.frames": self.film.frames >= 2,
            "film.print_width_mm": self.film.print_width_mm >= 0, "film.width": self.film.width > 0,
            "film.aspect": self.film.aspect > 0, "film.dpi": 30 <= self.film.dpi <= 2400,
            "texture.tile_px": self.texture.tile_px >= 8, "texture.tile_cm": self.texture.tile_cm > 0,
            "texture.parameterization": self.texture.parameterization in ("raw", "lowres"),
            "texture.lowres_factor": self.texture.lowres_factor >= 1 and self.texture.tile_px % self.texture.lowres_factor == 0,
            "texture.epochs": self.texture.epochs >= 1, "texture.batch_size": self.texture.batch_size >= 1,
            "texture.lr": self.texture.lr > 0, "texture.n_train": self.texture.n_train >= 0,
            "texture.n_test": self.texture.n_test >= 0, "texture.walks": self.texture.walks >= 0,
            "texture.frames": self.texture.frames == 0 or self.texture.frames >= 2,
        }
        for key, ok in checks.items():
            if not ok:
                value = self
                for part in key.split("."):
                    value = getattr(value, part)
                raise ValueError(f"demo config: {key}={value} is out of range")


# ``patchkit demo --quick``: the same steps at a fraction of the cost (tests, a first look).
QUICK: dict = {
    "world": {"n_train": 64, "n_test": 32},
    "attack": {"epochs": 16},
    "film": {"walks": 1, "frames": 24, "dpi": 50.0},
    "texture": {"epochs": 6, "n_train": 48},
}
