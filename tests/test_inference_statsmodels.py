"""Regression statistics against statsmodels OLS / WLS (an independent reference).

Frequency weights are checked against statsmodels ``OLS`` on the rows repeated ``w`` times
(integer weights, zeros included), analytic weights against ``WLS(y, X, weights=w)`` on the
rows with ``w > 0``, unweighted fits against ``OLS``. Every statistic must agree to 1e-8
relative; covariance matrices entrywise relative to ``sqrt(C_ii C_jj)`` (the natural scale
of an entry: the correlation-scale error).
"""
from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

sm = pytest.importorskip("statsmodels.api")

from jaxlm.core.exact import fit_exact  # noqa: E402
from jaxlm.reduce.memory import blocks_of  # noqa: E402
from jaxlm.inference import predict_interval, regression_results  # noqa: E402


def _blocks(X, Y, w, rows):
    return blocks_of(X, Y, w, rows=rows)

RTOL = 1e-8
HC = ("HC0", "HC1", "HC2", "HC3")


def rel(a, b):
    """Max elementwise relative difference (equal values, including equal infinities, count 0)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    assert a.shape == b.shape, (a.shape, b.shape)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(same, 0.0, np.abs(a - b) / np.abs(b))
    return float(np.max(r, initial=0.0))


def rel_cov(a, b):
    """Max |a_ij − b_ij| / sqrt(b_ii b_jj)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    s = np.sqrt(np.diag(b))
    return float(np.max(np.abs(a - b) / np.outer(s, s)))


def make(n, d, m, weights, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3, size=d) + rng.normal(scale=3, size=d)
    beta = rng.normal(size=(d, m))
    noise = rng.normal(size=(n, m)) * (0.5 + np.abs(X[:, :1] - X[:, :1].mean()))  # heteroskedastic
    Y = 1.5 + X @ beta + noise
    if weights == "none":
        w = np.ones(n)
    elif weights == "frequency":
        w = rng.integers(0, 4, size=n).astype(float)
        w[: d + 2] = np.maximum(w[: d + 2], 1.0)  # keep enough distinct rows
    else:
        w = rng.uniform(0.1, 5.0, size=n)
        w[rng.random(n) < 0.05] = 0.0  # some rows dropped
        w[: d + 2] = np.maximum(w[: d + 2], 0.5)
    return X, Y, w


def ours(X, Y, w, *, fit_intercept, weights_kind, block_rows=4096, **kw):
    b = _blocks(X, Y, w, block_rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = fit_exact(b, X.shape[1], Y.shape[1], fit_intercept=fit_intercept)
    return regression_results(sol, fit_intercept=fit_intercept, weights_kind=weights_kind, batches=b, **kw)


def reference(X, y, w, *, fit_intercept, weights):
    Xs = sm.add_constant(X, has_constant="add") if fit_intercept else X
    if weights == "frequency":
        k = w.astype(int)
        return sm.OLS(np.repeat(y, k), np.repeat(Xs, k, axis=0)).fit()
    if weights == "analytic":
        keep = w > 0
        return sm.WLS(y[keep], Xs[keep], weights=w[keep]).fit()
    return sm.OLS(y, Xs).fit()


def compare(r, ref, *, robust=True) -> dict:
    """Relative differences of every statistic (HC0–HC3 too when ``robust``)."""
    out = {
        "coef": rel(r.coef, ref.params),
        "std_errors": rel(r.std_errors, ref.bse),
        "t_values": rel(r.t_values, ref.tvalues),
        "p_values": rel(r.p_values, ref.pvalues),
        "conf_int": rel(r.conf_int(0.95), ref.conf_int(0.05)),
        "conf_int_90": rel(r.conf_int(0.90), ref.conf_int(0.10)),
        "r_squared": rel(r.r_squared, ref.rsquared),
        "adj_r_squared": rel(r.adj_r_squared, ref.rsquared_adj),
        "f_statistic": rel(r.f_statistic, ref.fvalue),
        "f_pvalue": rel(r.f_pvalue, ref.f_pvalue),
        "residual_std": rel(r.residual_std, np.sqrt(ref.scale)),
        "df_model": rel(r.df_model, ref.df_model),
        "df_resid": rel(r.df_resid, ref.df_resid),
        "n_obs": rel(r.n_obs, ref.nobs),
        "log_likelihood": rel(r.log_likelihood, ref.llf),
        "aic": rel(r.aic, ref.aic),
        "bic": rel(r.bic, ref.bic),
        "cov": rel_cov(r.cov(), ref.cov_params()),
    }
    for kind in HC if robust else ():
        out[kind] = rel_cov(r.cov(kind), getattr(ref, "cov_" + kind))
        rob = ref.get_robustcov_results(kind)
        tab = r.coef_table(cov=kind)
        out[kind + "_se"] = rel(tab.std_errors, rob.bse)
        out[kind + "_p"] = rel(tab.p_values, rob.pvalues)
    return out


def _grid():
    cases = []
    for i, (n, d, icpt, wk) in enumerate(itertools.product((5, 12, 100, 1000, 10_000), (1, 3, 10, 50), (True, False),
                                                           ("none", "frequency", "analytic"))):
        if n < 2 * (d + 2) or (n == 10_000 and d < 10) or (n == 1000 and d == 1):
            continue
        cases.append(pytest.param(n, d, icpt, wk, i, id=f"n{n}-d{d}-{'icpt' if icpt else 'noicpt'}-{wk}"))
    return cases


GRID = _grid()


@pytest.mark.parametrize("n,d,fit_intercept,weights,seed", GRID)
def test_matches_statsmodels(n, d, fit_intercept, weights, seed):
    X, Y, w = make(n, d, 1, weights, seed)
    (r,) = ours(X, Y, w, fit_intercept=fit_intercept,
                weights_kind="analytic" if weights == "analytic" else "frequency")
    ref = reference(X, Y[:, 0], w, fit_intercept=fit_intercept, weights=weights)
    diffs = compare(r, ref)
    bad = {k: v for k, v in diffs.items() if not v <= RTOL}
    assert not bad, bad


def test_multi_output_matches_per_target_fits():
    X, Y, w = make(300, 6, 3, "analytic", 7)
    res = ours(X, Y, w, fit_intercept=True, weights_kind="analytic", target_names=["a", "b", "c"])
    assert [r.target_name for r in res] == ["a", "b", "c"]
    for k, r in enumerate(res):
        ref = reference(X, Y[:, k], w, fit_intercept=True, weights="analytic")
        bad = {s: v for s, v in compare(r, ref).items() if not v <= RTOL}
        assert not bad, (k, bad)


def test_block_size_does_not_change_the_statistics():
    """The data pass is a mergeable sum: one block or many give the same numbers."""
    X, Y, w = make(2000, 8, 1, "frequency", 3)
    (a,) = ours(X, Y, w, fit_intercept=True, weights_kind="frequency", block_rows=1 << 16)
    (b,) = ours(X, Y, w, fit_intercept=True, weights_kind="frequency", block_rows=64)
    for kind in ("nonrobust",) + HC:
        assert rel_cov(a.cov(kind), b.cov(kind)) < 1e-12
    assert rel(a.log_likelihood, b.log_likelihood) < 1e-12


@pytest.mark.parametrize("weights", ["none", "frequency", "analytic"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_predict_interval_matches_get_prediction(weights, fit_intercept):
    X, Y, w = make(200, 4, 1, weights, 11)
    (r,) = ours(X, Y, w, fit_intercept=fit_intercept,
                weights_kind="analytic" if weights == "analytic" else "frequency")
    ref = reference(X, Y[:, 0], w, fit_intercept=fit_intercept, weights=weights)
    Xn = np.random.default_rng(1).normal(size=(7, 4)) * 2
    Xs = sm.add_constant(Xn, has_constant="add") if fit_intercept else Xn
    pred = ref.get_prediction(Xs).summary_frame(alpha=0.1)
    conf = predict_interval(r, Xn, kind="confidence", level=0.9)
    assert rel(conf.mean, pred["mean"]) < RTOL
    assert rel(conf.lower, pred["mean_ci_lower"]) < RTOL
    assert rel(conf.upper, pred["mean_ci_upper"]) < RTOL
    predi = predict_interval(r, Xn, kind="prediction", level=0.9)
    assert rel(predi.lower, pred["obs_ci_lower"]) < RTOL
    assert rel(predi.upper, pred["obs_ci_upper"]) < RTOL
    if weights == "analytic":
        wn = np.linspace(0.5, 3, 7)
        pred_w = ref.get_prediction(Xs, weights=wn).summary_frame(alpha=0.1)
        got = predict_interval(r, Xn, kind="prediction", level=0.9, weights=wn)
        assert rel(got.lower, pred_w["obs_ci_lower"]) < RTOL
        assert rel(got.upper, pred_w["obs_ci_upper"]) < RTOL


def test_rank_deficient_estimable_part_matches_statsmodels_pinv():
    """Duplicate column: x0 and x3 are aliased; x1, x2 and the intercept stay estimable, and
    their estimates and standard errors equal statsmodels' pinv-based ones."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(80, 3))
    X = np.column_stack([X, 2.0 * X[:, 0]])
    y = X[:, :3] @ [1.0, -2.0, 0.5] + 1 + rng.normal(size=80)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = _blocks(X, y[:, None], np.ones(80), 256)
        sol = fit_exact(b, 4, 1, solver="auto")
    (r,) = regression_results(sol, fit_intercept=True, batches=b)
    ref = sm.OLS(y, sm.add_constant(X)).fit()
    assert r.df_model == ref.df_model == 3 and r.df_resid == ref.df_resid == 76
    est = np.array([True, False, True, True, False])
    assert (np.asarray(r.estimable) == est).all()
    assert rel(r.coef[est], ref.params[est]) < RTOL
    assert rel(r.std_errors[est], ref.bse[est]) < RTOL
    assert np.isnan(r.std_errors[~est]).all() and np.isnan(r.p_values[~est]).all()
    for kind in HC:
        c = r.cov(kind)[np.ix_(est, est)]
        assert rel_cov(c, getattr(ref, "cov_" + kind)[np.ix_(est, est)]) < RTOL
    sm_name = {"r_squared": "rsquared", "adj_r_squared": "rsquared_adj", "f_statistic": "fvalue",
               "log_likelihood": "llf", "aic": "aic", "bic": "bic"}
    for stat, other in sm_name.items():
        assert rel(getattr(r, stat), getattr(ref, other)) < RTOL, stat
    assert any("Rank deficient" in n for n in r.notes)


def test_distributed_pass_equals_the_local_one():
    """pass_plan / block_sums / PassSums.merge in a tree (as Dask would) give the batches result."""
    import functools
    import pickle

    from jaxlm.inference import block_sums, pass_plan

    X, Y, w = make(3000, 5, 2, "analytic", 13)
    b = _blocks(X, Y, w, 500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = fit_exact(b, 5, 2)
    kw = dict(fit_intercept=True, weights_kind="analytic", refine=True)
    local = regression_results(sol, batches=b, **kw)
    plan = pickle.loads(pickle.dumps(pass_plan(sol, **kw)))  # shipped to the workers
    parts = [block_sums(plan, X[i:i + 300], Y[i:i + 300], w[i:i + 300]) for i in range(0, 3000, 300)]
    while len(parts) > 1:  # tree reduction
        parts = [functools.reduce(lambda a, c: a.merge(c), parts[i:i + 3]) for i in range(0, len(parts), 3)]
    remote = regression_results(sol, sums=parts[0], **kw)
    for a, c in zip(local, remote):
        for kind in ("nonrobust",) + HC:
            assert rel_cov(a.cov(kind), c.cov(kind)) < 1e-13
        assert rel(a.log_likelihood, c.log_likelihood) < 1e-13
        assert a.cov_refinement_steps == c.cov_refinement_steps >= 1


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_state_only_solution_matches_statsmodels(fit_intercept):
    """A solution read off the merged state alone (partial_fit, no data pass, no refinement)
    still gives every non-robust statistic."""
    from jaxlm.core import exact

    X, Y, w = make(400, 6, 1, "frequency", 17)
    b = _blocks(X, Y, w, 128)
    state = exact.accumulate_state(b, 6, 1, kind="gram")
    sol = exact.solve_state(state, fit_intercept=fit_intercept)
    (r,) = regression_results(sol, fit_intercept=fit_intercept)
    ref = reference(X, Y[:, 0], w, fit_intercept=fit_intercept, weights="frequency")
    diffs = {k: v for k, v in compare(r, ref, robust=False).items() if not v <= RTOL}
    assert not diffs, diffs

