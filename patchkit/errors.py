"""User-facing errors.

Every bad input (a file, a key, a value) raises :class:`PatchkitError` with a one-line message
that names the file or key and the problem. The CLI prints it on stderr and exits with status 2.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Iterable


class PatchkitError(Exception):
    """A bad input or usage: one line naming the file or key and the problem."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        message = " ".join(str(message).split())  # always one line
        if path is not None:
            message = f"{path}: {message}"
        super().__init__(message)


def suggest(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest valid choice, or ``""``."""
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""
