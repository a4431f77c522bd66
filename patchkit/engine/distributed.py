"""Data-parallel training on torch.distributed (launched by ``torchrun``).

Each rank takes its share of every global batch (images ``rank::world``), computes the loss of
its images normalised by the *global* batch size, and the patch gradients are summed across
ranks with ``all_reduce``, so every rank applies the same Adam step and the patch stays in sync.
The EOT draw of the whole global batch is sampled on every rank from the same seeded generator and
each rank keeps its instances: 2 ranks give the same patch as 1 rank with the same global batch,
up to float summation order. Rank 0 writes logs, snapshots and checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

from patchkit.eot.params import EOTParams


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job: ``rank`` of ``world`` processes."""

    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @classmethod
    def from_env(cls, device: torch.device) -> "DistContext":
        """Join the process group described by torchrun's environment (``WORLD_SIZE``, ``RANK``,
        ``MASTER_ADDR``...); a single process otherwise. NCCL on CUDA, gloo on CPU."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        return cls(dist.get_rank(), dist.get_world_size())

    def shard(self, n: int) -> Tensor:
        """Positions ``(k,)`` of this rank's images within a global batch of ``n``."""
        return torch.arange(self.rank, n, self.world)

    def all_reduce_grads(self, params) -> None:
        """Sum the gradients of ``params`` over ranks (one flat all-reduce)."""
        if not self.active:
            return
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def sum(self, value: Tensor) -> Tensor:
        """Sum a tensor over ranks (a copy; the input is left alone)."""
        if not self.active:
            return value
        out = value.detach().clone()
        dist.all_reduce(out)
        return out


def select_instances(params: EOTParams, keep: Tensor) -> EOTParams:
    """The draw of the instances where ``keep (N,)`` is true (see :meth:`EOTParams.select`)."""
    return params.select(keep)
