"""Fitting colour transforms digital sRGB -> captured RGB from measured swatches.

* :func:`fit_lattice` / :func:`fit_lattice_cv`: lattice regression (Garcia & Gupta, NeurIPS 2009,
  "Lattice Regression"): the nodes ``V`` of an ``S^3`` trilinear LUT minimise
  ``||W V - y||^2 / N + lam ||D V||^2`` with ``W`` the trilinear interpolation matrix and ``D``
  the 3-D second differences. One ``S^3 x S^3`` linear solve per ``lam``; ``lam`` is chosen by
  K-fold cross-validation scored in CIEDE2000.
* :class:`PolynomialModel` / :func:`fit_polynomial`: the global polynomial baseline (degree 3
  with cross terms is Cheung's 20-term model; degree 1 is the affine 3x4 fit).

All inputs are numpy ``(N, 3)`` arrays of RGB in [0, 1]: ``x`` digital sRGB, ``y`` captured RGB
(sRGB-encoded, paper-white relative).
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field

import numpy as np
import torch

from patchkit.errors import PatchkitError
from patchkit.printing._threads import single_thread
from patchkit.printing.colour import delta_e2000_srgb
from patchkit.printing.lut import apply_lut_numpy, trilinear_weights

DEFAULT_LAMBDAS = tuple(float(v) for v in np.logspace(-5, 0, 11))


def delta_e_rgb(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """CIEDE2000 between two ``(N, 3)`` arrays of sRGB-encoded colours (clamped to [0, 1])."""
    ta = torch.as_tensor(np.clip(a, 0.0, 1.0), dtype=torch.float64)
    tb = torch.as_tensor(np.clip(b, 0.0, 1.0), dtype=torch.float64)
    return delta_e2000_srgb(ta, tb).numpy()


def error_stats(de: np.ndarray) -> dict[str, float]:
    """Mean / p95 / max of a set of colour differences (dE2000)."""
    de = np.asarray(de, dtype=np.float64)
    return {
        "mean": float(de.mean()),
        "p95": float(np.percentile(de, 95)),
        "max": float(de.max()),
    }


def second_difference_matrix(size: int) -> np.ndarray:
    """``D`` ``(3 S^2 (S-2), S^3)``: second differences of a lattice along r, g and b."""
    n = size**3
    idx = np.arange(n).reshape(size, size, size)
    rows = []
    for axis in range(3):
        a = np.moveaxis(idx, axis, 0)
        lo, mid, hi = a[:-2].ravel(), a[1:-1].ravel(), a[2:].ravel()
        d = np.zeros((lo.size, n))
        r = np.arange(lo.size)
        d[r, lo] = 1.0
        d[r, mid] = -2.0
        d[r, hi] = 1.0
        rows.append(d)
    return np.concatenate(rows, axis=0)


@functools.lru_cache(maxsize=4)
def _regulariser(size: int) -> np.ndarray:
    """``D^T D`` (read-only; a pure function of ``size``, so it is cached)."""
    d = second_difference_matrix(size)
    reg = d.T @ d
    reg.setflags(write=False)
    return reg


def _solve(wtw: np.ndarray, wty: np.ndarray, reg: np.ndarray, lam: float) -> np.ndarray:
    a = torch.from_numpy(wtw + lam * reg)
    a.diagonal().add_(1e-10)
    chol = torch.linalg.cholesky(a)
    return torch.cholesky_solve(torch.from_numpy(np.ascontiguousarray(wty)), chol).numpy()


def _normal_equations(x: np.ndarray, y: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(W^T W / N, W^T y / N)`` accumulated from the 8 trilinear weights of each point."""
    idx, wts = trilinear_weights(x, size)
    n_nodes = size**3
    wtw = np.zeros((n_nodes, n_nodes))
    np.add.at(wtw, (idx[:, :, None], idx[:, None, :]), wts[:, :, None] * wts[:, None, :])
    wty = np.zeros((n_nodes, y.shape[1]))
    np.add.at(wty, idx, wts[:, :, None] * y[:, None, :])
    return wtw / len(x), wty / len(x)


def fit_lattice(
    x: np.ndarray, y: np.ndarray, lam: float = 1e-3, size: int = 9, clip: bool = True
) -> np.ndarray:
    """Lattice regression: LUT ``(S, S, S, 3)`` float64 from digital ``x`` and captured ``y``."""
    x, y = _check_xy(x, y)
    wtw, wty = _normal_equations(x, y, size)
    with single_thread():
        v = _solve(wtw, wty, _regulariser(size), lam)
    if clip:
        v = np.clip(v, 0.0, 1.0)
    return v.reshape(size, size, size, 3)


@dataclass
class LatticeFit:
    """Result of :func:`fit_lattice_cv`."""

    lut: np.ndarray  # (S, S, S, 3) float64, fitted on all swatches with the chosen lam
    lam: float
    cv: dict[str, float]  # held-out dE2000 mean / p95 / max and rgb_rmse at the chosen lam
    cv_by_lambda: dict[str, float] = field(default_factory=dict)  # lam -> held-out mean dE
    cv_residuals: np.ndarray | None = None  # (N,) held-out dE2000 per swatch


def kfold_indices(n: int, folds: int, seed: int = 0) -> list[np.ndarray]:
    """Shuffled split of ``range(n)`` into ``folds`` held-out index sets."""
    perm = np.random.default_rng(seed).permutation(n)
    return [np.sort(perm[i::folds]) for i in range(folds)]


def fit_lattice_cv(
    x: np.ndarray,
    y: np.ndarray,
    size: int = 9,
    lambdas: tuple[float, ...] = DEFAULT_LAMBDAS,
    folds: int = 5,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> LatticeFit:
    """Lattice regression with ``lam`` chosen by K-fold CV (mean held-out dE2000).

    ``groups`` (optional, ``(N,)`` ints) keeps replicates of one digital colour in one fold, so
    the CV error is not flattered by a replicate in the training set.
    """
    x, y = _check_xy(x, y)
    if len(x) < 2 * folds:
        raise PatchkitError(f"too few swatches to fit ({len(x)}); need at least {2 * folds}")
    reg = _regulariser(size)
    if groups is None:
        fold_sets = kfold_indices(len(x), folds, seed)
    else:
        uniq, inv = np.unique(groups, return_inverse=True)
        gf = kfold_indices(len(uniq), folds, seed)
        fold_of_group = np.empty(len(uniq), dtype=np.int64)
        for f, g in enumerate(gf):
            fold_of_group[g] = f
        fold_sets = [np.flatnonzero(fold_of_group[inv] == f) for f in range(folds)]
    with single_thread():
        return _cv(x, y, size, lambdas, fold_sets, reg)


def _cv(x: np.ndarray, y: np.ndarray, size: int, lambdas: tuple[float, ...], fold_sets: list[np.ndarray], reg: np.ndarray) -> LatticeFit:
    preds = {lam: np.zeros_like(y) for lam in lambdas}
    for test in fold_sets:
        train = np.setdiff1d(np.arange(len(x)), test)
        wtw, wty = _normal_equations(x[train], y[train], size)
        for lam in lambdas:
            v = np.clip(_solve(wtw, wty, reg, lam), 0.0, 1.0)
            preds[lam][test] = apply_lut_numpy(v.reshape(size, size, size, 3), x[test])
    scores = {}
    des = {}
    for lam in lambdas:
        des[lam] = delta_e_rgb(preds[lam], y)
        scores[lam] = float(des[lam].mean())
    best = min(lambdas, key=lambda k: scores[k])
    stats = error_stats(des[best])
    stats["rgb_rmse"] = float(np.sqrt(np.mean((preds[best] - y) ** 2)))
    lut = fit_lattice(x, y, best, size)
    return LatticeFit(
        lut=lut,
        lam=best,
        cv=stats,
        cv_by_lambda={f"{k:.3g}": v for k, v in scores.items()},
        cv_residuals=des[best],
    )


def _check_xy(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 3 or y.shape != x.shape:
        raise PatchkitError(f"colour pairs must be two (N, 3) arrays, got {x.shape} and {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise PatchkitError("colour measurements contain NaN or infinity")
    return x, y


def polynomial_exponents(degree: int) -> list[tuple[int, int, int]]:
    """All monomials ``r^i g^j b^k`` with ``i + j + k <= degree`` (constant first)."""
    terms = [
        e for e in itertools.product(range(degree + 1), repeat=3) if sum(e) <= degree
    ]
    return sorted(terms, key=lambda e: (sum(e), tuple(-v for v in e)))


def polynomial_features(x: torch.Tensor | np.ndarray, degree: int) -> torch.Tensor | np.ndarray:
    """Monomial features ``(..., T)`` of colours ``(..., 3)`` (torch or numpy)."""
    cols = [x[..., 0] ** i * x[..., 1] ** j * x[..., 2] ** k for i, j, k in polynomial_exponents(degree)]
    if isinstance(x, torch.Tensor):
        return torch.stack(cols, dim=-1)
    return np.stack(cols, axis=-1)


class PolynomialModel(torch.nn.Module):
    """Global polynomial colour transform ``y = features(x) @ coef`` (the baseline model).

    ``forward`` takes ``(N, 3, H, W)`` images in [0, 1] and returns the same shape.
    """

    def __init__(self, coef: np.ndarray | torch.Tensor, degree: int) -> None:
        super().__init__()
        self.degree = int(degree)
        self.register_buffer("coef", torch.as_tensor(np.asarray(coef), dtype=torch.float32))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Numpy ``(N, 3)`` -> ``(N, 3)``."""
        return polynomial_features(np.asarray(x, dtype=np.float64), self.degree) @ self.coef.double().numpy()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.clamp(0, 1).movedim(1, -1)
        y = polynomial_features(x, self.degree) @ self.coef.to(x.dtype)
        return y.movedim(-1, 1)


def fit_polynomial(x: np.ndarray, y: np.ndarray, degree: int = 3, ridge: float = 1e-6) -> PolynomialModel:
    """Ridge least-squares polynomial fit (degree 1 = affine, 3 = Cheung-20)."""
    x, y = _check_xy(x, y)
    f = polynomial_features(x, degree)
    a = f.T @ f / len(x)
    a[np.diag_indices_from(a)] += ridge
    coef = np.linalg.solve(a, f.T @ y / len(x))
    return PolynomialModel(coef, degree)
