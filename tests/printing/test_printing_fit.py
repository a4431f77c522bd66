"""Lattice regression, CV choice of smoothness, polynomial baseline."""

import numpy as np
import pytest

from _printing_sim import one_thread  # noqa: F401 (fixture)

from patchkit.errors import PatchkitError
from patchkit.printing.fit import (
    delta_e_rgb,
    fit_lattice,
    fit_lattice_cv,
    fit_polynomial,
    polynomial_exponents,
)
from patchkit.printing.lut import apply_lut_numpy


def _printer_like(x):
    """A smooth, hue-dependent non-linear map of the cube into [0.05, 0.95]."""
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    y = np.stack(
        [
            0.08 + 0.85 * r**1.3 + 0.05 * np.sin(3 * g) * b,
            0.07 + 0.8 * g**0.9 + 0.06 * r * (1 - b),
            0.1 + 0.75 * b**1.1 + 0.05 * np.cos(2 * r) * g,
        ],
        axis=1,
    )
    return np.clip(y, 0, 1)


def test_lattice_fit_recovers_smooth_map_and_beats_affine(one_thread):
    rng = np.random.default_rng(0)
    x = rng.random((300, 3))
    y = _printer_like(x) + rng.normal(0, 0.004, x.shape)
    fit = fit_lattice_cv(x, y, size=9)
    test = rng.random((2000, 3))
    truth = _printer_like(test)
    de_lut = delta_e_rgb(apply_lut_numpy(fit.lut, test), truth)
    de_aff = delta_e_rgb(fit_polynomial(x, y, degree=1).predict(test), truth)
    assert de_lut.mean() < 1.0
    assert de_lut.mean() * 3 < de_aff.mean()
    assert fit.cv["mean"] < 1.5 and fit.cv["p95"] >= fit.cv["mean"] and fit.cv["max"] >= fit.cv["p95"]
    assert 0 < fit.cv["rgb_rmse"] < 0.02
    assert fit.lam in [float(k) for k in fit.cv_by_lambda] or len(fit.cv_by_lambda) == 11


def test_cv_picks_more_smoothing_for_noisier_data(one_thread):
    rng = np.random.default_rng(1)
    x = rng.random((250, 3))
    clean = fit_lattice_cv(x, _printer_like(x) + rng.normal(0, 0.001, x.shape))
    noisy = fit_lattice_cv(x, _printer_like(x) + rng.normal(0, 0.03, x.shape))
    assert noisy.lam > clean.lam


def test_lattice_regularisation_interpolates_linear_maps_exactly():
    rng = np.random.default_rng(2)
    x = rng.random((100, 3))
    a = np.array([[0.7, 0.1, 0.0], [0.05, 0.8, 0.1], [0.0, 0.1, 0.6]])
    y = x @ a.T + 0.1
    lut = fit_lattice(x, y, lam=1.0, size=9, clip=False)  # linear maps are in the null space of D
    test = rng.random((500, 3))
    assert np.abs(apply_lut_numpy(lut, test) - (test @ a.T + 0.1)).max() < 1e-4


def test_polynomial_terms_and_exact_fit():
    assert len(polynomial_exponents(1)) == 4
    assert len(polynomial_exponents(3)) == 20  # Cheung 2004's 20-term model
    rng = np.random.default_rng(3)
    x = rng.random((200, 3))
    y = np.stack([x[:, 0] * x[:, 1], x[:, 2] ** 2, 0.5 * x[:, 0] + x[:, 1] * x[:, 2]], 1)
    model = fit_polynomial(x, y, degree=2, ridge=1e-12)
    assert np.abs(model.predict(x) - y).max() < 1e-6


def test_bad_inputs_are_clear_errors():
    with pytest.raises(PatchkitError, match="too few swatches"):
        fit_lattice_cv(np.random.rand(6, 3), np.random.rand(6, 3))
    with pytest.raises(PatchkitError, match="NaN"):
        fit_lattice(np.full((20, 3), np.nan), np.zeros((20, 3)))
