"""Summary rendering (text golden file, HTML, DataFrame, dict), degenerate cases and API errors."""
from __future__ import annotations

import math
import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

from jaxlm.core import gradient
from jaxlm.core.errors import InputError
from jaxlm.core.exact import fit_exact
from jaxlm.datasets import load_nist
from jaxlm.reduce.memory import blocks_of
from jaxlm.inference import RegressionResults, Summary, predict_interval, regression_results, summary


def _blocks(X, Y, w, rows):
    return blocks_of(X, Y, w, rows=rows)

GOLDEN = Path(__file__).parent / "golden" / "inference_summary_longley.txt"


def fit(X, y, *, fit_intercept=True, w=None, solver="qr", alpha=0.0, batches=True, **kw):
    Y = np.asarray(y, dtype=float).reshape(len(y), -1)
    w = np.ones(len(Y)) if w is None else w
    b = _blocks(X, Y, w, 65_536)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = fit_exact(b, X.shape[1], Y.shape[1], solver=solver, fit_intercept=fit_intercept,
                        alpha=alpha)
    return regression_results(sol, fit_intercept=fit_intercept, alpha=alpha, batches=b if batches else None, **kw)


@pytest.fixture(scope="module")
def longley():
    ds = load_nist("Longley")
    return fit(ds.X, ds.y, feature_names=ds.columns)[0]


# ---------------------------------------------------------------------- text
def test_text_table_matches_golden_file(longley):
    text = str(summary(longley))
    if os.environ.get("JAXLM_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text + "\n", encoding="utf-8")
    assert text + "\n" == GOLDEN.read_text(encoding="utf-8")


def test_text_table_is_aligned(longley):
    lines = str(summary(longley, level=0.9, cov="HC1")).splitlines()
    rule = lines[1]
    assert set(rule) == {"="}
    start = lines.index(next(line for line in lines if line.lstrip().startswith("coef")))
    table = lines[start:start + 2 + longley.n_params]
    assert all(len(line) == len(rule) for line in table if not set(line) <= {"-"})
    assert "[0.05" in table[0] and "0.95]" in table[0]
    assert any("HC1" in line for line in lines)


# ---------------------------------------------------------------------- HTML, DataFrame, dict
def test_html_render(longley):
    html = summary(longley)._repr_html_()
    assert html.count("<table") == 2 and "</table>" in html
    assert "<th>P&gt;|t|</th>" in html
    for term in longley.term_names:
        assert f"<th>{term}</th>" in html


def test_to_frame(longley):
    pd = pytest.importorskip("pandas")
    df = summary(longley, level=0.9).to_frame()
    assert list(df.columns) == ["coef", "std_err", "t_value", "p_value", "ci_lower", "ci_upper"]
    assert list(df.index) == ["intercept", "x1", "x2", "x3", "x4", "x5", "x6"]
    assert df.index.name == "term"
    np.testing.assert_array_equal(df["coef"].to_numpy(), longley.coef)
    np.testing.assert_array_equal(df["std_err"].to_numpy(), longley.std_errors)
    np.testing.assert_allclose(df[["ci_lower", "ci_upper"]].to_numpy(), longley.conf_int(0.9), rtol=0, atol=0)
    assert df.attrs["level"] == 0.9 and df.attrs["stats"]["y"]["r_squared"] == longley.r_squared
    assert isinstance(df, pd.DataFrame)


def test_to_frame_multi_target():
    pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    Y = np.column_stack([X @ [1, 2], X @ [3, -1]]) + rng.normal(size=(40, 2))
    res = fit(X, Y, target_names=["a", "b"])
    df = summary(res).to_frame()
    assert df.index.names == ["target", "term"]
    assert list(df.index) == [(t, n) for t in "ab" for n in ("intercept", "x0", "x1")]
    iv = predict_interval(res, X[:5], kind="prediction")
    assert iv.mean.shape == iv.lower.shape == (5, 2)
    for k in range(2):
        one = predict_interval(res[k], X[:5], kind="prediction")
        np.testing.assert_array_equal(one.upper, iv.upper[:, k])
    text = str(summary(res))
    assert "Linear regression results: a" in text and "Linear regression results: b" in text


def test_to_dict(longley):
    d = summary(longley).to_dict()
    assert d["level"] == 0.95 and d["cov_type"] == "nonrobust"
    (t,) = d["targets"]
    assert t["target"] == "y"
    assert set(t["coefficients"]) == {"coef", "std_err", "t_value", "p_value", "ci_lower", "ci_upper"}
    assert t["coefficients"]["std_err"]["x6"] == longley.std_errors[6]
    for key in ("n_obs", "df_model", "df_resid", "residual_std", "r_squared", "adj_r_squared", "f_statistic",
                "f_pvalue", "log_likelihood", "aic", "bic", "condition_number"):
        assert t["stats"][key] == pytest.approx(getattr(longley, key), rel=0, abs=0)
    assert any("collinearity" in w for w in t["warnings"])


# ---------------------------------------------------------------------- immutability
def test_results_are_immutable_and_picklable(longley):
    with pytest.raises(Exception):
        longley.coef = None
    with pytest.raises(ValueError):
        longley.coef[0] = 1.0
    back = pickle.loads(pickle.dumps(longley))
    np.testing.assert_array_equal(back.std_errors, longley.std_errors)
    np.testing.assert_array_equal(back.cov("HC3"), longley.cov("HC3"))


# ---------------------------------------------------------------------- degenerate cases
def test_no_residual_degrees_of_freedom():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(4, 3))
    y = rng.normal(size=4)
    (r,) = fit(X, y)
    assert r.df_resid == 0
    for v in (r.std_errors, r.t_values, r.p_values, r.conf_int().ravel(), r.cov().ravel(), r.cov("HC1").ravel()):
        assert np.isnan(v).all()  # never inf
    for v in (r.residual_std, r.adj_r_squared, r.f_statistic, r.f_pvalue):
        assert math.isnan(v)
    assert "no residual degrees of freedom" in r.inference_note
    assert "undefined" in str(summary(r))
    mean, lo, hi = predict_interval(r, X[:2])
    assert np.isfinite(mean).all() and np.isnan(lo).all() and np.isnan(hi).all()


def test_rank_deficiency_reports_nan_for_aliased_terms():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(30, 3))
    X = np.column_stack([X, X[:, 0] + X[:, 1], np.full(30, 2.0)])
    y = X[:, 0] + rng.normal(size=30)
    (r,) = fit(X, y, solver="auto")
    assert r.df_model == 3 and r.df_resid == 26
    assert list(np.asarray(r.estimable)) == [False, False, False, True, False, False]
    assert np.isnan(r.std_errors[~r.estimable]).all() and np.isfinite(r.std_errors[r.estimable]).all()
    text = str(summary(r))
    assert "Rank deficient" in text and "Constant column(s): x4" in text


def test_ridge_and_gradient_have_no_inferential_columns():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 3))
    y = X @ [1.0, 2.0, 3.0] + rng.normal(size=50)
    (ridge,) = fit(X, y, alpha=2.0)
    assert "ridge" in ridge.inference_note
    assert np.isnan(ridge.std_errors).all() and math.isnan(ridge.f_statistic)
    assert 0 < ridge.r_squared < 1
    df = summary(ridge).to_frame()
    assert list(df.columns) == ["coef"]
    assert "No inferential statistics" in str(summary(ridge))
    with pytest.raises(InputError, match="unpenalised"):
        predict_interval(ridge, X)
    sol = gradient.fit_gradient(X, y[:, None], np.ones(50), method="lbfgs", fit_intercept=True, alpha=0.0,
                                dtype="float64", learning_rate=None, tol=None, max_iter=500, random_state=None)
    (g,) = regression_results(sol, fit_intercept=True, batches=_blocks(X, y[:, None], np.ones(50), 64))
    assert "iterative" in g.inference_note and np.isnan(g.std_errors).all()
    assert g.n_obs == 50 and 0 < g.r_squared < 1
    assert list(summary(g).to_dict()["targets"][0]["coefficients"]) == ["coef"]


def test_tiny_spread_and_condition_warnings():
    rng = np.random.default_rng(4)
    x = 1e9 + rng.normal(size=60) * 1e-1  # sd/|mean| = 1e-10
    X = np.column_stack([x, rng.normal(size=60)])
    y = X[:, 1] + rng.normal(size=60)
    (r,) = fit(X, y)
    text = str(summary(r))
    assert "Tiny spread relative to the mean: x0" in text


# ---------------------------------------------------------------------- API errors
def test_hc_without_batches_raises_a_clear_error():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(20, 2))
    y = X[:, 0] + rng.normal(size=20)
    (r,) = fit(X, y, batches=False)
    assert np.isfinite(r.cov()).all()
    # in the user's terms: which option computes it (issue "first hour": not "pass batches=...")
    with pytest.raises(InputError, match=r"LinearRegression\(cov_type='HC0'\)") as e:
        r.cov("HC0")
    assert e.value.param == "cov" and "batches" not in str(e.value)
    with pytest.raises(InputError, match=r"cov_type='HC3'"):
        summary(r, cov="HC3")
    with pytest.raises(InputError, match="cov must be one of"):
        r.cov("HC9")


def test_analytic_log_likelihood_needs_the_pass_unless_weights_are_one():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(20, 2))
    y = X[:, 0] + rng.normal(size=20)
    (unit,) = fit(X, y, batches=False, weights_kind="analytic")
    (freq,) = fit(X, y, batches=False)
    assert unit.log_likelihood == freq.log_likelihood  # all w = 1: Σ log w = 0 without a pass
    (r,) = fit(X, y, w=np.linspace(0.5, 2, 20), batches=False, weights_kind="analytic")
    assert math.isnan(r.log_likelihood) and any("Σ log w" in n for n in r.notes)


def test_argument_errors(longley):
    with pytest.raises(InputError, match="level"):
        longley.conf_int(1.5)
    with pytest.raises(InputError, match="weights_kind"):
        fit(np.ones((5, 1)) * np.arange(5)[:, None], np.arange(5.0), weights_kind="importance")
    with pytest.raises(InputError, match="X_new"):
        predict_interval(longley, np.ones(6))
    with pytest.raises(InputError, match="kind"):
        predict_interval(longley, np.ones((1, 6)), kind="tolerance")
    with pytest.raises(InputError, match="weights"):
        predict_interval(longley, np.ones((1, 6)), kind="prediction", weights=[2.0])
    with pytest.raises(InputError, match="feature_names"):
        fit(np.eye(3), np.arange(3.0), feature_names=["a"])
    assert isinstance(summary(longley), Summary) and isinstance(longley, RegressionResults)
