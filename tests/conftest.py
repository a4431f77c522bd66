"""Shared test fixtures.

``shared_data`` points at ``../shared/data`` (real weights and Penn-Fudan photos); tests that use it
skip cleanly when it is absent. Nothing here downloads anything.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PATCHKIT_SHARED", REPO.parent / "shared")) / "data"
YOLOV5N = SHARED_DATA / "weights" / "yolov5n-v7.0.pt"
YOLOV5N_STATE_DICT = SHARED_DATA / "weights" / "yolov5n_state_dict.pt"
PENNFUDAN = SHARED_DATA / "pennfudan"

# Never let ultralytics reach the network or write settings into the home directory of CI.
os.environ.setdefault("YOLO_OFFLINE", "1")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not YOLOV5N.is_file() or not PENNFUDAN.is_dir():
        pytest.skip("../shared/data is absent")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield
