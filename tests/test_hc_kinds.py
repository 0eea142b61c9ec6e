"""Per-kind HC fits: ``LinearRegression(cov_type="HC0".."HC3")`` computes only the meat its kind
needs (HC0/HC1: one, without leverages; HC2, HC3: the leverages and one), ``robust=True`` all four.

Each kind equals statsmodels ``OLS``/``WLS(...).fit(cov_type=kind)`` (frequency weights: OLS on the
rows repeated), with and without intercept, weighted or not, one target or two, on the fast pass
(well-conditioned data, and data too large to refine) and the precise one (refined, ill-conditioned
data), and exact rational arithmetic on the NIST StRD data (the reference of test_hc_exact). A kind
that was not computed raises an InputError naming the kinds there are and how to get the one asked
for, never a wrong number.
"""
from __future__ import annotations

import functools
import math
import pickle
import warnings

import numpy as np
import pytest
import statsmodels.api as sm

import jaxlm
from jaxlm.core.exact import fit_exact
from jaxlm.datasets import load_nist, nist_names
from jaxlm.inference import block_sums, pass_plan, regression_results
from jaxlm.reduce.memory import blocks_of
from test_hc_exact import PERFECT, exact_hc_variances  # the exact (Fraction) HC reference

KINDS = ("HC0", "HC1", "HC2", "HC3")
#: the kinds a cov_type's fit has: HC0 and HC1 share one meat
HAS = {"HC0": ("HC0", "HC1"), "HC1": ("HC0", "HC1"), "HC2": ("HC2",), "HC3": ("HC3",)}
RTOL = 1e-10  # against statsmodels (its own float64 rounding, pinv, on designs of condition ≲ 50)


def _data(n=240, d=3, seed=0, collinear=0.0, offset=0.0):
    """Heteroskedastic data; ``collinear`` > 0 ties the last column to the first (condition ~ 1/collinear)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    if collinear:
        X[:, -1] = X[:, 0] + collinear * X[:, -1]
    X = X + offset
    y = X @ np.arange(1.0, d + 1) + 2.0 + rng.normal(size=n) * (1 + np.abs(X[:, 0] - offset))
    return X, y


def _reference(X, y, kind, *, intercept, weights, w):
    """statsmodels' covariance of ``kind`` for these data and weights."""
    if weights == "frequency":  # w counts rows: OLS on the rows repeated
        X, y = np.repeat(X, w.astype(int), axis=0), np.repeat(y, w.astype(int))
    Z = sm.add_constant(X, has_constant="add") if intercept else X
    model = sm.WLS(y, Z, weights=w) if weights == "analytic" else sm.OLS(y, Z)
    return model.fit(cov_type=kind).cov_params()


def _fit(X, y, w, weights, **kw):
    kinds = {"weights_kind": weights} if weights else {}
    return jaxlm.LinearRegression(**kinds, **kw).fit(X, y, sample_weight=w)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("intercept", [True, False])
@pytest.mark.parametrize("weights", [None, "frequency", "analytic"])
@pytest.mark.parametrize("pass_", ["fast", "precise"])
def test_each_kind_equals_statsmodels(kind, intercept, weights, pass_):
    # (far from the origin with an intercept: the pass centres; without one the design is uncentred)
    X, y = _data(collinear=0.0 if pass_ == "fast" else 0.05, offset=10.0 if intercept else 0.0)
    rng = np.random.default_rng(1)
    w = None if weights is None else (rng.integers(1, 4, len(y)).astype(float) if weights == "frequency"
                                      else rng.uniform(0.3, 3.0, len(y)))
    m = _fit(X, y, w, weights, cov_type=kind, fit_intercept=intercept)
    r = m.results_
    assert (r.cov_refinement_steps == 0) == (pass_ == "fast")  # the pass the data asked for
    assert r.cov_type == kind and sorted(r._hc) == sorted(HAS[kind])
    ref = _reference(X, y, kind, intercept=intercept, weights=weights, w=w)
    np.testing.assert_allclose(r.cov(), ref, rtol=RTOL, atol=0)
    for other in HAS[kind]:  # HC0 and HC1 come together
        np.testing.assert_allclose(r.cov(other), _reference(X, y, other, intercept=intercept, weights=weights, w=w),
                                   rtol=RTOL, atol=0)


@pytest.mark.parametrize("solver", ["auto", "qr"])
@pytest.mark.parametrize("kind", KINDS)
def test_large_unrefined_fit_per_kind(solver, kind):
    """n·d² above the refinement budget (the fast pass on ill-conditioned-ish data, with its note):
    HC1 alone maps the centred rows' meat by T (a Cholesky factor) or keeps the rows Tᵀ(x − s) (QR)."""
    X, y = _data(n=20_000, d=30, seed=2, collinear=0.1, offset=3.0)
    r = jaxlm.LinearRegression(cov_type=kind, solver=solver).fit(X, y).results_
    assert r.cov_refinement_steps == 0 and any("was not refined" in n for n in r.notes)
    # Each entry against the scale of its row and column, sqrt(C_ii C_jj): the coefficients are not
    # refined, and an off-diagonal entry 10³ below that scale carries their rounding at 1e-10 of
    # itself (HC0 against a long-double reference: 1.4e-10 elementwise, 7.5e-14 scaled; statsmodels
    # 8.4e-11 and 3.5e-14; over seeds 2-5 jaxlm's scaled error stayed ≤ 1.8e-13)
    ref = _reference(X, y, kind, intercept=True, weights=None, w=None)
    scale = np.sqrt(np.outer(np.diag(ref), np.diag(ref)))
    assert np.max(np.abs(r.cov() - ref) / scale) <= 1e-12


@pytest.mark.parametrize("kind", KINDS)
def test_two_targets_per_kind(kind):
    X, y0 = _data(seed=3)
    _, y1 = _data(seed=4)
    Y = np.column_stack([y0, -3.0 * y1])
    res = jaxlm.LinearRegression(cov_type=kind).fit(X, Y).results_
    for k, y in enumerate((Y[:, 0], Y[:, 1])):
        assert sorted(res[k]._hc) == sorted(HAS[kind])
        np.testing.assert_allclose(res[k].cov(), _reference(X, y, kind, intercept=True, weights=None, w=None),
                                   rtol=RTOL, atol=0)


@functools.lru_cache(maxsize=None)
def _exact(name):
    ds = load_nist(name)
    return exact_hc_variances(ds.X, ds.y, intercept=ds.intercept)[0]


@pytest.mark.parametrize("name", [n for n in nist_names() if n != "Filip" and n not in PERFECT])
@pytest.mark.parametrize("kind", KINDS)
def test_nist_per_kind_is_exact(name, kind):
    """As test_hc_exact's robust=True, for each cov_type alone: ≤ 1e-11 from exact arithmetic."""
    ds = load_nist(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = jaxlm.LinearRegression(cov_type=kind, fit_intercept=ds.intercept).fit(ds.X, ds.y).results_
    ref = np.array([math.sqrt(v) for v in _exact(name)[kind]])
    err = float(np.max(np.abs(r.std_errors - ref) / ref))
    assert err <= 1e-11, (name, kind, err)


def test_robust_true_keeps_every_kind():
    X, y = _data(seed=5)
    for kw in ({"robust": True}, {"robust": True, "cov_type": "HC3"}):
        r = jaxlm.LinearRegression(**kw).fit(X, y).results_
        assert sorted(r._hc) == list(KINDS)
        for kind in KINDS:
            np.testing.assert_allclose(r.cov(kind), _reference(X, y, kind, intercept=True, weights=None, w=None),
                                       rtol=RTOL, atol=0)


@pytest.mark.parametrize("kind,asked", [("HC3", "HC1"), ("HC3", "HC0"), ("HC1", "HC2"), ("HC2", "HC3"),
                                        ("HC0", "HC3")])
def test_a_kind_not_computed_raises_and_says_how_to_get_it(kind, asked):
    X, y = _data(seed=6)
    m = jaxlm.LinearRegression(cov_type=kind).fit(X, y)
    with pytest.raises(jaxlm.InputError) as e:
        m.results_.cov(asked)
    msg = str(e.value)
    assert e.value.param == "cov"
    assert f"cov={asked!r}" in msg and "not computed" in msg  # what was asked, and that it is missing
    assert all(k in msg for k in HAS[kind])  # the kinds there are
    assert f"LinearRegression(cov_type={asked!r})" in msg and "robust=True" in msg  # the fixes
    for call in (lambda: m.summary(cov=asked), lambda: m.results_.coef_table(cov=asked),
                 lambda: m.results_.wald_test("x0 = 0", cov=asked)):
        with pytest.raises(jaxlm.InputError, match=f"cov_type={asked!r}"):
            call()
    assert np.isfinite(m.results_.cov("nonrobust")).all()  # the other kinds stay


def test_leverage_one_spoils_only_the_kinds_that_use_it():
    """A row with leverage 1 (its own dummy column) makes HC2/HC3 undefined, not HC0/HC1."""
    X, y = _data(n=60, seed=7)
    X = np.column_stack([X, np.zeros(len(y))])
    X[0, -1] = 1.0
    hc1 = jaxlm.LinearRegression(cov_type="HC1").fit(X, y).results_
    np.testing.assert_allclose(hc1.cov(), _reference(X, y, "HC1", intercept=True, weights=None, w=None),
                               rtol=1e-9, atol=1e-12)
    assert not any("leverage" in n for n in hc1.notes)
    hc3 = jaxlm.LinearRegression(cov_type="HC3").fit(X, y).results_
    assert np.isnan(hc3.cov()).all() and any("HC2 and HC3 are undefined" in n for n in hc3.notes)


def test_pass_plan_takes_kinds_and_checks_them():
    X, y = _data(n=3000, d=4, seed=8, offset=5.0)
    Y = np.column_stack([y, y[::-1]])
    w = np.ones(len(y))
    b = blocks_of(X, Y, w, rows=500)
    sol = fit_exact(b, 4, 2)
    with pytest.raises(jaxlm.InputError, match="robust must be True, False or HC kinds") as e:
        pass_plan(sol, fit_intercept=True, robust="HC9")
    assert e.value.param == "robust"
    for robust, meats in ((True, (0, 1, 2)), (False, ()), ("HC1", (0,)), (["HC3", "HC2"], (1, 2))):
        assert pass_plan(sol, fit_intercept=True, robust=robust).meats == meats
    # a pass shipped to workers and merged in a tree gives what the local pass gives, kinds and all
    kw = dict(fit_intercept=True, robust=("HC2",))
    local = regression_results(sol, batches=b, **kw)
    plan = pickle.loads(pickle.dumps(pass_plan(sol, **kw)))
    parts = [block_sums(plan, X[i:i + 300], Y[i:i + 300], w[i:i + 300]) for i in range(0, len(y), 300)]
    remote = regression_results(sol, sums=functools.reduce(lambda a, c: a.merge(c), parts), **kw)
    for k, (a, c) in enumerate(zip(local, remote)):
        assert sorted(a._hc) == sorted(c._hc) == ["HC2"]
        np.testing.assert_allclose(c.cov("HC2"), a.cov("HC2"), rtol=1e-13, atol=0)
        np.testing.assert_allclose(a.cov("HC2"), _reference(X, Y[:, k], "HC2", intercept=True, weights=None, w=None),
                                   rtol=RTOL, atol=0)
        with pytest.raises(jaxlm.InputError, match="cov_type='HC3'"):
            c.cov("HC3")
