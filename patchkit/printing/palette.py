"""Printability palettes for the non-printability score (NPS), all in DIGITAL sRGB [0, 1].

* :func:`legacy_nps_palette`: the 30 RGB triplets used by Sharif et al. (CCS 2016), RP2
  (``30values.txt`` / ``npstriplets.txt`` in evtimovi/robust_physical_perturbations) and
  adversarial-yolo, kept to reproduce papers. These are *photographed* colours of a printed
  palette, so pulling digital pixels towards them mixes the digital and the captured spaces;
  prefer a profile.
* :func:`palette_from_profile`: ``k`` digital colours whose predicted prints (through the
  profile) are the k-means centres of everything the printer can produce, measured in CIELAB.
  Pulling digital pixels towards these colours is self-consistent: each palette entry is a
  digital value whose print is a representative reachable colour.
"""

from __future__ import annotations

import torch

from patchkit.printing._threads import single_thread
from patchkit.printing.colour import srgb_to_lab
from patchkit.printing.lut import identity_lut
from patchkit.printing.profile import PrinterProfile

# 8-bit values of the 30 legacy triplets (the published file stores them divided by 255).
_LEGACY_NPS_8BIT = (
    (27, 14, 28), (123, 24, 43), (128, 134, 45), (21, 81, 47), (122, 156, 132),
    (19, 79, 117), (173, 38, 46), (22, 36, 67), (68, 94, 122), (194, 138, 139),
    (187, 126, 70), (66, 90, 46), (122, 57, 93), (69, 22, 30), (181, 82, 51),
    (70, 35, 75), (192, 193, 161), (73, 140, 105), (121, 74, 39), (191, 179, 73),
    (25, 109, 113), (129, 166, 168), (32, 109, 60), (125, 149, 86), (67, 126, 67),
    (19, 38, 32), (23, 52, 92), (175, 40, 77), (77, 139, 147), (183, 84, 104),
)


def legacy_nps_palette() -> torch.Tensor:
    """The legacy 30-colour NPS palette, ``(30, 3)`` float32 in [0, 1]."""
    return torch.tensor(_LEGACY_NPS_8BIT, dtype=torch.float32) / 255.0


def load_palette(name: str, size: int = 32) -> torch.Tensor:
    """A palette by name: ``legacy`` -> the literature's 30 colours; else a printer profile path ->
    its ``size`` derived colours (:func:`palette_from_profile`). ``(K, 3)`` sRGB in [0, 1]."""
    if name == "legacy":
        return legacy_nps_palette()
    return palette_from_profile(PrinterProfile.load(name), size)


def spread_colours(palette: torch.Tensor, k: int) -> torch.Tensor:
    """``k`` colours of ``palette`` ``(M, 3)`` (sRGB in [0, 1]) as far apart as possible in CIELAB
    (farthest-point sampling from the darkest), e.g. a camouflage's few colours out of a larger
    palette; the whole palette when ``k >= M``. Sorted by lightness."""
    if k >= len(palette):
        return palette
    lab = srgb_to_lab(palette.double())
    chosen = [int(lab[:, 0].argmin())]
    d = torch.cdist(lab, lab[chosen]).min(dim=1).values
    while len(chosen) < k:
        chosen.append(int(d.argmax()))
        d = torch.minimum(d, torch.cdist(lab, lab[chosen[-1:]]).squeeze(1))
    idx = torch.tensor(chosen)
    return palette[idx[torch.argsort(lab[idx, 0])]]


def palette_from_profile(
    profile: PrinterProfile,
    k: int = 30,
    grid: int = 17,
    iters: int = 50,
    seed: int = 0,
) -> torch.Tensor:
    """``(k, 3)`` digital sRGB colours in [0, 1] spread over the printer's reachable colours.

    The digital cube is sampled on a ``grid^3`` lattice and mapped through the profile; k-means
    (k-means++ start, seeded) runs on the predicted captures in CIELAB; each centre is then
    replaced by the digital grid colour whose predicted capture is nearest to it (a medoid), so
    every palette entry is exactly printable through the profile. Sorted by lightness.
    """
    if k < 1:
        raise ValueError("k must be >= 1")
    digital = identity_lut(grid, torch.float64).reshape(-1, 3)
    if k > len(digital):
        raise ValueError(f"k={k} exceeds the {len(digital)} grid colours; raise grid")
    with single_thread(), torch.no_grad():
        return _palette(profile, digital, k, iters, seed)


def _palette(profile: PrinterProfile, digital: torch.Tensor, k: int, iters: int, seed: int) -> torch.Tensor:
    captured = profile.predict(digital.float()).double().clamp(0, 1)
    lab = srgb_to_lab(captured)
    gen = torch.Generator().manual_seed(seed)
    centres = _kmeans_pp_init(lab, k, gen)
    for _ in range(iters):
        assign = torch.cdist(lab, centres).argmin(dim=1)
        new = torch.zeros_like(centres).index_add_(0, assign, lab)
        count = torch.bincount(assign, minlength=k).unsqueeze(1)
        new = torch.where(count > 0, new / count.clamp(min=1), centres)
        if torch.allclose(new, centres):
            break
        centres = new
    medoid = torch.cdist(centres, lab).argmin(dim=1)
    medoid = torch.unique(medoid)  # two centres can share a medoid only in degenerate profiles
    pal = digital[medoid]
    pal = pal[torch.argsort(lab[medoid, 0])]
    return pal.float()


def _kmeans_pp_init(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    first = torch.randint(len(x), (1,), generator=gen)
    centres = [x[first[0]]]
    d2 = ((x - centres[0]) ** 2).sum(dim=1)
    for _ in range(1, k):
        probs = d2 / d2.sum() if d2.sum() > 0 else torch.full_like(d2, 1.0 / len(d2))
        nxt = torch.multinomial(probs, 1, generator=gen)[0]
        centres.append(x[nxt])
        d2 = torch.minimum(d2, ((x - x[nxt]) ** 2).sum(dim=1))
    return torch.stack(centres)
