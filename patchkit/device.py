"""Device selection shared by every command and the Python API."""

from __future__ import annotations

import torch

from patchkit.errors import PatchkitError


def resolve_device(device: str | torch.device) -> torch.device:
    """Map ``cpu | cuda | cuda:N | auto`` (or a ``torch.device``) to a ``torch.device``.

    ``auto`` picks CUDA when available. A bad name, or CUDA on a machine without it, is a
    one-line :class:`PatchkitError`.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise PatchkitError(f"device {device!r} is not a device (use cpu, cuda, cuda:N or auto)") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise PatchkitError(f"device {device}: CUDA is not available on this machine")
    return dev


def module_device(module: torch.nn.Module) -> torch.device:
    """Where ``module`` lives: its first parameter's device, else its first buffer's, else CPU."""
    for p in module.parameters():
        return p.device
    for b in module.buffers():
        return b.device
    return torch.device("cpu")
