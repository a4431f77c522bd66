"""Printing: colour calibration charts, printer profiles, palettes and print export.

The flow is chart -> photo -> :func:`calibrate` -> :class:`PrinterProfile` (used inside EOT) ->
exact print export. See docs in ``patchkit/printing/*.py`` for units and spaces: digital colours
are sRGB-encoded in [0, 1]; captured colours are camera RGB, sRGB-encoded, paper-white relative.
"""

from patchkit.printing.lut import apply_lut, identity_lut
from patchkit.printing.palette import legacy_nps_palette, palette_from_profile
from patchkit.printing.profile import PrinterProfile
from patchkit.printing.transform import RandomPrinterProfile

__all__ = [
    "PrinterProfile",
    "RandomPrinterProfile",
    "apply_lut",
    "identity_lut",
    "legacy_nps_palette",
    "palette_from_profile",
]
