"""`PrinterProfile`: a fitted, differentiable digital-sRGB -> captured-RGB transform.

A profile is a 3-D LUT (default 9x9x9, trilinear) plus everything needed to trust and refit
it. On disk it is a folder (``printers/NAME/``) holding

* ``profile.json``: schema version, chart id, printer/paper/camera notes, paper white and
  black, the fit statistics, warnings, the photos used and ``sha256``;
* ``profile.npz``: ``lut`` ``(S, S, S, 3)`` float32 and the raw measurements (digital colours,
  measured colours, spreads, positions, photo index, kept flags) for refits.

``sha256`` covers the JSON fields (without itself) and every array, so an edited or truncated
profile fails to load with a clear message. ``PrinterProfile.load`` also accepts the ``.json`` or
``.npz`` file itself, or ``NAME.json`` + ``NAME.npz`` written with ``save("NAME.json")``.

Input space: digital sRGB-encoded RGB in [0, 1] (what is exported). Output space: the camera's
RGB, sRGB-encoded, relative to the paper white (paper white -> about (1, 1, 1)), in [0, 1].
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from patchkit.errors import PatchkitError
from patchkit.io import atomic_write_bytes, atomic_write_json
from patchkit.printing.lut import apply_lut, apply_lut_points, identity_lut

SCHEMA = "patchkit.printer_profile"
SCHEMA_VERSION = 1
INPUT_SPACE = "digital sRGB (encoded), [0, 1]"
OUTPUT_SPACE = "camera RGB (sRGB-encoded), paper-white relative, [0, 1]"
JSON_NAME = "profile.json"
NPZ_NAME = "profile.npz"


def _canonical_hash(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    body = {k: v for k, v in meta.items() if k != "sha256"}
    h.update(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8"))
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(key.encode("utf-8"))
        h.update(str(a.dtype.str).encode("ascii"))
        h.update(str(a.shape).encode("ascii"))
        h.update(a.tobytes())
    return h.hexdigest()


def _resolve_paths(path: str | Path) -> tuple[Path, Path]:
    path = Path(path)
    if path.suffix.lower() in (".json", ".npz"):
        return path.with_suffix(".json"), path.with_suffix(".npz")
    return path / JSON_NAME, path / NPZ_NAME


class PrinterProfile(torch.nn.Module):
    """Digital sRGB images ``(N, 3, H, W)`` in [0, 1] -> predicted captured RGB, same shape.

    Args:
        lut: ``(S, S, S, 3)`` node outputs, indexed ``[r, g, b]`` (see :mod:`patchkit.printing.lut`).
        meta: JSON-serialisable description (notes, fit statistics, ...).
        measurements: named numpy arrays kept for refits (saved in the NPZ).

    ``forward(images, luts=None)`` uses the profile's LUT, or per-image LUTs ``(N, S, S, S, 3)``
    drawn with :meth:`sample_luts` (profile uncertainty).
    """

    def __init__(
        self,
        lut: torch.Tensor | np.ndarray,
        meta: dict[str, Any] | None = None,
        measurements: dict[str, np.ndarray] | None = None,
    ) -> None:
        super().__init__()
        lut_t = torch.as_tensor(np.asarray(lut, dtype=np.float32) if isinstance(lut, np.ndarray) else lut)
        lut_t = lut_t.detach().float().clone()
        s = lut_t.shape[0] if lut_t.dim() == 4 else -1
        if lut_t.dim() != 4 or lut_t.shape != (s, s, s, 3) or s < 2:
            raise PatchkitError(f"a profile LUT must be (S, S, S, 3) with S >= 2, got {tuple(lut_t.shape)}")
        if not torch.isfinite(lut_t).all():
            raise PatchkitError("the profile LUT contains NaN or infinity")
        self.register_buffer("lut", lut_t)
        self.meta: dict[str, Any] = dict(meta or {})
        self.meta.setdefault("schema", SCHEMA)
        self.meta.setdefault("schema_version", SCHEMA_VERSION)
        self.meta.setdefault("input_space", INPUT_SPACE)
        self.meta.setdefault("output_space", OUTPUT_SPACE)
        self.meta["lut_size"] = int(s)
        self.measurements: dict[str, np.ndarray] = {
            k: np.asarray(v) for k, v in (measurements or {}).items()
        }

    # ------------------------------------------------------------------ constructors
    @classmethod
    def identity(cls, size: int = 9, name: str = "identity") -> "PrinterProfile":
        """The profile that predicts the capture equals the digital colour (no printer model)."""
        meta = {
            "name": name,
            "chart_id": None,
            "model": "identity",
            "notes": {"text": "identity: no printer/camera model (digital == captured)"},
            "paper_white": [1.0, 1.0, 1.0],
            "paper_black": [0.0, 0.0, 0.0],
            "fit": {},
            "uncertainty_rgb": 0.0,
        }
        return cls(identity_lut(size), meta)

    @classmethod
    def load(cls, path: str | Path) -> "PrinterProfile":
        """Load a profile folder (or its ``.json`` / ``.npz``); bad files raise PatchkitError."""
        jpath, npath = _resolve_paths(path)
        if not jpath.is_file():
            raise PatchkitError(f"no printer profile here (missing {jpath.name})", path)
        if not npath.is_file():
            raise PatchkitError(f"printer profile is incomplete (missing {npath.name})", path)
        try:
            meta = json.loads(jpath.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PatchkitError(f"cannot read printer profile JSON ({exc})", jpath) from exc
        if not isinstance(meta, dict) or meta.get("schema") != SCHEMA:
            raise PatchkitError(f"not a patchkit printer profile (schema is not {SCHEMA!r})", jpath)
        version = meta.get("schema_version")
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise PatchkitError(
                f"profile schema_version {version!r} is not supported (this patchkit reads <= {SCHEMA_VERSION})",
                jpath,
            )
        try:
            with np.load(npath, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception as exc:  # zipfile/ValueError/OSError variants
            raise PatchkitError(f"cannot read printer profile arrays ({exc})", npath) from exc
        if "lut" not in arrays:
            raise PatchkitError("printer profile arrays have no 'lut'", npath)
        expected = meta.get("sha256")
        actual = _canonical_hash(meta, arrays)
        if expected != actual:
            raise PatchkitError(
                "printer profile sha256 does not match its contents (edited or corrupted; refit or re-save it)",
                jpath,
            )
        lut = arrays.pop("lut")
        prof = cls(lut, meta, arrays)
        prof.meta["sha256"] = actual
        return prof

    # ------------------------------------------------------------------ saving
    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {"lut": self.lut.detach().cpu().numpy().astype(np.float32)}
        arrays.update(self.measurements)
        return arrays

    @property
    def sha256(self) -> str:
        """Hash of the profile's JSON fields and arrays (what ``save`` records)."""
        return _canonical_hash(self._json_meta(), self._arrays())

    def _json_meta(self) -> dict[str, Any]:
        meta = {k: v for k, v in self.meta.items() if k != "sha256"}
        return json.loads(json.dumps(meta))  # normalise tuples/np scalars exactly as on disk

    def save(self, path: str | Path) -> Path:
        """Write ``profile.json`` + ``profile.npz`` into folder ``path`` (or ``X.json`` + ``X.npz``
        when ``path`` ends in .json/.npz); returns the JSON path."""
        jpath, npath = _resolve_paths(path)
        meta = self._json_meta()
        meta.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
        arrays = self._arrays()
        meta["sha256"] = _canonical_hash(meta, arrays)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        atomic_write_bytes(npath, buf.getvalue())
        atomic_write_json(jpath, meta)
        self.meta = meta
        return jpath

    # ------------------------------------------------------------------ use
    @property
    def size(self) -> int:
        return int(self.lut.shape[0])

    @property
    def uncertainty(self) -> float:
        """Default residual scale (RGB units) for :meth:`sample_luts`: the cross-validated RGB
        RMS error of the fit, or ``meta['uncertainty_rgb']`` when set."""
        if self.meta.get("uncertainty_rgb") is not None:
            return float(self.meta["uncertainty_rgb"])
        return float(self.meta.get("fit", {}).get("cv_rgb_rmse", 0.0))

    def forward(self, images: torch.Tensor, luts: torch.Tensor | None = None) -> torch.Tensor:
        """``(N, 3, H, W)`` digital sRGB in [0, 1] -> predicted captured RGB ``(N, 3, H, W)``."""
        return apply_lut(images, self.lut if luts is None else luts)

    def predict(self, colours: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Point-set version: ``(..., 3)`` digital colours -> ``(..., 3)`` captured."""
        t = torch.as_tensor(colours, dtype=self.lut.dtype, device=self.lut.device)
        return apply_lut_points(t, self.lut)

    def sample_luts(
        self,
        batch: int,
        generator: torch.Generator | None = None,
        sigma: float | None = None,
        coarse: int = 3,
    ) -> torch.Tensor:
        """``(batch, S, S, S, 3)`` perturbed copies of the LUT: each adds a smooth random
        residual (a ``coarse^3`` lattice of N(0, sigma) per channel, trilinearly upsampled).
        ``sigma`` defaults to :attr:`uncertainty` (the calibration error, RGB units)."""
        sigma = self.uncertainty if sigma is None else float(sigma)
        return self.lut.unsqueeze(0) + smooth_residual(
            batch, self.size, sigma, generator, coarse, self.lut.device, self.lut.dtype
        )

    def perturbed(
        self, generator: torch.Generator | None = None, sigma: float | None = None, coarse: int = 3
    ) -> "PrinterProfile":
        """A new profile whose LUT carries one smooth random residual (see :meth:`sample_luts`)."""
        lut = self.sample_luts(1, generator, sigma, coarse)[0].clamp(0.0, 1.0)
        meta = dict(self.meta)
        meta["perturbed_from"] = self.meta.get("sha256")
        meta.pop("sha256", None)
        return PrinterProfile(lut, meta)

    def extra_repr(self) -> str:
        return f"size={self.size}, name={self.meta.get('name')!r}, chart_id={self.meta.get('chart_id')!r}"


def smooth_residual(
    batch: int,
    size: int,
    sigma: float,
    generator: torch.Generator | None = None,
    coarse: int = 3,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``(batch, S, S, S, 3)`` smooth random fields: N(0, sigma) on a ``coarse^3`` lattice,
    trilinearly upsampled to ``S^3`` (one draw per batch element)."""
    if batch < 1 or coarse < 2:
        raise ValueError("batch must be >= 1 and coarse >= 2")
    gen_device = generator.device if generator is not None else "cpu"
    noise = torch.randn(batch, coarse, coarse, coarse, 3, generator=generator, device=gen_device)
    noise = (noise * sigma).to(device=device, dtype=dtype)
    if math.isclose(sigma, 0.0):
        return torch.zeros(batch, size, size, size, 3, device=device, dtype=dtype)
    pts = identity_lut(size, dtype).to(device).reshape(1, -1, 1, 3).permute(0, 3, 1, 2)
    up = apply_lut(pts.expand(batch, -1, -1, -1), noise)  # (B, 3, S^3, 1)
    return up.squeeze(-1).permute(0, 2, 1).reshape(batch, size, size, size, 3)
