"""Patch parameterisations: what the optimiser actually updates."""

from patchkit.patches.parameterization import (
    LowResPatch,
    PalettePatch,
    PatchConfig,
    PatchParam,
    RawPatch,
    SigmoidPatch,
    build_patch,
    initial_patch,
)

__all__ = [
    "LowResPatch",
    "PalettePatch",
    "PatchConfig",
    "PatchParam",
    "RawPatch",
    "SigmoidPatch",
    "build_patch",
    "initial_patch",
]
