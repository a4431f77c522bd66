"""The base of every EOT operation: kornia's split into module, sampler and pure function.

An operation is an ``nn.Module`` with

- ``sample(n, generator, device) -> dict[str, Tensor]``: ``n`` independent draws from its
  ranges, using only the explicit ``torch.Generator`` (never the global RNG);
- ``identity(n, device) -> dict[str, Tensor]``: the parameter values that leave the input
  unchanged (used for instances not selected by ``p``);
- ``forward(x, params)``: applies the parameters; the math lives in a module-level pure function
  that tests call with fixed parameters.

:meth:`EOTOp.draw` adds the batch semantics (``p``, ``same_on_batch``, ``same_on_image``) on top
of ``sample``, the role of kornia's ``_adapted_rsampling`` and ``_blend_by_prob``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from patchkit.eot.config import OpConfig


def uniform(low: float, high: float, n: int, generator: torch.Generator, device: torch.device | str) -> Tensor:
    """``(n,)`` float32 draws from U(low, high) made on the generator's device, moved to ``device``."""
    u = torch.rand(n, generator=generator, device=generator.device, dtype=torch.float32)
    return (low + (high - low) * u).to(device)


def log_uniform(low: float, high: float, n: int, generator: torch.Generator,
                device: torch.device | str) -> Tensor:
    """``(n,)`` draws whose logarithm is uniform in [log low, log high]."""
    return uniform(math.log(low), math.log(high), n, generator, device).exp()


class EOTOp(nn.Module):
    """Base class. Subclasses set ``name`` and implement ``sample``, ``identity`` and ``forward``.

    Attributes:
        name: the key of the op in :class:`EOTParams` and in :class:`EOTConfig`.
        shared_keys: parameter keys that are not per instance (e.g. a noise seed); ``draw``
            leaves them alone.
    """

    name: str = "op"
    shared_keys: tuple[str, ...] = ()

    def __init__(self, cfg: OpConfig) -> None:
        super().__init__()
        self.cfg = cfg

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
            ident = self.identity(n, device)
            for key, value in out.items():
                if key in self.shared_keys:
                    continue
                mask = keep.view(-1, *([1] * (value.ndim - 1)))
                out[key] = torch.where(mask, value, ident[key].to(value.dtype))
        return out

    def extra_repr(self) -> str:
        return repr(self.cfg)
