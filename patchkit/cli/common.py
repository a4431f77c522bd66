"""Options shared by several sub-commands."""

from __future__ import annotations

import argparse

import torch

from patchkit.errors import PatchkitError


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default="cpu", help="cpu | cuda | cuda:N | auto (default: cpu)"
    )


def resolve_device(name: str) -> torch.device:
    """Map ``cpu|cuda|cuda:N|auto`` to a ``torch.device``; a bad name is a one-line error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise PatchkitError(f"--device {name!r} is not a device (use cpu, cuda, cuda:N or auto)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PatchkitError(f"--device {name}: CUDA is not available on this machine")
    return device
