"""How much of a patch a printer can reproduce: out-of-gamut share and a soft proof.

The digital patch is read as the intended appearance (sRGB, paper white = white). A colour is
*out of gamut* when no digital input prints (through the profile) within ``threshold`` dE2000
of it: the reachable set is the profile's image of a dense grid of the RGB cube.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from patchkit.printing._threads import single_thread
from patchkit.printing.colour import delta_e2000, srgb_to_lab
from patchkit.printing.lut import identity_lut
from patchkit.printing.profile import PrinterProfile


@dataclass
class GamutReport:
    share_out_of_gamut: float  # fraction of pixels farther than ``threshold`` from the printable set
    threshold: float
    distance: np.ndarray  # (H, W) dE2000 to the nearest printable colour
    predicted: np.ndarray  # (H, W, 3) uint8: the profile's prediction of the captured print
    mean_print_error: float  # mean dE2000 between the digital patch and its predicted capture


def gamut_report(profile: PrinterProfile, patch: np.ndarray, threshold: float = 3.0, grid: int = 17) -> GamutReport:
    """Out-of-gamut map and soft proof of an ``(H, W, 3)`` uint8 patch through ``profile``."""
    img = np.ascontiguousarray(patch)
    with single_thread(), torch.no_grad():
        x = torch.from_numpy(img).float().div(255.0)
        pred = profile(x.permute(2, 0, 1).unsqueeze(0))[0].permute(1, 2, 0).clamp(0, 1)
        reach = srgb_to_lab(profile.predict(identity_lut(grid).reshape(-1, 3)).double().clamp(0, 1))
        flat = img.reshape(-1, 3)
        packed = (flat[:, 0].astype(np.int64) << 16) | (flat[:, 1].astype(np.int64) << 8) | flat[:, 2]
        uniq, inv = np.unique(packed, return_inverse=True)
        cols = np.stack([(uniq >> 16) & 255, (uniq >> 8) & 255, uniq & 255], 1) / 255.0
        lab = srgb_to_lab(torch.from_numpy(cols))
        dist = torch.empty(len(lab), dtype=torch.float64)
        for i in range(0, len(lab), 2048):
            chunk = lab[i : i + 2048]
            cand = torch.cdist(chunk, reach).topk(8, largest=False).indices  # nearest in Lab, refined in dE00
            de = delta_e2000(chunk.unsqueeze(1).expand(-1, 8, -1), reach[cand])
            dist[i : i + 2048] = de.min(dim=1).values
        distance = dist.numpy()[inv.ravel()].reshape(img.shape[:2])
        err = delta_e2000(srgb_to_lab(x.double()), srgb_to_lab(pred.double())).mean().item()
    predicted = np.clip(np.round(pred.numpy() * 255), 0, 255).astype(np.uint8)
    return GamutReport(float((distance > threshold).mean()), threshold, distance, predicted, float(err))
