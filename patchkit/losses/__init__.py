"""Attack objectives: one ``nn.Module`` per file (torchattacks style)."""

from patchkit.losses.config import LossConfig
from patchkit.losses.printability import NonPrintabilityScore
from patchkit.losses.suppression import TargetSuppression
from patchkit.losses.targeted import TargetedMisclassification
from patchkit.losses.total_variation import TotalVariation

__all__ = [
    "LossConfig",
    "NonPrintabilityScore",
    "TargetSuppression",
    "TargetedMisclassification",
    "TotalVariation",
]
