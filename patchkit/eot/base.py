"""The base of every EOT operation: kornia's split into module, sampler and pure function, plus
one protocol per kind of op and the registry the pipeline builds its ops from.

An operation is an ``nn.Module`` with

- ``sample(n, generator, device) -> dict[str, Tensor]``: ``n`` independent draws from its
  ranges, using only the explicit ``torch.Generator`` (never the global RNG);
- ``identity(n, device) -> dict[str, Tensor]``: the parameter values that leave the input
  unchanged (used for instances not selected by ``p``);
- what its kind contributes to the pipeline, computed from its parameters by a module-level pure
  function that tests call with fixed parameters:

  ========================  ====================================================================
  :class:`GeometricOp`      ``matrix(params, sizes)``: a ``(N, 3, 3)`` factor of the homography
  :class:`WarpOp`           ``displacement_field(params)``: a texture-coordinate displacement
  :class:`ColourOp`         ``affine(params)``: a ``(N, 3, 4)`` affine colour map
  :class:`BlurOp`           ``sigma(params)`` / ``streak(params, dtype)``: one blur kernel term
  :class:`PixelOp`          ``forward(x, params)``: a function of the working tensor
  ========================  ====================================================================

:meth:`EOTOp.draw` adds the batch semantics (``p``, ``same_on_batch``, ``same_on_image``) on top
of ``sample``, the role of kornia's ``_adapted_rsampling`` and ``_blend_by_prob``. Ops whose
parameters are uniform draws from ``(low, high)`` config fields subclass :class:`RangeOp` and list
them as :class:`Range` rows instead of writing ``sample`` and ``identity``.

Adding an op: a config class (an :class:`~patchkit.eot.config.OpConfig` with ``name`` and
``bounds``) with its field in :class:`~patchkit.eot.config.EOTConfig` (the field's position is its
place in the draw order), and an op class of one kind decorated with :func:`register_op`. The
pipeline and the per-op tests find it in :data:`OPS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from patchkit.eot.config import OpConfig

#: The registry: op name -> op class, filled by :func:`register_op`.
OPS: dict[str, type["EOTOp"]] = {}


def register_op(cls: type["EOTOp"]) -> type["EOTOp"]:
    """Class decorator: register an op, of exactly one of :data:`KINDS`, under the ``name`` of its
    ``config_class``."""
    name = cls.config_class.name
    if sum(issubclass(cls, kind) for kind in KINDS) != 1:
        raise TypeError(f"EOT op {cls.__name__} must subclass exactly one of {[k.__name__ for k in KINDS]}")
    if name in OPS and OPS[name] is not cls:
        raise ValueError(f"EOT op '{name}' is registered twice ({OPS[name].__name__}, {cls.__name__})")
    OPS[name] = cls
    return cls


def uniform(low: float, high: float, n: int, generator: torch.Generator, device: torch.device | str) -> Tensor:
    """``(n,)`` float32 draws from U(low, high) made on the generator's device, moved to ``device``."""
    u = torch.rand(n, generator=generator, device=generator.device, dtype=torch.float32)
    return (low + (high - low) * u).to(device)


def log_uniform(low: float, high: float, n: int, generator: torch.Generator,
                device: torch.device | str) -> Tensor:
    """``(n,)`` draws whose logarithm is uniform in [log low, log high]."""
    return uniform(math.log(low), math.log(high), n, generator, device).exp()


class EOTOp(nn.Module):
    """Base class. Subclasses set ``config_class`` and implement ``sample`` and ``identity``.

    Attributes:
        config_class: the op's :class:`OpConfig` subclass; its ``name`` is the op's key in
            :class:`EOTParams` and :class:`EOTConfig`.
        shared_keys: parameter keys that are not per instance (e.g. a noise seed); ``draw``
            leaves them alone.
    """

    config_class: ClassVar[type[OpConfig]] = OpConfig
    shared_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, cfg: OpConfig) -> None:
        super().__init__()
        if not isinstance(cfg, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(cfg).__name__}")
        self.cfg = cfg

    @property
    def name(self) -> str:
        return self.config_class.name

    def sample(self, n: int, generator: torch.Generator, device: torch.device | str) -> dict[str, Tensor]:
        raise NotImplementedError

    def identity(self, n: int, device: torch.device | str) -> dict[str, Tensor]:
        raise NotImplementedError

    def draw(self, batch_idx: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        """Per-instance parameters for instances whose image indices are ``batch_idx`` ``(N,)``.

        One draw for all (``same_on_batch``), one per image (``same_on_image``, gathered by
        ``batch_idx``) or one per instance; then instances not selected with probability ``p``
        (selected with the same sharing) get the identity values. Every tensor of the result has
        leading dimension ``N`` except ``shared_keys``.
        """
        device = batch_idx.device
        n = int(batch_idx.shape[0])
        if self.cfg.same_on_batch:
            draws_n, index = 1, torch.zeros(n, dtype=torch.long, device=device)
        elif self.cfg.same_on_image:
            draws_n, index = (int(batch_idx.max().item()) + 1 if n else 0), batch_idx.long()
        else:
            draws_n, index = n, None
        draws = self.sample(draws_n, generator, device)
        out = {}
        for key, value in draws.items():
            out[key] = value if (index is None or key in self.shared_keys) else value.index_select(0, index)
        if self.cfg.p < 1.0:  # selection shared the same way as the values
            num = 1 if self.cfg.same_on_batch else (draws_n if index is not None else n)
            keep = (torch.rand(num, generator=generator, device=generator.device) < self.cfg.p).to(device)
            if index is not None:
                keep = keep.index_select(0, index)
            out = self.keep_or_identity(out, keep)
        return out

    def keep_or_identity(self, params: dict[str, Tensor], keep: Tensor) -> dict[str, Tensor]:
        """``params`` where the bool ``keep`` ``(N,)`` is true, the identity values elsewhere
        (``shared_keys`` are left as they are)."""
        ident = self.identity(int(keep.shape[0]), keep.device)
        out = dict(params)
        for key, value in params.items():
            if key in self.shared_keys:
                continue
            mask = keep.view(-1, *([1] * (value.ndim - 1)))
            out[key] = torch.where(mask, value, ident[key].to(value.dtype))
        return out

    def extra_repr(self) -> str:
        return repr(self.cfg)


# ------------------------------------------------------------------------- table-driven sampling
@dataclass(frozen=True)
class Range:
    """One parameter drawn uniformly from a ``(low, high)`` field of the op's config.

    Attributes:
        key: the parameter's key in :class:`EOTParams`.
        field: the config field holding ``(low, high)``.
        identity: the value that leaves the input unchanged.
        width: values per instance: 1 gives ``(N,)``, more gives ``(N, width)``.
        log: draw log-uniformly (the log of the value is uniform).
    """

    key: str
    field: str
    identity: float
    width: int = 1
    log: bool = False


class RangeOp(EOTOp):
    """An op whose parameters are the :class:`Range` rows of ``ranges``, drawn in that order."""

    ranges: ClassVar[tuple[Range, ...]] = ()

    def sample(self, n: int, generator: torch.Generator, device: torch.device | str) -> dict[str, Tensor]:
        out = {}
        for r in self.ranges:
            draw = log_uniform if r.log else uniform
            value = draw(*getattr(self.cfg, r.field), n * r.width, generator, device)
            out[r.key] = value if r.width == 1 else value.view(n, r.width)
        return out

    def identity(self, n: int, device: torch.device | str) -> dict[str, Tensor]:
        return {r.key: torch.full((n,) if r.width == 1 else (n, r.width), r.identity, device=device)
                for r in self.ranges}


# ------------------------------------------------------------------------------- the five kinds
class GeometricOp(EOTOp):
    """Contributes one factor of the homography that maps the patch plane to image pixels.

    Attributes:
        frame: ``"screen"``: the matrix acts in pixels about the patch centre, before the
            placement's ``D(size / 2)``; ``"plane"``: it acts on plane coordinates (patch spans
            [-1, 1]), after it. Within a frame, ops act on points in draw order.
    """

    frame: ClassVar[str] = "screen"

    def matrix(self, params: dict[str, Tensor], sizes: Tensor) -> Tensor:
        """``(N, 3, 3)`` matrix in the dtype of ``sizes`` ``(N, 2)`` (patch width, height in pixels)."""
        raise NotImplementedError

    def size_factor(self, params: dict[str, Tensor]) -> Tensor | None:
        """``(N,)`` factor on the on-screen patch size (sets the working resolution), or None."""
        return None


class WarpOp(EOTOp):
    """Contributes a displacement of texture coordinates ``t = q + field(q)`` (plane units)."""

    def displacement_field(self, params: dict[str, Tensor]) -> tuple[Tensor, float]:
        """``(N, 2, R, R)`` float32 field over ``[-extent, extent]^2`` (``align_corners=True``) and
        ``extent``; the field must cover every plane point near the patch."""
        raise NotImplementedError


class ColourOp(EOTOp):
    """Contributes an affine colour map ``y = M x + b``; the pipeline fuses all of them into one."""

    def affine(self, params: dict[str, Tensor]) -> Tensor:
        """``(N, 3, 4)`` matrices ``[M | b]`` on RGB in [0, 1]."""
        raise NotImplementedError


class BlurOp(EOTOp):
    """Contributes a term of the one blur kernel per instance (the pipeline fuses all of them).

    Gaussian terms combine in quadrature; at most one op may give a streak.
    """

    def sigma(self, params: dict[str, Tensor]) -> Tensor | None:
        """``(N,)`` Gaussian standard deviation in screen pixels (it also widens the outline's
        anti-aliased edge), or None."""
        return None

    def streak(self, params: dict[str, Tensor], dtype: torch.dtype) -> Tensor | None:
        """``(N, 2)`` motion streak vector (dx, dy) in screen pixels, in ``dtype``, or None."""
        return None


class PixelOp(EOTOp):
    """A function of the working tensor ``(N or 1, 3, Rh, Rw)`` -> ``(N, 3, Rh, Rw)``.

    Attributes:
        unit_range: how the op relates to the [0, 1] range, for the pipeline's single clamp:
            ``"keeps"`` (output in range when the input is), ``"may_leave"`` (output may leave
            it), ``"clamps"`` (output always in range), ``"requires"`` (the input must be in range;
            the pipeline clamps first if needed; output in range).
    """

    unit_range: ClassVar[str] = "keeps"

    def forward(self, x: Tensor, params: dict[str, Tensor]) -> Tensor:
        raise NotImplementedError


#: The kinds of op, in the order the pipeline's stages use them.
KINDS: tuple[type[EOTOp], ...] = (GeometricOp, WarpOp, ColourOp, BlurOp, PixelOp)
