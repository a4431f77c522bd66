"""The EOT pipeline: how a printed patch looks when worn and filmed, for all boxes in one call.

Data flow for ``N`` patch instances (all boxes of all images), no loop per box. The ops are built
from the registry (:data:`patchkit.eot.base.OPS`) for the enabled fields of :class:`EOTConfig`;
each stage loops over the enabled ops of one kind (see ``base.py``) in draw order
(:data:`OP_ORDER`) and names none of them (the defaults in brackets)::

    patch (3, P, P) --resample once (antialiased)--> (1, 3, Rh, Rw)   R = largest on-screen side
      --printer colour transform (shared)--> (1, 3, Rh, Rw)
      --ColourOps [contrast, brightness, saturation, hue]: one fused (N, 3, 4) affine--> (N, 3, Rh, Rw)
      --BlurOps [defocus, motion]: one kernel per instance--> --PixelOps [noise, gamma, JPEG]-->
      --ONE warp per instance: homography of the GeometricOps [scale, rotation, perspective,
        translation] then the WarpOps [cloth TPS], evaluated only at the screen pixels the patch
        covers--> (3, M) + coverage (M,)
      --one put_(accumulate=True) into the images (a copy unless inplace)--> (B, 3, H, W)

Semantics worth knowing:

- Photometric and camera ops run on the patch at about its on-screen resolution (the working
  tensor), so blur and noise are specified in screen pixels and converted per instance; the blur
  kernel is capped at ``cfg.max_kernel_size`` working pixels. The patch outline keeps its own
  anti-aliased edge (wider under defocus); blur acts on the patch content.
- The working tensor is clamped to [0, 1] once, as a camera saturates once: before the first
  PixelOp that requires it (JPEG), else at the end, unless a clamping PixelOp (gamma) came after
  the last op that may leave the range (the colour affine, noise).
- Where patches of two boxes overlap, their colours are averaged, weighted by coverage.
- Pixels outside the image are dropped; boxes partly or fully outside are fine.

Working at the patch's on-screen resolution and touching only covered pixels is what keeps the
pipeline a few percent of a detector step (see ``benchmarks/eot_pipeline.py``).

Randomness comes only from the ``torch.Generator`` passed in; the draw is returned as
:class:`EOTParams`, and passing it back replays the identical output.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.profiler import record_function

from patchkit.eot import camera, cloth, geometry, photometric  # noqa: F401  (they register their ops)
from patchkit.eot.base import KINDS, OPS, BlurOp, ColourOp, EOTOp, GeometricOp, PixelOp, WarpOp
from patchkit.eot.camera import apply_blur, blur_kernels, blur_radius
from patchkit.eot.cloth import apply_displacement_field
from patchkit.eot.composite import (boxes_overlap, composite_pixels, coverage_points, pixels_per_unit,
                                    quad_pixels, sample_atlas)
from patchkit.eot.config import OP_ORDER, EOTConfig
from patchkit.eot.geometry import placement_matrices
from patchkit.eot.params import EOTParams
from patchkit.eot.photometric import apply_color_affine, compose_affine
from patchkit.errors import PatchkitError

# Anti-aliased edge: a linear ramp of width w has a 10-90 % rise of 0.8 w; a Gaussian edge of
# standard deviation s has 2.56 s. The ramp width under defocus is sqrt(1 + (3.2 s)^2) pixels.
_RAMP_PER_SIGMA = 3.2


def _ceil_to(x: float, m: int) -> int:
    return int(math.ceil(x / m) * m)


class EOTPipeline(nn.Module):
    """Expectation over transformation for patch instances on a batch of images.

    Args:
        cfg: which operations are on and their ranges (:class:`EOTConfig`).
        printer: colour transform ``(N, 3, h, w) -> (N, 3, h, w)`` from digital sRGB to captured
            RGB, both in [0, 1] (e.g. ``patchkit.printing.PrinterProfile``); identity when None.
            It is applied once to the shared patch at working resolution.

    Shape:
        - patch: ``(3, P, P)`` shared by all instances, or ``(N, 3, P, P)`` one per instance
          (any ``Ph x Pw``), RGB in [0, 1].
        - images: ``(B, 3, H, W)`` RGB in [0, 1].
        - centers, sizes: ``(N, 2)`` patch centre (x, y) and (width, height) in pixels
          (see :func:`patchkit.scenes.placement.place_patches`).
        - batch_idx: ``(N,)`` long, the image of each instance.
        - output: ``(B, 3, H, W)``.

    Example:
        >>> eot = EOTPipeline(EOTConfig())
        >>> centers, sizes = place_patches(boxes, PlacementConfig())
        >>> g = torch.Generator().manual_seed(0)
        >>> out, params = eot(patch, images, centers, sizes, batch_idx, generator=g)
        >>> again, _ = eot(patch, images, centers, sizes, batch_idx, params=params)  # identical
    """

    def __init__(self, cfg: EOTConfig | None = None, printer: nn.Module | None = None) -> None:
        super().__init__()
        cfg = cfg if cfg is not None else EOTConfig()
        try:
            cfg.validate()
        except ValueError as exc:
            raise PatchkitError(str(exc)) from exc
        self.cfg = cfg
        self.printer = printer if printer is not None else nn.Identity()
        self._scratch: Tensor | None = None  # per-pixel buffer reused across calls (not state)
        missing = [name for name in OP_ORDER if name not in OPS]
        if missing:
            raise PatchkitError(f"EOTPipeline: no op registered for {missing} (see patchkit.eot.base.register_op)")
        self.ops = nn.ModuleDict(
            {name: OPS[name](getattr(cfg, name)) for name in OP_ORDER if getattr(cfg, name).enabled}
        )
        self._kinds = {kind: tuple(name for name, op in self.ops.items() if isinstance(op, kind)) for kind in KINDS}

    # ------------------------------------------------------------------------------ sampling
    def sample(self, centers: Tensor, sizes: Tensor, batch_idx: Tensor, image_hw: tuple[int, int],
               generator: torch.Generator) -> EOTParams:
        """Draw the parameters of every enabled op for ``N`` instances.

        Uses only ``generator`` (its own device; results are moved to ``centers.device``), in the
        fixed order :data:`OP_ORDER`, so a seed reproduces the draw. ``image_hw`` is accepted for
        interface stability; the draws do not depend on it.
        """
        if not isinstance(generator, torch.Generator):
            raise PatchkitError("EOTPipeline.sample needs a torch.Generator (seeded) for reproducible draws")
        batch_idx = batch_idx.to(centers.device).long()
        params = EOTParams(num_instances=int(batch_idx.shape[0]))
        for name, op in self.ops.items():
            params[name] = op.draw(batch_idx, generator)
        if self.cfg.flat_p > 0.0 and params.num_instances:
            # whole images drawn flat: every op of their instances at its identity (drawn last, so
            # flat_p = 0 leaves the generator's stream, and so earlier seeds, unchanged)
            num_images = int(batch_idx.max().item()) + 1
            flat = torch.rand(num_images, generator=generator, device=generator.device) < self.cfg.flat_p
            keep = ~flat.to(centers.device).index_select(0, batch_idx)
            for name, op in self.ops.items():
                params[name] = op.keep_or_identity(params[name], keep)
        return params

    # ------------------------------------------------------------------------------- forward
    def forward(self, patch: Tensor, images: Tensor, centers: Tensor, sizes: Tensor, batch_idx: Tensor,
                params: EOTParams | None = None, generator: torch.Generator | None = None,
                inplace: bool = False) -> tuple[Tensor, EOTParams]:
        """Composite every transformed patch instance onto its image.

        Args:
            patch, images, centers, sizes, batch_idx: see the class docstring.
            params: a previous draw to replay exactly; sampled from ``generator`` when None.
            generator: the ``torch.Generator`` to sample from (required when ``params`` is None).
            inplace: paste into ``images`` itself instead of a copy (saves one full-size copy;
                only when ``images`` does not require grad and is not needed afterwards).

        Returns:
            ``(B, 3, H, W)`` images and the :class:`EOTParams` used. With ``N = 0`` (or every patch
            outside its image) the images are returned unchanged (a copy unless ``inplace``), still
            connected to ``patch`` with a zero gradient when it requires grad.
        """
        self._check_inputs(patch, images, centers, sizes, batch_idx)
        n = int(centers.shape[0])
        img_h, img_w = int(images.shape[-2]), int(images.shape[-1])
        batch_idx = batch_idx.to(images.device).long()
        if params is None:
            if generator is None:
                raise PatchkitError("EOTPipeline: pass params to replay or a torch.Generator to sample")
            with record_function("eot.sample"):
                params = self.sample(centers, sizes, batch_idx, (img_h, img_w), generator)
        else:
            params = self._check_params(params, n, images.device)
        if n == 0:
            return self._unchanged(patch, images, inplace), params

        dtype = images.dtype if images.is_floating_point() else torch.float32
        with torch.no_grad(), record_function("eot.geometry"):
            geo = self._geometry(centers.to(images.device), sizes.to(images.device), batch_idx, params,
                                 (img_h, img_w), (int(patch.shape[-2]), int(patch.shape[-1])))
        if geo["inst"].numel() == 0:  # every patch is outside its image
            return self._unchanged(patch, images, inplace), params
        with record_function("eot.resample"):
            src = self._resample(patch.to(device=images.device, dtype=dtype), geo["working_hw"], n)
        with record_function("eot.printer"):
            src = self.printer(src)
        x = self._appearance(src, params, geo["scale"], n)
        with record_function("eot.warp"):
            chunks = torch.get_num_threads() if x.device.type == "cpu" else 1
            colour = sample_atlas(x, geo["inst"], geo["texture"], chunks=chunks)
        with record_function("eot.composite"):
            out = composite_pixels(images, colour, geo["alpha"], batch_idx.index_select(0, geo["inst"]),
                                   geo["ys"], geo["xs"],
                                   inplace=inplace, overlap=geo["overlap"], scratch=self.scratch_for(images))
        return out, params

    # ------------------------------------------------------------------------------- helpers
    def _check_inputs(self, patch, images, centers, sizes, batch_idx) -> None:
        if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 3:
            raise PatchkitError(f"EOTPipeline: images must be (B, 3, H, W), got {_shape(images)}")
        if not isinstance(patch, Tensor) or patch.ndim not in (3, 4) or patch.shape[-3] != 3:
            raise PatchkitError(f"EOTPipeline: patch must be (3, P, P) or (N, 3, P, P), got {_shape(patch)}")
        n = centers.shape[0] if isinstance(centers, Tensor) else -1
        for name, t in (("centers", centers), ("sizes", sizes)):
            if not isinstance(t, Tensor) or t.ndim != 2 or t.shape[-1] != 2 or t.shape[0] != n:
                raise PatchkitError(f"EOTPipeline: {name} must be (N, 2), got {_shape(t)}")
        if not isinstance(batch_idx, Tensor) or batch_idx.shape != (n,):
            raise PatchkitError(f"EOTPipeline: batch_idx must be ({n},), got {_shape(batch_idx)}")
        if patch.ndim == 4 and patch.shape[0] not in (1, n):
            raise PatchkitError(f"EOTPipeline: {patch.shape[0]} patches for {n} instances")
        if n and (int(batch_idx.min()) < 0 or int(batch_idx.max()) >= images.shape[0]):
            raise PatchkitError(f"EOTPipeline: batch_idx must be in [0, {images.shape[0] - 1}]")
        if n and not (torch.isfinite(centers).all() and torch.isfinite(sizes).all()):
            raise PatchkitError("EOTPipeline: centers and sizes must be finite")

    def _check_params(self, params: EOTParams, n: int, device) -> EOTParams:
        if not isinstance(params, EOTParams):
            params = EOTParams.from_dict(params)
        if params.num_instances != n:
            raise PatchkitError(f"EOT params were drawn for {params.num_instances} instances, got {n}")
        missing = [name for name in self.ops if name not in params]
        if missing:
            raise PatchkitError(f"EOT params lack enabled ops {missing} (drawn with another config?)")
        return params.to(device)

    def _geometry(self, centers: Tensor, sizes: Tensor, batch_idx: Tensor, params: EOTParams,
                  image_hw: tuple[int, int], patch_hw: tuple[int, int]) -> dict:
        """Homographies, working size, and the covered pixels with their texture coordinates and
        coverage (no grad)."""
        c = centers.double()
        s = sizes.double().clamp_min(1e-2)
        t_center, d_half = placement_matrices(c, s)
        geometric = self._of(GeometricOp)
        h = t_center  # right-multiplied, so the last op of each frame is outermost
        for op in reversed([op for op in geometric if op.frame == "screen"]):
            h = h @ op.matrix(params[op.name], s)
        h = h @ d_half
        for op in reversed([op for op in geometric if op.frame == "plane"]):
            h = h @ op.matrix(params[op.name], s)
        factor = torch.ones_like(c[:, 0])
        for op in geometric:
            f = op.size_factor(params[op.name])
            if f is not None:
                factor = factor * f.double()
        screen = s * factor[:, None]  # on-screen (w, h) in pixels, before foreshortening
        ph, pw = patch_hw
        rmin = self.cfg.min_working_size
        rw = min(max(_ceil_to(float(screen[:, 0].max()), 8), min(rmin, pw)), pw)
        rh = min(max(_ceil_to(float(screen[:, 1].max()), 8), min(rmin, ph)), ph)
        scale = torch.stack((rw / screen[:, 0], rh / screen[:, 1]), dim=-1)  # working px per screen px

        sigma = self._sigma(params, torch.float64)
        sigma = sigma if sigma is not None else torch.zeros_like(factor)
        ramp = torch.sqrt(1.0 + (_RAMP_PER_SIGMA * sigma) ** 2)  # edge ramp width, screen px
        ppu = pixels_per_unit(h)  # screen px per plane unit at the centre, (N, 2)
        fields = [op.displacement_field(params[op.name]) for op in self._of(WarpOp)]  # (field, extent)
        max_disp = torch.zeros_like(factor)
        for field, extent in fields:
            # largest displacement near the patch (|q| <= 1.3), where covered pixels can be
            lin = torch.linspace(-extent, extent, field.shape[-1], device=field.device).abs() <= 1.3
            max_disp = max_disp + field[:, :, lin][:, :, :, lin].abs().amax(dim=(1, 2, 3)).double()
        # a pixel can be covered only if |t| < 1 + half the ramp, and t = q + disp
        limit = 1.0 + 0.5 * ramp[:, None] / ppu + max_disp[:, None]
        inst, ys, xs, q, bbox = quad_pixels(h, limit, image_hw)
        t = q
        for field, extent in fields:
            t = apply_displacement_field(t, inst, field, extent)
        alpha = coverage_points(t, ppu.float().index_select(0, inst), ramp.float().index_select(0, inst))
        if fields:  # the candidates were conservative: keep the covered ones only
            keep = (alpha > 0).nonzero().squeeze(1)
            inst, ys, xs, t, alpha = (v.index_select(0, keep) for v in (inst, ys, xs, t, alpha))
        return {"working_hw": (rh, rw), "scale": scale.float(), "inst": inst, "ys": ys, "xs": xs,
                "texture": t, "alpha": alpha, "overlap": boxes_overlap(bbox, batch_idx)}

    def _resample(self, patch: Tensor, working_hw: tuple[int, int], n: int) -> Tensor:
        x = patch if patch.ndim == 4 else patch.unsqueeze(0)
        if tuple(x.shape[-2:]) != tuple(working_hw):
            x = F.interpolate(x, size=working_hw, mode="bilinear", align_corners=False, antialias=True)
        return x

    def appearance(self, x: Tensor, params: EOTParams, scale: Tensor | None = None) -> Tensor:
        """The photometric and camera ops (colour, blur, pixel) of the draw ``params`` on
        ``x`` ``(N or 1, 3, h, w)`` in [0, 1] -> ``(N, 3, h, w)`` in [0, 1]; ``scale`` ``(N, 2)`` is
        ``x``'s pixels per screen pixel (default 1: ``x`` is at screen resolution, e.g. a texture
        rendered over image pixels). The geometric and warp ops are not applied."""
        n = params.num_instances
        if scale is None:
            scale = torch.ones(n, 2, device=x.device, dtype=torch.float32)
        return self._appearance(x, params, scale, n)

    def _appearance(self, x: Tensor, params: EOTParams, scale: Tensor, n: int) -> Tensor:
        """Per-instance photometric and camera ops on the working tensor -> ``(N, 3, Rh, Rw)``."""
        affine = None
        for op in self._of(ColourOp):
            a = op.affine(params[op.name]).to(x.dtype)
            affine = a if affine is None else compose_affine(a, affine)
        in_range = affine is None  # the printed patch is in [0, 1]; track it to clamp once
        if affine is not None:
            with record_function("eot.colour"):
                x = apply_color_affine(x, affine)
        if self._of(BlurOp):
            with record_function("eot.blur"):
                x = self._blur(x, params, scale, n)
        for op in self._of(PixelOp):
            if op.unit_range == "requires" and not in_range:
                x, in_range = x.clamp(0.0, 1.0), True
            with record_function(f"eot.{op.name}"):
                x = op(x, params[op.name])
            if op.unit_range == "clamps":
                in_range = True
            elif op.unit_range == "may_leave":
                in_range = False
        return x if in_range else x.clamp(0.0, 1.0)

    @staticmethod
    def _unchanged(patch: Tensor, images: Tensor, inplace: bool) -> Tensor:
        """The images, still connected to the patch (zero gradient) so that a caller's backward
        works on a batch where no patch is visible."""
        out = images if inplace else images.clone()
        if torch.is_grad_enabled() and patch.requires_grad:
            zero = (patch.sum() * 0).to(out.dtype)
            out = out.add_(zero) if inplace else out + zero
        return out

    def scratch_for(self, images: Tensor) -> Tensor:
        """A zero-filled per-pixel buffer reused across calls (see
        :func:`~patchkit.eot.composite.coverage_weights`; also lent to the texture render)."""
        need = images.shape[0] * images.shape[-2] * images.shape[-1]
        buf = self._scratch
        if buf is None or buf.numel() < need or buf.device != images.device or buf.dtype != images.dtype:
            buf = self._scratch = torch.zeros(need, dtype=images.dtype, device=images.device)
        return buf

    def _of(self, kind: type[EOTOp]) -> list[EOTOp]:
        """The enabled ops of one kind, in draw order."""
        return [self.ops[name] for name in self._kinds[kind]]

    def _sigma(self, params: EOTParams, dtype: torch.dtype) -> Tensor | None:
        """``(N,)`` Gaussian blur of all blur ops (terms add in quadrature), screen px, or None."""
        sigma = None
        for op in self._of(BlurOp):
            s = op.sigma(params[op.name])
            if s is not None:
                s = s.to(dtype)
                sigma = s if sigma is None else torch.hypot(sigma, s)
        return sigma

    def _streak(self, params: EOTParams, dtype: torch.dtype) -> Tensor | None:
        """``(N, 2)`` motion streak of the one blur op that gives one, screen px, or None."""
        streaks = [v for op in self._of(BlurOp) if (v := op.streak(params[op.name], dtype)) is not None]
        if len(streaks) > 1:
            raise PatchkitError("EOTPipeline: at most one blur op may give a motion streak")
        return streaks[0] if streaks else None

    def _blur(self, x: Tensor, params: EOTParams, scale: Tensor, n: int) -> Tensor:
        """All blur ops as one kernel per instance (working pixels, at most ``cfg.max_kernel_size``)."""
        sigma, streak = self._sigma(params, scale.dtype), self._streak(params, scale.dtype)
        sigma = sigma[:, None] * scale if sigma is not None else None  # working px, (N, 2)
        vec = streak * scale if streak is not None else None
        size = min(2 * math.ceil(blur_radius(sigma, vec) - 1e-6) + 1, self.cfg.max_kernel_size)
        if size <= 1:
            return x
        if x.shape[0] != n:
            x = x.expand(n, -1, -1, -1)
        return apply_blur(x, blur_kernels(sigma, vec, size))


def _shape(t) -> str:
    return str(tuple(t.shape)) if isinstance(t, Tensor) else type(t).__name__
