"""Thread control for the small dense computations of calibration."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one intra-op thread inside the block, then restore the setting.

    Calibration works on arrays of a few hundred colours and 729x729 matrices: one thread
    takes milliseconds, while several threads on a busy machine spin and wait many times
    longer."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
