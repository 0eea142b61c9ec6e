"""The standardisation and its exact inverse (jaxlm.core.standardize), as properties.

The article mapped its standardised fit back with β = ȳ + b̃·σy − x̄·σy/σx, dropping the slope
from the last term; the correct inverse is α = ã·σy/σx, β = ȳ + b̃·σy − α·x̄.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from jaxlm.core.closed_form import simple_ols
from jaxlm.core.precision import x64_scope
from jaxlm.core.standardize import fit_standardizer, to_original, to_standardized, transform
from jaxlm.datasets import celsius_fahrenheit

# Shifts up to ±1e4 and scales over six decades, either sign.
shifts = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
log_scales = st.floats(-3.0, 3.0, allow_nan=False)
signs = st.sampled_from([-1.0, 1.0])


def _exact_standardised(Xs: np.ndarray, Ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least squares with intercept in standardised units, by numpy lstsq (float64)."""
    A = np.column_stack([Xs, np.ones(Xs.shape[0])])
    sol, *_ = np.linalg.lstsq(A, Ys, rcond=None)
    return sol[:-1].T, sol[-1]  # W (m, d), b (m,)


def _standardise(X, Y):
    import jax.numpy as jnp

    with x64_scope("float64"):
        X = jnp.asarray(X, jnp.float64)
        Y = jnp.asarray(Y, jnp.float64)
        s = fit_standardizer(X, Y, jnp.ones(X.shape[0], jnp.float64))
        Xs, Ys = transform(s, X, Y)
        return s, np.asarray(Xs), np.asarray(Ys)


def _to_original(s, W, b):
    with x64_scope("float64"):
        coef, intercept = to_original(s, W, b)
        return np.asarray(coef), np.asarray(intercept)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), x_shift=shifts, y_shift=shifts, x_log_scale=log_scales,
       y_log_scale=log_scales, x_sign=signs, y_sign=signs)
def test_inverse_transform_recovers_closed_form_under_shift_and_scale(seed, x_shift, y_shift, x_log_scale,
                                                                      y_log_scale, x_sign, y_sign):
    c, f = celsius_fahrenheit(seed=seed)
    x = x_sign * 10.0**x_log_scale * c + x_shift
    y = y_sign * 10.0**y_log_scale * f + y_shift
    s, Xs, Ys = _standardise(x[:, None], y[:, None])
    W, b = _exact_standardised(Xs, Ys)
    coef, intercept = _to_original(s, W, b)
    slope_ref, intercept_ref = simple_ols(x, y)
    # Scale-aware tolerance: the intercept is a difference of terms of size |ȳ| and |α·x̄|.
    assert coef[0, 0] == pytest.approx(slope_ref, rel=1e-9)
    size = abs(y.mean()) + abs(slope_ref * x.mean()) + y.std()
    assert abs(intercept[0] - intercept_ref) <= 1e-9 * size


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), d=st.sampled_from([1, 3]), m=st.sampled_from([1, 2]), shift=shifts,
       log_scale=log_scales)
@example(seed=22619, d=1, m=2, shift=6819.0, log_scale=-3.0)  # y far from its spread (found by Hypothesis)
def test_to_original_and_to_standardized_round_trip(seed, d, m, shift, log_scale):
    rng = np.random.default_rng(seed)
    n = 30
    X = rng.normal(size=(n, d)) * 10.0 ** rng.uniform(-2, 2, size=d) + shift
    Y = rng.normal(size=(n, m)) * 10.0**log_scale + rng.normal(size=m) * shift
    W = rng.normal(size=(m, d))
    b = rng.normal(size=m)
    s, _, _ = _standardise(X, Y)
    with x64_scope("float64"):
        coef, intercept = to_original(s, W, b)
        W2, b2 = to_standardized(s, coef, intercept)
        coef2, intercept2 = to_original(s, W2, b2)
    np.testing.assert_allclose(np.asarray(W2), W, rtol=1e-9, atol=1e-9)
    # b2 = (intercept − ȳ + coef·x̄) / s_y: the float64 roundings of those terms (each ~ε of its size)
    # are divided by s_y, so the bound carries ε·(|ȳ| + |coef|·|x̄| + |intercept|)/s_y (a y shifted far
    # from its spread: Hypothesis found 2.2e-9 with ȳ ~ 7e3, s_y ~ 1e-3; the error stays under 0.4 of that term)
    cancel = (np.abs(np.asarray(s.y_mean)) + np.abs(np.asarray(coef)) @ np.abs(np.asarray(s.x_mean))
              + np.abs(np.asarray(intercept))) / np.asarray(s.y_scale)
    np.testing.assert_allclose(np.asarray(b2), b, rtol=1e-9,
                               atol=1e-9 * (1 + np.abs(np.asarray(coef)).sum()) + 4 * np.finfo(float).eps * cancel.max())
    np.testing.assert_allclose(np.asarray(coef2), np.asarray(coef), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(intercept2), np.asarray(intercept), rtol=1e-9,
                               atol=1e-9 * float(np.abs(np.asarray(intercept)).max() + 1))


def test_standardisation_is_population_sd_and_centres_the_data():
    c, f = celsius_fahrenheit(seed=0)
    s, Xs, Ys = _standardise(c[:, None], f[:, None])
    np.testing.assert_allclose(np.asarray(s.x_mean), [c.mean()], rtol=1e-14)
    np.testing.assert_allclose(np.asarray(s.x_scale), [c.std(ddof=0)], rtol=1e-14)
    np.testing.assert_allclose(np.asarray(s.y_scale), [f.std(ddof=0)], rtol=1e-14)
    np.testing.assert_allclose(Xs.mean(), 0.0, atol=1e-14)
    np.testing.assert_allclose(Xs.std(), 1.0, rtol=1e-14)
    np.testing.assert_allclose(Ys.std(), 1.0, rtol=1e-14)


def test_the_articles_back_transform_is_wrong_and_ours_is_right():
    """Why the article's JAX intercept came out ≈31.7 against ≈32.0 from the other fits."""
    c, f = celsius_fahrenheit(seed=0)
    s, Xs, Ys = _standardise(c[:, None], f[:, None])
    W, b = _exact_standardised(Xs, Ys)
    xm, xs, ym, ys = float(s.x_mean[0]), float(s.x_scale[0]), float(s.y_mean[0]), float(s.y_scale[0])
    article_intercept = ym + b[0] * ys - xm * ys / xs  # its equation 3: ã missing from the last term
    slope_ref, intercept_ref = simple_ols(c, f)
    _, intercept = _to_original(s, W, b)
    assert intercept[0] == pytest.approx(intercept_ref, rel=1e-12)
    # The error is x̄·σy/σx·(ã − 1): about −0.4 °F here, far outside any rounding.
    assert article_intercept - intercept_ref == pytest.approx(xm * ys / xs * (W[0, 0] - 1), rel=1e-9)
    assert article_intercept - intercept_ref < -0.1
