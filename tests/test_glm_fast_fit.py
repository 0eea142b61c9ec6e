"""The fast road of a large GLM fit: the statistics that come with the fit's first pass (no
statistics' pass for families with φ = 1), the quasi-Newton steps from score passes with a
subsample's curvature, and the linear-time 0/1 label coding of LogisticRegression.

References: the statistics' pass itself (jaxlm.inference.glm_stats_pass, which computes llf and
the null model's terms row by row from the log-density), the plain IRLS fit (Newton passes from
statsmodels' start, no curvature) and statsmodels' GLM.
"""
import warnings

import numpy as np
import pytest

from jaxlm.core import families as F
from jaxlm.core.errors import InputError
from jaxlm.core.glm_passes import Point, check_reduction, host_summary, pass_reduction, summarise, thinned
from jaxlm.core.irls import ConvergenceWarning, curvature_of, fit_irls
from jaxlm.inference.glm import glm_results, stats_plan, stats_reduction
import jaxlm
from jaxlm.models import glm
from jaxlm.models.glm_rules import binary_codes
from jaxlm.reduce import memory


def _close(actual, desired, rtol, err_msg=""):
    """Each entry within ``rtol`` of the largest (as the other GLM tests compare coefficients)."""
    desired = np.asarray(desired, dtype=float)
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=rtol * np.max(np.abs(desired)), err_msg=err_msg)


def _response(family, link, eta, rng):
    n = len(eta)
    if family.name == "binomial":
        mu = {"logit": lambda e: 1 / (1 + np.exp(-e)), "probit": lambda e: 0.5 * (1 + np.tanh(0.8 * e)),
              "cloglog": lambda e: 1 - np.exp(-np.exp(e))}[link](eta)
        return rng.binomial(1, mu).astype(float)
    if family.name == "poisson":
        return rng.poisson(np.exp(eta)).astype(float)
    if family.name == "negative_binomial":
        m = np.exp(eta)
        return rng.negative_binomial(1 / family.alpha, 1 / (1 + family.alpha * m)).astype(float)
    if family.name == "gamma":
        return rng.gamma(2.0, np.exp(0.3 * eta) / 2.0)
    return rng.poisson(np.exp(eta)) * rng.gamma(2.0, 0.5, n)  # tweedie


def _data(n=30_000, d=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.linspace(0.5, 2.0, d) + np.linspace(-1.0, 1.0, d)
    beta = rng.normal(size=d) * 0.4 / np.sqrt(d) / np.linspace(0.5, 2.0, d)
    return X, X @ beta - float(np.mean(X @ beta)) + 0.2, rng


class _Counting:
    """A memory runner that counts its full and score passes (a score pass sums a vector)."""

    def __init__(self, *arrays, runner=memory.arrays_runner):
        self.run, self.full, self.score, self.gram32 = runner(*arrays), 0, 0, 0

    def __call__(self, reduction):
        if reduction.update.func.__name__ == "_pass_update":
            if isinstance(reduction.init().state, np.ndarray):
                self.score += 1
            else:
                self.full += 1
                self.gram32 += int(reduction.update.args[2].gram32)
        return self.run(reduction)


# ---------------------------------------------------------------- statistics without their pass
STATS_CASES = [("binomial", "logit", "none"), ("binomial", "cloglog", "weights"), ("binomial", "logit", "proportions"),
               ("binomial", "probit", "freq"), ("poisson", "log", "none"), ("poisson", "log", "weights"),
               ("poisson", "log", "freq"), ("negative_binomial", "log", "weights"),
               ("negative_binomial", "log", "freq")]


@pytest.mark.parametrize("name,link,kind", STATS_CASES)
def test_statistics_from_the_first_pass_equal_the_statistics_pass(name, link, kind):
    """llf, llnull and the null deviance of a φ = 1 family come with the fit's first pass
    (llf = llsat − D/2; counts without variance weights: once per value); the statistics' pass
    computes them row by row from the log-density."""
    family = F.get_family(name, **({"alpha": 0.7} if name == "negative_binomial" else {}))
    X, eta, rng = _data(n=2000, d=3, seed=3)
    y = _response(family, link, eta, rng)
    n = len(y)
    f = rng.integers(1, 4, n).astype(float) if kind != "none" else np.ones(n)
    f[::17] = 0.0 if kind != "none" else 1.0
    vw = rng.uniform(0.5, 2.0, n) if kind == "weights" else None
    if kind == "proportions":  # successes / trials, the trials as variance weights
        vw = rng.integers(1, 6, n).astype(float)
        y = rng.binomial(vw.astype(int), 1 / (1 + np.exp(-eta))) / vw
    run = memory.arrays_runner(X, y[:, None], f, *(() if vw is None else (np.zeros(n), vw)))
    sol = fit_irls(run, 3, family=family, link=link)
    assert np.isfinite(sol.saturated) and np.isfinite(sol.null_deviance)
    folded = glm_results(sol, run, robust=False)
    sums = run(stats_reduction(stats_plan(sol, robust=False)))
    for got, want in ((folded.llf, sums.llf), (folded.llnull, sums.llnull), (folded.null_deviance, sums.null_deviance)):
        assert abs(got - want) <= 1e-11 * abs(want), (got, want)
    robust = glm_results(sol, run, robust=True)  # the HC covariances still take the pass
    assert abs(robust.llf - folded.llf) <= 1e-11 * abs(folded.llf)


def test_statistics_pass_stays_where_the_identity_does_not_apply():
    """An estimated scale (Gamma) or an offset: no y-only sums, the statistics' pass runs."""
    X, eta, rng = _data(n=1000, d=3, seed=4)
    y = _response(F.get_family("gamma"), "log", eta, rng)
    run = memory.arrays_runner(X, y[:, None], np.ones(len(y)))
    assert np.isnan(fit_irls(run, 3, family="gamma", link="log").saturated)
    yc = rng.poisson(np.exp(eta)).astype(float)
    run = memory.arrays_runner(X, yc[:, None], np.ones(len(y)), rng.normal(size=len(y)) * 0.1)
    assert np.isnan(fit_irls(run, 3, family="poisson").null_deviance)


# ------------------------------------------------------------------------------ quasi-Newton
QN_CASES = [("binomial", "logit", {}), ("binomial", "probit", {}), ("binomial", "cloglog", {"fit_intercept": False}),
            ("poisson", "log", {"alpha": 50.0}), ("poisson", "log", {"weights": True}), ("gamma", "log", {}),
            ("tweedie", "log", {}), ("negative_binomial", "log", {"offset": True})]


@pytest.mark.parametrize("name,link,opts", QN_CASES)
def test_quasi_newton_start_lands_on_the_newton_fit(name, link, opts):
    """Score passes with a subsample's curvature, then Newton passes: the plain fit's coefficients
    (within 1e-9), its state (standard errors within 1e-8) and statistics."""
    family = F.get_family(name, **({"alpha": 0.7} if name == "negative_binomial" else {}))
    X, eta, rng = _data(seed=hash((name, link)) % 1000)
    y = _response(family, link, eta, rng)
    n, d = X.shape
    f = rng.integers(1, 4, n).astype(float) if opts.get("weights") else np.ones(n)
    extra = (rng.normal(size=n) * 0.1,) if opts.get("offset") else ()
    counting = _Counting(X, y[:, None], f, *extra)
    kw = dict(family=family, link=link, fit_intercept=opts.get("fit_intercept", True), alpha=opts.get("alpha", 0.0))
    plain = fit_irls(counting.run, d, **kw)
    sub = fit_irls(lambda r: counting.run(thinned(r, 20)), d, tol=1e-6, **{**kw, "alpha": kw["alpha"] / 20})
    fast = fit_irls(counting, d, start=(sub.coef, sub.intercept), curvature=curvature_of(sub, n / (n // 20)), **kw)
    assert plain.converged and fast.converged
    assert counting.score >= 2 and counting.full >= 2  # it took quasi-Newton steps, then Newton steps
    _close(np.r_[fast.intercept, fast.coef], np.r_[plain.intercept, plain.coef], 1e-9)
    a, b = glm_results(fast, counting.run), glm_results(plain, counting.run)
    if kw["alpha"] == 0.0:
        _close(a.bse, b.bse, 1e-8)
    for stat in ("deviance", "pearson_chi2", "llf", "null_deviance"):
        assert abs(getattr(a, stat) - getattr(b, stat)) <= 1e-9 * abs(getattr(b, stat)), stat


@pytest.mark.parametrize("name", ["binomial", "poisson"])
def test_float32_newton_pass_is_a_curvature_only(name):
    """A well-conditioned, centred design: the Newton pass between the score passes accumulates its
    Gram in float32; the fit still ends on a float64 pass (its state is that of the coefficients)
    and lands on the plain fit."""
    family = F.get_family(name)
    rng = np.random.default_rng(11)
    X = rng.normal(size=(60_000, 20))
    eta = X @ (rng.normal(size=20) * 0.15) + 0.2
    y = _response(family, family.default_link, eta, rng)
    counting = _Counting(X, y[:, None], np.ones(len(y)))
    plain = fit_irls(counting.run, 20, family=family)
    sub = fit_irls(lambda r: counting.run(thinned(r, 20)), 20, family=family, tol=1e-4)
    fast = fit_irls(counting, 20, family=family, start=(sub.coef, sub.intercept), curvature=curvature_of(sub, 20.0))
    assert fast.converged and counting.gram32 == 1 and counting.full >= 2
    _close(np.r_[fast.intercept, fast.coef], np.r_[plain.intercept, plain.coef], 1e-9)
    ref = counting.run(pass_reduction(family, family.link(), Point(fast.coef, fast.intercept), 20))
    np.testing.assert_allclose(np.asarray(fast.state.sxx), np.asarray(ref.state.sxx), rtol=1e-13)
    _close(glm_results(fast, counting.run).bse, glm_results(plain, counting.run).bse, 1e-9)


def test_quasi_newton_cut_short_still_returns_a_full_pass_state():
    """max_iter reached among the score passes: a full pass at the last point gives the state."""
    family = F.get_family("poisson")
    X, eta, rng = _data(seed=5)
    y = _response(family, "log", eta, rng)
    run = memory.arrays_runner(X, y[:, None], np.ones(len(y)))
    sub = fit_irls(lambda r: run(thinned(r, 20)), X.shape[1], family=family, tol=1e-6)
    with pytest.warns(ConvergenceWarning):
        sol = fit_irls(run, X.shape[1], family=family, max_iter=3, start=(sub.coef, sub.intercept),
                       curvature=curvature_of(sub, 20.0))
    ref = run(pass_reduction(family, family.link(), Point(sol.coef, sol.intercept), X.shape[1]))
    np.testing.assert_allclose(np.asarray(sol.state.sxx), np.asarray(ref.state.sxx), rtol=1e-12)
    assert np.isfinite(glm_results(sol, run).bse).all()


@pytest.mark.parametrize("cls", [glm.LogisticRegression, glm.PoissonRegressor])
def test_estimator_on_the_fast_road_equals_the_plain_fit(cls, monkeypatch):
    """The estimator's subsample start with quasi-Newton steps gives the plain fit's results."""
    X, eta, rng = _data(n=40_000, d=12, seed=6)
    y = (rng.random(len(eta)) < 1 / (1 + np.exp(-eta))).astype(float) if cls is glm.LogisticRegression else (
        rng.poisson(np.exp(eta)).astype(float))
    plain = cls().fit(X, y)
    runners = []

    def counting_runner(*arrays, **kwargs):
        runners.append(_Counting(*arrays))
        return runners[-1]

    monkeypatch.setattr(glm, "SUBSAMPLE_MIN_ROWS", 1000)
    monkeypatch.setattr(memory, "arrays_runner", counting_runner)
    fast = cls().fit(X, y)
    assert runners[0].score >= 2 and runners[0].full >= 2  # score passes from the subsample's curvature
    _close(np.r_[fast.intercept_, fast.coef_], np.r_[plain.intercept_, plain.coef_], 1e-9)
    r, p = fast.results_, plain.results_
    _close(r.bse, p.bse, 1e-8)
    for stat in ("llf", "llnull", "null_deviance", "deviance", "aic", "bic_llf"):
        assert abs(getattr(r, stat) - getattr(p, stat)) <= 1e-9 * abs(getattr(p, stat)), stat


# ------------------------------------------------------------------------------ label coding
@pytest.mark.parametrize("y", [[0, 1, 1, 0], [0.0, 1.0, 1.0], [-1, 1, -1], [2.0, 5.0, 5.0], [3, 3, 3]])
def test_binary_codes_equal_np_unique(y):
    y = np.asarray(y)
    classes, codes = binary_codes(y)
    ref_classes, ref_codes = np.unique(y, return_inverse=True)
    np.testing.assert_array_equal(classes, ref_classes)
    assert classes.dtype == ref_classes.dtype
    np.testing.assert_array_equal(codes, ref_codes.astype(float))


@pytest.mark.parametrize("y", [[0.5, 1.5, 0.5], [0, 1, 2], [0.0, np.nan, 1.0], ["a", "b", "a"], np.zeros((3, 1))])
def test_binary_codes_leave_other_targets_to_the_general_path(y):
    assert binary_codes(np.asarray(y)) is None


def test_logistic_labels_coded_the_same_on_both_paths():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(300, 2))
    y = (rng.random(300) < 1 / (1 + np.exp(-X[:, 0]))).astype(int) * 3 + 2  # labels 2 and 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        num = glm.LogisticRegression().fit(X, y)
        txt = glm.LogisticRegression().fit(X, np.where(y == 5, "b", "a"))
    np.testing.assert_array_equal(num.classes_, [2, 5])
    np.testing.assert_allclose(num.coef_, txt.coef_, rtol=1e-14)
    with pytest.raises(Exception, match="class labels"):
        glm.LogisticRegression().fit(X, y + 0.5)  # continuous: the general path's error


# ------------------------------------------------------------------------------ checks
@pytest.mark.parametrize("subsample", [False, True])
def test_x_is_checked_by_the_first_pass_of_an_in_memory_fit(subsample, monkeypatch):
    """In memory the check pass does not read X: the first IRLS pass checks it (rows outside the
    subsample too) and the check pass then names the first bad row and column."""
    X, eta, rng = _data(n=30_000, d=12, seed=8)
    y = rng.poisson(np.exp(eta)).astype(float)
    X[12_345, 7] = np.inf  # not one of every 20th row
    X[20_001, 3] = np.nan
    if subsample:
        monkeypatch.setattr(glm, "SUBSAMPLE_MIN_ROWS", 1000)
    with pytest.raises(InputError, match=r"X must be finite .*got X=inf at row 12345, column 7"):
        glm.PoissonRegressor().fit(X, y)
    w = np.ones(len(y))
    w[[12_345, 20_001]] = 0.0  # rows of weight 0 are not fitted, nor checked
    glm.PoissonRegressor().fit(X, y, sample_weight=w)


def test_host_summary_equals_the_check_pass():
    rng = np.random.default_rng(9)
    n = 5000
    X, y = rng.normal(size=(n, 2)), rng.poisson(2.0, n).astype(float)
    w, vw, off = rng.integers(0, 3, n).astype(float), rng.uniform(0.5, 2, n), rng.normal(size=n)
    family = F.get_family("poisson")
    for offset, var_weights in ((None, None), (off, None), (np.zeros(n), vw)):
        extra = () if offset is None and var_weights is None else (offset,) + (() if var_weights is None else
                                                                                (var_weights,))
        ref = summarise(memory.arrays_runner(X, y[:, None], w, *extra)(check_reduction(family)), family)
        got = host_summary(y, w, offset, var_weights, family)
        assert not got.x_checked and ref.x_checked
        assert got[:3] == ref[:3] and got.has_offset == ref.has_offset
        np.testing.assert_allclose(got[3:5], ref[3:5], rtol=1e-14)
    bad = y.copy()
    bad[np.flatnonzero(w > 0)[0]] = -1.0
    assert host_summary(bad, w, None, None, family) is None  # the check pass names it
    bad[np.flatnonzero(w > 0)[0]], bad[np.flatnonzero(w == 0)[0]] = 1.0, -1.0
    assert host_summary(bad, w, None, None, family) is not None  # a row of weight 0 is not checked


def test_huge_finite_x_is_an_input_error_not_a_crash():
    """Finite X near the end of the float64 range: sums that overflow must give the one-line
    error (the row check once summed all rows and then found no row to name: a TypeError)."""
    rng = np.random.default_rng(0)
    X = np.full((20_000, 10), 1e307) * rng.uniform(0.5, 1, (20_000, 10))
    y = rng.poisson(1.0, 20_000).astype(float)
    with pytest.raises(InputError, match="Rescale the very large columns"):
        jaxlm.GLM(family="poisson").fit(X, y)
    wide = np.full((4, 1100), 1.7e308)  # each row's (scaled) sum overflows though every value is finite
    with pytest.raises(InputError, match="each row's sum stays finite"):
        jaxlm.GLM(family="poisson").fit(wide, np.ones(4))
