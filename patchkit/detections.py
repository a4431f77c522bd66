"""Final detections of one image, as plain tensors (supervision-style dataclass)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Detections:
    """Detections of one image after NMS.

    Attributes:
        xyxy: ``(n, 4)`` float boxes in pixels of the image they were computed on.
        conf: ``(n,)`` confidences in [0, 1].
        cls: ``(n,)`` long class ids.
    """

    xyxy: Tensor
    conf: Tensor
    cls: Tensor

    def __post_init__(self) -> None:
        n = self.xyxy.shape[0]
        if self.xyxy.shape != (n, 4) or self.conf.shape != (n,) or self.cls.shape != (n,):
            raise ValueError(
                f"Detections shapes disagree: xyxy {tuple(self.xyxy.shape)}, "
                f"conf {tuple(self.conf.shape)}, cls {tuple(self.cls.shape)}"
            )

    def __len__(self) -> int:
        return self.xyxy.shape[0]

    def __getitem__(self, index: Tensor | slice) -> "Detections":
        return Detections(self.xyxy[index], self.conf[index], self.cls[index])

    @classmethod
    def empty(cls, device: torch.device | str = "cpu") -> "Detections":
        return cls(
            torch.zeros(0, 4, device=device),
            torch.zeros(0, device=device),
            torch.zeros(0, dtype=torch.long, device=device),
        )

    def to(self, device: torch.device | str) -> "Detections":
        return Detections(self.xyxy.to(device), self.conf.to(device), self.cls.to(device))
