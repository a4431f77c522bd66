"""Running a layer list built by ultralytics' ``parse_model`` (each layer has ``.f`` and ``.i``)."""

from __future__ import annotations

from typing import Iterable, Sequence

from torch import Tensor, nn


def head_inputs(from_: int | Sequence[int], head_index: int) -> list[int]:
    """Absolute layer indices feeding the head at ``head_index`` (``-1`` = previous layer)."""
    idx = [from_] if isinstance(from_, int) else list(from_)
    return [head_index - 1 if j == -1 else j % head_index for j in idx]


def run_layers(layers: Iterable[nn.Module], save: frozenset[int], x: Tensor, outputs: Sequence[int]) -> list[Tensor]:
    """Forward ``x`` through ``layers`` (ultralytics ``_predict_once`` semantics) and return the
    outputs of the layers listed in ``outputs`` (absolute indices, all in ``save``)."""
    y: list[Tensor | None] = []
    for m in layers:
        f = m.f
        if f != -1:
            x = y[f] if isinstance(f, int) else [x if j == -1 else y[j] for j in f]
        x = m(x)
        y.append(x if m.i in save else None)
    return [y[j] for j in outputs]  # type: ignore[misc]
