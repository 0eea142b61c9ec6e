"""Cluster-robust (CR1 one- and two-way, CR3) and Newey–West covariances as reductions.

References: statsmodels ``OLS``/``WLS`` ``fit(cov_type="cluster" | "cluster-crv3" | "HAC")`` on
the same rows (frequency weights: the rows repeated, cluster codes with them). Every covariance
must agree to 1e-8 relative (entrywise, relative to ``sqrt(C_ii C_jj)``). The same pass run over
tiny blocks, a stream and Dask partitions (clusters spread across them; HAC partitions in row
order) must equal the one-block result to 1e-10.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

sm = pytest.importorskip("statsmodels.api")

from jaxlm.core.errors import InputError  # noqa: E402
from jaxlm.core.exact import fit_exact  # noqa: E402
from jaxlm.inference import regression_results  # noqa: E402
from jaxlm.inference import cluster as cl  # noqa: E402
from jaxlm.inference import hac as hc  # noqa: E402
from jaxlm.reduce import devices, memory, stream  # noqa: E402

RTOL = 1e-8
SAME = 1e-10
WEIGHTS = ("none", "analytic", "frequency")


def rel_cov(a, b):
    """Max |a_ij − b_ij| / sqrt(b_ii b_jj)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    s = np.sqrt(np.diag(b))
    return float(np.max(np.abs(a - b) / np.outer(s, s)))


def make(n=1500, d=4, weights="none", seed=0, G1=37, G2=11):
    rng = np.random.default_rng(seed)
    g1 = rng.integers(0, G1, n)
    g2 = rng.integers(0, G2, n)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3, d) + rng.normal(scale=3, size=d)
    X[:, 0] += rng.normal(size=G1)[g1]  # a regressor correlated within clusters
    e = rng.normal(size=n) + rng.normal(size=G1)[g1] + 0.5 * rng.normal(size=G2)[g2]
    y = 1.5 + X @ rng.normal(size=d) + e
    if weights == "analytic":
        w = rng.uniform(0.2, 3.0, n)
    elif weights == "frequency":
        w = rng.integers(1, 4, n).astype(float)
    else:
        w = np.ones(n)
    return X, y, w, g1, g2


def fit(X, y, w, fit_intercept):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_exact(memory.blocks_of(X, y[:, None], w), X.shape[1], 1, fit_intercept=fit_intercept)


def reference(X, y, w, groups, weights, fit_intercept, **fit_kw):
    """statsmodels on the same rows (frequency weights: repeated, with their cluster codes)."""
    Xs = sm.add_constant(X, has_constant="add") if fit_intercept else X
    if weights == "frequency":
        k = w.astype(int)
        groups = np.repeat(groups, k, axis=0)
        fit_kw = dict(fit_kw)
        if "cov_kwds" in fit_kw and "groups" in fit_kw["cov_kwds"]:
            fit_kw["cov_kwds"] = dict(fit_kw["cov_kwds"], groups=groups)
        return sm.OLS(np.repeat(y, k), np.repeat(Xs, k, axis=0)).fit(**fit_kw)
    return sm.WLS(y, Xs, weights=w).fit(**fit_kw)


@pytest.fixture(params=["one chunk", "small chunks"])
def chunks(request, monkeypatch):
    """The score pass over the whole block at once, or in chunks of 97 rows."""
    if request.param == "small chunks":
        monkeypatch.setattr(cl, "CHUNK_ROWS", 97)
    return request.param


def kind_of(weights):
    return "analytic" if weights == "analytic" else "frequency"


# ------------------------------------------------------------------------------------ CR1 / CR3
@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_one_way_cr1_matches_statsmodels(weights, fit_intercept, chunks):
    X, y, w, g1, _ = make(weights=weights, seed=1)
    sol = fit(X, y, w, fit_intercept)
    got = cl.clustered(memory.arrays_runner(X, y[:, None], w, g1), sol, fit_intercept=fit_intercept,
                       weights_kind=kind_of(weights))
    ref = reference(X, y, w, g1, weights, fit_intercept, cov_type="cluster", cov_kwds={"groups": g1})
    assert rel_cov(got.cov[0], ref.cov_params()) <= RTOL
    assert got.n_clusters == (37,) and got.df == ref.df_resid_inference == 36


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_two_way_cr1_matches_statsmodels(weights, fit_intercept, chunks):
    X, y, w, g1, g2 = make(weights=weights, seed=2)
    sol = fit(X, y, w, fit_intercept)
    got = cl.clustered(memory.arrays_runner(X, y[:, None], w, g1, g2), sol, fit_intercept=fit_intercept,
                       weights_kind=kind_of(weights), n_dims=2)
    groups = np.column_stack([g1, g2])
    ref = reference(X, y, w, groups, weights, fit_intercept, cov_type="cluster", cov_kwds={"groups": groups})
    assert rel_cov(got.cov[0], ref.cov_params()) <= RTOL
    assert got.n_clusters[:2] == (37, 11) and got.df == ref.df_resid_inference == 10


@pytest.mark.parametrize("weights", ["none", "analytic"])
def test_two_way_g_min_is_fixest_convention(weights):
    """g_df="min": every CGM term scaled by min(G)/(min(G)−1), built here from statsmodels' own
    one-way covariances of the two groupings and their intersection."""
    from statsmodels.stats.sandwich_covariance import combine_indices

    X, y, w, g1, g2 = make(weights=weights, seed=3)
    sol = fit(X, y, w, True)
    got = cl.clustered(memory.arrays_runner(X, y[:, None], w, g1, g2), sol, fit_intercept=True,
                       weights_kind=kind_of(weights), n_dims=2, g_df="min")
    inter = combine_indices((g1, g2))[0]
    covs, counts = [], []
    for g in (g1, g2, inter):
        covs.append(reference(X, y, w, g, weights, True, cov_type="cluster", cov_kwds={"groups": g}).cov_params())
        counts.append(len(np.unique(g)))
    gmin = min(counts[:2])
    expected = sum(s * c * (gmin / (gmin - 1)) / (G / (G - 1)) for s, c, G in zip((1, 1, -1), covs, counts))
    assert rel_cov(got.cov[0], expected) <= RTOL


@pytest.mark.parametrize("weights", ["none", "analytic"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_cr3_jackknife_matches_statsmodels(weights, fit_intercept, chunks):
    X, y, w, g1, _ = make(n=800, weights=weights, seed=4, G1=19)
    sol = fit(X, y, w, fit_intercept)
    got = cl.clustered(memory.arrays_runner(X, y[:, None], w, g1, rows=97), sol, fit_intercept=fit_intercept,
                       weights_kind=kind_of(weights), kind="CR3")
    ref = reference(X, y, w, g1, weights, fit_intercept, cov_type="cluster-crv3", cov_kwds={"groups": g1})
    assert rel_cov(got.cov[0], ref.cov_params()) <= RTOL


def test_no_small_sample_correction():
    X, y, w, g1, _ = make(seed=5)
    sol = fit(X, y, w, True)
    got = cl.clustered(memory.arrays_runner(X, y[:, None], w, g1), sol, fit_intercept=True, small_sample=False)
    ref = sm.OLS(y, sm.add_constant(X)).fit(cov_type="cluster", cov_kwds={"groups": g1, "use_correction": False})
    assert rel_cov(got.cov[0], ref.cov_params()) <= RTOL


def test_multi_target_equals_per_target(chunks):
    X, y, w, g1, g2 = make(seed=6)
    Y = np.column_stack([y, 2 * y + X[:, 1] + np.random.default_rng(0).normal(size=len(y))])
    sol = fit_exact(memory.blocks_of(X, Y, w), X.shape[1], 2)
    both = cl.clustered(memory.arrays_runner(X, Y, w, g1, g2), sol, fit_intercept=True, n_dims=2)
    for k in range(2):
        one = cl.clustered(memory.arrays_runner(X, Y[:, k:k + 1], w, g1, g2), fit(X, Y[:, k], w, True),
                           fit_intercept=True, n_dims=2)
        assert rel_cov(both.cov[k], one.cov[0]) <= SAME


# ------------------------------------------------------------------------------------ drivers
def _pass(run, sol, n_dims=1, jackknife=False):
    scorer = hc.scorer_from_solution(sol, fit_intercept=True)
    return run(cl.cluster_reduction(scorer, n_dims, jackknife=jackknife))


@pytest.mark.parametrize("n_dims", [1, 2])
def test_blocks_stream_devices_and_dask_equal_one_block(n_dims):
    da = pytest.importorskip("dask.array")
    from jaxlm.reduce import dask as rdask

    X, y, w, g1, g2 = make(weights="analytic", seed=7)
    Y = y[:, None]
    sol = fit(X, y, w, True)
    groups = (g1, g2)[:n_dims]
    jack = n_dims == 1
    whole = _pass(memory.arrays_runner(X, Y, w, *groups, rows=len(y)), sol, n_dims, jack)

    def check(got):
        assert got.n_clusters == whole.n_clusters and got.rows == whole.rows
        for a, b in zip(got.meats, whole.meats):
            assert rel_cov(a[0], b[0]) <= SAME
        if jack:
            assert rel_cov(got.jackknife[0], whole.jackknife[0]) <= SAME

    check(_pass(memory.arrays_runner(X, Y, w, *groups, rows=7), sol, n_dims, jack))

    def passes(k):
        for i in range(0, len(y), 250):
            yield (X[i:i + 250], Y[i:i + 250], w[i:i + 250]) + tuple(g[i:i + 250] for g in groups), len(X[i:i + 250])

    check(_pass(stream.runner(passes), sol, n_dims, jack))
    check(_pass(devices.runner(X, Y, w, *groups), sol, n_dims, jack))  # host update per device share
    ch = 200  # 8 partitions: every cluster is spread over several of them
    run = rdask.runner(da.from_array(X, chunks=(ch, X.shape[1])), da.from_array(Y, chunks=(ch, 1)),
                       da.from_array(w, chunks=ch), *(da.from_array(g, chunks=ch) for g in groups))
    check(_pass(run, sol, n_dims, jack))


def test_cluster_values_of_any_dtype_and_zero_weight_rows():
    X, y, w, g1, _ = make(seed=8)
    sol = fit(X, y, w, True)
    ints = cl.clustered(memory.arrays_runner(X, y[:, None], w, g1), sol, fit_intercept=True)
    names = np.array([f"firm-{g:03d}" for g in g1], dtype=object)
    strs = cl.clustered(memory.arrays_runner(X, y[:, None], w, names, rows=100), sol, fit_intercept=True)
    assert rel_cov(strs.cov[0], ints.cov[0]) <= SAME
    # a zero-weight row (drivers pad with them) neither adds a cluster nor trips the missing-value check
    Xp, yp = np.vstack([X, X[:1]]), np.append(y, 1e6)
    wp, gp = np.append(w, 0.0), np.append(g1.astype(float), np.nan)
    padded = cl.clustered(memory.arrays_runner(Xp, yp[:, None], wp, gp), sol, fit_intercept=True)
    assert padded.n_clusters == ints.n_clusters
    assert rel_cov(padded.cov[0], ints.cov[0]) <= SAME


# ------------------------------------------------------------------------------------ errors
def test_missing_cluster_values_are_input_errors():
    X, y, w, g1, _ = make(n=200, seed=9)
    sol = fit(X, y, w, True)
    g = g1.astype(float)
    g[17] = np.nan
    with pytest.raises(InputError, match="missing") as e:
        cl.clustered(memory.arrays_runner(X, y[:, None], w, g), sol, fit_intercept=True)
    assert e.value.param == "groups"
    obj = g1.astype(object)
    obj[3] = None
    with pytest.raises(InputError, match="missing"):
        cl.clustered(memory.arrays_runner(X, y[:, None], w, obj), sol, fit_intercept=True)


def test_a_single_cluster_is_an_input_error():
    X, y, w, g1, _ = make(n=200, seed=10)
    sol = fit(X, y, w, True)
    with pytest.raises(InputError, match="at least 2 distinct") as e:
        cl.clustered(memory.arrays_runner(X, y[:, None], w, np.zeros(200)), sol, fit_intercept=True)
    assert e.value.param == "groups"
    with pytest.raises(InputError, match="at least 2 distinct"):
        cl.clustered(memory.arrays_runner(X, y[:, None], w, g1, np.ones(200)), sol, fit_intercept=True, n_dims=2)


def test_unsupported_cluster_shapes_are_input_errors():
    X, y, w, g1, g2 = make(n=200, seed=11)
    sol = fit(X, y, w, True)
    scorer = hc.scorer_from_solution(sol, fit_intercept=True)
    with pytest.raises(InputError, match="one or two"):
        cl.cluster_reduction(scorer, 3)
    with pytest.raises(InputError, match="one-way only"):
        cl.cluster_reduction(scorer, 2, jackknife=True)
    with pytest.raises(InputError, match="cov_type"):
        cl.clustered(memory.arrays_runner(X, y[:, None], w, g1), sol, fit_intercept=True, kind="CR2")
    with pytest.raises(InputError, match="g_df"):
        cl.clustered(memory.arrays_runner(X, y[:, None], w, g1), sol, fit_intercept=True, g_df="max")
    with pytest.raises(InputError, match="1-D"):
        cl.clustered(memory.arrays_runner(X, y[:, None], w, np.column_stack([g1, g2])), sol, fit_intercept=True)


# ------------------------------------------------------------------------------------ HAC
def make_ts(n=600, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) + 2.0
    X[:, 0] = np.cumsum(rng.normal(size=n)) * 0.1  # a persistent regressor
    e = np.convolve(rng.normal(size=n + 6), np.ones(7) / 3, "valid")[:n]  # MA(6) errors
    y = 0.5 + X @ rng.normal(size=d) + e
    return X, y, rng.uniform(0.3, 3.0, n)


@pytest.mark.parametrize("lags", [0, 1, 4, 17])
@pytest.mark.parametrize("weights", ["none", "analytic"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_hac_matches_statsmodels_on_any_blocks(lags, weights, fit_intercept):
    X, y, w = make_ts(seed=lags)
    if weights == "none":
        w = np.ones_like(y)
    sol = fit(X, y, w, fit_intercept)
    Xs = sm.add_constant(X) if fit_intercept else X
    ref = sm.WLS(y, Xs, weights=w).fit(cov_type="HAC", cov_kwds={"maxlags": lags}).cov_params()
    for rows in (1, 3, lags + 1, 64, len(y)):  # blocks shorter than the lag window included
        got = hc.hac(memory.arrays_runner(X, y[:, None], w, np.arange(len(y)), rows=rows), sol,
                     fit_intercept=fit_intercept, weights_kind=kind_of(weights), maxlags=lags, time=True)
        assert rel_cov(got[0], ref) <= RTOL, rows


def test_hac_uniform_kernel_and_automatic_lags():
    from statsmodels.stats.sandwich_covariance import cov_hac_simple, weights_uniform

    X, y, _ = make_ts(n=900, seed=3)
    w = np.ones_like(y)
    sol = fit(X, y, w, True)
    res = sm.OLS(y, sm.add_constant(X)).fit()
    auto = hc.hac(memory.arrays_runner(X, y[:, None], w, rows=50), sol, fit_intercept=True)
    assert hc.newey_west_lags(900) == 6  # floor(4 · 9^(2/9)) = floor(6.52)
    assert rel_cov(auto[0], cov_hac_simple(res, nlags=None, use_correction=False)) <= RTOL
    uni = hc.hac(memory.arrays_runner(X, y[:, None], w, rows=50), sol, fit_intercept=True, maxlags=3,
                 kernel="uniform")
    assert rel_cov(uni[0], cov_hac_simple(res, nlags=3, weights_func=weights_uniform, use_correction=False)) <= RTOL


def test_hac_lag_zero_is_hc0_of_the_results():
    X, y, w = make_ts(seed=4)
    sol = fit(X, y, w, True)
    b = memory.blocks_of(X, y[:, None], w)
    (res,) = regression_results(sol, fit_intercept=True, weights_kind="analytic", batches=b)
    got = hc.hac(memory.arrays_runner(X, y[:, None], w, rows=33), sol, fit_intercept=True, weights_kind="analytic",
                 maxlags=0)
    assert rel_cov(got[0], res.cov("HC0")) <= SAME


def test_hac_on_stream_devices_and_dask_keeps_row_order():
    da = pytest.importorskip("dask.array")
    from jaxlm.reduce import dask as rdask

    X, y, w = make_ts(seed=5)
    Y = y[:, None]
    t = np.arange(len(y)) * 7 + 1900
    sol = fit(X, y, w, True)
    r = hc.hac_reduction(hc.scorer_from_solution(sol, fit_intercept=True), 9, time=True)
    whole = memory.arrays_runner(X, Y, w, t, rows=len(y))(r)

    def passes(k):
        for i in range(0, len(y), 13):
            yield (X[i:i + 13], Y[i:i + 13], w[i:i + 13], t[i:i + 13]), len(X[i:i + 13])

    ch = 37  # 17 partitions (9 lags straddle every seam); the Dask tree merges neighbours in order
    run = rdask.runner(da.from_array(X, chunks=(ch, 3)), da.from_array(Y, chunks=(ch, 1)), da.from_array(w, chunks=ch),
                       da.from_array(t, chunks=ch))
    for got in (stream.runner(passes)(r), run(r), devices.runner(X, Y, w, t)(r)):
        assert got.count == whole.count and rel_cov(got.meat[0], whole.meat[0]) <= SAME


def test_hac_bad_inputs_are_input_errors():
    X, y, w = make_ts(n=40, seed=6)
    sol = fit(X, y, w, True)
    run = memory.arrays_runner(X, y[:, None], w, rows=8)
    with pytest.raises(InputError, match="smaller than the number of rows") as e:
        hc.hac(run, sol, fit_intercept=True, weights_kind="analytic", maxlags=40)
    assert e.value.param == "maxlags"
    for bad in (-1, 2.5, True, "3"):
        with pytest.raises(InputError, match="integer >= 0"):
            hc.hac(run, sol, fit_intercept=True, weights_kind="analytic", maxlags=bad)
    with pytest.raises(InputError, match="frequency weights"):
        hc.hac(run, sol, fit_intercept=True, weights_kind="frequency", maxlags=2)
    t = np.arange(40.0)
    t[[20, 21]] = t[[21, 20]]
    with pytest.raises(InputError, match="strictly increasing") as e:  # inside a block
        hc.hac(memory.arrays_runner(X, y[:, None], w, t, rows=40), sol, fit_intercept=True,
               weights_kind="analytic", maxlags=2, time=True)
    assert e.value.param == "time"
    with pytest.raises(InputError, match="block boundary"):  # across blocks
        hc.hac(memory.arrays_runner(X, y[:, None], w, t, rows=21), sol, fit_intercept=True,
               weights_kind="analytic", maxlags=2, time=True)
    with pytest.raises(InputError, match="kernel"):
        hc.hac(run, sol, fit_intercept=True, weights_kind="analytic", maxlags=2, kernel="parzen")
