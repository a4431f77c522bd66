"""Options shared by several sub-commands."""

from __future__ import annotations

import argparse

from patchkit.device import resolve_device  # noqa: F401  (re-exported for the sub-commands)


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default="cpu", help="cpu | cuda | cuda:N | auto (default: cpu)"
    )
