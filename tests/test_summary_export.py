"""The summary's exports (coefficient rows with term names, Markdown, LaTeX, value equality) and
the raw-design condition number, against statsmodels."""
from __future__ import annotations

import importlib
import math
import warnings

import numpy as np
import pytest
import statsmodels.api as sm

from jaxlm.core.exact import fit_exact
from jaxlm.datasets import load_nist
from jaxlm.inference import regression_results, summary
from jaxlm.reduce.memory import blocks_of

S = importlib.import_module("jaxlm.inference.summary")


def fit(X, y, *, fit_intercept=True, w=None, alpha=0.0, weights_kind="frequency", **kw):
    Y = np.asarray(y, dtype=float).reshape(len(y), -1)
    w = np.ones(len(Y)) if w is None else w
    b = blocks_of(X, Y, w, rows=65_536)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = fit_exact(b, X.shape[1], Y.shape[1], solver="qr", fit_intercept=fit_intercept, alpha=alpha)
    return regression_results(sol, fit_intercept=fit_intercept, alpha=alpha, batches=b, weights_kind=weights_kind,
                              **kw)


@pytest.fixture(scope="module")
def longley():
    ds = load_nist("Longley")
    return ds, fit(ds.X, ds.y, feature_names=ds.columns)[0]


# ---------------------------------------------------------------------- condition numbers
def test_raw_condition_number_is_statsmodels(longley):
    ds, res = longley
    ref = sm.OLS(ds.y, sm.add_constant(ds.X)).fit()
    assert ref.condition_number > 1e9  # Longley's raw design: the hard case
    np.testing.assert_allclose(S.raw_condition_number(res), ref.condition_number, rtol=1e-8)
    stats = summary(res).to_dict()["targets"][0]["stats"]
    assert stats["condition_number_raw"] == S.raw_condition_number(res)
    assert stats["condition_number"] == res.condition_number  # the centred, equilibrated one, unchanged
    text = str(summary(res))
    assert "Cond. no. (centred, equil.):       110.5" in text and "Cond. no. (raw, statsmodels):  4.859e+09" in text


def test_raw_condition_number_without_intercept_and_with_analytic_weights():
    rng = np.random.default_rng(5)
    X = np.column_stack([rng.normal(size=80), 100 + rng.normal(size=80)])
    y = X @ [1.0, 0.5] + rng.normal(size=80)
    w = rng.uniform(0.2, 4, 80)
    res = fit(X, y, fit_intercept=False)[0]
    np.testing.assert_allclose(S.raw_condition_number(res), sm.OLS(y, X).fit().condition_number, rtol=1e-8)
    res = fit(X, y, w=w, weights_kind="analytic")[0]
    ref = sm.WLS(y, sm.add_constant(X), weights=w).fit()
    np.testing.assert_allclose(S.raw_condition_number(res), ref.condition_number, rtol=1e-8)


def test_raw_condition_number_is_nan_without_inference_and_inf_when_singular():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(50, 2))
    y = X @ [1.0, 2.0] + rng.normal(size=50)
    assert math.isnan(S.raw_condition_number(fit(X, y, alpha=1.0)[0]))
    singular = fit(np.column_stack([X, X[:, 0]]), y)[0]
    assert S.raw_condition_number(singular) == math.inf


# ---------------------------------------------------------------------- coefficient rows
def test_coef_rows_carry_term_names_and_statsmodels_numbers(longley):
    ds, res = longley
    ref = sm.OLS(ds.y, sm.add_constant(ds.X)).fit()
    rows = summary(res, level=0.9).coef_rows()
    assert [r["term"] for r in rows] == ["intercept", *ds.columns] and {r["target"] for r in rows} == {"y"}
    assert list(rows[0]) == ["target", "term", "estimate", "std_error", "t", "p", "ci_lower", "ci_upper"]
    ci = ref.conf_int(alpha=0.1)
    for key, want in (("estimate", ref.params), ("std_error", ref.bse), ("t", ref.tvalues), ("p", ref.pvalues),
                      ("ci_lower", ci[:, 0]), ("ci_upper", ci[:, 1])):
        np.testing.assert_allclose([r[key] for r in rows], want, rtol=1e-7, err_msg=key)


def test_coef_rows_of_a_fit_without_inference_are_nan():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(30, 2))
    rows = summary(fit(X, X @ [1.0, 1.0] + rng.normal(size=30), alpha=2.0)).coef_rows()
    assert all(math.isnan(r["std_error"]) and math.isnan(r["p"]) and math.isfinite(r["estimate"]) for r in rows)


# ---------------------------------------------------------------------- equality
def test_summary_equality_is_value_equality(longley):
    ds, res = longley
    again = fit(ds.X, ds.y, feature_names=ds.columns)[0]
    assert summary(res) == summary(again) and hash(summary(res)) == hash(summary(again))
    assert summary(res) != summary(res, level=0.9)
    assert summary(res) != summary(res, cov="HC3")
    other = fit(ds.X, ds.y * 2, feature_names=ds.columns)[0]
    assert summary(res) != summary(other)
    assert summary(res) != "not a summary"
    rng = np.random.default_rng(8)
    X = rng.normal(size=(30, 2))
    ridge = fit(X, X @ [1.0, 1.0] + rng.normal(size=30), alpha=2.0)
    assert summary(ridge) == summary(ridge)  # NaN statistics compare equal


# ---------------------------------------------------------------------- Markdown and LaTeX
@pytest.fixture(scope="module")
def awkward():
    rng = np.random.default_rng(9)
    X = rng.normal(size=(40, 2))
    y = X @ [1.0, -1.0] + rng.normal(size=40)
    return fit(X, y, feature_names=["a|b *bold*", "x_1 & 50% $#{}~^\\"], target_names=["y<script>"])[0]


def test_markdown_escapes_names_and_keeps_the_numbers(awkward):
    md = awkward.summary().to_markdown() if hasattr(awkward, "summary") else summary(awkward).to_markdown()
    assert "**Linear regression results: y\\<script\\>**" in md and "<script>" not in md
    assert "| a\\|b \\*bold\\* |" in md
    row = next(ln for ln in md.splitlines() if ln.startswith("| a\\|b"))
    assert len(row.replace("\\|", "").strip("|").split("|")) == 7  # the escaped pipe does not split the cell
    tab = awkward.coef_table()
    assert S._num(tab.coef[1]) in row and S._num(tab.std_errors[1]) in row


def test_latex_escapes_names(awkward):
    tex = summary(awkward).to_latex()
    assert r"x\_1 \& 50\% \$\#\{\}\textasciitilde{}\textasciicircum{}\textbackslash{}" in tex
    assert r"a\textbar{}b *bold*" in tex and r"\begin{tabular}{lrrrrrr}" in tex
    body = tex[tex.index(r"\midrule"):tex.index(r"\bottomrule")]
    assert body.count(r"\\") == 3  # intercept and the two features
    assert tex.count(r"\begin{tabular}") == tex.count(r"\end{tabular}") == 2


def test_collinearity_warning_counts_what_it_leaves_out():
    rng = np.random.default_rng(10)
    base = rng.normal(size=(60, 1))
    X = base + 1e-3 * rng.normal(size=(60, 11))
    res = fit(X, X.sum(1) + rng.normal(size=60))[0]
    (warning,) = [w for w in summary(res).to_dict()["targets"][0]["warnings"] if "Near-collinearity" in w]
    assert warning.endswith(" and 3 more.") and "...." not in warning
