"""Clustered (one- and two-way CR1) covariances of the GLM estimators (jaxlm.inference.glm_cluster).

References are independent: statsmodels' ``GLM(...).fit(cov_type="cluster", cov_kwds={"groups": g})``
(polished to its optimum by Newton first), with groups (n, 2) for two-way, on the rows repeated
for frequency weights (jaxlm's frequency weights count rows: N = Σw in (N−1)/(N−K)); statsmodels'
own ``freq_weights`` fit takes N = rows, and the test checks that the two differ by exactly that
factor. The streamed fit (many small Parquet row groups, clusters spread over them) must equal the
in-memory fit to ≤ 1e-10.
"""
import pickle
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

sm = pytest.importorskip("statsmodels.api")

import jaxlm
from jaxlm.core.errors import InputError
from jaxlm.inference.glm_cluster import glm_cluster_pass, glm_clustered, glm_scorer
from jaxlm.io.glm_schema import GLM_COV_TYPES
from jaxlm.models import glm_tables
from jaxlm.models.glm import GLM, GammaRegressor, LogisticRegression, PoissonRegressor, TweedieRegressor
from jaxlm.models.glm_cov import COV_TYPES
from jaxlm.reduce import memory

RTOL = 1e-8
L = sm.families.links


def _close(actual, desired, rtol=RTOL):
    """Each entry within ``rtol`` of the largest (a coefficient near 0 carries the others' absolute error)."""
    desired = np.asarray(desired, dtype=float)
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=rtol * np.max(np.abs(desired)))


def _data(kind, n=600, seed=0):
    """X, y, firm (40 clusters, ids as strings), year (7), frequency weights, offset, exposure, var weights."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * [1.0, 2.0, 0.5] + [0.0, 1.0, 0.0]
    firm = rng.integers(0, 40, n)
    year = rng.integers(0, 7, n)
    eta = X @ [0.2, -0.05, 0.3] - 0.05 + 0.4 * rng.normal(size=40)[firm] + 0.2 * rng.normal(size=7)[year]
    off, expo = rng.normal(size=n) * 0.2, rng.uniform(0.5, 2.0, n)
    y = {"gaussian": lambda: 0.2 + eta + rng.normal(size=n),
         "binomial": lambda: rng.binomial(1, 1 / (1 + np.exp(-eta))).astype(float),
         "probit": lambda: rng.binomial(1, 1 / (1 + np.exp(-eta))).astype(float),
         "poisson": lambda: rng.poisson(np.exp(0.1 + eta + off) * expo).astype(float),
         "gamma": lambda: rng.gamma(2.0, np.exp(0.1 + 0.5 * eta) / 2.0)}[kind]()
    return (X, y, np.array([f"firm{k}" for k in firm], dtype=object), year, rng.integers(1, 4, n).astype(float),
            off, expo, rng.uniform(0.5, 2.0, n))


# kind -> (jaxlm estimator, statsmodels family, uses offset and exposure)
CASES = {
    "gaussian": (lambda **kw: GLM(**kw), lambda: sm.families.Gaussian(), False),
    "binomial": (lambda **kw: LogisticRegression(**kw), lambda: sm.families.Binomial(), False),
    "probit": (lambda **kw: GLM(family="binomial", link="probit", **kw),
               lambda: sm.families.Binomial(L.Probit()), False),
    "poisson": (lambda **kw: PoissonRegressor(**kw), lambda: sm.families.Poisson(), True),
    "gamma": (lambda **kw: GammaRegressor(**kw), lambda: sm.families.Gamma(L.Log()), False),
}


def _reference(X, y, family, groups, *, fit_intercept=True, **kw):
    """statsmodels' clustered GLM at its optimum (IRLS, Newton polish, one IRLS step there)."""
    kw = {k: v for k, v in kw.items() if v is not None}
    Xs = sm.add_constant(X, prepend=True) if fit_intercept else X
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "cov_type not fully supported with freq_weights/var_weights"
        model = sm.GLM(y, Xs, family=family, **kw)
        r0 = model.fit(tol=1e-14, maxiter=300)
        rn = model.fit(start_params=r0.params, method="newton", tol=1e-14, maxiter=100)
        return model.fit(start_params=rn.params, maxiter=1, cov_type="cluster", cov_kwds={"groups": groups})


def _codes(*cols):
    """Integer codes of the cluster columns ((n,) or (n, 2)), as statsmodels wants them."""
    out = np.column_stack([pd.factorize(c)[0] for c in cols])
    return out[:, 0] if out.shape[1] == 1 else out


def _check(res, ref):
    assert not ref.use_t  # statsmodels' GLM: normal z and p also when clustered, as jaxlm
    _close(res.params, ref.params)
    np.testing.assert_allclose(res.bse, ref.bse, rtol=RTOL)
    np.testing.assert_allclose(res.pvalues, ref.pvalues, rtol=RTOL, atol=1e-300)
    np.testing.assert_allclose(res.conf_int(), ref.conf_int(), rtol=RTOL, atol=RTOL * np.max(np.abs(ref.params)))
    np.testing.assert_allclose(res.cov(), ref.cov_params(), rtol=1e-7, atol=1e-8 * np.max(np.abs(ref.cov_params())))


@pytest.mark.parametrize("ways", [1, 2], ids=["one-way", "two-way"])
@pytest.mark.parametrize("intercept", [True, False], ids=["intercept", "no-intercept"])
@pytest.mark.parametrize("kind", list(CASES))
def test_clustered_equals_statsmodels(kind, intercept, ways):
    make, family, offsets = CASES[kind]
    X, y, firm, year, _, off, expo, _ = _data(kind)
    groups = np.column_stack([firm, year]) if ways == 2 else firm
    est = make(cov_type="cluster", fit_intercept=intercept)
    est.fit(X, y, groups=groups, **({"offset": off, "exposure": expo} if offsets else {}))
    ref = _reference(X, y, family(), _codes(firm, year) if ways == 2 else _codes(firm), fit_intercept=intercept,
                     offset=off if offsets else None, exposure=expo if offsets else None)
    assert est.results_.cov_type == "cluster"
    _check(est.results_, ref)
    table = est.summary().to_frame()  # the summary's default is the fit's cov_type
    np.testing.assert_allclose(table["std_err"], ref.bse, rtol=RTOL)
    assert f"two-way, G = 40 and 7" in str(est.summary()) if ways == 2 else "one-way, G = 40" in str(est.summary())


@pytest.mark.parametrize("ways", [1, 2], ids=["one-way", "two-way"])
@pytest.mark.parametrize("kind", ["binomial", "poisson", "gamma", "gaussian"])
def test_frequency_weights_are_rows_repeated(kind, ways):
    """Frequency weights: statsmodels on the rows repeated, and its freq_weights fit times the N factor."""
    make, family, offsets = CASES[kind]
    X, y, firm, year, fw, off, expo, _ = _data(kind, seed=1)
    groups = np.column_stack([firm, year]) if ways == 2 else firm
    kw = {"offset": off, "exposure": expo} if offsets else {}
    est = make(cov_type="cluster").fit(X, y, sample_weight=fw, groups=groups, **kw)
    rep = np.repeat(np.arange(len(y)), fw.astype(int))
    codes = _codes(firm, year) if ways == 2 else _codes(firm)
    ref = _reference(X[rep], y[rep], family(), codes[rep], **{k: v[rep] for k, v in kw.items()})
    _check(est.results_, ref)
    # statsmodels' freq_weights fit: the same sandwich, N = rows instead of Σw in (N − 1)/(N − K)
    ref_fw = _reference(X, y, family(), codes, freq_weights=fw, **kw)
    n, W, K = len(y), fw.sum(), X.shape[1] + 1
    np.testing.assert_allclose(est.results_.cov(), ref_fw.cov_params() * (W - 1) * (n - K) / ((n - 1) * (W - K)),
                               rtol=1e-7, atol=1e-8 * np.max(np.abs(ref_fw.cov_params())))


@pytest.mark.parametrize("kind", ["gamma", "binomial"])
def test_variance_weights(kind):
    make, family, _ = CASES[kind]
    X, y, firm, _, _, _, _, vw = _data(kind, seed=2)
    est = make(cov_type="cluster").fit(X, y, var_weights=vw, groups=firm)
    _check(est.results_, _reference(X, y, family(), _codes(firm), var_weights=vw))


def test_tweedie_and_hc_cov_types():
    X, y, firm, *_ = _data("poisson", seed=3)
    est = TweedieRegressor(power=1.5, cov_type="cluster").fit(X, y, groups=firm)
    _check(est.results_, _reference(X, y, sm.families.Tweedie(var_power=1.5, link=L.Log()), _codes(firm)))
    hc = GammaRegressor(cov_type="HC0").fit(X, y + 0.5)  # an HC kind is the default covariance too
    ref = _reference(X, y + 0.5, sm.families.Gamma(L.Log()), _codes(firm))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_hc = ref.model.fit(start_params=ref.params, maxiter=1, cov_type="HC0")
    assert hc.results_.cov_type == "HC0"
    np.testing.assert_allclose(hc.results_.bse, ref_hc.bse, rtol=RTOL)
    np.testing.assert_allclose(hc.summary().to_frame()["std_err"], ref_hc.bse, rtol=RTOL)
    assert np.all(hc.results_.bse != GammaRegressor().fit(X, y + 0.5).results_.bse)


def test_prediction_interval_and_public_function_follow_the_cluster_covariance():
    X, y, firm, year, _, off, expo, _ = _data("poisson", seed=4)
    est = PoissonRegressor(cov_type="cluster").fit(X, y, offset=off, groups=firm)
    ref = _reference(X, y, sm.families.Poisson(), _codes(firm), offset=off)
    frame = ref.get_prediction(sm.add_constant(X[:20], prepend=True), offset=off[:20]).summary_frame()
    got = est.predict_interval(X[:20], offset=off[:20])
    np.testing.assert_allclose(got.lower, frame["mean_ci_lower"], rtol=RTOL)
    np.testing.assert_allclose(got.upper, frame["mean_ci_upper"], rtol=RTOL)
    plain = est.predict_interval(X[:20], offset=off[:20], cov="nonrobust")
    assert not np.allclose(plain.lower, got.lower)
    # the public one-call function: the same covariance; small_sample=False drops G/(G−1)·(N−1)/(N−K)
    run = memory.arrays_runner(X, y[:, None], np.ones(len(y)), firm, off)
    cc = glm_clustered(run, est.solution_)
    np.testing.assert_allclose(cc.cov[0], est.results_.cov(), rtol=1e-12, atol=1e-15)
    assert cc.n_clusters == (40,) and cc.df == 39
    raw = glm_clustered(run, est.solution_, small_sample=False)
    n, K = len(y), 4
    np.testing.assert_allclose(raw.cov[0] * 40 / 39 * (n - 1) / (n - K), cc.cov[0], rtol=1e-12)


def test_zero_weight_rows_and_their_clusters_are_ignored():
    X, y, firm, *_ = _data("binomial", seed=5)
    w = np.ones(len(y))
    w[:50] = 0.0
    firm = firm.copy()
    firm[:50] = "only-zero-weight-rows"
    full = LogisticRegression(cov_type="cluster").fit(X, y, sample_weight=w, groups=firm)
    kept = LogisticRegression(cov_type="cluster").fit(X[50:], y[50:], groups=firm[50:])
    np.testing.assert_allclose(full.results_.bse, kept.results_.bse, rtol=1e-10)


def test_robust_keeps_working_and_solvers_agree():
    X, y, firm, *_ = _data("poisson", seed=6)
    both = PoissonRegressor(robust=True, cov_type="cluster").fit(X, y, groups=firm)
    assert both.results_.cov_type == "cluster"
    np.testing.assert_allclose(both.results_.coef_table(cov="HC0").bse,
                               PoissonRegressor(robust=True).fit(X, y).results_.coef_table(cov="HC0").bse, rtol=1e-12)
    lbfgs = PoissonRegressor(solver="lbfgs", cov_type="cluster", max_iter=1000).fit(X, y, groups=firm)
    np.testing.assert_allclose(lbfgs.results_.bse, both.results_.bse, rtol=1e-6)
    ridge = PoissonRegressor(alpha=1.0, cov_type="cluster").fit(X, y, groups=firm)  # no sampling distribution
    assert np.all(np.isnan(ridge.results_.bse))


def test_results_pickle_and_keep_the_cluster_covariance():
    X, y, firm, year, *_ = _data("gamma", seed=7)
    est = GammaRegressor(cov_type="cluster").fit(X, y, groups=pd.DataFrame({"f": firm, "y": year}))
    back = pickle.loads(pickle.dumps(est))
    assert back.results_.cov_type == "cluster"
    np.testing.assert_array_equal(back.results_.bse, est.results_.bse)
    assert back.results_.cov_label() == est.results_.cov_label() == "cluster-robust CR1 (two-way, G = 40 and 7)"
    # the pass itself is picklable (Dask ships reductions to workers) and merges blocks in any split
    red = pickle.loads(pickle.dumps(glm_cluster_pass(glm_scorer(est.solution_), 2)))
    w = np.ones(len(y))
    one = memory.arrays_runner(X, y[:, None], w, firm, year, rows=len(y))(red)
    many = memory.arrays_runner(X, y[:, None], w, firm, year, rows=37)(red)
    np.testing.assert_allclose(many.meats.meats, one.meats.meats, rtol=1e-12, atol=1e-12 * np.abs(one.meats.meats).max())
    np.testing.assert_allclose(many.observed, one.observed, rtol=1e-12, atol=1e-12 * np.abs(one.observed).max())


def test_model_file_of_a_clustered_fit_is_saved_and_loads_non_robust_with_a_note(tmp_path):
    X, y, firm, *_ = _data("poisson", seed=8)
    est = PoissonRegressor(cov_type="cluster").fit(X, y, groups=firm)
    est.save(tmp_path / "m.json")
    back = jaxlm.load(tmp_path / "m.json")
    assert back.get_params()["cov_type"] == "cluster"
    assert back.results_.cov_type == "nonrobust"
    np.testing.assert_allclose(back.results_.bse, PoissonRegressor().fit(X, y).results_.bse, rtol=1e-10)
    assert any("needs the data" in n for n in back.results_.notes)
    assert "needs the data" in str(back.summary())
    with pytest.raises(InputError, match="cluster pass"):
        back.results_.cov("cluster")
    np.testing.assert_allclose(back.predict(pd.DataFrame(X[:5], columns=back.feature_names_in_)), est.predict(X[:5]),
                               rtol=1e-14)


def test_cov_type_names_agree():
    assert COV_TYPES == GLM_COV_TYPES


# --------------------------------------------------------------------------- streamed
def _table(n=5000, seed=9):
    rng = np.random.default_rng(seed)
    firm = rng.integers(0, 150, n)  # each firm's rows spread over the file's many row groups
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.uniform(0, 3, n), "c": rng.choice(list("pqrs"), n),
                       "firm": [f"F{k:03d}" for k in firm], "year": rng.integers(2000, 2012, n),
                       "off": rng.normal(size=n) * 0.1, "w": rng.integers(1, 4, n).astype(float)})
    eta = 0.1 + 0.3 * df.a - 0.2 * df.b + (df.c == "q") * 0.5 + 0.3 * rng.normal(size=150)[firm]
    df["cnt"] = rng.poisson(np.exp(eta + df.off)).astype(float)
    df["yes"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    return df


@pytest.fixture(scope="module")
def parquet(tmp_path_factory):
    df = _table()
    path = tmp_path_factory.mktemp("glm_cluster") / "panel.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=97)
    assert pq.ParquetFile(path).num_row_groups == 52
    return df, path


def _rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("keep", [True, False], ids=["kept", "re-read"])
@pytest.mark.parametrize("cluster", ["firm", ["firm", "year"]], ids=["one-way", "two-way"])
def test_streamed_clustered_fit_equals_in_memory(parquet, cluster, keep, monkeypatch):
    df, path = parquet
    if not keep:
        monkeypatch.setattr(glm_tables, "KEEP_BYTES", 0)  # the cluster pass re-reads the file too
    fit = glm_tables.stream_glm(str(path), formula="cnt ~ a + b + C(c)", family="poisson", offset="off",
                                weights="w", cov_type="cluster", cluster=cluster, progress=False)
    X = np.column_stack([df.a, df.b] + [(df.c == k).astype(float) for k in "qrs"])
    cols = [cluster] if isinstance(cluster, str) else cluster
    mem = PoissonRegressor(cov_type="cluster").fit(X, df.cnt, sample_weight=df.w, offset=df.off,
                                                   groups=df[cols].to_numpy())
    res = fit.model.results_
    assert res.cov_type == "cluster" and _rel(res.params, mem.results_.params) <= 1e-10
    assert _rel(res.bse, mem.results_.bse) <= 1e-10
    assert _rel(res.cov(), mem.results_.cov()) <= 1e-10
    assert res.cov_label() == mem.results_.cov_label()


def test_streamed_csv_with_text_clusters_and_dropped_rows(tmp_path):
    df = _table(n=1500, seed=10)
    df.loc[[3, 700], "firm"] = None  # rows without a cluster: missing="drop" leaves them out of the fit
    path = tmp_path / "panel.csv"
    df.to_csv(path, index=False)
    fit = jaxlm.fit_table(str(path), target="yes", features=["a", "b"], family="binomial", cov_type="cluster",
                          cluster=["firm", "year"], missing="drop", progress=False)  # year: numbers, read as text
    keep = df.firm.notna().to_numpy()
    mem = LogisticRegression(cov_type="cluster").fit(df[["a", "b"]][keep].to_numpy(), df.yes[keep],
                                                     groups=df[["firm", "year"]][keep])
    assert _rel(fit.results_.bse, mem.results_.bse) <= 1e-10
    assert fit.results_.cov_label() == "cluster-robust CR1 (two-way, G = 150 and 12)"
    with pytest.raises(InputError, match="missing values.*'firm'"):
        jaxlm.fit_table(str(path), target="yes", features=["a", "b"], family="binomial", cov_type="cluster",
                        cluster="firm", progress=False)


def test_streamed_errors(parquet, tmp_path):
    df, path = parquet
    kw = {"formula": "cnt ~ a + b", "family": "poisson", "progress": False}
    with pytest.raises(InputError, match="needs cluster=") as e:
        jaxlm.fit_table(str(path), cov_type="cluster", **kw)
    assert e.value.param == "cluster"
    with pytest.raises(InputError, match="only with cov_type='cluster'"):
        jaxlm.fit_table(str(path), cluster="firm", **kw)
    with pytest.raises(InputError, match="cluster=") as e:
        jaxlm.fit_table(str(path), cov_type="cluster", groups="firm", **kw)
    assert e.value.param == "groups"
    with pytest.raises(InputError) as e:
        jaxlm.fit_table(str(path), cov_type="cluster", cluster="frim", **kw)
    assert e.value.param == "cluster" and "frim" in str(e.value)
    with pytest.raises(InputError, match="one column, or two distinct"):
        jaxlm.fit_table(str(path), cov_type="cluster", cluster=["firm", "firm"], **kw)
    one = tmp_path / "one.parquet"
    pq.write_table(pa.Table.from_pandas(df.assign(firm="same"), preserve_index=False), one, row_group_size=500)
    with pytest.raises(InputError, match="at least 2 distinct values") as e:
        jaxlm.fit_table(str(one), cov_type="cluster", cluster="firm", **kw)
    assert e.value.param == "cluster"


# --------------------------------------------------------------------------- bad input in memory
def test_bad_groups_are_input_errors():
    X, y, firm, year, *_ = _data("poisson", seed=11)
    with pytest.raises(InputError, match="only with cov_type='cluster'") as e:
        PoissonRegressor().fit(X, y, groups=firm)
    assert e.value.param == "groups"
    with pytest.raises(InputError, match="needs the cluster column") as e:
        PoissonRegressor(cov_type="cluster").fit(X, y)
    assert e.value.param == "groups"
    bad = firm.copy()
    bad[17] = None
    with pytest.raises(InputError, match="no missing values.*row 17"):
        PoissonRegressor(cov_type="cluster").fit(X, y, groups=bad)
    nan = year.astype(float)
    nan[3] = np.nan
    with pytest.raises(InputError, match="no missing values.*column 1 at row 3"):
        PoissonRegressor(cov_type="cluster").fit(X, y, groups=np.column_stack([year, nan]))
    with pytest.raises(InputError, match="at least 2 distinct values"):
        PoissonRegressor(cov_type="cluster").fit(X, y, groups=np.zeros(len(y)))
    with pytest.raises(InputError, match="each cluster column must have at least 2"):
        PoissonRegressor(cov_type="cluster").fit(X, y, groups=np.column_stack([year, np.zeros(len(y))]))
    with pytest.raises(InputError, match="one value per row"):
        PoissonRegressor(cov_type="cluster").fit(X, y, groups=firm[:-1])
    with pytest.raises(InputError, match="one value per row"):
        PoissonRegressor(cov_type="cluster").fit(X, y, groups=np.column_stack([year, year, year]))
    with pytest.raises(InputError, match="cov_type must be one of") as e:
        GLM(cov_type="CR1").fit(X, y)
    assert e.value.param == "cov_type"
    with pytest.raises(InputError, match="cluster pass"):
        PoissonRegressor().fit(X, y).results_.cov("cluster")
    with pytest.raises(InputError, match="robust pass"):
        PoissonRegressor().fit(X, y).summary(cov="HC1")


def test_dask_clusters_equal_memory():
    da = pytest.importorskip("dask.array")
    X, y, firm, year, w, off, expo, _ = _data("poisson", seed=12)
    for groups in (firm, np.column_stack([firm, year])):
        kw = dict(sample_weight=w, exposure=expo, groups=groups)
        mem = PoissonRegressor(cov_type="cluster").fit(X, y, **kw)
        dk = PoissonRegressor(cov_type="cluster").fit(da.from_array(X, chunks=(170, 3)), da.from_array(y, chunks=170),
                                                      **{**kw, "sample_weight": da.from_array(w, chunks=170),
                                                         "groups": da.from_array(groups, chunks=(250, -1)[:groups.ndim])})
        np.testing.assert_allclose(dk.results_.bse, mem.results_.bse, rtol=1e-10)
        np.testing.assert_allclose(dk.coef_, mem.coef_, rtol=1e-10)
    bad = year.astype(float)
    bad[33] = np.nan
    with pytest.raises(InputError, match="groups must have no missing values"):
        PoissonRegressor(cov_type="cluster").fit(da.from_array(X, chunks=200), da.from_array(y, chunks=200),
                                                 groups=da.from_array(bad, chunks=200))
