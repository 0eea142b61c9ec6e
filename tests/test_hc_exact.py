"""HC0–HC3 standard errors against exact rational arithmetic on the same float64 numbers.

The reference is computed here, independently of jaxlm, with :class:`fractions.Fraction`: the
exact least-squares solution of the float64 design, its residuals, leverages and the sandwich
``B (Σ a_i x̃_i x̃_iᵀ) B`` (statsmodels' HC conventions). Every NIST StRD linear dataset except
Filip (whose float64 design is too ill-conditioned for any float64 method) must agree to
1e-11 relative, for each kind; Wampler1 and Wampler2 are perfect fits (see their test).
"""
from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest

import jaxlm
from jaxlm.core.exact import fit_exact
from jaxlm.datasets import load_nist, nist_names
from jaxlm.inference import regression_results
from jaxlm.reduce.memory import blocks_of

KINDS = ("HC0", "HC1", "HC2", "HC3")
RTOL = 1e-11
PERFECT = ("Wampler1", "Wampler2")  # certified residual SD 0


def _inverse(G):
    """Exact inverse of a square list-of-lists of Fractions (Gauss–Jordan)."""
    p = len(G)
    A = [list(r) + [Fraction(int(i == j)) for j in range(p)] for i, r in enumerate(G)]
    for c in range(p):
        piv = next(r for r in range(c, p) if A[r][c] != 0)
        A[c], A[piv] = A[piv], A[c]
        inv = 1 / A[c][c]
        A[c] = [v * inv for v in A[c]]
        for r in range(p):
            if r != c and A[r][c] != 0:
                f = A[r][c]
                A[r] = [a - f * b for a, b in zip(A[r], A[c])]
    return [row[p:] for row in A]


def exact_hc_variances(X, y, *, intercept=True, w=None, analytic=False):
    """Diagonals of HC0–HC3 {kind: [Fraction] (p,)} of the float64 data, exactly.

    Frequency weights: the rows repeated ``w`` times (``h = x̃ᵀBx̃``, ``a = w e²``,
    ``n = Σw``); analytic weights: statsmodels WLS, the whitened rows ``√w x̃``
    (``h = w x̃ᵀBx̃``, ``a = w² e²``, ``n`` = rows). ``B = (Σ w x̃ x̃ᵀ)⁻¹``.
    """
    rows = [[Fraction(1)] * intercept + [Fraction(float(v)) for v in r] for r in X]
    ys = [Fraction(float(v)) for v in y]
    ws = [Fraction(1)] * len(ys) if w is None else [Fraction(float(v)) for v in w]
    p = len(rows[0])
    G = [[sum(wi * r[a] * r[b] for r, wi in zip(rows, ws)) for b in range(p)] for a in range(p)]
    B = _inverse(G)
    xty = [sum(wi * r[a] * yy for r, yy, wi in zip(rows, ys, ws)) for a in range(p)]
    beta = [sum(B[a][b] * xty[b] for b in range(p)) for a in range(p)]
    n = len(ys) if analytic else sum(ws)
    out = {k: [Fraction(0)] * p for k in ("HC0", "HC2", "HC3")}
    for r, yy, wi in zip(rows, ys, ws):
        e = yy - sum(a * b for a, b in zip(r, beta))
        g = [sum(B[a][b] * r[b] for b in range(p)) for a in range(p)]  # the row's influence B x̃
        h = sum(a * b for a, b in zip(r, g)) * (wi if analytic else 1)
        a0 = (wi * wi if analytic else wi) * e * e
        for kind, a in (("HC0", a0), ("HC2", a0 / (1 - h)), ("HC3", a0 / (1 - h) ** 2)):
            out[kind] = [v + a * gk * gk for v, gk in zip(out[kind], g)]
    out["HC1"] = [v * n / (n - p) for v in out["HC0"]]
    return out, beta


def worst_rel(results, exact):
    """Max over kinds and coefficients of |se − se_exact| / se_exact."""
    worst = 0.0
    for kind in KINDS:
        se = results.coef_table(cov=kind).std_errors
        ref = np.array([math.sqrt(v) for v in exact[kind]])  # float(Fraction) is correctly rounded
        worst = max(worst, float(np.max(np.abs(se - ref) / ref)))
    return worst


@pytest.mark.parametrize("name", [n for n in nist_names() if n != "Filip" and n not in PERFECT])
def test_nist_hc_standard_errors_are_exact(name):
    ds = load_nist(name)
    exact, _ = exact_hc_variances(ds.X, ds.y, intercept=ds.intercept)
    model = jaxlm.LinearRegression(robust=True, fit_intercept=ds.intercept).fit(ds.X, ds.y)
    err = worst_rel(model.results_, exact)
    assert err <= RTOL, (name, err)


@pytest.mark.parametrize("name", PERFECT)
def test_perfect_fits_have_zero_hc_errors(name):
    """Perfect fits: the SSE is below the rounding floor of the fitted values and treated as 0
    (NIST certifies SD 0), and so are the HC covariances. Exactly, Wampler1's residuals are 0;
    Wampler2's (its decimal y are not float64 numbers) give HC standard errors below 1e-13 of
    each coefficient — below the precision of the float64 coefficients themselves."""
    ds = load_nist(name)
    exact, beta = exact_hc_variances(ds.X, ds.y, intercept=ds.intercept)
    r = jaxlm.LinearRegression(robust=True, fit_intercept=ds.intercept).fit(ds.X, ds.y).results_
    for kind in KINDS:
        assert np.all(r.cov(kind) == 0.0)
        ref = np.array([math.sqrt(v) for v in exact[kind]])
        assert np.all(ref <= 1e-13 * np.abs(np.array([float(b) for b in beta])))
        if name == "Wampler1":
            assert np.all(ref == 0.0)


@pytest.mark.parametrize("weights", ["frequency", "analytic"])
def test_weighted_hc_is_exact_on_longley(weights):
    ds = load_nist("Longley")
    rng = np.random.default_rng(3)
    w = rng.integers(1, 4, size=len(ds.y)).astype(float) if weights == "frequency" else rng.uniform(0.2, 3, len(ds.y))
    exact, _ = exact_hc_variances(ds.X, ds.y, w=w, analytic=weights == "analytic")
    model = jaxlm.LinearRegression(robust=True, weights_kind=weights).fit(ds.X, ds.y, sample_weight=w)
    err = worst_rel(model.results_, exact)
    assert err <= RTOL, (weights, err)


@pytest.mark.parametrize("name", ["Longley", "Wampler4"])
def test_blocked_multi_target_pass_is_exact(name):
    """Two targets and blocks of 5 rows (the pass merged across blocks, as a stream or Dask):
    each target's HC errors are exact."""
    ds = load_nist(name)
    Y = np.column_stack([ds.y, ds.y[::-1]])
    b = blocks_of(ds.X, Y, np.ones(len(ds.y)), rows=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = fit_exact(b, ds.X.shape[1], 2)
    res = regression_results(sol, fit_intercept=True, batches=b)
    for k in range(2):
        exact, _ = exact_hc_variances(ds.X, Y[:, k])
        err = worst_rel(res[k], exact)
        assert err <= RTOL, (name, k, err)


@pytest.mark.parametrize("offset,scale", [(0.0, 1e-8), (1e3, 1e-8), (1e6, 1.0), (1e9, 1e2), (1e12, 1e8), (-1e6, 1e-3)])
def test_offset_and_scaled_columns_are_exact(offset, scale):
    """Well-conditioned designs far from the origin, in any units (the fast pass: no refinement):
    residuals about the exact means, rows centred about the exact x̄."""
    rng = np.random.default_rng(7)
    X = offset + rng.uniform(0, 1, size=(40, 3)) * scale * np.array([1.0, 10.0, 0.1])
    u = (X - offset) / scale
    y = 1e4 + u @ np.array([1.0, -2.0, 0.5]) + rng.normal(size=40) * (1 + u[:, 0])
    exact, _ = exact_hc_variances(X, y)
    model = jaxlm.LinearRegression(robust=True).fit(X, y)
    assert model.results_.cov_refinement_steps == 0  # the fast pass
    err = worst_rel(model.results_, exact)
    assert err <= RTOL, (offset, scale, err)
