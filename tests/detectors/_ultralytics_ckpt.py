"""Test helper (not collected): save a model the way ultralytics saves its checkpoints."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import torch
from torch import nn


def save_ultralytics_checkpoint(model: nn.Module, path: Path, model_name: str, imgsz: int) -> Path:
    """An ultralytics-format checkpoint: a dict with the fp16 model and training metadata."""
    import ultralytics

    torch.save(
        {
            "date": datetime.now().isoformat(),
            "version": ultralytics.__version__,
            "license": "AGPL-3.0",
            "model": model.half(),
            "ema": None,
            "updates": 0,
            "optimizer": None,
            "train_args": {"imgsz": imgsz, "model": model_name},
        },
        path,
    )
    return path
