"""patchkit: physical adversarial patches against object detectors.

Data flow: scene -> EOT -> detector -> loss -> optimiser (training);
print -> capture -> score (physical evaluation).

Importing patchkit changes no global state: heavy dependencies (ultralytics) are imported
lazily, only when a detector of that family is built.
"""

from patchkit.errors import PatchkitError

__all__ = ["PatchkitError", "__version__"]
__version__ = "0.1.0"
