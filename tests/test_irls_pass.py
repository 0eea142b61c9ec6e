"""The IRLS pass (jaxlm.core.glm_passes) chunk by chunk, in threads, and its fast terms.

References are independent: the working weights, residuals, deviance and Pearson χ² written
out from their textbook formulas (Binomial: W = f v μ(1 − μ), r = (y − μ)/(μ(1 − μ)); Poisson:
W = f v μ, r = (y − μ)/μ), the weighted Gram about the weighted mean formed by NumPy on all rows
at once, and statsmodels' GLM for whole fits. The pass must give the same numbers with any
chunk size and any number of threads (chunks are summed in order, so those agree bitwise).
"""
import threading
import warnings

import numpy as np
import pytest
from scipy import special

from jaxlm.core import blas
from jaxlm.core import glm_passes as gp
from jaxlm.core import links
from jaxlm.core.families import Binomial, Poisson, get_family, working_terms
from jaxlm.core.glm_passes import Point, pass_reduction
from jaxlm.core.irls import fit_irls
from jaxlm.reduce import memory


class _Lib:
    def __init__(self, threads):
        self.num_threads = threads


class _FakeBlas:
    """Stands in for threadpoolctl's controller: reports ``threads`` BLAS threads and records
    the limits set and restored (the real BLAS is left alone)."""

    def __init__(self, threads):
        self.lib_controllers = [_Lib(threads)]
        self.events = []

    def limit(self, limits):
        self.events.append(("limit", limits))
        blas = self

        class _Limiter:
            def restore_original_limits(self):
                blas.events.append(("restore", None))

        return _Limiter()


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 256 rows (the floor of chunk_rows), so that a few thousand rows make many chunks."""
    monkeypatch.setattr(gp, "CHUNK_BYTES", 1)


def _threads(monkeypatch, n):
    """Pretend the process has ``n`` cores and a BLAS with ``n`` threads; return the fake BLAS."""
    fake = _FakeBlas(n)
    monkeypatch.setattr(blas, "_blas", lambda: fake)
    monkeypatch.setattr(blas.os, "sched_getaffinity", lambda pid: set(range(n)), raising=False)
    return fake


def _data(n=3000, d=4, seed=0, family="binomial"):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * [1.0, 2.0, 0.5, 1.5][:d] + [0.0, 3.0, -1.0, 0.5][:d]
    eta = 0.3 + (X - X.mean(axis=0)) @ np.linspace(-0.4, 0.5, d)
    if family == "binomial":
        y = (rng.uniform(size=n) < special.expit(eta)).astype(float)
    else:
        y = rng.poisson(np.exp(0.2 * eta)).astype(float)
    fw = rng.integers(1, 4, n).astype(float)
    fw[::17] = 0.0  # rows a driver would pad with: ignored
    return X, y, fw, rng.uniform(0.5, 2.0, n), rng.normal(size=n) * 0.2


def _reference(family, X, y, fw, vw, off, coef, intercept):
    """(deviance, pearson, Σ W, x̄_W, Sxx, Sxy) from the textbook formulas, on rows with fw > 0."""
    keep = fw > 0
    X, y, iw, off = X[keep], y[keep], (fw * vw)[keep], off[keep]
    eta = X @ coef + intercept + off
    if family == "binomial":
        mu = special.expit(eta)
        W, r = iw * mu * (1 - mu), (y - mu) / (mu * (1 - mu))
        dev = -2.0 * iw @ np.where(y == 1, np.log(mu), np.log1p(-mu))
        pearson = iw @ ((y - mu) ** 2 / (mu * (1 - mu)))
    else:
        mu = np.exp(eta)
        W, r = iw * mu, (y - mu) / mu
        dev = 2.0 * iw @ (special.xlogy(y, y / mu) - (y - mu))
        pearson = iw @ ((y - mu) ** 2 / mu)
    m = W @ X / W.sum()
    Xc = X - m
    rbar = W @ r / W.sum()
    return dev, pearson, W.sum(), m, (Xc * W[:, None]).T @ Xc, (Xc * W[:, None]).T @ (r - rbar)


def _pass(family, link, X, y, fw, vw, off, point, rows=None):
    run = memory.arrays_runner(X, y[:, None], fw, off, vw, rows=rows)
    return run(pass_reduction(get_family(family), links.get_link(link), point, X.shape[1]))


@pytest.mark.parametrize("family,link", [("binomial", "logit"), ("poisson", "log"), ("binomial", "probit")])
@pytest.mark.parametrize("workers", [1, 3])
def test_pass_matches_the_formulas_in_chunks_and_threads(small_chunks, monkeypatch, family, link, workers):
    fake = _threads(monkeypatch, workers)
    X, y, fw, vw, off = _data(family="binomial" if family == "binomial" else "poisson")
    coef, intercept = np.array([0.2, -0.1, 0.3, 0.05]), 0.4
    res = _pass(family, link, X, y, fw, vw, off, Point(coef, intercept))
    if link == "probit":  # no fast terms: the general formulas, chunk by chunk, against one block
        one = _pass(family, link, X, y, fw, vw, off, Point(coef, intercept), rows=len(y))
        np.testing.assert_allclose(res.state.sxx, one.state.sxx, rtol=1e-12)
        np.testing.assert_allclose(res.deviance, one.deviance, rtol=1e-13)
        return
    dev, pearson, wsum, mean, sxx, sxy = _reference(family, X, y, fw, vw, off, coef, intercept)
    np.testing.assert_allclose(res.deviance, dev, rtol=1e-12)
    np.testing.assert_allclose(res.pearson, pearson, rtol=1e-12)
    np.testing.assert_allclose(res.state.wsum, wsum, rtol=1e-13)
    np.testing.assert_allclose(res.state.mean_x, mean, rtol=1e-12)
    np.testing.assert_allclose(res.state.sxx, sxx, rtol=1e-11)
    np.testing.assert_allclose(res.state.sxy[:, 0], sxy, rtol=1e-10, atol=1e-10 * np.abs(sxy).max())
    assert res.invalid == 0
    # the pass (one block) shared its chunks only when it had threads, with BLAS single-threaded
    assert fake.events == ([("limit", 1), ("restore", None)] if workers > 1 else [])


def test_threads_give_the_same_sums_bitwise(small_chunks, monkeypatch):
    X, y, fw, vw, off = _data(n=5000)
    point = Point(np.array([0.2, -0.1, 0.3, 0.05]), 0.4, watch=np.full(4, 0.01), watch0=0.1, extremes=True)
    out = []
    for workers in (1, 2, 4):
        _threads(monkeypatch, workers)
        out.append(_pass("binomial", "logit", X, y, fw, vw, off, point))
    for other in out[1:]:
        assert other.deviance == out[0].deviance and other.pearson == out[0].pearson
        assert other.max_deta == out[0].max_deta and other.extreme == out[0].extreme
        for a, b in zip(other.state, out[0].state):
            np.testing.assert_array_equal(a, b)
    assert out[0].max_deta > 0


def test_fast_terms_equal_the_general_formulas():
    rng = np.random.default_rng(3)
    n = 2000
    eta = rng.normal(size=n) * 4
    iw = rng.uniform(0.5, 3.0, n)
    for family, fast, y in [(Binomial(), links.logit_terms, (rng.uniform(size=n) < 0.4).astype(float)),
                            (Poisson(), links.poisson_log_terms, rng.poisson(3.0, n).astype(float))]:
        link = family.link()
        for w in (iw, None):
            ww, r, mu, tmp = (np.empty(n) for _ in range(4))
            got = fast(y, y == 1.0, eta.copy(), w, ww, r, mu, tmp)
            r0, ww0, dev0, pearson0, mu0 = working_terms(family, link, y, eta, np.ones(n) if w is None else w)
            np.testing.assert_allclose(got, (dev0, pearson0), rtol=1e-13)
            np.testing.assert_allclose(ww, ww0, rtol=1e-14)
            np.testing.assert_allclose(r, r0, rtol=1e-13)
            np.testing.assert_allclose(mu, mu0, rtol=1e-14)


def test_fast_terms_leave_extreme_chunks_to_the_general_formulas():
    n = 10
    buf = [np.empty(n) for _ in range(4)]
    y = np.r_[np.ones(5), np.zeros(5)]
    eta = np.linspace(-1, 1, n)
    assert links.logit_terms(y, y == 1, eta, None, *buf) is not None
    eta[3] = 40.0  # μ = 1 − 4e-18 rounds to 1: clipped, only the general formulas know how
    assert links.logit_terms(y, y == 1, eta, None, *buf) is None
    eta[3] = np.nan
    assert links.logit_terms(y, y == 1, eta, None, *buf) is None
    counts = np.arange(n, dtype=float)
    assert links.poisson_log_terms(counts, None, np.zeros(n), None, *buf) is not None
    with np.errstate(over="ignore", under="ignore"):
        assert links.poisson_log_terms(counts, None, np.r_[np.zeros(9), 800.0], None, *buf) is None   # μ = inf
        assert links.poisson_log_terms(counts, None, np.r_[-800.0, np.zeros(9)], None, *buf) is None  # μ = 0


def test_invalid_rows_are_counted_in_every_chunk_and_thread(small_chunks, monkeypatch):
    _threads(monkeypatch, 2)
    rng = np.random.default_rng(5)
    n = 3000
    X = rng.normal(size=(n, 2))
    y = rng.poisson(2.0, n).astype(float)
    coef = np.array([1.0, 0.0])  # identity link: μ = 0.5 + x0 < 0 on some rows of every chunk
    res = _pass("poisson", "identity", X, y, np.ones(n), np.ones(n), np.zeros(n), Point(coef, 0.5))
    assert res.deviance == np.inf and res.invalid == int(np.count_nonzero(0.5 + X[:, 0] <= 0))


def test_blas_limit_is_held_while_any_pass_runs(monkeypatch):
    fake = _threads(monkeypatch, 2)
    entered, leave = threading.Event(), threading.Event()

    def hold():
        with gp.single_threaded_blas():
            entered.set()
            leave.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    entered.wait(10)
    with gp.single_threaded_blas():
        pass
    assert fake.events == [("limit", 1)]  # the inner exit did not restore while the other still runs
    leave.set()
    t.join()
    assert fake.events == [("limit", 1), ("restore", None)]


def test_real_blas_threads_are_restored_after_a_pass(monkeypatch):
    X, y, fw, vw, off = _data(n=230_000, d=3)  # over two chunks of the real size
    before = [c.num_threads for c in blas._blas().lib_controllers]
    inside = []
    real = blas.single_threaded_blas

    def spy():
        inside.append([c.num_threads for c in blas._blas().lib_controllers])
        return real()

    monkeypatch.setattr(blas, "single_threaded_blas", spy)
    _pass("binomial", "logit", X, y, fw, vw, off, Point(np.zeros(3), 0.0))
    assert [c.num_threads for c in blas._blas().lib_controllers] == before
    assert len(inside) == (1 if min([len(blas.os.sched_getaffinity(0))] + before) > 1 else 0)


@pytest.mark.parametrize("family", ["binomial", "poisson"])
def test_threaded_fit_matches_statsmodels(small_chunks, monkeypatch, family):
    sm = pytest.importorskip("statsmodels.api")
    _threads(monkeypatch, 2)
    X, y, fw, vw, off = _data(n=4000, family=family)
    run = memory.arrays_runner(X, y[:, None], fw, off, vw)
    sol = fit_irls(run, X.shape[1], family=family)
    fam = sm.families.Binomial() if family == "binomial" else sm.families.Poisson()
    k = fw > 0  # (statsmodels does not take weight-0 rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = sm.GLM(y[k], sm.add_constant(X[k]), family=fam, freq_weights=fw[k], var_weights=vw[k], offset=off[k])
        ref = model.fit(tol=1e-14, maxiter=300)
        ref = model.fit(start_params=ref.params, method="newton", tol=1e-14, maxiter=100)
    params = np.r_[sol.intercept, sol.coef]
    np.testing.assert_allclose(params, ref.params, rtol=1e-8, atol=1e-8 * np.abs(ref.params).max())
    np.testing.assert_allclose(sol.deviance, ref.deviance, rtol=1e-10)
    assert sol.converged
