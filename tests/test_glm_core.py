"""The GLM core (jaxlm.core.families, jaxlm.core.irls, jaxlm.inference.glm) against statsmodels.

References are independent: statsmodels' GLM fitted to convergence (IRLS, then Newton from
there, then one IRLS step from the optimum so that its covariance is the expected information
*at* the optimum), the R values that ship with statsmodels' own tests, and statsmodels' score
and Hessian for the HC2/HC3 sandwich formulas. Data are drawn with moderate effects so that
z-statistics stay below ~10 (p-values then keep their relative precision).
"""
import pickle
import warnings

import numpy as np
import pytest

sm = pytest.importorskip("statsmodels.api")

from jaxlm.core import families as F  # noqa: E402
from jaxlm.core.errors import InputError  # noqa: E402
from jaxlm.core.glm_passes import (Point, check_reduction, null_reduction, pass_reduction,  # noqa: E402
                                   spread_reduction)
from jaxlm.core.irls import ConvergenceWarning, SeparationWarning, fit_irls  # noqa: E402
from jaxlm.inference.glm import glm_results, stats_plan, stats_reduction  # noqa: E402
from jaxlm.reduce import memory  # noqa: E402

RTOL = 1e-8


def _close(actual, desired, rtol=RTOL, err_msg=""):
    """Relative agreement of a coefficient vector as a whole: each entry within ``rtol`` of the
    largest (a coefficient near zero carries the absolute error of the others, not a relative one)."""
    desired = np.asarray(desired, dtype=float)
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=rtol * np.max(np.abs(desired)), err_msg=err_msg)

L = sm.families.links


def _sm_family(family, link):
    """The statsmodels family for one of ours."""
    links = {"identity": L.Identity, "log": L.Log, "logit": L.Logit, "probit": L.Probit, "cloglog": L.CLogLog,
             "inverse": L.InversePower, "inverse_squared": L.InverseSquared}
    lk = links[link]()
    if isinstance(family, F.Tweedie):
        return sm.families.Tweedie(var_power=family.var_power, link=lk)
    if isinstance(family, F.NegativeBinomial):
        return sm.families.NegativeBinomial(alpha=family.alpha, link=lk)
    return {"gaussian": sm.families.Gaussian, "binomial": sm.families.Binomial, "poisson": sm.families.Poisson,
            "gamma": sm.families.Gamma, "inverse_gaussian": sm.families.InverseGaussian}[family.name](link=lk)


def _data(family, link, n=400, seed=0):
    """A design with three columns and a response of ``family``; effects are moderate (every
    |z| below ~7 with 400 rows) so that p-values keep their relative precision."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * [1.0, 2.0, 0.5]
    eta = X @ [0.1, -0.03, 0.15]
    name = family.name
    if name == "binomial":
        mu = {"logit": lambda e: 1 / (1 + np.exp(-e)), "probit": lambda e: 0.5 * (1 + np.tanh(0.8 * e)),
              "cloglog": lambda e: 1 - np.exp(-np.exp(e))}[link](eta)
        y = rng.binomial(1, mu).astype(float)
    elif name == "poisson":
        y = rng.poisson(np.exp(0.05 + eta)).astype(float)
    elif name == "negative_binomial":
        m = np.exp(0.1 + eta)
        y = rng.negative_binomial(1 / family.alpha, 1 / (1 + family.alpha * m)).astype(float)
    elif name == "gamma":
        m = np.exp(0.02 + 0.3 * eta) if link == "log" else 1.0 / (1.0 + 0.2 * eta)
        y = rng.gamma(1.0, m)
    elif name == "inverse_gaussian":
        y = rng.wald(np.exp(0.02 + 0.3 * eta), 1.0)
    elif name == "tweedie":
        y = rng.poisson(np.exp(eta)) * rng.gamma(2.0, 0.5, n)
    else:  # gaussian
        y = (np.exp(0.1 + 0.3 * eta) if link == "log" else 0.1 + eta) + rng.normal(size=n) * 1.5
    return X, y


def _weights(n, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.integers(1, 4, n).astype(float), rng.uniform(0.5, 2.0, n), rng.normal(size=n) * 0.2)


def _ours(X, y, family, link, *, fw=None, vw=None, off=None, fit_intercept=True, rows=97):
    n = len(y)
    w = np.ones(n) if fw is None else fw
    run = memory.arrays_runner(X, y[:, None], w, np.zeros(n) if off is None else off,
                               np.ones(n) if vw is None else vw, rows=rows)
    sol = fit_irls(run, X.shape[1], family=family, link=link, fit_intercept=fit_intercept)
    return sol, glm_results(sol, run), run


def _reference(X, y, family, link, *, fw=None, vw=None, off=None, fit_intercept=True, cov_type="nonrobust"):
    """statsmodels at its optimum: params from Newton, covariance from one IRLS step there."""
    kw = {k: v for k, v in (("freq_weights", fw), ("var_weights", vw), ("offset", off)) if v is not None}
    Xs = sm.add_constant(X, prepend=True) if fit_intercept else X
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = sm.GLM(y, Xs, family=_sm_family(family, link), **kw)
        r0 = model.fit(tol=1e-14, maxiter=300)
        rn = model.fit(start_params=r0.params, method="newton", tol=1e-14, maxiter=100)
        res = model.fit(start_params=rn.params, maxiter=1, cov_type=cov_type)
    return rn.params, res


CASES = [("gaussian", "identity"), ("gaussian", "log"), ("binomial", "logit"), ("binomial", "probit"),
         ("binomial", "cloglog"), ("poisson", "log"), ("gamma", "log"), ("gamma", "inverse"),
         ("inverse_gaussian", "log"), (F.Tweedie(1.5), "log"), (F.NegativeBinomial(0.7), "log")]
OPTIONS = [{}, {"fw": True}, {"vw": True}, {"off": True}, {"fit_intercept": False},
           {"fw": True, "vw": True, "off": True}]


def _ids(case):
    fam, link = case
    return f"{F.get_family(fam).describe()}-{link}"


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "+".join(o) or "plain")
@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_matches_statsmodels(case, options):
    family, link = F.get_family(case[0]), case[1]
    if link == "inverse" and options.get("fit_intercept") is False:
        pytest.skip("a Gamma inverse-link model through the origin has no valid MLE on these data")
    X, y = _data(family, link)
    fw, vw, off = _weights(len(y))
    kw = dict(fw=fw if options.get("fw") else None, vw=vw if options.get("vw") else None,
              off=off if options.get("off") else None, fit_intercept=options.get("fit_intercept", True))
    sol, res, _ = _ours(X, y, family, link, **kw)
    params, ref = _reference(X, y, family, link, **kw)
    assert sol.converged
    _close(res.params, params)
    np.testing.assert_allclose(res.bse, ref.bse, rtol=RTOL)
    _close(res.zvalues, ref.tvalues)
    np.testing.assert_allclose(res.pvalues, ref.pvalues, rtol=RTOL)
    _close(res.conf_int(), ref.conf_int())
    for name in ("deviance", "null_deviance", "pearson_chi2", "scale", "llf", "aic", "bic_llf", "bic_deviance",
                 "df_model", "df_resid"):
        np.testing.assert_allclose(getattr(res, name), getattr(ref, name), rtol=RTOL, err_msg=name)
    np.testing.assert_allclose(res.llnull, ref.llnull, rtol=RTOL)
    np.testing.assert_allclose(res.pseudo_rsquared(), ref.pseudo_rsquared(), rtol=RTOL)
    np.testing.assert_allclose(res.pseudo_rsquared("mcf"), ref.pseudo_rsquared("mcf"), rtol=RTOL)
    assert res.nobs == ref.nobs


@pytest.mark.parametrize("case", [("poisson", "log"), ("binomial", "probit"), ("gamma", "log")], ids=_ids)
def test_hc_covariances(case):
    """HC0 = statsmodels cov_type="HC0" (observed-information bread); HC1 = HC0·n/df_resid;
    HC2/HC3 the same sandwich with the meat's terms over (1 − h), (1 − h)², h the IRLS leverage
    of one row, built here from statsmodels' score, Hessian and hat matrix."""
    family, link = F.get_family(case[0]), case[1]
    X, y = _data(family, link, seed=3)
    fw, vw, off = _weights(len(y), seed=4)
    sol, res, run = _ours(X, y, family, link, fw=fw, vw=vw, off=off)
    params, ref = _reference(X, y, family, link, fw=fw, vw=vw, off=off, cov_type="HC0")
    np.testing.assert_allclose(res.cov("HC0"), ref.cov_params(), rtol=RTOL, atol=1e-12 * np.abs(ref.cov_params()).max())
    np.testing.assert_allclose(res.cov("HC1"), ref.cov_params() * fw.sum() / ref.df_resid, rtol=RTOL,
                               atol=1e-12 * np.abs(ref.cov_params()).max())
    model = ref.model
    bread = np.linalg.inv(-model.hessian(params))
    score = model.score_obs(params) / np.sqrt(fw)[:, None]  # one row's score (statsmodels' own convention)
    h = model.hessian_factor(params, observed=False) / fw  # per-row expected information weights
    Xt = model.exog
    lev = h * np.einsum("ij,jk,ik->i", Xt, np.linalg.inv(Xt.T @ (Xt * (h * fw)[:, None])), Xt)
    for kind, power in (("HC2", 1), ("HC3", 2)):
        a = 1.0 / (1.0 - lev) ** power
        expected = bread @ (score.T @ (score * a[:, None])) @ bread
        np.testing.assert_allclose(res.cov(kind), expected, rtol=RTOL, atol=1e-12 * np.abs(expected).max())
    assert res.cov("HC3")[1, 1] > res.cov("HC2")[1, 1] > res.cov("HC0")[1, 1]
    light = glm_results(sol, run, robust=False)
    np.testing.assert_allclose(light.bse, res.bse, rtol=1e-14)
    with pytest.raises(InputError, match="needs the robust pass"):
        light.cov("HC1")
    with pytest.raises(AttributeError):
        res.scale = 1.0  # immutable
    assert not res.params.flags.writeable


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # statsmodels' inverse link at 0
@pytest.mark.parametrize("case", [("poisson", "log"), ("gamma", "inverse"), ("binomial", "cloglog")], ids=_ids)
def test_prediction_matches_statsmodels(case):
    family, link = F.get_family(case[0]), case[1]
    X, y = _data(family, link, seed=5)
    _, _, off = _weights(len(y), seed=6)
    _, res, _ = _ours(X, y, family, link, off=off)
    _, ref = _reference(X, y, family, link, off=off)
    Xn = np.random.default_rng(7).normal(size=(20, 3))
    on = np.linspace(-0.1, 0.1, 20)
    frame = ref.get_prediction(sm.add_constant(Xn, prepend=True, has_constant="add"), offset=on).summary_frame()
    got = res.get_prediction(Xn, on)
    np.testing.assert_allclose(got.mean, frame["mean"], rtol=RTOL)
    np.testing.assert_allclose(got.se_mean, frame["mean_se"], rtol=RTOL)
    lo, hi = np.minimum(frame["mean_ci_lower"], frame["mean_ci_upper"]), np.maximum(frame["mean_ci_lower"],
                                                                                  frame["mean_ci_upper"])
    np.testing.assert_allclose(got.lower, lo, rtol=RTOL)
    np.testing.assert_allclose(got.upper, hi, rtol=RTOL)
    np.testing.assert_allclose(res.predict(Xn, on, kind="link"),
                               ref.predict(sm.add_constant(Xn, prepend=True, has_constant="add"), offset=on,
                                           which="linear"), rtol=RTOL)
    delta = res.get_prediction(Xn, on, method="delta")
    np.testing.assert_allclose(delta.upper - delta.mean, 1.959963984540054 * got.se_mean, rtol=1e-12)


def test_families_match_statsmodels_functions():
    """Unit deviance, log-density, variance and its derivative, link functions and their
    derivatives equal statsmodels' to rounding."""
    rng = np.random.default_rng(0)
    vw = rng.uniform(0.5, 2.0, 40)
    pairs = [(F.Gaussian(), rng.normal(size=40), rng.normal(size=40)),
             (F.Binomial(), rng.integers(0, 2, 40).astype(float), rng.uniform(0.05, 0.95, 40)),
             (F.Poisson(), rng.poisson(2, 40).astype(float), rng.uniform(0.5, 3, 40)),
             (F.Gamma(), rng.gamma(2, size=40), rng.uniform(0.5, 3, 40)),
             (F.InverseGaussian(), rng.gamma(2, size=40), rng.uniform(0.5, 3, 40)),
             (F.Tweedie(1.3), rng.poisson(2, 40) * rng.gamma(1, size=40), rng.uniform(0.5, 3, 40)),
             (F.Tweedie(1.0), rng.poisson(2, 40).astype(float), rng.uniform(0.5, 3, 40)),
             (F.NegativeBinomial(0.4), rng.poisson(2, 40).astype(float), rng.uniform(0.5, 3, 40))]
    for fam, y, mu in pairs:
        ref = _sm_family(fam, fam.default_link)
        with np.errstate(divide="ignore", invalid="ignore"):
            np.testing.assert_allclose(fam.unit_deviance(y, mu), ref._resid_dev(y, mu), rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(fam.loglike_obs(y, mu, vw, 1.7), ref.loglike_obs(y, mu, vw, 1.7), rtol=1e-13)
        np.testing.assert_allclose(fam.variance(mu), ref.variance(mu), rtol=1e-15)
        np.testing.assert_allclose(fam.variance_deriv(mu), ref.variance.deriv(mu), rtol=1e-15)
    mu = rng.uniform(0.05, 0.95, 40)
    for name in ("logit", "probit", "cloglog", "log", "inverse", "identity", "inverse_squared"):
        ours = F.get_link(name)
        ref = {"logit": L.Logit(), "probit": L.Probit(), "cloglog": L.CLogLog(), "log": L.Log(),
               "inverse": L.InversePower(), "identity": L.Identity(), "inverse_squared": L.InverseSquared()}[name]
        eta = ref(mu)
        for a, b in [(ours(mu), eta), (ours.inverse(eta), ref.inverse(eta)), (ours.deriv(mu), ref.deriv(mu)),
                     (ours.inverse_deriv(eta), ref.inverse_deriv(eta)), (ours.deriv2(mu), ref.deriv2(mu))]:
            np.testing.assert_allclose(a, b, rtol=1e-13, err_msg=name)


# ------------------------------------------------------------------ R reference values
def _reorder(params):
    """Ours (intercept first) in the R results' order (constant last)."""
    return np.r_[params[1:], params[0]]


def _close_as_statsmodels(ours, sm_value, r_value, what):
    """|ours − R| is at most statsmodels' own |sm − R| (+ 1e-8 relative: the two agree to that)."""
    ours, sm_value, r_value = (np.asarray(v, dtype=float) for v in (ours, sm_value, r_value))
    bound = np.abs(sm_value - r_value) + 1e-8 * np.maximum(np.abs(r_value), 1.0)
    assert np.all(np.abs(ours - r_value) <= bound), (what, ours, sm_value, r_value)


def _fit_dataset(X, y, family, link=None, *, vw=None, off=None):
    n = len(y)
    run = memory.arrays_runner(X, y[:, None], np.ones(n), np.zeros(n) if off is None else off,
                               np.ones(n) if vw is None else vw, rows=64)
    return glm_results(fit_irls(run, X.shape[1], family=family, link=link), run)


def _r_results():
    return pytest.importorskip("statsmodels.genmod.tests.results.results_glm")


def test_r_star98_binomial_with_trials():
    """Star98: proportions of n trials (R's cbind(successes, failures)), var_weights = trials."""
    R = _r_results()
    data = sm.datasets.star98.load()
    endog, X = np.asarray(data.endog, float), np.asarray(data.exog, float)
    trials = endog.sum(axis=1)
    res = _fit_dataset(X, endog[:, 0] / trials, F.Binomial(trials=True), vw=trials)
    ref = R.Star98()
    smr = sm.GLM(endog, sm.add_constant(X, prepend=False), family=sm.families.Binomial()).fit(tol=1e-14)
    _close_as_statsmodels(_reorder(res.params), smr.params, ref.params, "params")
    _close_as_statsmodels(_reorder(res.bse), smr.bse, ref.bse, "bse")
    for ours, theirs, r, what in [(res.deviance, smr.deviance, ref.deviance, "deviance"),
                                  (res.null_deviance, smr.null_deviance, ref.null_deviance, "null deviance"),
                                  (res.llf, smr.llf, ref.llf, "llf"), (res.aic, smr.aic, ref.aic_R, "aic"),
                                  (res.bic_deviance, smr.bic_deviance, ref.bic_Stata, "bic"),
                                  (res.df_resid, smr.df_resid, ref.df_resid, "df_resid")]:
        _close_as_statsmodels(ours, theirs, r, what)


def test_r_scotland_gamma_inverse():
    R = _r_results()
    data = sm.datasets.scotland.load()
    X, y = np.asarray(data.exog, float), np.asarray(data.endog, float)
    res = _fit_dataset(X, y, "gamma")
    ref = R.Scotvote()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        smr = sm.GLM(y, sm.add_constant(X, prepend=False), family=sm.families.Gamma()).fit(tol=1e-14)
    _close_as_statsmodels(_reorder(res.params), smr.params, ref.params, "params")
    _close_as_statsmodels(_reorder(res.bse), smr.bse, ref.bse, "bse")
    mu = res.predict(X)
    llf1 = float(np.sum(F.Gamma().loglike_obs(y, mu, 1.0, 1.0)))  # Stata's llf (scale 1)
    for ours, theirs, r, what in [(res.deviance, smr.deviance, ref.deviance, "deviance"),
                                  (res.null_deviance, smr.null_deviance, ref.null_deviance, "null deviance"),
                                  (res.scale, smr.scale, ref.scale, "scale"), (llf1, llf1, ref.llf, "llf"),
                                  (res.aic, smr.aic, ref.aic_R, "aic"),
                                  (res.bic_deviance, smr.bic_deviance, ref.bic_Stata, "bic")]:
        _close_as_statsmodels(ours, theirs, r, what)


@pytest.mark.parametrize("exposure", [False, True])
def test_r_cpunish_poisson(exposure):
    R = _r_results()
    data = sm.datasets.cpunish.load()
    X, y = np.asarray(data.exog, float).copy(), np.asarray(data.endog, float)
    X[:, 3] = np.log(X[:, 3])
    off = np.full(len(y), np.log(100.0)) if exposure else None
    res = _fit_dataset(X, y, "poisson", off=off)
    ref = R.Cpunish_offset() if exposure else R.Cpunish()
    kw = {"exposure": np.full(len(y), 100.0)} if exposure else {}
    Xs = sm.add_constant(X, prepend=exposure)
    smr = sm.GLM(y, Xs, family=sm.families.Poisson(), **kw).fit(tol=1e-14)
    order = (lambda p: p) if exposure else _reorder
    _close_as_statsmodels(order(res.params), smr.params, ref.params, "params")
    _close_as_statsmodels(order(res.bse), smr.bse, ref.bse, "bse")
    for ours, theirs, r, what in [(res.deviance, smr.deviance, ref.deviance, "deviance"),
                                  (res.null_deviance, smr.null_deviance, ref.null_deviance, "null deviance"),
                                  (res.llf, smr.llf, ref.llf, "llf"), (res.aic, smr.aic, ref.aic_R, "aic"),
                                  (res.bic_deviance, smr.bic_deviance, ref.bic_Stata, "bic")]:
        _close_as_statsmodels(ours, theirs, r, what)


def test_r_lbw_logit():
    R = _r_results()
    ref = R.Lbw()
    Xc, y = np.asarray(ref.exog, float), np.asarray(ref.endog, float)
    res = _fit_dataset(Xc[:, :-1], y, "binomial")
    smr = sm.GLM(y, Xc, family=sm.families.Binomial()).fit(tol=1e-14)
    _close_as_statsmodels(_reorder(res.params), smr.params, ref.params, "params")
    _close_as_statsmodels(_reorder(res.bse), smr.bse, ref.bse, "bse")
    for ours, theirs, r, what in [(res.deviance, smr.deviance, ref.deviance, "deviance"),
                                  (res.null_deviance, smr.null_deviance, ref.null_deviance, "null deviance"),
                                  (res.llf, smr.llf, ref.llf, "llf"), (res.aic, smr.aic, ref.aic_R, "aic"),
                                  (res.bic_deviance, smr.bic_deviance, ref.bic_Stata, "bic")]:
        _close_as_statsmodels(ours, theirs, r, what)


# ------------------------------------------------------------------ drivers
@pytest.mark.parametrize("case", [("poisson", "log"), ("binomial", "probit"), (F.Tweedie(1.5), "log")], ids=_ids)
def test_dask_runner_equals_memory(case):
    da = pytest.importorskip("dask.array")
    from jaxlm.reduce import dask as rdask

    family, link = F.get_family(case[0]), case[1]
    X, y = _data(family, link, n=1003, seed=8)
    fw, vw, off = _weights(len(y), seed=9)
    _, mem, _ = _ours(X, y, family, link, fw=fw, vw=vw, off=off, rows=1003)
    c = 150  # 7 partitions
    run = rdask.runner(da.from_array(X, chunks=(c, 3)), da.from_array(y[:, None], chunks=(c, 1)),
                       da.from_array(fw, chunks=c), da.from_array(off, chunks=c), da.from_array(vw, chunks=c))
    sol = fit_irls(run, 3, family=family, link=link)
    res = glm_results(sol, run)
    for name in ("params", "bse", "deviance", "null_deviance", "llf", "pearson_chi2"):
        np.testing.assert_allclose(getattr(res, name), getattr(mem, name), rtol=1e-10, err_msg=name)
    for kind in ("HC0", "HC3"):
        np.testing.assert_allclose(res.cov(kind), mem.cov(kind), rtol=1e-10, atol=1e-16)


def test_reductions_pickle_round_trip():
    """Dask ships reductions to worker processes: every pass must survive pickling."""
    X, y = _data(F.Poisson(), "log", n=50)
    run = memory.arrays_runner(X, y[:, None], np.ones(50))
    sol = fit_irls(run, 3, family="poisson")
    reds = [check_reduction(F.Poisson()), spread_reduction(3), null_reduction(F.Poisson(), F.Log(), 0.1),
            pass_reduction(F.Tweedie(1.5), F.Log(), Point(sol.coef, sol.intercept), 3)]
    reds.append(stats_reduction(stats_plan(sol)))
    for red in reds:
        back = pickle.loads(pickle.dumps(red))
        assert repr(run(red)) == repr(run(back))


def test_devices_runner_and_start_from_a_subsample_fit():
    from jaxlm.reduce import devices

    X, y = _data(F.Binomial(), "logit", n=2000, seed=10)
    n = len(y)
    full = memory.arrays_runner(X, y[:, None], np.ones(n))
    ref = fit_irls(full, 3, family="binomial")
    dev = fit_irls(devices.runner(X, y[:, None], np.ones(n)), 3, family="binomial")
    np.testing.assert_allclose(dev.coef, ref.coef, rtol=1e-12)
    sub = fit_irls(memory.arrays_runner(X[::10], y[::10, None], np.ones(n // 10)), 3, family="binomial", tol=1e-6)
    warm = fit_irls(full, 3, family="binomial", start=(sub.coef, sub.intercept))
    _close(warm.coef, ref.coef, rtol=1e-9)


# ------------------------------------------------------------------ behaviour
def test_gaussian_identity_is_one_weighted_least_squares():
    X, y = _data(F.Gaussian(), "identity")
    fw, vw, off = _weights(len(y))
    sol, res, _ = _ours(X, y, F.Gaussian(), "identity", vw=vw, off=off)
    assert sol.n_iter == 1 and sol.converged
    Xt = np.column_stack([np.ones(len(y)), X])
    wls = np.linalg.lstsq(Xt * np.sqrt(vw)[:, None], (y - off) * np.sqrt(vw), rcond=None)[0]
    np.testing.assert_allclose(res.params, wls, rtol=1e-12)


def test_ridge_matches_scikit_learn():
    """alpha minimises D + α‖β‖² (intercept free): scikit-learn's PoissonRegressor(alpha=α/Σw)."""
    linear_model = pytest.importorskip("sklearn.linear_model")
    X, y = _data(F.Poisson(), "log", seed=11)
    n, alpha = len(y), 25.0
    sol = fit_irls(memory.arrays_runner(X, y[:, None], np.ones(n)), 3, family="poisson", alpha=alpha)
    skl = linear_model.PoissonRegressor(alpha=alpha / n, solver="newton-cholesky", tol=1e-14, max_iter=1000).fit(X, y)
    np.testing.assert_allclose(sol.coef, skl.coef_, rtol=1e-9)
    np.testing.assert_allclose(sol.intercept, skl.intercept_, rtol=1e-9)
    unpenalised = fit_irls(memory.arrays_runner(X, y[:, None], np.ones(n)), 3, family="poisson")
    assert np.linalg.norm(sol.coef) < np.linalg.norm(unpenalised.coef)


def test_separation_warns_and_names_the_column():
    rng = np.random.default_rng(0)
    n = 300
    x0 = rng.normal(size=n)
    dummy = (rng.uniform(size=n) < 0.2).astype(float)
    y = np.where(dummy == 1, 1.0, rng.binomial(1, 1 / (1 + np.exp(-0.5 * x0)))).astype(float)
    X = np.column_stack([x0, dummy])
    run = memory.arrays_runner(X, y[:, None], np.ones(n))
    with pytest.warns(SeparationWarning, match="'group'") as record:
        sol = fit_irls(run, 2, family="binomial", feature_names=["x", "group"])
    assert sol.separated == (1,) and not sol.converged
    assert not any(issubclass(r.category, ConvergenceWarning) for r in record)
    # complete separation on one column of three
    X3 = rng.normal(size=(n, 3))
    y3 = (X3[:, 1] > 0.2).astype(float)
    with pytest.warns(SeparationWarning):
        sol3 = fit_irls(memory.arrays_runner(X3, y3[:, None], np.ones(n)), 3, family="binomial")
    assert sol3.separated == (1,)


def test_no_separation_warning_for_a_strong_but_finite_effect():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(500, 2))
    y = rng.binomial(1, 1 / (1 + np.exp(-3.0 * X[:, 0]))).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sol = fit_irls(memory.arrays_runner(X, y[:, None], np.ones(500)), 2, family="binomial")
    assert sol.converged and sol.separated == ()


@pytest.mark.parametrize("family, y_bad, rule", [
    ("poisson", -1.0, ">= 0"), ("binomial", 1.5, "in \\[0, 1\\]"), ("gamma", 0.0, "> 0"),
    ("negative_binomial", -2.0, ">= 0"), ("binomial", np.nan, "in \\[0, 1\\]")])
def test_support_errors_name_the_rule_value_and_row(family, y_bad, rule):
    X, y = _data(F.get_family(family), F.get_family(family).default_link, n=60)
    y = y.copy()
    y[37] = y_bad
    run = memory.arrays_runner(X, y[:, None], np.ones(60), rows=16)
    with pytest.raises(InputError, match=f"y must be {rule}.*got y={y_bad!r} at row 37") as e:
        fit_irls(run, 3, family=family)
    assert e.value.param == "y"


def test_input_errors_for_weights_offsets_and_x():
    X, y = _data(F.Poisson(), "log", n=40)
    ones = np.ones(40)
    bad_x = X.copy()
    bad_x[21, 2] = np.inf
    with pytest.raises(InputError, match="X must be finite.*at row 21, column 2") as e:
        fit_irls(memory.arrays_runner(bad_x, y[:, None], ones, rows=8), 3, family="poisson")
    assert e.value.param == "X"
    w = ones.copy()
    w[5] = -1.0
    with pytest.raises(InputError, match="freq_weights must be a finite number >= 0.*row 5"):
        fit_irls(memory.arrays_runner(X, y[:, None], w), 3, family="poisson")
    vw = ones.copy()
    vw[7] = 0.0
    with pytest.raises(InputError, match="var_weights must be a finite number > 0.*row 7"):
        fit_irls(memory.arrays_runner(X, y[:, None], ones, np.zeros(40), vw), 3, family="poisson")
    with pytest.raises(InputError, match="link must be one of 'logit', 'probit', 'cloglog'"):
        fit_irls(memory.arrays_runner(X, y[:, None], ones), 3, family="binomial", link="log")
    with pytest.raises(InputError, match="var_power must be a number in \\[1, 2\\]"):
        F.Tweedie(2.5)
    # a zero-weight row is ignored, its y not checked
    y0, w0 = y.copy(), ones.copy()
    y0[3], w0[3] = -5.0, 0.0
    fit_irls(memory.arrays_runner(X, y0[:, None], w0), 3, family="poisson")


def test_non_convergence_warns_with_the_deviance_path():
    X, y = _data(F.Binomial(), "cloglog")
    with pytest.warns(ConvergenceWarning, match=r"did not converge in 2 iterations.*deviance path ends with \["):
        sol = fit_irls(memory.arrays_runner(X, y[:, None], np.ones(len(y))), 3, family="binomial",
                       link="cloglog", max_iter=2)
    assert not sol.converged and len(sol.deviance_path) == 3


def test_step_halving_recovers_from_a_bad_start():
    """From a start whose full IRLS step overshoots (the deviance rises or the means leave the
    domain), halving brings it back to the same optimum."""
    X, y = _data(F.Binomial(), "cloglog", seed=12)
    run = memory.arrays_runner(X, y[:, None], np.ones(len(y)))
    ref = fit_irls(run, 3, family="binomial", link="cloglog")
    sol = fit_irls(run, 3, family="binomial", link="cloglog", start=(np.array([3.0, 3.0, 0.0]), 0.0))
    assert sol.halvings > 0 and sol.converged
    _close(sol.coef, ref.coef)
    with pytest.raises(InputError, match="start must give"):
        fit_irls(run, 3, family="binomial", link="cloglog", start=(np.zeros(3), 40.0))


def test_rank_deficient_design_reports_the_aliased_column():
    X, y = _data(F.Poisson(), "log", seed=13)
    Xd = np.column_stack([X, X[:, 0] + X[:, 1]])
    run = memory.arrays_runner(Xd, y[:, None], np.ones(len(y)))
    sol = fit_irls(run, 4, family="poisson")
    assert sol.converged and sol.rank == 3 and set(sol.aliased) >= {0, 1, 3}
    res = glm_results(sol, run)
    full = fit_irls(memory.arrays_runner(X, y[:, None], np.ones(len(y))), 3, family="poisson")
    np.testing.assert_allclose(res.deviance, full.deviance, rtol=1e-10)
    assert res.df_resid == len(y) - 4 and np.isnan(res.bse[1])


def test_intercept_only_model():
    rng = np.random.default_rng(14)
    y = rng.poisson(2.0, 120).astype(float)
    run = memory.arrays_runner(np.zeros((120, 0)), y[:, None], np.ones(120))
    sol = fit_irls(run, 0, family="poisson")
    res = glm_results(sol, run)
    np.testing.assert_allclose(sol.intercept, np.log(y.mean()), rtol=1e-10)
    ref = sm.GLM(y, np.ones((120, 1)), family=sm.families.Poisson()).fit(method="newton", tol=1e-14)
    np.testing.assert_allclose(res.bse, ref.bse, rtol=RTOL)
    np.testing.assert_allclose(res.llf, ref.llf, rtol=RTOL)
    with pytest.raises(InputError, match="fit_intercept must be True when X has no columns"):
        fit_irls(run, 0, family="poisson", fit_intercept=False)
