"""Entry point of the ``patchkit`` console script and ``python -m patchkit``.

Each sub-command lives in its own module exposing ``add_parser(subparsers)`` (which registers
the sub-command and sets ``func`` to a ``run(args) -> int`` callable). Exit status: 0 success,
2 bad input or usage (one line on stderr naming the file or key), 1 anything else.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys

from patchkit.errors import PatchkitError

# Sub-command modules, in --help order. A module that fails to import is a bug, not bad input.
SUBCOMMANDS = ["demo", "detect", "train", "score", "evaluate", "chart", "calibrate", "preview", "export", "toyworld"]


class OneLineErrorParser(argparse.ArgumentParser):
    """Usage errors as one line (``patchkit CMD: error: ...``) and exit status 2, not the usage block."""

    def error(self, message: str):  # noqa: D401 - argparse's API
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def _plain(text: str | None) -> str | None:
    """Help text without reStructuredText markup (``code``, :class:`x`) for the terminal."""
    if not text:
        return text
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text)
    return text.replace("``", "")


def _clean_help(parser: argparse.ArgumentParser) -> None:
    parser.description = _plain(parser.description)
    if parser.description:
        parser.description = parser.description.replace("%%", "%")  # descriptions are not %-formatted
    for action in parser._actions:
        action.help = _plain(action.help)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _clean_help(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="patchkit",
        description="Physical adversarial patches against object detectors.",
    )
    from patchkit import __version__

    parser.add_argument("--version", action="version", version=f"patchkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineErrorParser)
    sub.required = True
    for name in SUBCOMMANDS:
        importlib.import_module(f"patchkit.cli.{name}").add_parser(sub)
    _add_output_guard(parser)
    _clean_help(parser)
    return parser


#: commands that manage their own output folder (they resume into it by design)
OWN_OUTPUT = {"patchkit demo", "patchkit train", "patchkit toyworld generate", "patchkit toyworld train-detector"}


def _add_output_guard(parser: argparse.ArgumentParser) -> None:
    """``--exist-ok`` on every command that writes to ``--out`` (see :func:`claim_output`)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _add_output_guard(sub)
    options = {o for a in parser._actions for o in a.option_strings}
    if "--out" in options and parser.prog not in OWN_OUTPUT:
        parser.add_argument("--exist-ok", action="store_true",
                            help="when --out already holds results, write to the next free NAME-2, NAME-3, ... "
                                 "(default: refuse; results are never replaced)")
        parser.set_defaults(_guard_out=True)


def _claim(args: argparse.Namespace) -> None:
    from pathlib import Path

    from patchkit.cli.common import FILE_SUFFIXES, claim_output

    out = getattr(args, "out", None)
    if not getattr(args, "_guard_out", False) or not out or getattr(args, "resume", False):
        return
    if args.command in ("export", "preview") and Path(str(out)).suffix.lower() not in FILE_SUFFIXES:
        return  # a folder for the file: the file's own name is what matters, and it is new per patch
    hint = "continue it with --resume, " if args.command == "score" else ""
    args.out = type(out)(claim_output(out, args.exist_ok, hint))  # str or Path, as the parser gave it


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _claim(args)
        return int(args.func(args) or 0)
    except PatchkitError as exc:
        print(f"patchkit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"patchkit {args.command}: interrupted; results so far are kept.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
