"""`RandomPrinterProfile`: the printer step of EOT, with profile uncertainty.

Each image of a batch is mapped through one of several printer profiles (drawn uniformly),
whose LUT carries a fresh smooth random residual of the size of its calibration error. The
parameters are sampled by :meth:`RandomPrinterProfile.sample` from an explicit generator and can
be replayed: ``forward(images, params)`` with the same ``params`` gives the same output.
"""

from __future__ import annotations

from typing import Sequence

import torch

from patchkit.printing.lut import apply_lut, apply_lut_points, identity_lut
from patchkit.printing.profile import PrinterProfile, smooth_residual


class RandomPrinterProfile(torch.nn.Module):
    """Digital patch ``(B, 3, H, W)`` in [0, 1] -> predicted captured RGB, one random profile
    and one random residual per image.

    Args:
        profiles: one profile or several (e.g. several lights/cameras/prints).
        uncertainty: multiplier of each profile's own :attr:`PrinterProfile.uncertainty`
            (0 switches the residual off; 1 = the calibration error).
        coarse: nodes per axis of the random residual lattice (smoothness).
        same_on_batch: draw one profile and one residual for the whole batch.

    ``sample`` returns ``{"profile_index": (B,) long, "lut": (B, S, S, S, 3)}``.
    """

    def __init__(
        self,
        profiles: PrinterProfile | Sequence[PrinterProfile],
        uncertainty: float = 1.0,
        coarse: int = 3,
        same_on_batch: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(profiles, PrinterProfile):
            profiles = [profiles]
        profiles = list(profiles)
        if not profiles:
            raise ValueError("RandomPrinterProfile needs at least one profile")
        size = max(p.size for p in profiles)
        grid = identity_lut(size)
        # Resample every LUT to a common size so they stack: (P, S, S, S, 3).
        luts = [
            p.lut if p.size == size else apply_lut_points(grid.reshape(-1, 3), p.lut).reshape(grid.shape)
            for p in profiles
        ]
        self.register_buffer("luts", torch.stack(luts))
        self.register_buffer("sigmas", torch.tensor([p.uncertainty for p in profiles]))
        self.uncertainty = float(uncertainty)
        self.coarse = int(coarse)
        self.same_on_batch = bool(same_on_batch)
        self.last_params: dict[str, torch.Tensor] | None = None

    def sample(self, batch_shape: torch.Size | tuple[int, ...], generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        batch = int(batch_shape[0])
        draws = 1 if self.same_on_batch else batch
        gen_device = generator.device if generator is not None else "cpu"
        idx = torch.randint(len(self.luts), (draws,), generator=generator, device=gen_device).to(self.luts.device)
        size = self.luts.shape[1]
        res = smooth_residual(draws, size, 1.0, generator, self.coarse, self.luts.device, self.luts.dtype)
        scale = (self.sigmas[idx] * self.uncertainty).view(-1, 1, 1, 1, 1)
        lut = (self.luts[idx] + res * scale).clamp(0.0, 1.0)
        if self.same_on_batch:
            idx = idx.expand(batch)
            lut = lut.expand(batch, -1, -1, -1, -1)
        return {"profile_index": idx, "lut": lut}

    def forward(self, images: torch.Tensor, params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        if params is None:
            params = self.sample(images.shape)
        self.last_params = params
        return apply_lut(images, params["lut"])
