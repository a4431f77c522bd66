"""Matplotlib for the report plots of ``evaluate``, ``score`` and ``demo``.

:func:`pyplot` imports ``matplotlib.pyplot`` on first use (importing patchkit stays free of
matplotlib) on the non-interactive Agg backend: plots are written as PNG files, never shown.
"""

from __future__ import annotations

from types import ModuleType


def pyplot() -> ModuleType:
    """``matplotlib.pyplot``, on the Agg backend."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt
