"""Cluster-robust and HAC covariances of a linear fit on every driver: streamed files (Parquet with
many row groups, CSV), ``partial_fit`` and Dask equal the in-memory fit (≤ 1e-10 relative) for
clusters spread across blocks and partitions; the in-memory fit equals statsmodels and exact
rational arithmetic; bad input gets one clear error."""
from __future__ import annotations

import sys
from fractions import Fraction

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import statsmodels.api as sm

import jaxlm

N = 1500


@pytest.fixture(scope="module")
def panel():
    rng = np.random.default_rng(11)
    firm = rng.integers(0, 45, N)
    year = rng.choice(np.array(["y1", "y2", "y3", "y4", "y5"]), N)
    X = rng.normal(size=(N, 3)) + np.array([5.0, 100.0, -3.0]) + rng.normal(size=(45, 3))[firm]
    e = rng.normal(size=45)[firm] + rng.normal(size=N) * (1 + np.abs(X[:, 0] - 5))
    y = 1.0 + X @ [1.0, 2.0, -3.0] + e
    y2 = 0.5 * X[:, 1] + rng.normal(size=N)
    w = rng.integers(1, 4, N).astype(float)
    df = pd.DataFrame({"x0": X[:, 0], "x1": X[:, 1], "x2": X[:, 2], "y": y, "y2": y2, "w": w, "firm": firm,
                       "year": year})
    return df


@pytest.fixture(scope="module")
def files(panel, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stream_cluster")
    shuffled = panel.sample(frac=1.0, random_state=3)  # every cluster in many row groups
    pq.write_table(pa.Table.from_pandas(shuffled, preserve_index=False), tmp / "p.parquet", row_group_size=37)
    shuffled.to_csv(tmp / "p.csv", index=False, float_format="%.17g")
    return tmp, shuffled


def _memory(df, *, cov_type="cluster", groups=None, targets=("y",), fit_intercept=True, weights=None, **params):
    X = df[["x0", "x1", "x2"]].to_numpy()
    Y = df[list(targets)].to_numpy()
    w = None if weights is None else df[weights].to_numpy()
    m = jaxlm.LinearRegression(cov_type=cov_type, fit_intercept=fit_intercept, **params)
    return m.fit(X, Y[:, 0] if len(targets) == 1 else Y, sample_weight=w,
                 **({} if groups is None else {"groups": groups}))


def _se(model):
    res = model.results_ if isinstance(model.results_, tuple) else (model.results_,)
    return np.concatenate([r.std_errors for r in res]), [r.inference_df() for r in res]


def _close(a, b, rtol=1e-10):
    (sa, da), (sb, db) = _se(a), _se(b)
    np.testing.assert_allclose(sa, sb, rtol=rtol)
    assert da == db


# ------------------------------------------------------------------------------------ in memory: references
def _exact_cr1(X, y, g):
    """CR1 standard errors in exact rational arithmetic (intercept first), statsmodels' factor."""
    n, d = X.shape
    Z = [[Fraction(1)] + [Fraction(float(v)) for v in row] for row in X]
    Y = [Fraction(float(v)) for v in y]
    p = d + 1
    A = [[sum(Z[i][a] * Z[i][b] for i in range(n)) for b in range(p)] for a in range(p)]
    b = [sum(Z[i][a] * Y[i] for i in range(n)) for a in range(p)]
    inv = _inverse(A)
    beta = [sum(inv[a][c] * b[c] for c in range(p)) for a in range(p)]
    e = [Y[i] - sum(Z[i][a] * beta[a] for a in range(p)) for i in range(n)]
    meat = [[Fraction(0)] * p for _ in range(p)]
    for key in sorted(set(g.tolist())):
        s = [sum(Z[i][a] * e[i] for i in range(n) if g[i] == key) for a in range(p)]
        for a in range(p):
            for c in range(p):
                meat[a][c] += s[a] * s[c]
    G = len(set(g.tolist()))
    factor = Fraction(G, G - 1) * Fraction(n - 1, n - p)
    BM = [[sum(inv[a][k] * meat[k][c] for k in range(p)) for c in range(p)] for a in range(p)]
    cov = [[factor * sum(BM[a][k] * inv[k][c] for k in range(p)) for c in range(p)] for a in range(p)]
    return np.sqrt([float(cov[a][a]) for a in range(p)])


def _inverse(A):
    p = len(A)
    M = [row[:] + [Fraction(int(i == j)) for j in range(p)] for i, row in enumerate(A)]
    for c in range(p):
        piv = next(r for r in range(c, p) if M[r][c] != 0)
        M[c], M[piv] = M[piv], M[c]
        M[c] = [v / M[c][c] for v in M[c]]
        for r in range(p):
            if r != c and M[r][c] != 0:
                M[r] = [a - M[r][c] * b for a, b in zip(M[r], M[c])]
    return [row[p:] for row in M]


@pytest.mark.parametrize("offset", [0.0, 1e4, 1e6])
def test_cluster_errors_on_offset_data_equal_exact_arithmetic(offset):
    # the sandwich is formed in centred coordinates: formed with [1, x] it lost ~2·log10(offset) digits
    rng = np.random.default_rng(5)
    n = 80
    X = offset + rng.uniform(size=(n, 2))
    g = rng.integers(0, 9, n)
    y = X @ [2.0, -1.0] + rng.normal(size=9)[g] + rng.normal(size=n)
    se = jaxlm.LinearRegression(cov_type="cluster").fit(X, y, groups=g).results_.std_errors
    np.testing.assert_allclose(se, _exact_cr1(X, y, g), rtol=1e-11)


def test_memory_equals_statsmodels(panel):
    X = sm.add_constant(panel[["x0", "x1", "x2"]])
    for groups, ref_groups in ((panel.firm, panel.firm),
                               (panel[["firm", "year"]], np.column_stack([panel.firm, pd.factorize(panel.year)[0]]))):
        m = _memory(panel, groups=groups, weights="w", weights_kind="analytic")
        ref = sm.WLS(panel.y, X, weights=panel.w).fit(cov_type="cluster", cov_kwds={"groups": ref_groups}, use_t=True)
        np.testing.assert_allclose(m.results_.std_errors, ref.bse, rtol=1e-8)
        np.testing.assert_allclose(m.results_.p_values, ref.pvalues, rtol=1e-7)
    m = _memory(panel, cov_type="HAC", hac_maxlags=3)
    ref = sm.OLS(panel.y, X).fit(cov_type="HAC", cov_kwds={"maxlags": 3}, use_t=True)
    np.testing.assert_allclose(m.results_.std_errors, ref.bse, rtol=1e-8)


# ------------------------------------------------------------------------------------ streamed
STREAM_CASES = {
    "one-way": dict(cluster="firm", formula="y ~ x0 + x1 + x2"),
    "two-way text": dict(cluster=["firm", "year"], formula="y ~ x0 + x1 + x2"),
    "weighted": dict(cluster="firm", formula="y ~ x0 + x1 + x2", weights="w"),
    "analytic": dict(cluster="year", formula="y ~ x0 + x1 + x2", weights="w", weights_kind="analytic"),
    "no intercept": dict(cluster="firm", formula="y ~ x0 + x1 + x2 - 1"),
    "two targets": dict(cluster="firm", target=["y", "y2"], features=["x0", "x1", "x2"]),
}


@pytest.mark.parametrize("case", sorted(STREAM_CASES))
@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_streamed_cluster_equals_memory(files, case, kind):
    tmp, shuffled = files
    kw = dict(STREAM_CASES[case])
    cluster = kw["cluster"]
    m = jaxlm.fit_table(str(tmp / f"p.{kind}"), cov_type="cluster", progress=False, **kw)
    names = [cluster] if isinstance(cluster, str) else cluster
    groups = shuffled[names] if len(names) > 1 else shuffled[names[0]]
    ref = _memory(shuffled, groups=groups, targets=kw.get("target", ["y"]),
                  fit_intercept="- 1" not in kw.get("formula", ""), weights=kw.get("weights"),
                  **({"weights_kind": kw["weights_kind"]} if "weights_kind" in kw else {}))
    _close(m, ref)
    first = m.results_ if not isinstance(m.results_, tuple) else m.results_[0]
    assert first.cov_type == "cluster" and "by " + " and ".join(names) in str(m.summary())


def test_streamed_cluster_lines_up_with_dropped_rows(files, tmp_path):
    _, shuffled = files
    df = shuffled.copy()
    df.loc[df.index[::17], "x1"] = np.nan  # rows dropped by missing="drop": their clusters must be dropped too
    path = tmp_path / "holes.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=50)
    m = jaxlm.fit_table(str(path), formula="y ~ x0 + x1 + x2", missing="drop", cov_type="cluster",
                        cluster="firm", progress=False)
    kept = df.dropna(subset=["x1"])
    _close(m, _memory(kept, groups=kept.firm))


def test_streamed_hac_equals_memory_in_file_order(files):
    tmp, shuffled = files
    for kind in ("parquet", "csv"):
        m = jaxlm.fit_table(str(tmp / f"p.{kind}"), formula="y ~ x0 + x1 + x2", cov_type="HAC", hac_maxlags=4,
                            progress=False)
        _close(m, _memory(shuffled, cov_type="HAC", hac_maxlags=4))
    auto = jaxlm.fit_table(str(tmp / "p.parquet"), formula="y ~ x0 + x1 + x2", cov_type="HAC", progress=False)
    _close(auto, _memory(shuffled, cov_type="HAC"))  # statsmodels' rule floor(4 (n/100)^(2/9)) both


# ------------------------------------------------------------------------------------ partial_fit
@pytest.mark.parametrize("two_way", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weights_kind", ["frequency", "analytic"])
def test_partial_fit_cluster_equals_fit(panel, two_way, fit_intercept, weights_kind):
    groups = panel[["firm", "year"]].to_numpy() if two_way else panel.firm.to_numpy()
    X, Y, w = panel[["x0", "x1", "x2"]].to_numpy(), panel[["y", "y2"]].to_numpy(), panel.w.to_numpy()
    kw = dict(cov_type="cluster", fit_intercept=fit_intercept, weights_kind=weights_kind)
    ref = jaxlm.LinearRegression(**kw).fit(X, Y, sample_weight=w, groups=groups)
    m = jaxlm.LinearRegression(**kw)
    order = np.random.default_rng(2).permutation(N)
    for idx in np.array_split(order, 6):  # each batch holds part of nearly every cluster
        m.partial_fit(X[idx], Y[idx], sample_weight=w[idx], groups=groups[idx])
    _close(m, ref)


def test_partial_fit_after_fit_continues_from_the_fit(panel):
    X, y = panel[["x0", "x1", "x2"]].to_numpy(), panel.y.to_numpy()
    m = jaxlm.LinearRegression().partial_fit(X[:300] * 3, y[:300] + 50)  # data the fit below replaces
    m.fit(X[300:1000], y[300:1000])
    m.partial_fit(X[1000:], y[1000:])
    ref = jaxlm.LinearRegression().fit(X[300:], y[300:])
    np.testing.assert_allclose(m.coef_, ref.coef_, rtol=1e-12)
    np.testing.assert_allclose(m.intercept_, ref.intercept_, rtol=1e-12)


def test_partial_fit_cluster_refusals(panel):
    X, y, firm = panel[["x0", "x1", "x2"]].to_numpy(), panel.y.to_numpy(), panel.firm.to_numpy()
    with pytest.raises(jaxlm.InputError, match="cov_type=.cluster. needs the cluster column: pass fit"):
        jaxlm.LinearRegression(cov_type="cluster").partial_fit(X, y)
    with pytest.raises(jaxlm.InputError, match="cov_type='HAC' needs a pass over all rows"):
        jaxlm.LinearRegression(cov_type="HAC").partial_fit(X, y)
    with pytest.raises(jaxlm.InputError, match="groups= is used only with cov_type='cluster'"):
        jaxlm.LinearRegression().partial_fit(X, y, groups=firm)
    fitted = jaxlm.LinearRegression().fit(X, y)
    fitted.set_params(cov_type="cluster")
    with pytest.raises(jaxlm.InputError, match="needs the clusters of every batch from the first on"):
        fitted.partial_fit(X, y, groups=firm)
    m = jaxlm.LinearRegression(cov_type="cluster").partial_fit(X[:100], y[:100], groups=firm[:100])
    coef = m.coef_.copy()
    with pytest.raises(jaxlm.InputError, match="groups must have no missing values"):
        m.partial_fit(X[100:], y[100:], groups=np.where(np.arange(N - 100) == 7, np.nan, firm[100:]))
    np.testing.assert_array_equal(m.coef_, coef)  # a refused batch leaves the model as it was


def test_partial_fit_cluster_memory_is_bounded(monkeypatch, panel):
    from jaxlm.inference import cluster_grams

    monkeypatch.setattr(cluster_grams, "MAX_BYTES", 10_000)
    X, y = panel[["x0", "x1", "x2"]].to_numpy(), panel.y.to_numpy()
    with pytest.raises(jaxlm.InputError, match=r"keeps one 5×5 matrix per cluster: 1,500 clusters need"):
        jaxlm.LinearRegression(cov_type="cluster").partial_fit(X, y, groups=np.arange(N))


# ------------------------------------------------------------------------------------ Dask
def test_dask_cluster_and_hac_equal_memory(panel):
    da = pytest.importorskip("dask.array")
    dd = pytest.importorskip("dask.dataframe")
    X, y, w = panel[["x0", "x1", "x2"]].to_numpy(), panel.y.to_numpy(), panel.w.to_numpy()
    Xd, yd, wd = da.from_array(X, chunks=(211, 3)), da.from_array(y, chunks=211), da.from_array(w, chunks=211)
    one = jaxlm.LinearRegression(cov_type="cluster").fit(X, y, sample_weight=w, groups=panel.firm.to_numpy())
    for groups in (da.from_array(panel.firm.to_numpy(), chunks=500), panel.firm.to_numpy()):
        _close(jaxlm.LinearRegression(cov_type="cluster").fit(Xd, yd, sample_weight=wd, groups=groups), one)
    two = jaxlm.LinearRegression(cov_type="cluster").fit(X, y, groups=panel[["firm", "year"]])
    frame = dd.from_pandas(panel[["firm", "year"]].astype({"year": object}), npartitions=4)
    _close(jaxlm.LinearRegression(cov_type="cluster").fit(Xd, yd, groups=frame), two)
    hac = jaxlm.LinearRegression(cov_type="HAC", hac_maxlags=6).fit(X, y)  # partitions merged in row order
    _close(jaxlm.LinearRegression(cov_type="HAC", hac_maxlags=6).fit(Xd, yd), hac)
    bad = panel.firm.to_numpy().astype(float)
    bad[900] = np.nan
    with pytest.raises(jaxlm.InputError, match="groups must have no missing values"):
        jaxlm.LinearRegression(cov_type="cluster").fit(Xd, yd, groups=da.from_array(bad, chunks=300))


# ------------------------------------------------------------------------------------ streamed: bad input
def test_streamed_bad_cluster_input(files, tmp_path):
    tmp, shuffled = files
    path = str(tmp / "p.parquet")
    with pytest.raises(jaxlm.InputError, match="cluster= is used only with cov_type='cluster'"):
        jaxlm.fit_table(path, formula="y ~ x0", cluster="firm", progress=False)
    with pytest.raises(jaxlm.InputError, match="cov_type='cluster' needs cluster="):
        jaxlm.fit_table(path, formula="y ~ x0", cov_type="cluster", progress=False)
    with pytest.raises(jaxlm.InputError, match="Did you mean 'firm'"):
        jaxlm.fit_table(path, formula="y ~ x0", cov_type="cluster", cluster="frim", progress=False)
    with pytest.raises(jaxlm.InputError, match="cluster must name one column, or two distinct ones"):
        jaxlm.fit_table(path, formula="y ~ x0", cov_type="cluster", cluster=["firm", "firm"], progress=False)
    df = shuffled.copy()
    df["single"] = 1
    df["holes"] = df.firm.astype("Int64")
    df.loc[df.index[40], "holes"] = pd.NA
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "h.parquet", row_group_size=37)
    df.to_csv(tmp_path / "h.csv", index=False)
    for name in ("h.parquet", "h.csv"):
        with pytest.raises(jaxlm.InputError, match="cluster column 'holes' must have a value on every row.*got a "
                                                   "missing value at data row 41"):
            jaxlm.fit_table(str(tmp_path / name), formula="y ~ x0", cov_type="cluster", cluster="holes",
                            progress=False)
    with pytest.raises(jaxlm.InputError, match=r"at least 2 distinct values.*got 1 cluster"):
        jaxlm.fit_table(str(tmp_path / "h.parquet"), formula="y ~ x0", cov_type="cluster", cluster="single",
                        progress=False)
    with pytest.raises(jaxlm.InputError, match="hac_maxlags must be smaller than the number of rows"):
        jaxlm.fit_table(path, formula="y ~ x0", cov_type="HAC", hac_maxlags=N, progress=False)


@pytest.mark.parametrize("kind", ["cluster", "HC1", "HC3", "HAC", "nonrobust"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_summary_f_is_statsmodels_fvalue_under_the_covariance(panel, kind, fit_intercept):
    # under a robust covariance statsmodels reports the Wald F of "all slopes zero" with that
    # covariance (F(k, G − 1) clustered); the classical F would be a plausible wrong number there
    X = panel[["x0", "x1", "x2"]].to_numpy()
    kw = {"groups": panel.firm.to_numpy()} if kind == "cluster" else {}
    params = {"hac_maxlags": 3} if kind == "HAC" else {}
    m = jaxlm.LinearRegression(cov_type=kind, fit_intercept=fit_intercept, **params).fit(X, panel.y, **kw)
    cov_kwds = {"groups": panel.firm.to_numpy()} if kind == "cluster" else {"maxlags": 3} if kind == "HAC" else {}
    design = sm.add_constant(X) if fit_intercept else X
    ref = sm.OLS(panel.y.to_numpy(), design).fit(**({} if kind == "nonrobust" else
                                                      {"cov_type": kind, "cov_kwds": cov_kwds, "use_t": True}))
    stats = m.summary().to_dict()["targets"][0]["stats"]
    np.testing.assert_allclose(m.results_.model_f_test(), [ref.fvalue, ref.f_pvalue], rtol=1e-8)
    np.testing.assert_allclose([stats["f_statistic"], stats["f_pvalue"]], [ref.fvalue, ref.f_pvalue], rtol=1e-8)


def test_cluster_sums_are_bounded(monkeypatch, files):
    from jaxlm.inference import cluster

    monkeypatch.setattr(cluster, "MAX_BYTES", 5_000)  # two-way: (45 + 5 + 225 clusters) × 4 params × 8 bytes = 8,800
    tmp, shuffled = files
    with pytest.raises(jaxlm.InputError, match=r"keeps one score sum per cluster.*clusters so far need"):
        jaxlm.fit_table(str(tmp / "p.parquet"), formula="y ~ x0 + x1 + x2", cov_type="cluster",
                        cluster=["firm", "year"], progress=False)
    jaxlm.fit_table(str(tmp / "p.parquet"), formula="y ~ x0 + x1 + x2", cov_type="cluster", cluster="year",
                    progress=False)  # 5 clusters: well within


def test_kept_blocks_count_the_text_keys_they_hold():
    """The first pass keeps blocks under KEEP_BYTES; text keys are object arrays whose nbytes counts
    only pointers (8 bytes), while each string costs ≥ 49 bytes: the bound counts the strings."""
    from jaxlm.models.stream_cov import held_bytes

    keys = np.array([f"firm-{i:06d}" for i in range(5000)], dtype=object)
    assert keys.nbytes == 8 * 5000
    assert held_bytes(keys) >= keys.nbytes + 5000 * sys.getsizeof("firm-000000")
    assert held_bytes(np.zeros((100, 3))) == 2400
