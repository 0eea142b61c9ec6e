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
mesh can combine them. All functions are pure and jit-compatible.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

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


def init(d: int, m: int, *, dtype=jnp.float64, kind: str = "gram"):
    """An empty state for d features and m targets."""
    z = jnp.zeros((), dtype)
    if kind == "qr":
        return QRState(z, z, z, jnp.zeros(d, dtype), jnp.zeros(m, dtype), jnp.zeros((d + m, d + m), dtype))
    return GramState(z, z, z, jnp.zeros(d, dtype), jnp.zeros(m, dtype), jnp.zeros((d, d), dtype),
                     jnp.zeros((d, m), dtype), jnp.zeros((m, m), dtype))


def _dot(a, b):
    return jnp.matmul(a, b, precision=MATMUL_PRECISION)


def _batch_moments(X, Y, w):
    wsum = jnp.sum(w)
    safe = jnp.where(wsum > 0, wsum, 1.0)
    mx = _dot(w, X) / safe
    my = _dot(w, Y) / safe
    return wsum, mx, my, X - mx, Y - my


@jax.jit
def gram_of_batch(X, Y, w) -> GramState:
    """The state of one batch: X (n, d), Y (n, m), w (n,) (zero-weight rows are ignored)."""
    wsum, mx, my, Xc, Yc = _batch_moments(X, Y, w)
    Xw = Xc * w[:, None]
    return GramState(jnp.sum(w > 0).astype(X.dtype), wsum, jnp.sum(w * w), mx, my,
                     _dot(Xw.T, Xc), _dot(Xw.T, Yc), _dot((Yc * w[:, None]).T, Yc))


@jax.jit
def qr_of_batch(X, Y, w) -> QRState:
    wsum, mx, my, Xc, Yc = _batch_moments(X, Y, w)
    Z = jnp.concatenate([Xc, Yc], axis=1) * jnp.sqrt(w)[:, None]
    p = Z.shape[1]
    if Z.shape[0] < p:
        Z = jnp.concatenate([Z, jnp.zeros((p - Z.shape[0], p), Z.dtype)])
    r = jnp.linalg.qr(Z, mode="r")
    return QRState(jnp.sum(w > 0).astype(X.dtype), wsum, jnp.sum(w * w), mx, my, r[:p])


def _shift(a, b):
    wsum = a.wsum + b.wsum
    safe = jnp.where(wsum > 0, wsum, 1.0)
    fa, fb = a.wsum / safe, b.wsum / safe
    dx, dy = b.mean_x - a.mean_x, b.mean_y - a.mean_y
    mean_x = a.mean_x + fb * dx
    mean_y = a.mean_y + fb * dy
    # weight of the rank-one mean-shift correction: w_a w_b / (w_a + w_b)
    c = a.wsum * fb
    return wsum, mean_x, mean_y, dx, dy, c, fa


@jax.jit
def merge(a, b):
    """Combine the states of two disjoint sets of rows (associative, commutative)."""
    wsum, mean_x, mean_y, dx, dy, c, _ = _shift(a, b)
    count, wsum2 = a.count + b.count, a.wsum2 + b.wsum2
    if isinstance(a, QRState):
        shift_row = jnp.sqrt(c) * jnp.concatenate([dx, dy])
        stacked = jnp.concatenate([a.r, b.r, shift_row[None, :]])
        r = jnp.linalg.qr(stacked, mode="r")[: a.r.shape[0]]
        # Fix signs so that diag(R) ≥ 0: the factor is then unique and merges are reproducible.
        sign = jnp.where(jnp.diag(r) < 0, -1.0, 1.0).astype(r.dtype)
        return QRState(count, wsum, wsum2, mean_x, mean_y, r * sign[:, None])
    return GramState(count, wsum, wsum2, mean_x, mean_y,
                     a.sxx + b.sxx + c * jnp.outer(dx, dx),
                     a.sxy + b.sxy + c * jnp.outer(dx, dy),
                     a.syy + b.syy + c * jnp.outer(dy, dy))


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
    w = state.wsum
    return (sxx + w * jnp.outer(state.mean_x, state.mean_x),
            sxy + w * jnp.outer(state.mean_x, state.mean_y),
            syy + w * jnp.outer(state.mean_y, state.mean_y))


def accumulate(batches, d: int, m: int, *, dtype=jnp.float64, kind: str = "gram"):
    """Fold an iterable of (X, Y, w) batches into one state."""
    state = init(d, m, dtype=dtype, kind=kind)
    for X, Y, w in batches:
        state = update(state, X, Y, w)
    return state


__all__ = ["GramState", "QRState", "init", "update", "merge", "moments", "uncentred", "accumulate",
           "gram_of_batch", "qr_of_batch"]
