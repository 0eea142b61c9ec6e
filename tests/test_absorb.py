"""Absorbed fixed effects (jaxlm.core.absorb) against the explicit-dummy regression.

References: statsmodels ``OLS``/``WLS`` on ``[X, dummies]`` (one full set of dummies for the
first factor, one dropped level for each further factor): coefficients of ``x`` to 1e-8
relative, non-robust and clustered (CR1) standard errors to 1e-8 with ``fixef_k="full"``; and
pyfixest ``feols`` (when installed; singletons kept, a tight demeaning tolerance) for its default
small-sample conventions (``k_fixef="nonnested"``, ``G_df="min"``). The reduction path over tiny
blocks and Dask partitions (levels spread across them) must equal the in-memory fit to 1e-10.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

sm = pytest.importorskip("statsmodels.api")

from jaxlm.core import absorb as ab  # noqa: E402
from jaxlm.core.errors import InputError  # noqa: E402
from jaxlm.inference import cluster as cl  # noqa: E402
from jaxlm.inference.hac import absorbed_scorer  # noqa: E402
from jaxlm.reduce import memory  # noqa: E402

RTOL = 1e-8
SAME = 1e-10


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.abs(b)))


def make(n=1200, d=3, levels=(50, 12, 7), weights="none", seed=0):
    rng = np.random.default_rng(seed)
    fes = [rng.integers(0, L, n) for L in levels]
    fes[0][:levels[0]] = np.arange(levels[0])  # every level present
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 2, d)
    X += 3.0 * rng.normal(size=(levels[0], d))[fes[0]]  # regressors correlated with the first factor
    y = X @ rng.normal(size=d) + rng.normal(size=n)
    for f, L in zip(fes, levels):
        y += 2.0 * rng.normal(size=L)[f]
    w = rng.uniform(0.2, 3.0, n) if weights == "analytic" else np.ones(n)
    g = rng.integers(0, 23, n)
    return X, y, w, fes, g


def dummy_design(X, fes):
    cols = [X]
    for i, f in enumerate(fes):
        D = (f[:, None] == np.unique(f)[None, :]).astype(float)
        cols.append(D if i == 0 else D[:, 1:])
    return np.column_stack(cols)


class One:
    """One target's statistics of an absorbed fit (cluster.absorbed_stats), as the tests read them."""

    def __init__(self, fit, weights):
        self.s = s = cl.absorbed_stats(fit, weights_kind="analytic" if weights == "analytic" else "frequency")
        self.coef, self.r2, self.r2_within = s.coef[0], s.r2[0], s.r2_within[0]
        self.std_errors = np.sqrt(np.diag(s.cov(0)))
        self.df_resid, self.bread, self.n_obs, self.k_params = s.df_resid, s.bread, s.n_obs, s.k_params


def results(fit, weights):
    return One(fit, weights)


@pytest.mark.parametrize("n_fe", [1, 2, 3])
@pytest.mark.parametrize("weights", ["none", "analytic"])
@pytest.mark.parametrize("method", ["map", "cg"])
def test_matches_explicit_dummy_regression(n_fe, weights, method):
    X, y, w, fes, g = make(weights=weights, seed=n_fe)
    fes = fes[:n_fe]
    d = X.shape[1]
    fit = ab.absorb_arrays(X, y[:, None], w, fes, method=method)
    assert fit.converged
    res = results(fit, weights)
    Z = dummy_design(X, fes)
    ref = sm.WLS(y, Z, weights=w).fit()
    refc = sm.WLS(y, Z, weights=w).fit(cov_type="cluster", cov_kwds={"groups": g})
    assert rel(res.coef, ref.params[:d]) <= RTOL
    assert res.df_resid == ref.df_resid
    assert rel(res.std_errors, ref.bse[:d]) <= RTOL
    assert rel(res.r2, ref.rsquared) <= RTOL
    meats = memory.arrays_runner(X, y[:, None], w, g, *fes)(cl.cluster_reduction(absorbed_scorer(fit)))
    cov = cl.cluster_cov(meats, res.bread, n_obs=res.n_obs, k_params=res.k_params()).cov[0]
    assert rel(np.sqrt(np.diag(cov)), refc.bse[:d]) <= RTOL


def test_hac_of_an_absorbed_fit_matches_the_dummy_regression():
    from jaxlm.inference import hac as hc

    X, y, w, fes, _ = make(weights="analytic", seed=13)
    fit = ab.absorb_arrays(X, y[:, None], w, fes[:2])
    s = cl.absorbed_stats(fit, weights_kind="analytic")
    meat = memory.arrays_runner(X, y[:, None], w, *fes[:2], rows=100)(hc.hac_reduction(absorbed_scorer(fit), 5))
    got = hc.hac_cov(meat, s.bread, weights_kind="analytic")[0]
    ref = sm.WLS(y, dummy_design(X, fes[:2]), weights=w).fit(cov_type="HAC", cov_kwds={"maxlags": 5})
    assert rel(np.sqrt(np.diag(got)), ref.bse[:3]) <= RTOL


def test_within_r2_is_that_of_the_demeaned_regression():
    X, y, w, fes, _ = make(seed=4)
    fit = ab.absorb_arrays(X, y[:, None], w, fes[:2])
    Zd, _, _, _ = ab.demean(np.column_stack([X, y]), [np.unique(f, return_inverse=True)[1] for f in fes[:2]], w)
    ref = sm.OLS(Zd[:, -1], Zd[:, :-1]).fit()  # uncentred R² of the within regression
    assert rel(results(fit, "none").r2_within, ref.rsquared) <= RTOL


@pytest.mark.parametrize("n_fe", [1, 2])
def test_reduction_over_blocks_and_dask_equals_in_memory(n_fe):
    da = pytest.importorskip("dask.array")
    from jaxlm.reduce import dask as rdask

    X, y, w, fes, g = make(weights="analytic", seed=5)
    fes = fes[:n_fe]
    Y = y[:, None]
    d = X.shape[1]
    ref = ab.absorb_arrays(X, Y, w, fes, method="map")
    ref_res = results(ref, "analytic")
    ref_cov = cl.cluster_cov(memory.arrays_runner(X, Y, w, g, *fes)(cl.cluster_reduction(absorbed_scorer(ref))),
                             ref_res.bread, n_obs=ref_res.n_obs, k_params=ref_res.k_params()).cov[0]
    ch = 150  # 14 partitions: every level of every factor spread over several
    dask_run = rdask.runner(da.from_array(X, chunks=(ch, d)), da.from_array(Y, chunks=(ch, 1)),
                            da.from_array(w, chunks=ch), *(da.from_array(f, chunks=ch) for f in fes))
    for run in (memory.arrays_runner(X, Y, w, *fes, rows=7), dask_run):
        fit = ab.absorb(run, d, 1, n_fe)
        res = results(fit, "analytic")
        assert rel(res.coef, ref_res.coef) <= SAME and rel(res.std_errors, ref_res.std_errors) <= SAME
        assert rel(res.r2, ref_res.r2) <= SAME
    crun = rdask.runner(da.from_array(X, chunks=(ch, d)), da.from_array(Y, chunks=(ch, 1)),
                        da.from_array(w, chunks=ch), da.from_array(g, chunks=ch),
                        *(da.from_array(f, chunks=ch) for f in fes))
    cov = cl.cluster_cov(crun(cl.cluster_reduction(absorbed_scorer(fit))), res.bread, n_obs=res.n_obs,
                         k_params=res.k_params()).cov[0]
    assert rel(np.diag(cov), np.diag(ref_cov)) <= SAME


@pytest.mark.parametrize("n_fe,method", [(1, "map"), (2, "map"), (2, "cg")])
def test_level_constants_do_not_change_the_fit(n_fe, method):
    """Adding a constant per level of the first factor to x and y (here ~1e6, far larger than the
    within variation) leaves the within regression unchanged: the block co-moments must then be
    formed from explicitly centred rows, not by cancelling about-origin sums."""
    X, y, w, fes, g = make(weights="analytic", seed=12)
    fes = fes[:n_fe]
    rng = np.random.default_rng(0)
    shift = 1e6 * rng.normal(size=(50, 4))[fes[0]]
    base = ab.absorb_arrays(X, y[:, None], w, fes, method=method)
    moved = ab.absorb_arrays(X + shift[:, :3], (y + shift[:, 3])[:, None], w, fes, method=method)
    a, b = results(base, "analytic"), results(moved, "analytic")
    assert rel(b.coef, a.coef) <= RTOL and rel(b.std_errors, a.std_errors) <= RTOL
    ca = cl.cluster_cov(memory.arrays_runner(X, y[:, None], w, g, *fes)(cl.cluster_reduction(absorbed_scorer(base))),
                        a.bread, n_obs=a.n_obs, k_params=a.k_params()).cov[0]
    cb = cl.cluster_cov(memory.arrays_runner(X + shift[:, :3], (y + shift[:, 3])[:, None], w, g, *fes)(
        cl.cluster_reduction(absorbed_scorer(moved))), b.bread, n_obs=b.n_obs, k_params=b.k_params()).cov[0]
    assert rel(np.diag(cb), np.diag(ca)) <= RTOL


def test_level_values_of_any_dtype():
    X, y, w, fes, _ = make(seed=6)
    ints = ab.absorb_arrays(X, y[:, None], w, fes[:2])
    names = [np.array([f"lvl{v}" for v in f], dtype=object) for f in fes[:2]]
    strs = ab.absorb_arrays(X, y[:, None], w, names)
    assert rel(strs.solution.coef, ints.solution.coef) <= SAME
    assert strs.n_levels == ints.n_levels == (50, 12)


def test_nested_fixed_effects_do_not_count_under_clustering():
    """fixef_k="nested": a factor nested in the cluster counts 1, not its levels (fixest)."""
    X, y, w, fes, _ = make(seed=7)
    firm = fes[0]
    region = firm % 5  # firms nested in regions
    run = memory.arrays_runner(X, y[:, None], w, *fes[:2], region, rows=111)
    assert run(cl.nesting_reduction(2)) == (True, False)
    fit = ab.absorb_arrays(X, y[:, None], w, fes[:2])
    res = results(fit, "none")
    assert res.k_params() == 3 + 50 + 12 - 1
    assert res.k_params(fixef_k="nested", nested=(True, False)) == 3 + 1 + 12 - 1
    assert cl.fe_dof([50, 12], fixef_k="nested", nested=(True, True)) == 1


def test_matches_pyfixest():
    pf = pytest.importorskip("pyfixest")
    pd = pytest.importorskip("pandas")
    X, y, w, fes, g = make(seed=8)
    df = pd.DataFrame({"y": y, "x0": X[:, 0], "x1": X[:, 1], "x2": X[:, 2], "f1": fes[0], "f2": fes[1], "g": g})
    tight = pf.MapDemeaner(fixef_tol=1e-14) if hasattr(pf, "MapDemeaner") else None
    kw = dict(fixef_rm="none", demeaner=tight) if tight is not None else dict(fixef_rm="none", fixef_tol=1e-14)
    fit = ab.absorb_arrays(X, y[:, None], w, fes[:2])
    res = results(fit, "none")
    m = pf.feols("y ~ x0 + x1 + x2 | f1 + f2", data=df, vcov="iid", **kw)
    assert rel(res.coef, m.coef().values) <= RTOL
    assert rel(res.std_errors, m.se().values) <= RTOL
    # CRV1 by f1 (f1 nested in its own cluster: pyfixest's default k_fixef="nonnested")
    m = pf.feols("y ~ x0 + x1 + x2 | f1 + f2", data=df, vcov={"CRV1": "f1"}, **kw)
    nested = memory.arrays_runner(X, y[:, None], w, fes[0], fes[1], fes[0])(cl.nesting_reduction(2))
    meats = memory.arrays_runner(X, y[:, None], w, fes[0], fes[0], fes[1])(cl.cluster_reduction(absorbed_scorer(fit)))
    cov = cl.cluster_cov(meats, res.bread, n_obs=res.n_obs, k_params=res.k_params(fixef_k="nested", nested=nested))
    assert rel(np.sqrt(np.diag(cov.cov[0])), m.se().values) <= RTOL
    # two-way CRV1 by g and f2 with G_min (pyfixest's default G_df="min")
    m = pf.feols("y ~ x0 + x1 + x2 | f1 + f2", data=df, vcov={"CRV1": "g+f2"}, **kw)
    nested = memory.arrays_runner(X, y[:, None], w, fes[0], fes[1], g, fes[1])(cl.nesting_reduction(2, 2))
    assert nested == (False, True)
    run = memory.arrays_runner(X, y[:, None], w, g, fes[1], fes[0], fes[1])
    meats = run(cl.cluster_reduction(absorbed_scorer(fit), 2))
    cov = cl.cluster_cov(meats, res.bread, n_obs=res.n_obs, k_params=res.k_params(fixef_k="nested", nested=nested),
                         g_df="min")
    assert rel(np.sqrt(np.diag(cov.cov[0])), m.se().values) <= RTOL


def test_regressor_collinear_with_the_fixed_effects_is_reported():
    X, y, w, fes, _ = make(seed=9)
    X = np.column_stack([X, np.sin(fes[0])])  # constant within levels of the first factor
    fit = ab.absorb_arrays(X, y[:, None], w, fes[:1])
    res = results(fit, "none")
    assert fit.solution.rank == 3 and 3 in fit.solution.aliased
    assert np.isnan(res.coef[3]) and np.all(np.isfinite(res.coef[:3]))


def test_iteration_limit_reports_non_convergence():
    X, y, w, fes, _ = make(seed=10)
    assert not ab.absorb_arrays(X, y[:, None], w, fes[:2], method="map", max_iter=1).converged
    assert not ab.absorb_arrays(X, y[:, None], w, fes[:2], method="cg", max_iter=1).converged


def test_bad_inputs_are_input_errors():
    X, y, w, fes, _ = make(n=300, seed=11)
    bad = fes[0].astype(float)
    bad[5] = np.nan
    with pytest.raises(InputError, match="missing") as e:
        ab.absorb_arrays(X, y[:, None], w, [bad])
    assert e.value.param == "fixed_effects"
    with pytest.raises(InputError, match="missing"):
        ab.absorb_arrays(X, y[:, None], w, [fes[1], bad])
    with pytest.raises(InputError, match="at least one factor"):
        ab.absorb_arrays(X, y[:, None], w, [])
    with pytest.raises(InputError, match="method"):
        ab.absorb_arrays(X, y[:, None], w, fes[:2], method="lsmr")
    with pytest.raises(InputError, match="one entry per fixed effect"):
        cl.fe_dof([5, 6], fixef_k="nested", nested=(True,))
    with pytest.raises(InputError, match="fixef_k"):
        cl.fe_dof([5, 6], fixef_k="none")
    fit = ab.absorb_arrays(X, y[:, None], w, fes[:2])
    with pytest.raises(InputError, match="did not see"):  # a level the fit never saw
        run = memory.arrays_runner(X, y[:, None], w, fes[2], fes[0] + 1000, fes[1])
        run(cl.cluster_reduction(absorbed_scorer(fit)))


@pytest.mark.parametrize("weighted", [False, True])
def test_within_pass_in_chunks_equals_pandas_group_means(weighted, monkeypatch):
    """The one-factor pass (the Gram and level sums of chunks of rows) gives the level means and
    the within co-moments of rows centred on their level means by pandas."""
    import pandas as pd

    rng = np.random.default_rng(11)
    n, L = 30_000, 700                      # several chunks and a ragged end
    X, Y = rng.normal(size=(n, 3)) + 5.0, rng.normal(size=(n, 1))
    fe = rng.integers(0, L, n)
    w = rng.integers(1, 4, n).astype(float) if weighted else np.ones(n)
    monkeypatch.setattr(ab, "SUM_ROWS", 1000)
    acc = ab._within_block(X, Y, w, fe)
    Z = pd.DataFrame(np.column_stack([X, Y]) * w[:, None]).groupby(fe).sum()
    W = pd.Series(w).groupby(fe).sum()
    means = Z.to_numpy() / W.to_numpy()[:, None]
    order = np.argsort(acc.keys)
    np.testing.assert_allclose(acc.mean[order], means, rtol=1e-12)
    D = np.column_stack([X, Y]) - means[np.searchsorted(Z.index.to_numpy(), fe)]
    np.testing.assert_allclose(acc.T, (D * w[:, None]).T @ D, rtol=1e-11)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("n_fe, method", [(1, "map"), (2, "map"), (2, "cg")])
def test_non_finite_data_is_refused_before_any_solve_or_iteration(bad, n_fe, method):
    """A missing or infinite value in X or y: NonFiniteData (an InputError), raised from the sums,
    not a LinAlgError from the solve nor thousands of NaN sweeps; a NaN weight is refused too."""
    from jaxlm.core.errors import NonFiniteData

    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(300, 2)), rng.normal(size=(300, 1))
    fe = [rng.integers(0, 9, 300), rng.integers(0, 4, 300)][:n_fe]
    for A in (X, Y):
        A2 = A.copy()
        A2[17, 0] = bad
        args = (A2, Y) if A is X else (X, A2)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no RuntimeWarning on the way either
            with pytest.raises(NonFiniteData, match="must be finite"):
                ab.absorb_arrays(*args, np.ones(300), fe, method=method, max_iter=50)
    w = np.ones(300)
    w[5] = np.nan
    with pytest.raises(InputError, match="weights must not be missing; got NaN at row 5"):
        ab.absorb_arrays(X, Y, w, fe, method=method)
