"""Entry point of the ``patchkit`` console script and ``python -m patchkit``.

Each sub-command lives in its own module exposing ``add_parser(subparsers)`` (which registers
the sub-command and sets ``func`` to a ``run(args) -> int`` callable). Exit status: 0 success,
2 bad input or usage (one line on stderr naming the file or key), 1 anything else.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from patchkit.errors import PatchkitError

# Sub-command modules, in --help order. A module that fails to import is a bug, not bad input.
SUBCOMMANDS = ["demo", "detect", "train", "score", "evaluate", "chart", "calibrate", "preview", "export", "toyworld"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="patchkit",
        description="Physical adversarial patches against object detectors.",
    )
    from patchkit import __version__

    parser.add_argument("--version", action="version", version=f"patchkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in SUBCOMMANDS:
        importlib.import_module(f"patchkit.cli.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PatchkitError as exc:
        print(f"patchkit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"patchkit {args.command}: interrupted; results so far are kept.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
