"""The mergeable least-squares state: ``init``, ``update(state, X, Y, w)``, ``merge(a, b)``.

Every exact fit is the same reduction: batches of rows → per-batch state → merge →
solve. Two forms of the state are provided, with the same three functions:

``GramState`` (fast)
    weight sum and weighted means of x (d,) and y (m,), and the centred co-moments
    ``Sxx = Σ w (x−x̄)(x−x̄)ᵀ``, ``Sxy``, ``Syy``. One GEMM per batch. Merged with the
    parallel-axis update of Chan, Golub & LeVeque::

        δ = mean_b − mean_a,  S = S_a + S_b + (w_a w_b / (w_a + w_b)) δ δᵀ

``QRState`` (accurate, TSQR)
    the same weight sum and means, and an upper-triangular R (p, p), p = d + m, with
    ``Rᵀ R = [[Sxx, Sxy], [Syx, Syy]]``, kept as a triangular factor so that the
    condition number squared never enters. Merged by one small QR of the stacked
    factors plus the mean-shift row ``sqrt(w_a w_b / (w_a + w_b)) δ``.

Both merges are associative up to rounding, so Dask can tree-reduce them and a device
mesh can combine them. All functions are pure. They work on JAX arrays (jitted; on a GPU
the batch is centred on the device) and on NumPy arrays (the host path, measured faster
on CPUs because BLAS's ``syrk`` forms ``XᵀX`` at half the flops of XLA's GEMM; there an
unweighted batch is not copied: its Gram is formed about the origin and centred
algebraically, unless that would cancel more than 4 digits of a column's spread
(|mean| ≳ 100·sd, e.g. x ≈ 1e9 + O(1)), in which case the batch is centred explicitly).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .precision import MATMUL_PRECISION


class GramState(NamedTuple):
    count: jnp.ndarray   # rows seen (with nonzero weight)
    wsum: jnp.ndarray    # Σ w
    wsum2: jnp.ndarray   # Σ w²
    mean_x: jnp.ndarray  # (d,)
    mean_y: jnp.ndarray  # (m,)
    sxx: jnp.ndarray     # (d, d)
    sxy: jnp.ndarray     # (d, m)
    syy: jnp.ndarray     # (m, m)


class QRState(NamedTuple):
    count: jnp.ndarray
    wsum: jnp.ndarray
    wsum2: jnp.ndarray
    mean_x: jnp.ndarray
    mean_y: jnp.ndarray
    r: jnp.ndarray       # (d + m, d + m) upper triangular; Rᵀ R = centred co-moments of [x, y]


def init(d: int, m: int, *, dtype=np.float64, kind: str = "gram", xp=np):
    """An empty state for d features and m targets (NumPy arrays unless ``xp=jax.numpy``)."""
    z = xp.zeros((), dtype)
    if kind == "qr":
        return QRState(z, z, z, xp.zeros(d, dtype), xp.zeros(m, dtype), xp.zeros((d + m, d + m), dtype))
    return GramState(z, z, z, xp.zeros(d, dtype), xp.zeros(m, dtype), xp.zeros((d, d), dtype),
                     xp.zeros((d, m), dtype), xp.zeros((m, m), dtype))


def _xp(*arrays):
    return np if all(isinstance(a, (np.ndarray, np.generic, float, int)) for a in arrays) else jnp


def _dot(a, b):
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a @ b
    return jnp.matmul(a, b, precision=MATMUL_PRECISION)


def _batch_moments(X, Y, w, xp):
    wsum = xp.sum(w)
    safe = xp.where(wsum > 0, wsum, 1.0)
    mx = _dot(w, X) / safe
    my = _dot(w, Y) / safe
    return wsum, mx, my


def _gram_centred(X, Y, w, xp):
    wsum, mx, my = _batch_moments(X, Y, w, xp)
    Xc, Yc = X - mx, Y - my
    Xw, Yw = Xc * w[:, None], Yc * w[:, None]
    return GramState(xp.sum(w > 0).astype(X.dtype), wsum, xp.sum(w * w), mx, my,
                     _dot(Xw.T, Xc), _dot(Xw.T, Yc), _dot(Yw.T, Yc))


_gram_jit = jax.jit(lambda X, Y, w: _gram_centred(X, Y, w, jnp))

#: A column whose about-origin sum of squares exceeds its centred one by this factor loses
#: more than 4 digits to algebraic centring; the host path then centres explicitly.
CANCELLATION_LIMIT = 1e4


def _gram_host(X, Y, w):
    if not np.all(w == 1.0):
        return _gram_centred(X, Y, w, np)
    n, m = Y.shape
    wsum = float(n)
    # one pass over X for both the column sums and Xᵀ Y: Xᵀ [1 | Y]
    ones_y = np.empty((n, m + 1), dtype=X.dtype)
    ones_y[:, 0] = 1.0
    ones_y[:, 1:] = Y
    xt1y = X.T @ ones_y
    sxx_u, syy_u = X.T @ X, Y.T @ Y
    mx = xt1y[:, 0] / max(n, 1)
    my = Y.sum(axis=0) / max(n, 1)
    sxx = sxx_u - wsum * np.outer(mx, mx)
    syy = syy_u - wsum * np.outer(my, my)
    lost = np.concatenate([np.diag(sxx_u) > CANCELLATION_LIMIT * np.abs(np.diag(sxx)),
                           np.diag(syy_u) > CANCELLATION_LIMIT * np.abs(np.diag(syy))])
    if lost.any():
        return _gram_centred(X, Y, w, np)
    return GramState(np.float64(n), np.float64(wsum), np.float64(wsum), mx, my, sxx,
                     xt1y[:, 1:] - wsum * np.outer(mx, my), syy)


def gram_of_batch(X, Y, w) -> GramState:
    """The state of one batch: X (n, d), Y (n, m), w (n,) (zero-weight rows are ignored)."""
    return _gram_host(X, Y, w) if _xp(X, Y, w) is np else _gram_jit(X, Y, w)


def _qr_of_batch(X, Y, w, xp):
    wsum, mx, my = _batch_moments(X, Y, w, xp)
    Z = xp.concatenate([X - mx, Y - my], axis=1) * xp.sqrt(w)[:, None]
    p = Z.shape[1]
    if Z.shape[0] < p:
        Z = xp.concatenate([Z, xp.zeros((p - Z.shape[0], p), Z.dtype)])
    r = xp.linalg.qr(Z, mode="r")
    return QRState(xp.sum(w > 0).astype(X.dtype), wsum, xp.sum(w * w), mx, my, r[:p])


_qr_jit = jax.jit(lambda X, Y, w: _qr_of_batch(X, Y, w, jnp))


def qr_of_batch(X, Y, w) -> QRState:
    return _qr_of_batch(X, Y, w, np) if _xp(X, Y, w) is np else _qr_jit(X, Y, w)


def _merge(a, b, xp):
    wsum = a.wsum + b.wsum
    safe = xp.where(wsum > 0, wsum, 1.0)
    fb = b.wsum / safe
    dx, dy = b.mean_x - a.mean_x, b.mean_y - a.mean_y
    mean_x = a.mean_x + fb * dx
    mean_y = a.mean_y + fb * dy
    c = a.wsum * fb  # weight of the mean-shift correction: w_a w_b / (w_a + w_b)
    count, wsum2 = a.count + b.count, a.wsum2 + b.wsum2
    if isinstance(a, QRState):
        shift_row = xp.sqrt(c) * xp.concatenate([dx, dy])
        stacked = xp.concatenate([a.r, b.r, shift_row[None, :]])
        r = xp.linalg.qr(stacked, mode="r")[: a.r.shape[0]]
        # Fix signs so that diag(R) ≥ 0: the factor is then unique and merges reproducible.
        sign = xp.where(xp.diag(r) < 0, -1.0, 1.0).astype(r.dtype)
        return QRState(count, wsum, wsum2, mean_x, mean_y, r * sign[:, None])
    return GramState(count, wsum, wsum2, mean_x, mean_y,
                     a.sxx + b.sxx + c * xp.outer(dx, dx),
                     a.sxy + b.sxy + c * xp.outer(dx, dy),
                     a.syy + b.syy + c * xp.outer(dy, dy))


_merge_jit = jax.jit(lambda a, b: _merge(a, b, jnp))


def merge(a, b):
    """Combine the states of two disjoint sets of rows (associative, commutative)."""
    return _merge(a, b, np) if _xp(*a, *b) is np else _merge_jit(a, b)


def update(state, X, Y, w):
    """``merge(state, state_of(X, Y, w))``."""
    batch = qr_of_batch(X, Y, w) if isinstance(state, QRState) else gram_of_batch(X, Y, w)
    return merge(state, batch)


def moments(state):
    """(Sxx, Sxy, Syy) of either form."""
    if isinstance(state, QRState):
        d = state.mean_x.shape[0]
        S = _dot(state.r.T, state.r)
        return S[:d, :d], S[:d, d:], S[d:, d:]
    return state.sxx, state.sxy, state.syy


def uncentred(state):
    """(Sxx, Sxy, Syy) about the origin, for models without an intercept."""
    sxx, sxy, syy = moments(state)
    xp = _xp(sxx)
    w = state.wsum
    return (sxx + w * xp.outer(state.mean_x, state.mean_x),
            sxy + w * xp.outer(state.mean_x, state.mean_y),
            syy + w * xp.outer(state.mean_y, state.mean_y))


def accumulate(batches, d: int, m: int, *, dtype=np.float64, kind: str = "gram", xp=np):
    """Fold an iterable of (X, Y, w) batches into one state."""
    state = init(d, m, dtype=dtype, kind=kind, xp=xp)
    for X, Y, w in batches:
        state = update(state, X, Y, w)
    return state


__all__ = ["GramState", "QRState", "init", "update", "merge", "moments", "uncentred", "accumulate",
           "gram_of_batch", "qr_of_batch"]
