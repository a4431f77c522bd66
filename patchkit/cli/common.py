"""Options shared by several sub-commands."""

from __future__ import annotations

import argparse

from patchkit.device import resolve_device  # noqa: F401  (re-exported for the sub-commands)


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default="cpu", help="cpu | cuda | cuda:N | auto (default: cpu)"
    )


def float_list(text: str) -> tuple[float, ...]:
    """argparse type: ``"0.1,0.25,0.5"`` -> ``(0.1, 0.25, 0.5)``."""
    try:
        vals = tuple(float(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from exc
    if not vals:
        raise argparse.ArgumentTypeError("expected at least one number")
    return vals
