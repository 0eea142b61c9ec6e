"""The exact fit on Dask equals the in-memory fit (threaded scheduler and a LocalCluster)."""
import threading
import time

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")

from jaxlm import InputError, LinearRegression  # noqa: E402
from jaxlm.datasets import load_nist, make_linear  # noqa: E402


def rel(a, b):
    return np.max(np.abs(np.asarray(a) - np.asarray(b)) / np.abs(b))


@pytest.mark.parametrize("solver", ["auto", "qr"])
def test_dask_array_equals_in_memory(solver):
    X, Y, _, _ = make_linear(50_000, 8, 2, seed=1)
    w = np.random.default_rng(1).integers(1, 4, 50_000).astype(float)
    ref = LinearRegression(solver=solver).fit(X, Y, sample_weight=w)
    got = LinearRegression(solver=solver).fit(da.from_array(X, chunks=(3_000, 4)), da.from_array(Y, chunks=(5_000, 2)),
                                              sample_weight=da.from_array(w, chunks=7_000))
    assert rel(got.coef_, ref.coef_) < 1e-10 and rel(got.intercept_, ref.intercept_) < 1e-10
    assert got.solver_ == ref.solver_


def test_dask_statistics_equal_in_memory_including_hc():
    X, Y, _, _ = make_linear(20_000, 5, 1, seed=7)
    w = np.random.default_rng(7).uniform(0.5, 2.0, 20_000)
    for kind in ("frequency", "analytic"):
        ref = LinearRegression(robust=True, weights_kind=kind).fit(X, Y[:, 0], sample_weight=w).results_
        got = LinearRegression(robust=True, weights_kind=kind).fit(
            da.from_array(X, chunks=(3_000, 5)), da.from_array(Y[:, 0], chunks=3_000),
            sample_weight=da.from_array(w, chunks=3_000)).results_
        np.testing.assert_allclose(got.std_errors, ref.std_errors, rtol=1e-10)
        for cov in ("HC0", "HC1", "HC2", "HC3"):
            np.testing.assert_allclose(got.cov(cov), ref.cov(cov), rtol=1e-10, atol=1e-10 * np.abs(ref.cov(cov)).max())
        assert abs(got.log_likelihood - ref.log_likelihood) < 1e-10 * abs(ref.log_likelihood)


def test_dask_dataframe_names_and_refinement_on_nist():
    """Wampler4 split into 5 partitions: the refinement passes run as tree reductions too."""
    import pandas as pd
    ds = load_nist("Wampler4")
    df = pd.DataFrame(ds.X, columns=list(ds.columns))
    got = LinearRegression().fit(dd.from_pandas(df, npartitions=5), dd.from_pandas(pd.Series(ds.y), npartitions=5))
    assert list(got.feature_names_in_) == list(ds.columns)
    cert = [p["estimate"] for p in ds.certified["parameters"]]
    assert rel(np.r_[got.intercept_, got.coef_], cert) < 1e-10
    assert got.solution_.refinement_steps >= 1


@pytest.mark.parametrize("w,match", [(np.r_[1.0, -1.0, np.ones(8)], "must be >= 0"),
                                     (np.r_[np.nan, np.ones(9)], "must be finite"),
                                     (np.zeros(10), "at least one positive"),
                                     (np.ones(9), "one entry per row")])
def test_bad_weights_on_dask(w, match):
    with pytest.raises(InputError, match=match):
        LinearRegression().fit(da.ones((10, 2), chunks=5), da.arange(10.0, chunks=5),
                               sample_weight=da.from_array(w, chunks=5))


def test_gradient_solver_refused_on_dask():
    X = da.ones((10, 2), chunks=5)
    with pytest.raises(InputError, match="dask input needs an exact solver"):
        LinearRegression(solver="gd").fit(X, da.ones(10, chunks=5))


@pytest.mark.slow
def test_local_cluster_with_a_worker_killed_mid_fit():
    distributed = pytest.importorskip("distributed")
    X, Y, _, _ = make_linear(400_000, 10, 1, seed=2)
    ref = LinearRegression().fit(X, Y[:, 0])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        Xd = da.from_array(X, chunks=(25_000, 10))
        yd = da.from_array(Y[:, 0], chunks=25_000)
        Xd, yd = client.persist([Xd, yd])
        distributed.wait([Xd, yd])
        victim = list(cluster.workers.values())[0]
        killed_at = []

        def kill():
            time.sleep(0.05)
            try:
                client.run(lambda: __import__("os")._exit(1), workers=[victim.worker_address])
            except Exception:  # the worker dies before it can answer
                pass
            killed_at.append(time.perf_counter())

        killer = threading.Thread(target=kill)
        killer.start()
        got, error = None, None
        try:
            got = LinearRegression().fit(Xd, yd)
        except Exception as exc:  # noqa: BLE001 - Dask's own clean failure is acceptable
            error = exc
        finished_at = time.perf_counter()
        killer.join()
    assert killed_at and killed_at[0] < finished_at, "the worker was not killed during the fit"
    if error is not None:  # completes or fails cleanly: a Dask error naming the lost worker, never a wrong answer
        assert isinstance(error, (distributed.scheduler.KilledWorker, distributed.comm.core.CommClosedError, OSError))
        return
    assert rel(got.coef_, ref.coef_) < 1e-10
    assert abs(got.intercept_ - ref.intercept_) < 1e-10 * abs(ref.intercept_)
