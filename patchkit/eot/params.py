"""Recorded EOT draws: an ordered mapping ``op name -> {key: Tensor}`` (kornia's ``ParamItem`` list).

Passing an :class:`EOTParams` back to :meth:`EOTPipeline.forward` replays the exact same
transformation. ``to_dict`` gives plain nested dicts of tensors that ``torch.save`` stores and
``torch.load(..., weights_only=True)`` reads back; ``from_dict`` rebuilds the object.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch
from torch import Tensor

from patchkit.errors import PatchkitError


class EOTParams(Mapping):
    """Ordered ``name -> {key: Tensor}``. Per-instance tensors have a leading dimension ``N``.

    Example:
        >>> params = pipeline.sample(centers, sizes, batch_idx, (416, 416), generator)
        >>> params["rotation"]["angle"].shape       # (N,) degrees
        >>> torch.save(params.to_dict(), "eot.pt")
        >>> params = EOTParams.from_dict(torch.load("eot.pt", weights_only=True))
    """

    def __init__(self, items: Mapping[str, Mapping[str, Tensor]] | None = None,
                 num_instances: int = 0) -> None:
        self._items: dict[str, dict[str, Tensor]] = {}
        self.num_instances = int(num_instances)
        for name, data in (items or {}).items():
            self[name] = data

    # Mapping interface -------------------------------------------------------------------
    def __getitem__(self, name: str) -> dict[str, Tensor]:
        return self._items[name]

    def __setitem__(self, name: str, data: Mapping[str, Tensor]) -> None:
        for key, value in data.items():
            if not isinstance(value, Tensor):
                raise PatchkitError(f"EOT params '{name}.{key}' must be a tensor, got {type(value).__name__}")
        self._items[name] = dict(data)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        body = ", ".join(
            f"{name}: {{{', '.join(f'{k}: {tuple(v.shape)}' for k, v in data.items())}}}"
            for name, data in self._items.items()
        )
        return f"EOTParams(n={self.num_instances}, {body})"

    def as_list(self) -> list[tuple[str, dict[str, Tensor]]]:
        """``[(name, {key: Tensor}), ...]`` in application order (kornia's ``ParamItem`` list)."""
        return list(self._items.items())

    # Movement and persistence ---------------------------------------------------------------
    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "EOTParams":
        """A copy on ``device``; ``dtype`` converts floating tensors only (integer seeds stay)."""
        out = EOTParams(num_instances=self.num_instances)
        for name, data in self._items.items():
            out[name] = {
                k: v.to(device=device, dtype=dtype if (dtype is not None and v.is_floating_point()) else None)
                for k, v in data.items()
            }
        return out

    def select(self, index: Tensor) -> "EOTParams":
        """The draw of the instances ``index``: a bool mask ``(N,)`` or int64 indices ``(k,)`` (in
        that order). Per-instance tensors (first dimension ``N``) are sliced, others kept."""
        n = self.num_instances
        k = int(index.sum()) if index.dtype == torch.bool else int(index.shape[0])
        out = EOTParams(num_instances=k)
        for name, data in self._items.items():
            out[name] = {key: (v[index.to(v.device)] if v.ndim > 0 and v.shape[0] == n else v)
                         for key, v in data.items()}
        return out

    def to_dict(self) -> dict:
        """Plain nested dict ``{"num_instances": Tensor, "ops": {name: {key: Tensor}}}`` with CPU
        tensors, safe for ``torch.save`` and ``torch.load(weights_only=True)``."""
        return {
            "num_instances": torch.tensor(self.num_instances, dtype=torch.int64),
            "ops": {name: {k: v.detach().cpu() for k, v in data.items()} for name, data in self._items.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> "EOTParams":
        """Inverse of :meth:`to_dict`."""
        if not isinstance(data, Mapping) or "ops" not in data:
            raise PatchkitError("EOT params: expected a dict with 'ops' (written by EOTParams.to_dict)")
        n = data.get("num_instances", 0)
        return cls(data["ops"], num_instances=int(n.item() if isinstance(n, Tensor) else n))

    def equal(self, other: "EOTParams") -> bool:
        """True when both hold the same ops, keys and bit-identical tensors."""
        if list(self) != list(other) or self.num_instances != other.num_instances:
            return False
        for name in self:
            a, b = self[name], other[name]
            if a.keys() != b.keys():
                return False
            if not all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a):
                return False
        return True
