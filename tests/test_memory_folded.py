"""The in-memory driver's ``run.folded`` (pieces shared over threads, merged in row order) and the
single-threaded BLAS held over a whole in-memory fit of large data (jaxlm.core.blas.held_for)."""
from __future__ import annotations

import numpy as np
import pytest

from jaxlm import LinearRegression
from jaxlm.core import blas, exact
from jaxlm.reduce import memory
from test_reduce import column_max


@pytest.fixture(scope="module")
def big():
    rng = np.random.default_rng(11)
    n, d = 450_000, 9  # n·(d + 1) above blas.HOLD_SIZE
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, d) + 1e4 * rng.normal(size=d)  # offsets: refined
    y = X @ rng.normal(size=d) + 3.0 + rng.normal(size=n) * (1 + np.abs(X[:, 0] - X[:, 0].mean()))
    return X, y


def test_folded_pieces_cover_every_row_once(monkeypatch):
    monkeypatch.setattr(memory, "FOLD_BYTES", 8 * 5 * 700)  # pieces of 700 rows
    monkeypatch.setattr(blas, "pass_threads", lambda: 2)
    rng = np.random.default_rng(3)
    X, Y, w = rng.normal(size=(10_007, 5)), rng.normal(size=(10_007, 1)), rng.uniform(0.5, 2.0, 10_007)
    w[::97] = 0.0
    X[w == 0] += 1e9  # zero-weight rows must not win
    run = memory.arrays_runner(X, Y, w)
    np.testing.assert_array_equal(run.folded(column_max(5)), X[w > 0].max(axis=0))
    seen = []
    count = column_max(5)._replace(update=lambda acc, X, Y, w: (seen.append(len(X)), acc)[1])
    run.folded(count)
    assert sorted(seen) == sorted([700] * (10_007 // 700) + [10_007 % 700])


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_folded_fit_is_the_same_for_any_number_of_threads(monkeypatch, big, threads):
    """Pieces of a fixed size merged in row order: the same bits whatever the threads."""
    X, y = big
    Y, w = y[:, None], np.ones(len(y))
    monkeypatch.setattr(memory, "FOLD_BYTES", 1 << 20)  # 32 pieces
    monkeypatch.setattr(blas, "pass_threads", lambda: 1)
    ref = exact.fit_reduced(memory.arrays_runner(X, Y, w).folded, X.shape[1], 1)
    monkeypatch.setattr(blas, "pass_threads", lambda: threads)
    sol = exact.fit_reduced(memory.arrays_runner(X, Y, w).folded, X.shape[1], 1)
    np.testing.assert_array_equal(sol.coef, ref.coef)
    np.testing.assert_array_equal(sol.intercept, ref.intercept)
    assert sol.refinement_steps == ref.refinement_steps >= 1
    # the serial loop over 32 MiB blocks sums in another order: the same exact solution
    serial = exact.fit_reduced(memory.arrays_runner(X, Y, w), X.shape[1], 1)
    np.testing.assert_allclose(sol.coef, serial.coef, rtol=4e-16, atol=0)
    np.testing.assert_allclose(sol.intercept, serial.intercept, rtol=4e-16, atol=0)


def test_large_fit_holds_blas_single_threaded_and_restores_it(monkeypatch, big):
    """One hold over the whole fit (state pass, factor, HC pass), the BLAS threads restored after;
    the HC1 errors are statsmodels'."""
    sm = pytest.importorskip("statsmodels.api")
    X, y = big
    before = [c.num_threads for c in blas._blas().lib_controllers]
    entered = []
    real = blas.single_threaded_blas

    def spy():
        entered.append([c.num_threads for c in blas._blas().lib_controllers])
        return real()

    monkeypatch.setattr(blas, "single_threaded_blas", spy)
    m = LinearRegression(cov_type="HC1").fit(X, y)
    assert [c.num_threads for c in blas._blas().lib_controllers] == before
    cores = min([len(blas.os.sched_getaffinity(0))] + before)
    if cores > 1:  # held_for's hold first; the passes' own holds nest in it: BLAS is at one thread already
        assert entered[0] == before and len(entered) >= 2
        assert all(t == [1] * len(before) for t in entered[1:])
    else:
        assert entered == []
    ref = sm.OLS(y, sm.add_constant(X)).fit(cov_type="HC1")
    np.testing.assert_allclose(m.results_.std_errors, ref.bse, rtol=1e-9)
    np.testing.assert_allclose(np.r_[m.intercept_, m.coef_], ref.params, rtol=1e-9)


def test_small_fit_does_not_look_for_blas(monkeypatch):
    """Below HOLD_SIZE no hold: the threadpoolctl scan (milliseconds) is not paid for small data."""
    calls = []
    real = blas._blas
    monkeypatch.setattr(blas, "_blas", lambda: calls.append(1) or real())  # every BLAS query goes through it
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    LinearRegression().fit(X, X @ [1.0, 2.0, 3.0] + 1.0)
    assert calls == []


def test_folded_holds_a_window_of_pieces_not_all(monkeypatch):
    """A sparse X is densified piece by piece and the per-piece results merged as they come: the
    pass's peak stays a few pieces, not the dense X (32 MB here; before the window, all of it)."""
    import tracemalloc

    import scipy.sparse as sp

    monkeypatch.setattr(memory, "FOLD_BYTES", 1 << 20)
    monkeypatch.setattr(blas, "pass_threads", lambda: 2)
    X = sp.random(40_000, 100, density=0.01, format="csr", random_state=0)
    Y, w = np.ones((40_000, 1)), np.ones(40_000)
    run = memory.arrays_runner(X, Y, w)
    tracemalloc.start()
    try:
        got = run.folded(column_max(100))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(got, X.toarray().max(axis=0))
    # two threads' windows of 4 dense pieces of 1 MiB and SciPy's slicing copies: 16.3 MiB measured; with
    # every piece made before any was reduced, 32.8 MiB (the dense X: 30.5 MiB)
    assert peak < 24 * (1 << 20)
