"""The GLM estimators (jaxlm.models.glm) against statsmodels, R reference values and scikit-learn.

References are independent: statsmodels' GLM polished to its optimum by Newton (then one IRLS
step there for the expected-information covariance), the R values that ship with statsmodels'
tests, scikit-learn's GLMs and LogisticRegression (for the alpha/C mapping), and
scikit-learn's estimator checks.
"""
import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.utils.estimator_checks import parametrize_with_checks

sm = pytest.importorskip("statsmodels.api")

from jaxlm.core.errors import InputError
from jaxlm.models.glm import (
    EXPECTED_FAILED_CHECKS,
    GLM,
    ConvergenceWarning,
    GammaRegressor,
    LogisticRegression,
    PoissonRegressor,
    SeparationWarning,
    TweedieRegressor,
)

RTOL = 1e-8
L = sm.families.links


def _close(actual, desired, rtol=RTOL, err_msg=""):
    """Each entry within ``rtol`` of the largest (a coefficient near 0 carries the others' absolute error)."""
    desired = np.asarray(desired, dtype=float)
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=rtol * np.max(np.abs(desired)), err_msg=err_msg)


# name -> (estimator, statsmodels family, response maker)
def _y(kind, eta, rng):
    n = len(eta)
    return {"gaussian": lambda: 0.2 + eta + rng.normal(size=n),
            "binomial": lambda: rng.binomial(1, 1 / (1 + np.exp(-eta))).astype(float),
            "poisson": lambda: rng.poisson(np.exp(0.1 + eta)).astype(float),
            "gamma": lambda: rng.gamma(2.0, np.exp(0.1 + 0.5 * eta) / 2.0),
            "tweedie": lambda: rng.poisson(np.exp(eta)) * rng.gamma(2.0, 0.5, n),
            "negative_binomial": lambda: rng.negative_binomial(1 / 0.7, 1 / (1 + 0.7 * np.exp(0.1 + eta))).astype(
                float)}[kind]()


CASES = {
    "gaussian": (lambda: GLM(), lambda: sm.families.Gaussian()),
    "binomial": (lambda: GLM(family="binomial"), lambda: sm.families.Binomial()),
    "poisson": (lambda: PoissonRegressor(), lambda: sm.families.Poisson()),
    "gamma": (lambda: GammaRegressor(), lambda: sm.families.Gamma(L.Log())),
    "tweedie": (lambda: TweedieRegressor(power=1.5), lambda: sm.families.Tweedie(var_power=1.5, link=L.Log())),
    "negative_binomial": (lambda: GLM(family="negative_binomial", nb_alpha=0.7),
                          lambda: sm.families.NegativeBinomial(alpha=0.7)),
}
OPTIONS = {"plain": {}, "weights+offset": {"fw": True, "vw": True, "off": True}, "no-intercept": {"noint": True}}


def _data(kind, n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * [1.0, 2.0, 0.5] + [0.0, 1.0, 0.0]
    y = _y(kind, X @ [0.2, -0.05, 0.3] - 0.05, rng)
    return X, y, rng.integers(1, 4, n).astype(float), rng.uniform(0.5, 2.0, n), rng.normal(size=n) * 0.2


def _reference(X, y, family, *, fw=None, vw=None, off=None, fit_intercept=True, cov_type="nonrobust"):
    kw = {k: v for k, v in (("freq_weights", fw), ("var_weights", vw), ("offset", off)) if v is not None}
    Xs = sm.add_constant(X, prepend=True) if fit_intercept else X
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = sm.GLM(y, Xs, family=family, **kw)
        r0 = model.fit(tol=1e-14, maxiter=300)
        rn = model.fit(start_params=r0.params, method="newton", tol=1e-14, maxiter=100)
        return rn.params, model.fit(start_params=rn.params, maxiter=1, cov_type=cov_type)


@pytest.mark.parametrize("options", list(OPTIONS), ids=str)
@pytest.mark.parametrize("kind", list(CASES), ids=str)
def test_estimators_match_statsmodels(kind, options):
    opts = OPTIONS[options]
    make, sm_family = CASES[kind]
    X, y, fw, vw, off = _data(kind)
    fw, vw, off = (a if opts.get(k) else None for a, k in ((fw, "fw"), (vw, "vw"), (off, "off")))
    est = make().set_params(fit_intercept=not opts.get("noint"))
    est.fit(X, y, sample_weight=fw, offset=off, var_weights=vw)
    params, ref = _reference(X, y, sm_family(), fw=fw, vw=vw, off=off, fit_intercept=not opts.get("noint"))
    res = est.results_
    assert est.converged_
    _close(res.params, params)
    _close(np.r_[est.intercept_, est.coef_] if not opts.get("noint") else est.coef_, params)
    np.testing.assert_allclose(res.bse, ref.bse, rtol=RTOL)
    np.testing.assert_allclose(res.pvalues, ref.pvalues, rtol=RTOL)
    _close(res.conf_int(), ref.conf_int())
    for name in ("deviance", "null_deviance", "pearson_chi2", "scale", "llf", "aic", "bic_llf", "bic_deviance"):
        np.testing.assert_allclose(getattr(res, name), getattr(ref, name), rtol=RTOL, err_msg=name)
    np.testing.assert_allclose(res.pseudo_rsquared(), ref.pseudo_rsquared(), rtol=RTOL)
    np.testing.assert_allclose(est.deviance_, ref.deviance, rtol=RTOL)
    np.testing.assert_allclose(est.predict(X, offset=off), ref.predict(), rtol=1e-7)


def test_exposure_is_a_log_offset_and_prediction_intervals_match_statsmodels():
    X, y, _, _, _ = _data("poisson", seed=3)
    exposure = np.random.default_rng(4).uniform(0.5, 3.0, len(y))
    est = PoissonRegressor().fit(X, y, exposure=exposure)
    same = PoissonRegressor().fit(X, y, offset=np.log(exposure))
    np.testing.assert_array_equal(est.coef_, same.coef_)
    _, ref = _reference(X, y, sm.families.Poisson(), off=np.log(exposure))
    Xn = np.random.default_rng(5).normal(size=(10, 3))
    en = np.linspace(0.5, 2.0, 10)
    frame = ref.get_prediction(sm.add_constant(Xn, prepend=True, has_constant="add"),
                               offset=np.log(en)).summary_frame(alpha=0.1)
    got = est.predict_interval(Xn, exposure=en, level=0.9)
    np.testing.assert_allclose(got.mean, frame["mean"], rtol=RTOL)
    np.testing.assert_allclose(got.lower, frame["mean_ci_lower"], rtol=RTOL)
    np.testing.assert_allclose(got.upper, frame["mean_ci_upper"], rtol=RTOL)
    np.testing.assert_allclose(est.predict(Xn, exposure=en, kind="link"), np.log(frame["mean"]), rtol=1e-12)


def test_logistic_regression_labels_probabilities_and_statsmodels():
    X, y01, fw, _, _ = _data("binomial", seed=6)
    labels = np.where(y01 == 1, "spam", "ham")
    clf = LogisticRegression().fit(X, labels, sample_weight=fw)
    assert list(clf.classes_) == ["ham", "spam"]
    params, ref = _reference(X, y01, sm.families.Binomial(), fw=fw)
    _close(np.r_[clf.intercept_, clf.coef_], params)
    np.testing.assert_allclose(clf.results_.bse, ref.bse, rtol=RTOL)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba[:, 1], ref.predict(), rtol=1e-7)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.predict(X), np.where(proba[:, 1] > 0.5, "spam", "ham"))
    np.testing.assert_allclose(clf.decision_function(X), np.log(proba[:, 1] / proba[:, 0]), rtol=1e-9, atol=1e-12)
    with pytest.raises(InputError, match="exactly two classes; got 3.*Only binary classification is supported"):
        LogisticRegression().fit(X, np.arange(len(y01)) % 3)
    with pytest.raises(ValueError, match="Unknown label type"):
        LogisticRegression().fit(X, X[:, 0])
    probit = LogisticRegression(link="probit").fit(X, y01)
    params_p, _ = _reference(X, y01, sm.families.Binomial(L.Probit()))
    _close(np.r_[probit.intercept_, probit.coef_], params_p)


def test_r_reference_datasets_through_the_estimators():
    """Star98 (binomial with trials), Scotland (Gamma, inverse link) and Cpunish (Poisson with
    exposure) reproduce R as closely as statsmodels does (+1e-8 relative)."""
    R = pytest.importorskip("statsmodels.genmod.tests.results.results_glm")

    def check(ours, smv, rv, what):
        ours, smv, rv = (np.asarray(v, dtype=float) for v in (ours, smv, rv))
        assert np.all(np.abs(ours - rv) <= np.abs(smv - rv) + 1e-8 * np.maximum(np.abs(rv), 1.0)), what

    d = sm.datasets.star98.load()
    endog, X = np.asarray(d.endog, float), np.asarray(d.exog, float)
    trials = endog.sum(axis=1)
    est = GLM(family="binomial").fit(X, endog[:, 0] / trials, var_weights=trials)
    smr = sm.GLM(endog, sm.add_constant(X, prepend=False), family=sm.families.Binomial()).fit(tol=1e-14)
    ref = R.Star98()
    check(np.r_[est.coef_, est.intercept_], smr.params, ref.params, "star98 params")
    check(np.r_[est.results_.bse[1:], est.results_.bse[0]], smr.bse, ref.bse, "star98 bse")
    check(est.deviance_, smr.deviance, ref.deviance, "star98 deviance")

    d = sm.datasets.scotland.load()
    X, y = np.asarray(d.exog, float), np.asarray(d.endog, float)
    est = GLM(family="gamma").fit(X, y)
    smr = sm.GLM(y, sm.add_constant(X, prepend=False), family=sm.families.Gamma()).fit(tol=1e-14)
    ref = R.Scotvote()
    check(np.r_[est.coef_, est.intercept_], smr.params, ref.params, "scotland params")
    check(np.r_[est.results_.bse[1:], est.results_.bse[0]], smr.bse, ref.bse, "scotland bse")
    check(est.results_.llf, smr.llf, ref.llf, "scotland llf")

    d = sm.datasets.cpunish.load()
    X = np.asarray(d.exog, float).copy()
    X[:, 3] = np.log(X[:, 3])
    y = np.asarray(d.endog, float)
    exposure = np.r_[100, 100, np.ones(len(y) - 2)]  # statsmodels' Cpunish_offset test
    est = PoissonRegressor().fit(X, y, exposure=exposure)
    smr = sm.GLM(y, sm.add_constant(X, prepend=False), family=sm.families.Poisson(),
                 exposure=exposure).fit(tol=1e-14)
    ref = R.Cpunish_offset()
    check(np.r_[est.coef_, est.intercept_], smr.params, ref.params, "cpunish params")
    check(est.deviance_, smr.deviance, ref.deviance, "cpunish deviance")


def test_alpha_maps_to_scikit_learn():
    """jaxlm minimises D + α‖β‖²; sklearn's GLMs D/(2Σw) + α_sk/2‖β‖² (α = α_sk Σw) and its
    LogisticRegression C·D/2 + ½‖β‖² (α = 1/C)."""
    from sklearn import linear_model

    X, y, fw, _, _ = _data("poisson", seed=7)
    a_sk = 0.05
    ours = PoissonRegressor(alpha=a_sk * fw.sum()).fit(X, y, sample_weight=fw)
    theirs = linear_model.PoissonRegressor(alpha=a_sk, solver="newton-cholesky", tol=1e-14, max_iter=1000)
    theirs.fit(X, y, sample_weight=fw)
    _close(np.r_[ours.intercept_, ours.coef_], np.r_[theirs.intercept_, theirs.coef_], rtol=1e-9)
    Xg, yg, _, _, _ = _data("gamma", seed=8)
    ours = GammaRegressor(alpha=0.1 * len(yg)).fit(Xg, yg)
    theirs = linear_model.GammaRegressor(alpha=0.1, solver="newton-cholesky", tol=1e-14, max_iter=1000).fit(Xg, yg)
    _close(np.r_[ours.intercept_, ours.coef_], np.r_[theirs.intercept_, theirs.coef_], rtol=1e-9)
    Xb, yb, _, _, _ = _data("binomial", seed=9)
    C = 0.3
    ours = LogisticRegression(alpha=1.0 / C).fit(Xb, yb)
    theirs = linear_model.LogisticRegression(C=C, solver="newton-cholesky", tol=1e-14, max_iter=1000).fit(Xb, yb)
    _close(np.r_[ours.intercept_, ours.coef_], np.r_[theirs.intercept_, theirs.coef_.ravel()], rtol=1e-9)
    assert np.all(np.isnan(ours.results_.bse))  # no sampling distribution for a ridge fit


@pytest.mark.parametrize("kind", ["binomial", "poisson", "gamma"])
def test_lbfgs_lands_on_the_irls_answer(kind):
    make, _ = CASES[kind]
    X, y, fw, _, off = _data(kind, seed=10)
    irls = make().fit(X, y, sample_weight=fw, offset=off)
    grad = make().set_params(solver="lbfgs", max_iter=1000).fit(X, y, sample_weight=fw, offset=off)
    assert grad.converged_ and grad.n_iter_ > 1
    _close(np.r_[grad.intercept_, grad.coef_], np.r_[irls.intercept_, irls.coef_], rtol=1e-6)
    np.testing.assert_allclose(grad.results_.bse, irls.results_.bse, rtol=1e-6)
    ridge = make().set_params(alpha=5.0).fit(X, y)
    ridge_g = make().set_params(alpha=5.0, solver="lbfgs", max_iter=1000).fit(X, y)
    _close(np.r_[ridge_g.intercept_, ridge_g.coef_], np.r_[ridge.intercept_, ridge.coef_], rtol=1e-6)


def test_sparse_x_equals_dense():
    X, y, fw, _, off = _data("poisson", seed=11)
    X = np.where(np.abs(X) < 0.7, 0.0, X)
    dense = PoissonRegressor().fit(X, y, sample_weight=fw, offset=off)
    for fmt in (sp.csr_matrix, sp.csc_matrix):
        sparse = PoissonRegressor().fit(fmt(X), y, sample_weight=fw, offset=off)
        _close(np.r_[sparse.intercept_, sparse.coef_], np.r_[dense.intercept_, dense.coef_], rtol=1e-12)
        np.testing.assert_allclose(sparse.results_.bse, dense.results_.bse, rtol=1e-10)
        np.testing.assert_allclose(sparse.predict(fmt(X), offset=off), dense.predict(X, offset=off), rtol=1e-12)


def test_separation_warns_naming_the_column():
    rng = np.random.default_rng(0)
    n = 300
    x = rng.normal(size=n)
    group = (rng.uniform(size=n) < 0.2).astype(float)
    y = np.where(group == 1, 1.0, rng.binomial(1, 1 / (1 + np.exp(-0.5 * x)))).astype(float)
    import pandas as pd

    frame = pd.DataFrame({"x": x, "group": group})
    with pytest.warns(SeparationWarning, match="'group'"):
        clf = LogisticRegression().fit(frame, y)
    assert not clf.converged_ and clf.results_.separated == (1,)
    assert "Separation" in str(clf.summary())


@pytest.mark.parametrize("est, y_bad, rule", [
    (PoissonRegressor(), -1.0, ">= 0"), (GLM(family="binomial"), 1.5, "in \\[0, 1\\]"), (GammaRegressor(), 0.0, "> 0"),
    (TweedieRegressor(power=1.5), -0.5, ">= 0")])
def test_y_outside_the_support_names_y_and_the_row(est, y_bad, rule):
    X, y, _, _, _ = _data("poisson", n=60, seed=12)
    y = y + 0.5
    y = np.minimum(y, 1.0) if isinstance(est, GLM) else y
    y[41] = y_bad
    with pytest.raises(InputError, match=f"y must be {rule}.*got y={y_bad!r} at row 41") as e:
        est.fit(X, y)
    assert e.value.param == "y"


def test_parameter_and_option_errors():
    X, y, _, _, _ = _data("poisson", n=40, seed=13)
    with pytest.raises(InputError, match="family must be one of"):
        GLM(family="weibull").fit(X, y)
    with pytest.raises(InputError, match="link must be one of 'logit', 'probit', 'cloglog'"):
        GLM(family="binomial", link="log").fit(X, np.minimum(y, 1))
    with pytest.raises(InputError, match="power is the Tweedie variance power"):
        GLM(family="poisson", power=1.5).fit(X, y)
    with pytest.raises(InputError, match="var_power must be a number in \\[1, 2\\]"):
        GLM(family="tweedie", power=2.5).fit(X, y)
    with pytest.raises(InputError, match="power must be 0, a number in \\[1, 2\\], or 3; got power=0.5"):
        TweedieRegressor(power=0.5).fit(X, y)
    with pytest.raises(InputError, match="exposure must be a finite number > 0; got exposure=0.0 at row 3"):
        PoissonRegressor().fit(X, y, exposure=np.where(np.arange(40) == 3, 0.0, 1.0))
    with pytest.raises(InputError, match="sample_weight must be a finite number >= 0; got sample_weight=-1.0 at row 2"):
        PoissonRegressor().fit(X, y, sample_weight=np.where(np.arange(40) == 2, -1.0, 1.0))
    with pytest.raises(InputError, match="var_weights must be a finite number > 0.*at row 5"):
        PoissonRegressor().fit(X, y, var_weights=np.where(np.arange(40) == 5, 0.0, 1.0))
    with pytest.raises(InputError, match="solver must be one of 'irls', 'lbfgs'"):
        PoissonRegressor(solver="newton").fit(X, y)
    bad = X.copy()
    bad[7, 1] = np.nan
    with pytest.raises(InputError, match="X must be finite.*row 7, column 1"):
        PoissonRegressor().fit(bad, y)
    with pytest.warns(ConvergenceWarning, match="deviance path"):
        GLM(family="binomial", link="cloglog", max_iter=1).fit(X, np.minimum(y, 1))


def test_summary_forms_pickle_and_robust_covariances():
    X, y, fw, _, _ = _data("gamma", seed=14)
    est = GammaRegressor(robust=True).fit(X, y, sample_weight=fw)
    _, ref = _reference(X, y, sm.families.Gamma(L.Log()), fw=fw, cov_type="HC0")
    np.testing.assert_allclose(est.results_.cov("HC0"), ref.cov_params(), rtol=RTOL,
                               atol=1e-12 * np.abs(ref.cov_params()).max())
    s = est.summary(cov="HC0", level=0.9)
    text = str(s)
    assert "Generalized linear model results" in text and "gamma" in text and "P>|z|" in text and "[0.05" in text
    assert "<table" in s._repr_html_()
    frame = s.to_frame()
    np.testing.assert_allclose(frame["std_err"], np.sqrt(np.diag(ref.cov_params())), rtol=RTOL)
    assert list(frame.index) == ["intercept", "x0", "x1", "x2"]
    d = s.to_dict()["targets"][0]
    np.testing.assert_allclose(d["stats"]["aic"], ref.aic, rtol=RTOL)
    np.testing.assert_allclose(d["stats"]["deviance"], ref.deviance, rtol=RTOL)
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    np.testing.assert_array_equal(back.results_.cov("HC3"), est.results_.cov("HC3"))


ESTIMATORS = [GLM(), GLM(family="poisson"), GLM(family="negative_binomial"), LogisticRegression(), PoissonRegressor(),
              GammaRegressor(), TweedieRegressor(), TweedieRegressor(power=1.5)]


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(type(est).__name__,
                                                                                                    {}))
def test_sklearn_contract(estimator, check):
    check(estimator)


def test_subsample_start_lands_on_the_same_fit(monkeypatch):
    """Large data start IRLS from a fit on every 20th row; the answer is the plain fit's."""
    from jaxlm.models import glm

    rng = np.random.default_rng(15)
    X = rng.normal(size=(4000, 3))
    y = rng.poisson(np.exp(X @ [0.2, -0.1, 0.3])).astype(float)
    plain = PoissonRegressor().fit(X, y)
    monkeypatch.setattr(glm, "SUBSAMPLE_MIN_ROWS", 1000)
    monkeypatch.setattr(glm, "SUBSAMPLE_STEP", 10)
    fast = PoissonRegressor().fit(X, y)
    assert fast.solution_.passes < plain.solution_.passes  # it did start from the subsample
    _close(np.r_[fast.intercept_, fast.coef_], np.r_[plain.intercept_, plain.coef_], rtol=1e-9)
    np.testing.assert_allclose(fast.results_.bse, plain.results_.bse, rtol=1e-8)
