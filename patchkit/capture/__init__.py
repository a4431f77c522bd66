"""Print-and-capture simulator: simulated printers, a camera model, and renderers that show a
chart or patch as printed and photographed, or composite a printed patch into scenes and video
frames at a known pose. Used by calibration tests, the demo and video-scoring tests."""

from patchkit.capture.camera import SimulatedCamera, jpeg_round_trip
from patchkit.capture.printers import GamutPrinter, HalftonePrinter, make_printer, print_reflectance
from patchkit.capture.render import (
    SheetPose,
    composite_print,
    photograph_chart,
    photograph_sheet,
    project_plane,
    random_sheet_pose,
    simulated_truth,
)

__all__ = [
    "SimulatedCamera",
    "GamutPrinter",
    "HalftonePrinter",
    "SheetPose",
    "composite_print",
    "jpeg_round_trip",
    "make_printer",
    "photograph_chart",
    "photograph_sheet",
    "print_reflectance",
    "project_plane",
    "random_sheet_pose",
    "simulated_truth",
]
