"""EOT configuration: one plain dataclass per operation, all held by :class:`EOTConfig`.

Every operation has ``enabled``, its ranges, and kornia's batch vocabulary:

- ``p``: probability that the operation is applied to an instance (unselected instances get the
  identity value of the parameter, so no branch is needed);
- ``same_on_batch``: one draw shared by every instance of the call;
- ``same_on_image``: one draw per image, shared by the instances (boxes) of that image (camera
  settings such as gamma, noise level and JPEG quality are per photo).

Ranges are ``(low, high)`` pairs sampled uniformly unless the field says otherwise. Units are in
each docstring: degrees, fractions of the patch size, pixels of the captured image ("screen
pixels"), or RGB values in [0, 1]. Defaults follow the open-source peers: adversarial-yolo and
T-SEA (rotation +-20 deg, contrast 0.8-1.2, brightness +-0.1), TC-EGA (TPS on a 5x5 grid, offsets
+-0.1), AdvCaT (noise around 0.02); perspective, blur, gamma and JPEG ranges model a phone or
webcam filming a person at a few metres.

The project's YAML loader builds these by field name (``eot.rotation.degrees: [-20, 20]``) and calls
``validate()`` on each one; ``validate`` checks ``p`` and every range listed in the class's
``bounds``, so most op configs are their fields, ``name`` and ``bounds`` only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import ClassVar

#: ``{range field: (lowest low, highest high)}``; None = unbounded.
Bounds = dict[str, tuple[float | None, float | None]]


def _check_range(key: str, value: tuple[float, float], lo: float | None = None,
                 hi: float | None = None) -> None:
    if len(value) != 2:
        raise ValueError(f"{key} must be a (low, high) pair, got {value!r}")
    a, b = float(value[0]), float(value[1])
    if not (math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"{key} must be finite, got {value!r}")
    if a > b:
        raise ValueError(f"{key} must have low <= high, got {value!r}")
    if lo is not None and a < lo:
        raise ValueError(f"{key} must be >= {lo}, got {value!r}")
    if hi is not None and b > hi:
        raise ValueError(f"{key} must be <= {hi}, got {value!r}")


@dataclass
class OpConfig:
    """Fields shared by every operation (see the module docstring).

    Class attributes (not config keys):
        name: the op's key in :class:`EOTConfig`, :class:`EOTParams` and error messages.
        bounds: the ``(low, high)`` range fields that :meth:`validate` checks, with their limits.
    """

    name: ClassVar[str] = "op"
    bounds: ClassVar[Bounds] = {}

    enabled: bool = True
    p: float = 1.0
    same_on_batch: bool = False
    same_on_image: bool = False

    def validate(self) -> None:
        """Raise ``ValueError`` naming the key (``eot.<name>.<field>``) on a bad value."""
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"eot.{self.name}.p must be in [0, 1], got {self.p}")
        for key, (lo, hi) in self.bounds.items():
            _check_range(f"eot.{self.name}.{key}", getattr(self, key), lo=lo, hi=hi)


# ----------------------------------------------------------------------------- geometry
@dataclass
class ScaleConfig(OpConfig):
    """Scale jitter: patch side multiplied by a factor drawn from ``factor`` (unitless)."""

    name = "scale"
    bounds = {"factor": (1e-3, None)}

    factor: tuple[float, float] = (0.9, 1.1)


@dataclass
class RotationConfig(OpConfig):
    """In-plane rotation in degrees (counter-clockwise on screen); +-20 deg as adversarial-yolo
    and T-SEA."""

    name = "rotation"
    bounds = {"degrees": (None, None)}

    degrees: tuple[float, float] = (-20.0, 20.0)


@dataclass
class PerspectiveConfig(OpConfig):
    """Out-of-plane rotation of the patch plane seen by a pinhole camera.

    Attributes:
        yaw: rotation about the patch's vertical axis, degrees (a person turning).
        pitch: rotation about the patch's horizontal axis, degrees (camera above or below).
        distance: camera distance in patch sides (>= 2); smaller means stronger keystone.
    """

    name = "perspective"
    bounds = {"yaw": (-75.0, 75.0), "pitch": (-75.0, 75.0)}

    yaw: tuple[float, float] = (-30.0, 30.0)
    pitch: tuple[float, float] = (-20.0, 20.0)
    distance: float = 5.0

    def validate(self) -> None:
        super().validate()
        if not self.distance >= 2.0:
            raise ValueError(f"eot.perspective.distance must be >= 2 patch sides, got {self.distance}")


@dataclass
class TranslationConfig(OpConfig):
    """Translation jitter of the patch centre, as a fraction of the patch width (x) and height
    (y)."""

    name = "translation"
    bounds = {"fraction": (None, None)}

    fraction: tuple[float, float] = (-0.1, 0.1)


@dataclass
class TPSConfig(OpConfig):
    """Thin-plate-spline cloth warp (TC-EGA: 5x5 control points, offsets +-0.1).

    Attributes:
        grid: control points per side (>= 2).
        offset: control-point offsets drawn uniformly from ``(-offset, offset)`` in the patch's
            normalised frame where the patch spans [-1, 1] (0.1 = 5 % of the patch side).
    """

    name = "tps"

    grid: int = 5
    offset: float = 0.1

    def validate(self) -> None:
        super().validate()
        if self.grid < 2:
            raise ValueError(f"eot.tps.grid must be >= 2, got {self.grid}")
        if not 0.0 <= self.offset <= 0.5:
            raise ValueError(f"eot.tps.offset must be in [0, 0.5], got {self.offset}")


# -------------------------------------------------------------------------- photometric
@dataclass
class BrightnessConfig(OpConfig):
    """Additive brightness, RGB units (adversarial-yolo: +-0.1)."""

    name = "brightness"
    bounds = {"delta": (-1.0, 1.0)}

    delta: tuple[float, float] = (-0.1, 0.1)


@dataclass
class ContrastConfig(OpConfig):
    """Multiplicative contrast (gain) as adversarial-yolo and kornia's ``adjust_contrast``:
    ``x * factor`` (0.8-1.2)."""

    name = "contrast"
    bounds = {"factor": (0.0, None)}

    factor: tuple[float, float] = (0.8, 1.2)


@dataclass
class SaturationConfig(OpConfig):
    """Saturation factor: 0 = gray (Rec. 601 luma), 1 = unchanged."""

    name = "saturation"
    bounds = {"factor": (0.0, None)}

    factor: tuple[float, float] = (0.8, 1.2)


@dataclass
class HueConfig(OpConfig):
    """Hue rotation about the gray axis (YIQ), degrees."""

    name = "hue"
    bounds = {"degrees": (-180.0, 180.0)}

    degrees: tuple[float, float] = (-5.0, 5.0)


@dataclass
class GammaConfig(OpConfig):
    """Camera tone curve ``x ** gamma``; gamma is drawn log-uniformly from ``gamma``."""

    name = "gamma"
    bounds = {"gamma": (1e-2, None)}

    gamma: tuple[float, float] = (0.8, 1.25)
    same_on_image: bool = True


# ------------------------------------------------------------------------------- camera
@dataclass
class NoiseConfig(OpConfig):
    """Additive Gaussian sensor noise; standard deviation in RGB units drawn from ``std``.

    Attributes:
        per_channel: independent noise per RGB channel (True) or one luminance noise value per
            pixel shared by the channels (False, the default: three times cheaper to draw).
    """

    name = "noise"
    bounds = {"std": (0.0, 1.0)}

    std: tuple[float, float] = (0.0, 0.03)
    per_channel: bool = False
    same_on_image: bool = True


@dataclass
class DefocusConfig(OpConfig):
    """Gaussian defocus blur; standard deviation in screen pixels."""

    name = "defocus"
    bounds = {"sigma": (0.0, 20.0)}

    sigma: tuple[float, float] = (0.0, 1.0)


@dataclass
class MotionConfig(OpConfig):
    """Linear motion blur.

    Attributes:
        length: streak length in screen pixels.
        angle: streak direction in degrees, measured in the patch's own frame.
    """

    name = "motion"
    bounds = {"length": (0.0, 50.0), "angle": (None, None)}

    length: tuple[float, float] = (0.0, 3.0)
    angle: tuple[float, float] = (0.0, 180.0)


@dataclass
class JPEGConfig(OpConfig):
    """Differentiable JPEG (``kornia.enhance.jpeg_codec_differentiable``), quality in [1, 100].

    Off by default: it costs several times the rest of the pipeline on CPU (see
    ``benchmarks/eot_pipeline.py``).
    """

    name = "jpeg"
    bounds = {"quality": (1.0, 100.0)}

    enabled: bool = False
    quality: tuple[float, float] = (70.0, 95.0)
    same_on_image: bool = True


# ------------------------------------------------------------------------------ pipeline
@dataclass
class EOTConfig:
    """All EOT operations, one field per op named after its config's ``name``. The field order is
    the draw order (:data:`OP_ORDER`); the pipeline applies the ops stage by stage (``pipeline.py``).

    Attributes:
        min_working_size: smallest side, in pixels, of the patch-resolution working tensor.
        max_kernel_size: largest blur kernel side in working pixels (odd); larger blurs are
            truncated and renormalised.
        flat_p: probability in [0, 1] that an image is drawn flat: every op of all its instances
            at its identity (with 1, the output equals ``EOTConfig.all_disabled()``'s paste; mixed
            with transformed images, the batch's shared working resolution can differ slightly).
            A training that mixes flat and transformed images (0 = every image transformed).
    """

    scale: ScaleConfig = field(default_factory=ScaleConfig)
    rotation: RotationConfig = field(default_factory=RotationConfig)
    perspective: PerspectiveConfig = field(default_factory=PerspectiveConfig)
    translation: TranslationConfig = field(default_factory=TranslationConfig)
    tps: TPSConfig = field(default_factory=TPSConfig)
    contrast: ContrastConfig = field(default_factory=ContrastConfig)
    brightness: BrightnessConfig = field(default_factory=BrightnessConfig)
    saturation: SaturationConfig = field(default_factory=SaturationConfig)
    hue: HueConfig = field(default_factory=HueConfig)
    defocus: DefocusConfig = field(default_factory=DefocusConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    gamma: GammaConfig = field(default_factory=GammaConfig)
    jpeg: JPEGConfig = field(default_factory=JPEGConfig)
    min_working_size: int = 16
    max_kernel_size: int = 9
    flat_p: float = 0.0

    def validate(self) -> None:
        for name in OP_ORDER:
            getattr(self, name).validate()
        if not 0.0 <= self.flat_p <= 1.0:
            raise ValueError(f"eot.flat_p must be in [0, 1], got {self.flat_p}")
        if self.min_working_size < 1:
            raise ValueError(f"eot.min_working_size must be >= 1, got {self.min_working_size}")
        if self.max_kernel_size < 1 or self.max_kernel_size % 2 == 0:
            raise ValueError(f"eot.max_kernel_size must be a positive odd integer, got {self.max_kernel_size}")

    @classmethod
    def all_disabled(cls) -> "EOTConfig":
        """A config with every operation off: the patch is pasted flat on its placement square."""
        cfg = cls()
        for name in OP_ORDER:
            getattr(cfg, name).enabled = False
        return cfg


#: Op names in the order their parameters are drawn, recorded and listed: the order of the
#: :class:`OpConfig` fields of :class:`EOTConfig` (each field is named after its config's ``name``).
OP_ORDER: tuple[str, ...] = tuple(
    f.name for f in fields(EOTConfig) if isinstance(f.default_factory, type) and issubclass(f.default_factory, OpConfig)
)
