"""The fast HC pass over row chunks shared by threads (jaxlm.inference._fast_pass).

The chunks' sums are added in chunk order, so the pass gives the same bits whether its chunks run
in one thread or several; and
through many ragged chunks, threads, two targets, analytic or frequency weights, with and
without intercept, a Cholesky or a QR factor, and a subset of the kinds, every kind equals
statsmodels (OLS on the rows repeated for frequency weights, WLS for analytic ones).
"""
from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

import jaxlm
from jaxlm.core.exact import fit_exact
from jaxlm.inference import _fast_pass, block_sums, pass_plan, regression_results
from jaxlm.reduce.memory import blocks_of

RTOL = 1e-10  # against statsmodels (its own float64 rounding), as tests/test_hc_kinds.py
KINDS = ("HC0", "HC1", "HC2", "HC3")


def _data(n, d, m=2, seed=0, offset=5.0):
    rng = np.random.default_rng(seed)
    X = offset + rng.normal(size=(n, d))
    u = X - offset
    Y = np.column_stack([u @ rng.normal(size=d) + 1.0 + rng.normal(size=n) * (1 + np.abs(u[:, 0]))
                         for _ in range(m)])
    return X, Y


def _solution(X, Y, w, *, intercept=True, solver="auto"):
    est = jaxlm.LinearRegression(fit_intercept=intercept, solver=solver)
    return est._solve(X, Y, w, est._alpha(Y.shape[1]))


def _reference(X, y, kind, *, intercept, weights, w):
    if weights == "frequency":
        X, y = np.repeat(X, w.astype(int), axis=0), np.repeat(y, w.astype(int))
    Z = sm.add_constant(X, has_constant="add") if intercept else X
    model = sm.WLS(y, Z, weights=w) if weights == "analytic" else sm.OLS(y, Z)
    return model.fit(cov_type=kind).cov_params()


@pytest.mark.parametrize("robust", [True, "HC1", ("HC0", "HC3")])
def test_same_bits_in_one_thread_or_several(monkeypatch, robust):
    X, Y = _data(40_000, 7)
    w = np.random.default_rng(1).integers(1, 4, len(X)).astype(float)
    plan = pass_plan(_solution(X, Y, w), fit_intercept=True, robust=robust)
    monkeypatch.setattr(_fast_pass, "CHUNK_BYTES", 8 * 7 * 1000 + 8)  # 1,000-row chunks, 40 of them
    threaded = block_sums(plan, X, Y, w)  # 40,000 rows ≥ 2 · MIN_THREAD_ROWS: chunks shared by threads
    monkeypatch.setattr(_fast_pass, "MIN_THREAD_ROWS", 10**9)
    alone = block_sums(plan, X, Y, w)  # one thread
    assert np.array_equal(alone.meat, threaded.meat)
    assert alone.max_leverage == threaded.max_leverage


@pytest.mark.parametrize("weights", ["frequency", "analytic"])
@pytest.mark.parametrize("intercept", [True, False])
@pytest.mark.parametrize("solver", ["auto", "qr"])
def test_ragged_threaded_chunks_equal_statsmodels(monkeypatch, weights, intercept, solver):
    """Chunks of 37 rows (the last one short), threads from 400 rows a block, two targets."""
    X, Y = _data(3_000, 4, seed=2, offset=5.0 if intercept else 0.0)
    rng = np.random.default_rng(3)
    w = rng.integers(1, 4, len(X)).astype(float) if weights == "frequency" else rng.uniform(0.3, 3.0, len(X))
    monkeypatch.setattr(_fast_pass, "CHUNK_BYTES", 8 * 4 * 37)
    monkeypatch.setattr(_fast_pass, "MIN_THREAD_ROWS", 200)
    b = blocks_of(X, Y, w, rows=1_100)  # blocks of 1,100 rows (and a last of 800)
    sol = fit_exact(b, 4, 2, fit_intercept=intercept, solver=solver)
    res = regression_results(sol, fit_intercept=intercept, weights_kind=weights, batches=b, refine=False)
    for k in range(2):
        for kind in KINDS:
            ref = _reference(X, Y[:, k], kind, intercept=intercept, weights=weights, w=w)
            np.testing.assert_allclose(res[k].cov(kind), ref, rtol=RTOL, atol=0)


def test_a_subset_of_kinds_scales_from_the_first_one_asked(monkeypatch):
    """``robust=("HC2", "HC3")``: the first meat's rows scaled by (1 − h)^(−1/2), the next by it again."""
    X, Y = _data(2_000, 3, seed=4)
    w = np.ones(len(X))
    monkeypatch.setattr(_fast_pass, "CHUNK_BYTES", 8 * 3 * 64)
    b = blocks_of(X, Y, w)
    sol = fit_exact(b, 3, 2)
    res = regression_results(sol, fit_intercept=True, batches=b, robust=("HC2", "HC3"), refine=False)
    for k in range(2):
        assert sorted(res[k]._hc) == ["HC2", "HC3"]
        for kind in ("HC2", "HC3"):
            ref = _reference(X, Y[:, k], kind, intercept=True, weights=None, w=w)
            np.testing.assert_allclose(res[k].cov(kind), ref, rtol=RTOL, atol=0)
