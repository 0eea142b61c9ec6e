"""``jaxlm.core.blas.dot``, the products of code that runs in pass threads: ``a @ b`` exactly (integer
data small enough for every sum to be exact, against object arithmetic) for every layout the passes
hand it, and routed to ``np.dot`` (which releases the GIL for small results, where NumPy's ``matmul``
keeps it) only when both operands are contiguous (``np.dot`` would first copy a strided one, as the
streamed driver's chunks are)."""
import numpy as np
import pytest

from jaxlm.core import blas


def _operands(layout):
    rng = np.random.default_rng(7)
    big = rng.integers(-2**20, 2**20, (900, 12)).astype(float)
    thin = rng.integers(-2**20, 2**20, (900, 3)).astype(float)
    if layout == "C":
        return np.ascontiguousarray(big[:, :5]), thin
    if layout == "F":
        return np.asfortranarray(big[:, :5]), np.asfortranarray(thin)
    if layout == "rows of a column-major block":  # as the streamed driver's chunks
        block = np.asfortranarray(rng.integers(-2**20, 2**20, (2000, 5)).astype(float))
        return block[300:1200], thin
    return big[:, 2:7], thin[:, [0, 2]]  # columns of a wider row-major block


LAYOUTS = ["C", "F", "rows of a column-major block", "columns of a row-major block"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_dot_equals_exact_products(layout):
    X, B = _operands(layout)
    exact = lambda a, b: (a.astype(object) @ b.astype(object)).astype(float)  # noqa: E731
    assert np.array_equal(blas.dot(X.T, X), exact(X.T, X))
    assert np.array_equal(blas.dot(X.T, B), exact(X.T, B))
    assert np.array_equal(blas.dot(B[:, 0], X), exact(B[:, 0], X))
    v = np.arange(1.0, X.shape[1] + 1)
    out = np.empty(X.shape[0])
    assert blas.dot(X, v, out=out) is out and np.array_equal(out, exact(X, v))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_dot_takes_np_dot_only_for_contiguous_operands(layout, monkeypatch):
    X, B = _operands(layout)
    calls = []
    real = np.dot
    monkeypatch.setattr(np, "dot", lambda *a, **k: calls.append(1) or real(*a, **k))
    blas.dot(X.T, B)
    contiguous = all(a.flags.c_contiguous or a.flags.f_contiguous for a in (X, B))
    assert bool(calls) == contiguous
    assert contiguous == (layout in ("C", "F"))
