"""The passes an exact fit makes over the data, as reductions (:mod:`jaxlm.core.reduction`).

``state_reduction``      the least-squares state (Gram or TSQR) of all rows, in given units,
                         optionally of the rows shifted by given means
``magnitude_reduction``  the largest |x|, |y| per column and the largest weight → power-of-two
                         units (or None when a value is NaN/inf)
``gradient_reduction``   the double-double refinement gradient ``(Σ w r, Xᵀ W r, Σ w r², Σ w (x − s))``

:func:`jaxlm.core.exact.fit_reduced` asks a runner (``run(reduction) -> result``, from
:mod:`jaxlm.reduce`) for these; it never sees where the rows are. All three are built from
module-level functions and :func:`functools.partial`, so Dask can pickle them.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from . import dd
from . import state as st
from .precision import jnp, on_accelerator, tree_map
from .split import BITS, exact_cross, split_grid
from .reduction import Reduction, fold

__all__ = ["dd_gradient_block", "dd_merge", "gradient_reduction", "loop_runner", "magnitude_reduction", "state_reduction"]


def loop_runner(batches):
    """``run(reduction)`` as one loop over ``batches()`` (a zero-argument callable of
    ``(X, Y, w)`` blocks): the in-memory driver, for core's own convenience functions."""
    return lambda reduction: reduction.finish(fold(reduction, batches()))


# ----------------------------------------------------------------------------------- state

def _npdt(dtype: str):
    return np.float64 if dtype == "float64" else np.float32


def _on_device() -> bool:
    """On an accelerator the state is formed on the device (jitted); on CPUs NumPy/BLAS is faster
    (and JAX is not imported to find that out when no accelerator plugin is installed)."""
    return on_accelerator()


def _pad_rows(a: np.ndarray, size: int) -> np.ndarray:
    if a.shape[0] == size:
        return a
    return np.concatenate([a, np.zeros((size - a.shape[0],) + a.shape[1:], a.dtype)])


def _state_init(d, m, kind, dtype, units, device):
    return st.init(d, m, dtype=_npdt(dtype), kind=kind, xp=jnp if device else np, units=units)


def _state_update(kind, dtype, units, shift, device, acc, X, Y, w, *extra):
    npdt = _npdt(dtype)
    X, Y, w = (np.asarray(a, npdt) for a in (X, Y, w))
    if shift is not None:  # scaled to the units, shifted by the means (exact differences); the
        X, Y, w = next(st.shifted_batches([(X, Y, w)], units, shift))  # state records the units at finish
        units = None
    if device:  # padded with zero-weight rows to a power of two: a stream of ragged blocks compiles few shapes
        size = max(16, 1 << (X.shape[0] - 1).bit_length())
        X, Y, w = (jnp.asarray(_pad_rows(a, size)) for a in (X, Y, w))
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):  # NaN/inf are reported from the state
        return st.update(acc, X, Y, w, units)


def _state_finish(units, shift, acc):
    state = tree_map(lambda a: np.asarray(a, dtype=np.float64), acc)
    if shift is not None:
        state = state._replace(log2_x=units.x, log2_y=units.y, log2_w=np.float64(units.w))
    return state


def _state_merge(a, b):
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        return st.merge(a, b)


def _gram_block(X, Y, w, *extra):
    return st.gram_of_batch(X, Y, w)


def _qr_block(X, Y, w, *extra):
    return st.qr_of_batch(X, Y, w)


def state_reduction(d: int, m: int, *, kind: str = "gram", dtype: str = "float64", units: st.Units | None = None,
                    shift=None) -> Reduction:
    """The least-squares state of all rows (host NumPy float64 at ``finish``).

    ``units``: accumulate the rows scaled to these power-of-two units (exact). ``shift =
    (sx, sy)``: the state of the rows scaled to ``units`` and shifted by these means (in those
    units), for columns far from the origin. Non-finite data give a non-finite state (the
    caller locates them). The ``block`` form (devices) is offered for the plain case.
    """
    device = _on_device()
    plain = (units is None or not units.scaled) and shift is None
    return Reduction(init=partial(_state_init, d, m, kind, dtype, None if shift is not None else units, device),
                     update=partial(_state_update, kind, dtype, units, shift, device),
                     merge=_state_merge,
                     finish=partial(_state_finish, units, shift),
                     block=(_qr_block if kind == "qr" else _gram_block) if plain else None)


# ----------------------------------------------------------------------------------- magnitudes

def _mag_init(d, m):
    return np.zeros(d), np.zeros(m), 0.0


def _mag_update(acc, X, Y, w, *extra):
    X, Y, w = (np.asarray(a, dtype=np.float64) for a in (X, Y, w))
    keep = w > 0
    if not keep.all():
        X, Y, w = X[keep], Y[keep], w[keep]
    if len(w) == 0:
        return acc
    return (np.maximum(acc[0], np.max(np.abs(X), axis=0)), np.maximum(acc[1], np.max(np.abs(Y), axis=0)),
            max(acc[2], float(np.max(w))))


def _mag_merge(a, b):
    return np.maximum(a[0], b[0]), np.maximum(a[1], b[1]), max(a[2], b[2])


def _mag_finish(acc):
    x_max, y_max, w_max = acc
    if not (np.all(np.isfinite(x_max)) and np.all(np.isfinite(y_max)) and np.isfinite(w_max)):
        return None
    return st.magnitude_units(x_max, y_max, w_max)


def magnitude_reduction(d: int, m: int) -> Reduction:
    """:func:`jaxlm.core.state.magnitude_units` of the largest |x|, |y| per column and the
    largest weight (rows of positive weight); None when a value is NaN or inf."""
    return Reduction(init=partial(_mag_init, d, m), update=_mag_update, merge=_mag_merge, finish=_mag_finish)


# ----------------------------------------------------------------------------------- gradient

def _grad_init(d, m):
    z = lambda *shape: (np.zeros(shape), np.zeros(shape))  # noqa: E731
    return z(m), z(d, m), z(m), z(d)


def dd_gradient_block(X, Y, w, coef: np.ndarray, c: np.ndarray, sx: np.ndarray, sy: np.ndarray,
                      units: st.Units | None = None):
    """One block's ``(Σ w r, Xsᵀ W r, Σ w r², Σ w (x − sx))`` as double-double pairs, for
    ``r = (y − sy) − c − (x − sx) coefᵀ``, with the block first scaled to ``units`` (the
    state's; :func:`jaxlm.core.state.scale_batch`). Sums of blocks combine with :func:`dd_merge`.

    Exact to ~2⁻⁷⁰ with BLAS products instead of a double-double product per element (an
    Ozaki-style split, :func:`jaxlm.core.exact_sums.split_grid`): ``x − sx`` is formed exactly
    (TwoSum) and split into ``S + R``, ``S`` on each column's grid with 20 bits; β is split
    into ``B₁ + B₂`` with ``B₁`` on the grid that makes every row sum ``Σ_j S_ij B₁_j`` an exact
    float64 product (at most 2⁵³ units), so ``S B₁ᵀ`` is exact and the rest
    (``S B₂ᵀ + R βᵀ``) is 2⁻²⁰ of it, rounded once. The weighted residual ``u = w r`` is formed
    in double-double and ``Xsᵀ u`` the same way (:func:`jaxlm.core.exact_sums.exact_cross` on
    4096-row blocks). ``Σ w (x − sx)`` only sets the rate (float64)."""
    X, Y, w = st.scale_batch(*(np.asarray(a, dtype=np.float64) for a in (X, Y, w)), units)
    m, d = coef.shape
    if X.shape[0] == 0:
        z = np.zeros(m)
        return (z, z.copy()), (np.zeros((d, m)), np.zeros((d, m))), (z.copy(), z.copy()), (np.zeros(d), np.zeros(d))
    # x − sx and TwoSum's error term (zero where sx is 0), on X's own layout: picking the shifted
    # columns (a fancy-index copy and scatter) took 3x the time of the whole block on 1e6 x 50
    xh, xl = dd.two_sum(X, -sx[None, :])
    S, R, g = split_grid(xh)
    q = coef * g[None, :]  # β_j g_j: S_ij β_j = (S_ij / g_j)·q_j
    top = np.max(np.abs(q), axis=1)
    G = np.ldexp(1.0, np.frexp(top)[1] - (53 - BITS - int(np.ceil(np.log2(max(d, 2))))))
    B1 = np.round(q / G[:, None]) * G[:, None] / g[None, :]
    xb = dd.two_sum(S @ B1.T, S @ (coef - B1).T + R @ coef.T + xl @ coef.T)  # Σ_j (x − sx)_j β_j
    r = dd.add(dd.from_diff(Y, sy[None, :]), (np.broadcast_to(-c, Y.shape), np.zeros(Y.shape)))
    r = dd.add(r, (-xb[0], -xb[1]))
    u = r if np.all(w == 1.0) else dd.mul_d(r, w[:, None])
    T, Q, _ = split_grid(u[0])
    gx = dd.add(exact_cross(S, T), dd.two_sum(np.zeros((d, m)), S.T @ (Q + u[1]) + R.T @ u[0] + xl.T @ u[0]))
    gs = w @ xh
    return dd.total(u), gx, dd.total(dd.mul(r, u)), (gs, np.zeros(d))


def dd_merge(a, b):
    """Sum of two :func:`dd_gradient_block` results (associative up to ~1e-32)."""
    return tuple(dd.add(x, y) for x, y in zip(a, b))


def _grad_update(coef, c, sx, sy, units, acc, X, Y, w, *extra):
    return dd_merge(acc, dd_gradient_block(X, Y, w, coef, c, sx, sy, units))


def _grad_merge(a, b):
    return dd_merge(a, b)


def _grad_finish(acc):
    return tuple(hi + lo for hi, lo in acc)


def gradient_reduction(coef: np.ndarray, c: np.ndarray, sx: np.ndarray, sy: np.ndarray,
                       units: st.Units | None = None) -> Reduction:
    """:func:`jaxlm.core.exact.dd_gradient_block` summed over all rows in double-double, rounded
    at ``finish`` to ``(g0 (m,), gx (d, m), sse (m,), gs (d,))``. No ``block`` form: the
    double-double arithmetic stays on the host (an FMA-contracting compiler breaks Dekker's
    product)."""
    m, d = coef.shape
    return Reduction(init=partial(_grad_init, d, m), update=partial(_grad_update, coef, c, sx, sy, units),
                     merge=_grad_merge, finish=_grad_finish)
