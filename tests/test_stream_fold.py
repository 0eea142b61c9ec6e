"""The stream driver's folded passes (``run.folded``): blocks cut into chunks, folded round-robin by
worker threads, merged in worker order.

References are independent of the driver: an exact integer count and sum, numpy's own
maximum, and the least-squares state of the same rows accumulated in one plain loop
(``jaxlm.reduce.memory``). A folded pass must give the same result whatever the thread timing
(the same chunks go to the same worker), stop its threads on errors, and fold a single chunk
without starting any thread.
"""
import functools
import threading

import numpy as np
import pytest

from jaxlm.core import exact
from jaxlm.core.passes import gradient_reduction, state_reduction
from jaxlm.core.reduction import Reduction
from jaxlm.reduce import memory, stream


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    n, d = 20_011, 4
    X = rng.normal(size=(n, d)) * [1.0, 10.0, 1e-3, 1e4] + [0.0, 5.0, 1e6, -3.0]
    Y = (X @ rng.normal(size=(d, 2))) + rng.normal(size=(n, 2))
    w = rng.uniform(0.5, 2.0, n)
    w[rng.choice(n, 40, replace=False)] = 0.0
    return X, Y, w


def _passes(arrays, rows):
    n = len(arrays[0])

    def passes(k):
        for i in range(0, n, rows):
            block = tuple(a[i:i + rows] for a in arrays)
            yield block, len(block[0])
        yield tuple(a[:0] for a in arrays), 0  # an empty block is skipped

    return passes


def _count_init():
    return (0, 0.0, threading.get_ident())


def _count_update(acc, X, Y, w, ids):
    return acc[0] + len(X), acc[1] + float(ids.sum()), acc[2]


def _count_merge(a, b):
    return a[0] + b[0], a[1] + b[1], None


def test_chunks_are_equal_views_that_cover_the_block():
    X = np.arange(30_000.0).reshape(10_000, 3)
    w = np.ones(10_000)
    parts = stream.chunks((X, w), chunk_bytes=32 * 1000)  # 1000 rows of 32 bytes
    assert [len(p[0]) for p in parts] == [1000] * 10
    assert all(np.shares_memory(p[0], X) for p in parts)
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), X)
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), w)
    assert [len(p[0]) for p in stream.chunks((X, w), chunk_bytes=32 * 3000)] == [2500] * 4  # equal sizes
    assert len(stream.chunks((X, w), chunk_bytes=32 * 8000)) == 1  # under 1.5 chunks: left whole


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_folded_pass_sees_every_row_once(data, workers):
    X, Y, w = data
    ids = np.arange(len(X), dtype=np.float64)
    run = stream.runner(_passes((X, Y, w, ids), 3001), chunk_bytes=20_000, workers=workers)
    r = Reduction(init=_count_init, update=_count_update, merge=_count_merge)
    n, total, _ = run.folded(r)
    assert n == len(X) and total == len(X) * (len(X) - 1) / 2
    assert run.passes == 1


def test_folded_state_equals_the_loop_and_does_not_depend_on_timing(data):
    X, Y, w = data
    reference = memory.arrays_runner(X, Y, w, rows=1000)(state_reduction(4, 2))
    run = stream.runner(_passes((X, Y, w), 4000), chunk_bytes=30_000, workers=2)
    first = run.folded(state_reduction(4, 2))
    again = run.folded(state_reduction(4, 2))
    for name in ("count", "wsum", "mean_x", "mean_y", "sxx", "sxy", "syy"):
        a, b = np.asarray(getattr(first, name)), np.asarray(getattr(reference, name))
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.max(np.abs(b)), err_msg=name)
        np.testing.assert_array_equal(a, np.asarray(getattr(again, name)), err_msg=name)  # same chunks, same workers


def test_folded_fit_is_the_exact_fit(data):
    """The whole exact fit (state, refinement gradient) through folded passes."""
    X, Y, w = data
    run = stream.runner(_passes((X, Y[:, :1], w), 2500), chunk_bytes=25_000, workers=2)
    sol = exact.fit_reduced(run.folded, 4, 1)
    ref = exact.fit_reduced(memory.arrays_runner(X, Y[:, :1], w), 4, 1)
    np.testing.assert_allclose(sol.coef, ref.coef, rtol=1e-13)
    np.testing.assert_allclose(sol.intercept, ref.intercept, rtol=1e-13)
    g = run.folded(gradient_reduction(np.asarray(ref.coef), np.zeros(1), np.zeros(4), np.zeros(1)))
    g_ref = memory.arrays_runner(X, Y[:, :1], w)(gradient_reduction(np.asarray(ref.coef), np.zeros(1), np.zeros(4),
                                                                     np.zeros(1)))
    for a, b in zip(g, g_ref):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-14 * np.max(np.abs(b)))


def _boom_update(limit, acc, X, Y, w):
    if acc + len(X) > limit:
        raise ZeroDivisionError("boom")
    return acc + len(X)


def test_folded_pass_raises_a_worker_error_and_stops_its_threads(data):
    X, Y, w = data
    before = {t.name for t in threading.enumerate()}
    r = Reduction(init=lambda: 0, update=functools.partial(_boom_update, 5000), merge=lambda a, b: a + b)
    run = stream.runner(_passes((X, Y, w), 1000), chunk_bytes=4_000, workers=2)
    with pytest.raises(ZeroDivisionError, match="boom"):
        run.folded(r)
    assert not any(t.name.startswith("jaxlm-fold") for t in threading.enumerate() if t.name not in before)


def test_folded_pass_raises_a_reader_error(data):
    X, Y, w = data

    def passes(k):
        yield (X[:3000], Y[:3000], w[:3000]), 3000
        raise OSError("disk gone")

    r = Reduction(init=lambda: 0, update=lambda acc, X, Y, w: acc + len(X), merge=lambda a, b: a + b)
    with pytest.raises(OSError, match="disk gone"):
        stream.runner(passes, chunk_bytes=4_000, workers=2).folded(r)
    assert not any(t.name.startswith("jaxlm-fold") for t in threading.enumerate())


def test_a_few_chunks_are_folded_without_threads(data):
    X, Y, w = data
    seen = set()

    def update(acc, X, Y, w):
        seen.add(threading.get_ident())
        return acc + len(X)

    r = Reduction(init=lambda: 0, update=update, merge=lambda a, b: a + b)
    n = 250 * stream._INLINE_CHUNKS  # one block, in chunks of 250 rows (56 bytes each)
    assert len(stream.chunks((X[:n], Y[:n], w[:n]), chunk_bytes=300 * 56)) == stream._INLINE_CHUNKS
    run = stream.runner(_passes((X[:n], Y[:n], w[:n]), n), chunk_bytes=300 * 56, workers=2, threaded=False)
    assert run.folded(r) == n
    assert seen == {threading.get_ident()}
    run = stream.runner(_passes((X, Y, w), 1000), chunk_bytes=300 * 56, workers=2, threaded=False)
    assert run.folded(r) == len(X)
    assert len(seen) == 3  # here, then two workers


def test_fold_workers_follow_the_blas_thread_variables(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    assert stream.fold_workers() == 1
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    assert stream.fold_workers() >= 1
