"""Shared, cached simulated chart photos for the printing tests (not a test module)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from patchkit.capture import SimulatedCamera, SheetPose, make_printer, photograph_chart, simulated_truth
from patchkit.printing.chart import ChartLayout, layout_for_key
from patchkit.printing._threads import single_thread
from patchkit.printing.calibrate import calibrate
from patchkit.printing.fit import delta_e_rgb

PRINTERS = Path(__file__).resolve().parents[2] / "printers"  # shipped profiles
PHOTO_SIZE = (870, 1160)  # 1.01 MP, the smallest photo size in the acceptance bar
NOMINAL = dict(strength=1.0, blur=1.0, jpeg=85, perspective=0.08)
HARD = dict(strength=1.5, blur=1.5, jpeg=70, perspective=0.12)


@dataclass
class Scenario:
    layout: ChartLayout
    printer: object
    camera: SimulatedCamera
    photo: np.ndarray
    pose: SheetPose  # page mm -> photo px

    def truth(self, digital: np.ndarray) -> np.ndarray:
        return simulated_truth(self.printer, self.camera, digital)

    def true_marker_corners(self) -> dict[int, np.ndarray]:
        ox, oy = self.layout.origin_mm
        return {m: self.pose.project(c + np.array([ox, oy])) for m, c in self.layout.marker_corners_mm().items()}


def make_scenario(kind: str, hard: bool, seed: int = 1, key: int = 0, glare=None, shot: int = 0) -> Scenario:
    cfg = HARD if hard else NOMINAL
    layout = layout_for_key(key)
    printer = make_printer(kind, seed, cfg["strength"])
    paper = printer.reflectance(np.ones((1, 3)))[0]
    camera = SimulatedCamera.from_seed(seed + 10, strength=cfg["strength"], blur_sigma=cfg["blur"], jpeg_quality=cfg["jpeg"], paper=paper)
    photo, pose = photograph_chart(
        layout, printer, camera, PHOTO_SIZE, seed=seed + 20 + 100 * shot, perspective=cfg["perspective"], glare=glare
    )
    return Scenario(layout, printer, camera, photo, pose)


@functools.lru_cache(maxsize=None)
def scenario(kind: str, hard: bool, seed: int = 1) -> Scenario:
    return make_scenario(kind, hard, seed)


@functools.lru_cache(maxsize=None)
def calibrated(kind: str, hard: bool, seed: int = 1):
    """``(profile, report)`` of ``calibrate`` on the cached scenario's photo."""
    return calibrate([("photo", scenario(kind, hard, seed).photo)])


@pytest.fixture
def one_thread():
    """Small tensors: one torch thread is much faster on a busy machine (restored after)."""
    with single_thread():
        yield


def sample_colours(n: int = 2000, seed: int = 12345) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 3))


def stats(de: np.ndarray) -> tuple[float, float]:
    return float(de.mean()), float(np.percentile(de, 95))


def de(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return delta_e_rgb(a, b)
