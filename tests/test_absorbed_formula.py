"""``y ~ x | fe`` (absorbed fixed effects from a formula) against the explicit-dummy regression."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import jaxlm
from jaxlm.models.absorbed import fit_absorbed, split_formula


@pytest.fixture(scope="module")
def panel():
    rng = np.random.default_rng(0)
    n = 600
    df = pd.DataFrame({"firm": rng.integers(0, 30, n), "year": rng.integers(0, 8, n),
                       "x1": rng.normal(size=n), "x2": rng.normal(size=n), "w": rng.uniform(0.5, 2, n)})
    df["firm"] = "f" + df.firm.astype(str)  # string levels
    codes = df.firm.str[1:].astype(int)
    df["y"] = (df.x1 - 0.5 * df.x2 + rng.normal(size=30)[codes] + rng.normal(size=8)[df.year]
               + rng.normal(size=n) * (1 + df.x1.abs()))
    return df


@pytest.mark.parametrize("fe", ["firm", "firm + year"])
def test_coefficients_and_nonrobust_se_equal_the_dummy_regression(panel, fe):
    m = fit_absorbed(panel, f"y ~ x1 + x2 | {fe}")
    dummies = " + ".join(f"C({f})" for f in fe.split(" + "))
    ref = smf.ols(f"y ~ x1 + x2 + {dummies}", panel).fit()
    np.testing.assert_allclose(m.coef_, ref.params[["x1", "x2"]], rtol=1e-8)
    np.testing.assert_allclose(m.results_.std_errors, ref.bse[["x1", "x2"]], rtol=1e-8)
    np.testing.assert_allclose(m.predict(panel), ref.fittedvalues, rtol=1e-9, atol=1e-9)
    text = m.summary()
    assert "firm (30 levels)" in text and ("year (8 levels)" in text) == ("year" in fe)


def test_clustered_weighted_equals_the_dummy_regression(panel):
    m = fit_absorbed(panel, "y ~ x1 + x2 | firm + year", weights="w", weights_kind="analytic", cov_type="cluster",
                     cluster="firm")
    ref = smf.wls("y ~ x1 + x2 + C(firm) + C(year)", panel, weights=panel.w).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(panel.firm)[0]}, use_t=True)
    np.testing.assert_allclose(m.coef_, ref.params[["x1", "x2"]], rtol=1e-8)
    np.testing.assert_allclose(m.results_.std_errors, ref.bse[["x1", "x2"]], rtol=1e-8)
    np.testing.assert_allclose(m.results_.p_values, ref.pvalues[["x1", "x2"]], rtol=1e-7)
    w = m.results_.wald_test("x1 = 0, x2 = 0")
    assert w.df_denom == 29


def test_hac_equals_the_dummy_regression(panel):
    m = fit_absorbed(panel, "y ~ x1 + x2 | year", cov_type="HAC", hac_maxlags=3)
    ref = smf.ols("y ~ x1 + x2 + C(year)", panel).fit(cov_type="HAC", cov_kwds={"maxlags": 3}, use_t=True)
    np.testing.assert_allclose(m.results_.std_errors, ref.bse[["x1", "x2"]], rtol=1e-8)


def test_nested_fixed_effects_match_pyfixest(panel):
    pf = pytest.importorskip("pyfixest")
    m = fit_absorbed(panel, "y ~ x1 + x2 | firm + year", cov_type="cluster", cluster="firm", fixef_k="nested")
    tight = pf.MapDemeaner(fixef_tol=1e-14) if hasattr(pf, "MapDemeaner") else None
    kw = dict(fixef_rm="none", demeaner=tight) if tight is not None else dict(fixef_rm="none", fixef_tol=1e-14)
    ref = pf.feols("y ~ x1 + x2 | firm + year", data=panel, vcov={"CRV1": "firm"}, **kw)
    np.testing.assert_allclose(m.coef_, ref.coef().to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(m.results_.std_errors, ref.se().to_numpy(), rtol=1e-8)


def test_table_lists_the_absorbed_factors(panel):
    a = fit_absorbed(panel, "y ~ x1 + x2 | firm")
    b = jaxlm.LinearRegression().fit(panel[["x1", "x2"]], panel.y)
    text = str(jaxlm.table([b, a]))
    assert "firm" in text


@pytest.mark.parametrize("bad", ["y ~ x1 | firm^year", "y ~ x1 | np.log(firm)", "y ~ x1", "y ~ x1 | firm | year",
                                 "y ~ x1 | firm + firm"])
def test_formula_errors(bad):
    with pytest.raises(jaxlm.InputError, match="formula"):
        split_formula(bad)


def test_input_errors(panel):
    with pytest.raises(jaxlm.InputError, match="'region' is not in the data"):
        fit_absorbed(panel, "y ~ x1 | region")
    with pytest.raises(jaxlm.InputError, match="needs cluster="):
        fit_absorbed(panel, "y ~ x1 | firm", cov_type="cluster")
    m = fit_absorbed(panel, "y ~ x1 | firm")
    with pytest.raises(jaxlm.InputError, match="level the model was not fitted with"):
        m.predict(panel.assign(firm="zz"))


def test_fit_table_takes_the_bar_syntax(panel, tmp_path):
    path = tmp_path / "panel.parquet"
    panel.to_parquet(path)
    direct = fit_absorbed(panel, "y ~ x1 + x2 | firm + year", cov_type="cluster", cluster="firm")
    m = jaxlm.fit_table(panel, formula="y ~ x1 + x2 | firm + year", cov_type="cluster", cluster="firm")
    np.testing.assert_array_equal(m.coef_, direct.coef_)
    np.testing.assert_array_equal(m.results_.std_errors, direct.results_.std_errors)
    # a file is streamed (conjugate gradients, one pass per iteration) instead of alternating projections
    m = jaxlm.fit_table(str(path), formula="y ~ x1 + x2 | firm + year", cov_type="cluster", cluster="firm")
    np.testing.assert_allclose(m.coef_, direct.coef_, rtol=1e-10)
    np.testing.assert_allclose(m.results_.std_errors, direct.results_.std_errors, rtol=1e-10)


# --- one factor nested in the cluster: scores from the raw x (Σ_{i∈g} w x̃ ẽ = Σ_{i∈g} w x ẽ) --------------
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("cluster, fixef_k", [("firm", "full"), ("firm", "nested"), ("region", "nested")])
def test_one_factor_nested_in_the_cluster_equals_the_dummy_regression(panel, weighted, cluster, fixef_k):
    df = panel.assign(region="r" + (panel.firm.str[1:].astype(int) % 7).astype(str))  # firms nest in regions
    kw = dict(weights="w", weights_kind="analytic") if weighted else {}
    m = fit_absorbed(df, "y ~ x1 + x2 | firm", cov_type="cluster", cluster=cluster, fixef_k=fixef_k, **kw)
    ols = smf.wls("y ~ x1 + x2 + C(firm)", df, weights=df.w) if weighted else smf.ols("y ~ x1 + x2 + C(firm)", df)
    ref = ols.fit(cov_type="cluster", cov_kwds={"groups": pd.factorize(df[cluster])[0]}, use_t=True)
    se = ref.bse[["x1", "x2"]].to_numpy()
    if fixef_k == "nested":  # the factor counts one parameter: statsmodels' small-sample factor with k = 2 + 1
        n, k_full = len(df), ref.df_model + 1
        se = se * np.sqrt((n - k_full) / (n - 3))
    np.testing.assert_allclose(m.coef_, ref.params[["x1", "x2"]], rtol=1e-8)
    np.testing.assert_allclose(m.results_.std_errors, se, rtol=1e-8)


@pytest.mark.parametrize("offset", [0.0, 1e3, 1e7])
def test_raw_scores_equal_demeaned_ones_or_are_not_used(panel, offset):
    from jaxlm.core import absorb as ab
    from jaxlm.inference import cluster as cl
    from jaxlm.inference.hac import absorbed_scorer
    from jaxlm.reduce import memory

    X = panel[["x1", "x2"]].to_numpy() + offset
    y = panel.y.to_numpy()[:, None] + offset
    w = panel.w.to_numpy()
    fit = ab.absorb_arrays(X, y, w, [panel.firm.to_numpy()])
    raw, demeaned = absorbed_scorer(fit, nested=(True,)), absorbed_scorer(fit)
    assert demeaned.resid is None
    assert (raw.resid is not None) == (offset == 0.0)  # offsets far above the within spread: demeaned rows
    run = memory.arrays_runner(X, y, w, panel.firm.to_numpy(), panel.firm.to_numpy(), rows=97)
    a, b = (run(cl.cluster_reduction(s)).meats for s in (raw, demeaned))
    np.testing.assert_allclose(a, b, rtol=1e-12)
    assert absorbed_scorer(fit, nested=(False,)).resid is None


@pytest.mark.parametrize("column, value, param", [("x1", np.nan, "missing"), ("y", np.nan, "missing"),
                                                  ("w", -1.0, "weights"), ("w", np.inf, "weights")])
def test_in_memory_bad_values_are_errors_naming_the_column(panel, column, value, param):
    df = panel.copy()
    df.loc[5, column] = value
    with pytest.raises(jaxlm.InputError, match=f"{column!r}.*data row 6") as err:
        fit_absorbed(df, "y ~ x1 + x2 | firm", weights="w", cov_type="cluster", cluster="firm")
    assert err.value.param == param


@pytest.mark.parametrize("formula", ["y ~ x1 + x2 | firm", "y ~ x1 + np.exp(x2) | firm"])
def test_in_memory_infinite_values_are_errors_naming_the_column(panel, formula):
    df = panel.copy()
    df.loc[7, "x2"] = np.inf
    with pytest.raises(jaxlm.InputError, match=r"must be finite; got inf in model column '(x2|np.exp\(x2\))' at "
                                               r"data row 8"):
        fit_absorbed(df, formula)


def test_bare_columns_and_formulaic_give_the_same_fit(panel):
    """``y ~ x1 + x2`` is read straight from the frame; a formula with a transform goes through
    Arrow and formulaic: the common columns' estimates agree."""
    a = fit_absorbed(panel, "y ~ x1 + x2 | firm", weights="w", cov_type="cluster", cluster="firm")
    b = fit_absorbed(panel.assign(z=0.0), "y ~ x1 + x2 + np.exp(z) | firm", weights="w", cov_type="cluster",
                     cluster="firm")
    np.testing.assert_allclose(a.coef_, b.coef_[:2], rtol=1e-12)
    np.testing.assert_allclose(a.results_.std_errors, b.results_.std_errors[:2], rtol=1e-12)
