"""LinearRegression(cov_type=...): the covariance its statistics use, against statsmodels."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import jaxlm


@pytest.fixture(scope="module")
def panel():
    rng = np.random.default_rng(3)
    n = 600
    firm = rng.integers(0, 40, n)
    year = rng.integers(0, 12, n)
    X = rng.normal(size=(n, 3)) + rng.normal(size=(40, 3))[firm]  # regressors correlated within firm
    e = rng.normal(size=40)[firm] + rng.normal(size=n) * (1 + np.abs(X[:, 0]))
    y = X @ [1.0, -0.5, 0.25] + 2 + e
    w = rng.uniform(0.5, 2.0, n)
    return X, y, w, firm, year


def _sm(X, y, w=None, intercept=True, weights_kind="frequency"):
    Z = sm.add_constant(X) if intercept else X
    if w is None:
        return sm.OLS(y, Z)
    return sm.WLS(y, Z, weights=w) if weights_kind == "analytic" else sm.OLS(np.repeat(y, 1), Z)


@pytest.mark.parametrize("kind", ["HC0", "HC1", "HC2", "HC3"])
def test_hc_kinds_are_the_default_everywhere(panel, kind):
    X, y, _, _, _ = panel
    m = jaxlm.LinearRegression(cov_type=kind).fit(X, y)
    ref = sm.OLS(y, sm.add_constant(X)).fit(cov_type=kind, use_t=True)
    r = m.results_
    np.testing.assert_allclose(r.std_errors, ref.bse, rtol=1e-10)
    np.testing.assert_allclose(r.p_values, ref.pvalues, rtol=1e-8)
    np.testing.assert_allclose(r.conf_int(), ref.conf_int(), rtol=1e-10)
    assert f"({kind})" in str(m.summary()) or kind in str(m.summary())
    frame = ref.get_prediction(sm.add_constant(X[:5], has_constant="add")).summary_frame(alpha=0.05)
    iv = m.predict_interval(X[:5])
    np.testing.assert_allclose(iv.lower, frame["mean_ci_lower"], rtol=1e-9)
    np.testing.assert_allclose(iv.upper, frame["mean_ci_upper"], rtol=1e-9)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("intercept", [True, False])
def test_one_way_cluster_equals_statsmodels(panel, weighted, intercept):
    X, y, w, firm, _ = panel
    kw = {"sample_weight": w} if weighted else {}
    m = jaxlm.LinearRegression(cov_type="cluster", weights_kind="analytic", fit_intercept=intercept).fit(
        X, y, groups=firm, **kw)
    Z = sm.add_constant(X) if intercept else X
    model = sm.WLS(y, Z, weights=w) if weighted else sm.OLS(y, Z)
    ref = model.fit(cov_type="cluster", cov_kwds={"groups": firm}, use_t=True)
    r = m.results_
    np.testing.assert_allclose(r.cov(), ref.cov_params(), rtol=1e-8)
    np.testing.assert_allclose(r.p_values, ref.pvalues, rtol=1e-8)  # t(G − 1)
    np.testing.assert_allclose(r.conf_int(), ref.conf_int(), rtol=1e-9)
    assert r.inference_df() == 39
    assert "cluster-robust CR1 (one-way, G = 40); t and F with G − 1 = 39" in str(m.summary())


def test_two_way_cluster_equals_statsmodels(panel):
    X, y, _, firm, year = panel
    m = jaxlm.LinearRegression(cov_type="cluster").fit(X, y, groups=np.column_stack([firm, year]))
    ref = sm.OLS(y, sm.add_constant(X)).fit(cov_type="cluster", cov_kwds={"groups": np.column_stack([firm, year])},
                                            use_t=True)
    np.testing.assert_allclose(m.results_.cov(), ref.cov_params(), rtol=1e-8)
    np.testing.assert_allclose(m.results_.p_values, ref.pvalues, rtol=1e-8)
    with_names = jaxlm.LinearRegression(cov_type="cluster").fit(X, y, groups=pd.DataFrame({"f": firm, "y": year}))
    np.testing.assert_allclose(with_names.results_.cov(), ref.cov_params(), rtol=1e-8)
    G = (len(np.unique(firm)), len(np.unique(year)))  # the two groupings' counts, not their intersection's
    assert f"cluster-robust CR1 (two-way, G = {G[0]:,} and {G[1]:,}); t and F with G − 1 = {min(G) - 1}" \
        in str(m.summary())


@pytest.mark.parametrize("lags", [None, 0, 4])
def test_hac_equals_statsmodels(panel, lags):
    X, y, _, _, _ = panel
    m = jaxlm.LinearRegression(cov_type="HAC", hac_maxlags=lags).fit(X, y)
    want = lags if lags is not None else int(np.floor(4 * (len(y) / 100) ** (2 / 9)))
    ref = sm.OLS(y, sm.add_constant(X)).fit(cov_type="HAC", cov_kwds={"maxlags": want}, use_t=True)
    np.testing.assert_allclose(m.results_.cov(), ref.cov_params(), rtol=1e-8)
    np.testing.assert_allclose(m.results_.p_values, ref.pvalues, rtol=1e-8)


def test_other_kinds_stay_available_and_errors_speak_user_terms(panel):
    X, y, _, firm, _ = panel
    m = jaxlm.LinearRegression(cov_type="cluster").fit(X, y, groups=firm)
    ref = sm.OLS(y, sm.add_constant(X)).fit()
    np.testing.assert_allclose(m.results_.cov("nonrobust"), ref.cov_params(), rtol=1e-10)
    with pytest.raises(jaxlm.InputError, match=r"cov_type='HAC'"):
        m.results_.cov("HAC")
    plain = jaxlm.LinearRegression().fit(X, y)
    with pytest.raises(jaxlm.InputError, match=r"LinearRegression\(cov_type='HC3'\)"):
        plain.summary(cov="HC3")
    with pytest.raises(jaxlm.InputError, match="needs the cluster column"):
        jaxlm.LinearRegression(cov_type="cluster").fit(X, y)
    bad = firm.astype(float)
    bad[7] = np.nan
    with pytest.raises(jaxlm.InputError, match="missing values.*row 7"):
        jaxlm.LinearRegression(cov_type="cluster").fit(X, y, groups=bad)
    with pytest.raises(jaxlm.InputError, match="at least 2 distinct"):
        jaxlm.LinearRegression(cov_type="cluster").fit(X, y, groups=np.zeros(len(y)))
    with pytest.raises(jaxlm.InputError, match="hac_maxlags must be smaller"):
        jaxlm.LinearRegression(cov_type="HAC", hac_maxlags=len(y)).fit(X, y)
    with pytest.raises(jaxlm.InputError, match="groups= is used only with cov_type='cluster'"):
        jaxlm.LinearRegression().fit(X, y, groups=firm)
    with pytest.raises(jaxlm.InputError, match="partial_fit sees each batch once"):
        jaxlm.LinearRegression(cov_type="HC1").partial_fit(X, y)


def test_positive_fits_have_no_t_inference(panel):
    X, y, _, _, _ = panel
    m = jaxlm.LinearRegression(positive=True).fit(X, y)
    assert not m.results_.has_inference and "positive=True" in m.results_.inference_note
    assert np.isnan(m.results_.std_errors).all()


def test_streamed_fit_takes_an_hc_cov_type_and_cluster(panel, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    X, y, _, firm, _ = panel
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"x0": X[:, 0], "x1": X[:, 1], "x2": X[:, 2], "y": y, "firm": firm}), path,
                   row_group_size=50)
    m = jaxlm.fit_table(str(path), target="y", features=["x0", "x1", "x2"], cov_type="HC3", progress=False)
    ref = sm.OLS(y, sm.add_constant(X)).fit(cov_type="HC3", use_t=True)
    np.testing.assert_allclose(m.results_.std_errors, ref.bse, rtol=1e-10)
    assert m.results_.cov_type == "HC3"
    with pytest.raises(jaxlm.InputError, match="cov_type='cluster' needs cluster="):
        jaxlm.fit_table(str(path), target="y", features=["x0", "x1", "x2"], cov_type="cluster", progress=False)
    m = jaxlm.fit_table(str(path), target="y", features=["x0", "x1", "x2"], cov_type="cluster", cluster="firm",
                        progress=False)
    ref = sm.OLS(y, sm.add_constant(X)).fit(cov_type="cluster", cov_kwds={"groups": firm}, use_t=True)
    np.testing.assert_allclose(m.results_.std_errors, ref.bse, rtol=1e-10)


def test_a_saved_robust_model_loads_with_a_note(panel, tmp_path):
    X, y, _, _, _ = panel
    m = jaxlm.LinearRegression(cov_type="HC1").fit(X, y)
    m.save(tmp_path / "m.json")
    loaded = jaxlm.load(tmp_path / "m.json")
    assert loaded.cov_type == "HC1" and loaded.results_.cov_type == "nonrobust"
    assert "needs the data" in loaded.results_.notes[-1]
    np.testing.assert_allclose(loaded.results_.std_errors, sm.OLS(y, sm.add_constant(X)).fit().bse, rtol=1e-10)
