"""Standardisation with an exact inverse for coefficients and intercept.

The article this project starts from standardised x and y, fitted ``W x̃ + b̃`` and mapped
back with ``β = ȳ + b̃ σy − x̄ σy/σx``, which drops the slope from the last term.
The correct inverse, for X of shape (n, d) and Y of shape (n, m), is::

    coef[k, j]   = W̃[k, j] · σy[k] / σx[j]
    intercept[k] = ȳ[k] + b̃[k] · σy[k] − Σ_j coef[k, j] · x̄[j]

Scales are population (ddof = 0) weighted standard deviations. A column with zero
spread gets scale 1 so that it is merely centred (its coefficient is then 0 in the
standardised problem when an intercept is fitted). The mean is corrected for its own
rounding (``m + Σw(a − m)/Σw``), so that a column holding one float64 value far from the
origin (``1e40 + i`` for small i) centres to exactly zero rather than to rounding noise.
"""
from __future__ import annotations

from typing import NamedTuple

from .precision import MATMUL_PRECISION, jnp


class Standardizer(NamedTuple):
    """Location and scale of X (d,) and Y (m,); ``fit_intercept=False`` gives zero means."""

    x_mean: jnp.ndarray
    x_scale: jnp.ndarray
    y_mean: jnp.ndarray
    y_scale: jnp.ndarray


def _moments(a, w, centre: bool):
    wsum = jnp.sum(w)
    mean = (w @ a) / wsum if centre else jnp.zeros(a.shape[1], a.dtype)
    if centre:  # remove the rounding of the mean: a column constant in float64 then centres to exactly 0
        mean = mean + (w @ (a - mean)) / wsum
    var = (w @ (a - mean) ** 2) / wsum
    scale = jnp.sqrt(var)
    scale = jnp.where(scale > 0, scale, jnp.ones_like(scale))
    return mean, scale


def fit_standardizer(X, Y, w, *, fit_intercept: bool = True) -> Standardizer:
    """Weighted population mean and sd of each column of X (n, d) and Y (n, m).

    Without an intercept nothing is centred (the model must pass through the origin)
    and the scale is the root mean square.
    """
    x_mean, x_scale = _moments(X, w, fit_intercept)
    y_mean, y_scale = _moments(Y, w, fit_intercept)
    return Standardizer(x_mean, x_scale, y_mean, y_scale)


def transform(s: Standardizer, X, Y):
    return (X - s.x_mean) / s.x_scale, (Y - s.y_mean) / s.y_scale


def to_original(s: Standardizer, W, b):
    """Map standardised weights W (m, d) and bias b (m,) back to original units."""
    coef = W * s.y_scale[:, None] / s.x_scale[None, :]
    intercept = s.y_mean + b * s.y_scale - jnp.matmul(coef, s.x_mean, precision=MATMUL_PRECISION)
    return coef, intercept


def to_standardized(s: Standardizer, coef, intercept):
    """Inverse of :func:`to_original` (used to test that the pair round-trips)."""
    W = coef * s.x_scale[None, :] / s.y_scale[:, None]
    b = (intercept - s.y_mean + jnp.matmul(coef, s.x_mean, precision=MATMUL_PRECISION)) / s.y_scale
    return W, b
