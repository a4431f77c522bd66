"""Options shared by several sub-commands."""

from __future__ import annotations

import argparse
from pathlib import Path

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


def add_quiet_option(parser: argparse.ArgumentParser) -> None:
    """``--quiet``, as ``score`` and ``demo`` always had it: no progress bars (the results are still
    printed; warnings and errors go to stderr). Accepted by every command, so scripts can pass it."""
    parser.add_argument("--quiet", action="store_true", help="no progress bars (results are still printed)")


def check_range(option: str, value: float, low: float, high: float) -> None:
    """Stop with ``--OPTION VALUE is outside LOW..HIGH`` unless ``low <= value <= high``."""
    from patchkit.errors import PatchkitError

    if not low <= value <= high:
        raise PatchkitError(f"--{option} {value} is outside {low}..{high}")


def add_json_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", metavar="FILE", help=f"also write {what} as JSON to FILE")


def write_json_option(args: argparse.Namespace, payload: dict) -> None:
    """Write ``payload`` to ``--json FILE`` (atomically) when the option was given."""
    if getattr(args, "json", None):
        from patchkit.io import atomic_write_json

        atomic_write_json(args.json, payload)


def add_patch_input(parser: argparse.ArgumentParser, help: str) -> None:
    """The patch image, positional (``patchkit export PATCH.png``) or ``--patch PATCH.png`` as in
    ``evaluate``; :func:`patch_input` reads whichever was given."""
    parser.add_argument("patch", nargs="?", metavar="PATCH.png", help=help)
    parser.add_argument("--patch", dest="patch_option", metavar="PATCH.png", help="the same, as an option")


def patch_input(args: argparse.Namespace) -> str:
    from patchkit.errors import PatchkitError

    if args.patch and args.patch_option and args.patch != args.patch_option:
        raise PatchkitError(f"two patches given ({args.patch} and --patch {args.patch_option}); give one")
    patch = args.patch or args.patch_option
    if not patch:
        raise PatchkitError("a patch image is required (PATCH.png or --patch PATCH.png)")
    return patch


def output_file(out: str, patch: str, suffix: str, suffixes: tuple[str, ...]) -> Path:
    """``--out`` as a file (its suffix one of ``suffixes``) or a folder (then ``DIR/<patch stem><suffix>``)."""
    from patchkit.errors import PatchkitError

    path = Path(out)
    if path.suffix.lower() in suffixes:
        return path
    if path.suffix and not path.is_dir():
        raise PatchkitError(f"--out must be a folder or end in {' or '.join(suffixes)}", path)
    return path / f"{Path(patch).stem}{suffix}"


FILE_SUFFIXES = (".pdf", ".png", ".json", ".npz", ".jpg")


def claim_output(path: str | Path, exist_ok: bool, resume_hint: str = "") -> Path:
    """The output path a command may write: ``path`` when it is free (absent, or an empty folder);
    else, with ``exist_ok``, the next free ``NAME-2``, ``NAME-3``... (``NAME-2.pdf`` for a file);
    else a one-line :class:`PatchkitError` (a run's results are never silently replaced)."""
    from patchkit.errors import PatchkitError

    path = Path(path)

    def taken(p: Path) -> bool:
        return p.exists() and (not p.is_dir() or any(p.iterdir()))

    if not taken(path):
        return path
    k = 2
    while taken(candidate := path.with_name(f"{path.stem}-{k}{path.suffix}")):
        k += 1
    if exist_ok:
        return candidate
    raise PatchkitError(f"already holds results; {resume_hint}write elsewhere with --out, or add --exist-ok "
                        f"to use {candidate}", path)
