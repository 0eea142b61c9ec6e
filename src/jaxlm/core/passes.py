"""The passes an exact fit makes over the data, as reductions (:mod:`jaxlm.core.reduction`).

``state_reduction``      the least-squares state (Gram or TSQR) of all rows, in given units,
                         optionally of the rows shifted by given means
``magnitude_reduction``  the largest |x|, |y| per column and the largest weight → power-of-two
                         units (or None when a value is NaN/inf)
``gradient_reduction``   the double-double refinement gradient ``(Σ w r, Xᵀ W r, Σ w r², Σ w (x − s))``
                         (the last only where a column is shifted, ``s ≠ 0``)

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
from .split import BITS, ROWS, scratch, skinny, skinny_t, split_columns
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
    z = np.zeros(2 * m + d * m + d)  # [Σ w r (m) | Xsᵀ W r (d·m) | Σ w r² (m) | Σ w (x − sx) (d)] as hi, lo
    return z, z.copy()


def _split_shifted(X, sx, S, R) -> np.ndarray:
    """``x − sx = S + R`` per column (``R`` carries TwoSum's error term of ``x − sx``, rounded once
    with the split's remainder: ~2⁻⁷³ of the column), into ``S``, ``R`` (laid out as ``X``). Columns
    with ``sx = 0`` come out as the plain split (``x − 0`` is ``x``, error term 0). Returns the grid.

    Every step writes into a reused buffer (:func:`jaxlm.core.split.scratch`) laid out as ``S``."""
    if not np.any(sx):
        return split_columns(X, S, R)
    order = "F" if S.strides[0] < S.strides[1] else "C"
    hi = np.subtract(X, sx, out=scratch("grad_hi", X.shape, order))
    err = dd.diff_error(X, sx, hi, out=scratch("grad_err", X.shape, order), tmp=R)  # (R as scratch)
    g = split_columns(hi, S, R)
    R += err
    return g


def _residual(Y, sy, c, E, rest):
    """``r = (Y − sy) − c − E − rest`` as a double-double, for float64 ``E`` (the exact part of the
    rows' products) and ``rest`` (the remainder): a TwoSum per term, in this order, so that every
    partial sum (and so every error term) is bounded by the terms of ``r`` once ``Y − sy`` has
    cancelled; the error terms summed once (their rounding ~2⁻¹⁰⁶ of those terms)."""
    a0, a1 = dd.two_sum(Y, -sy) if np.any(sy) else (Y, 0.0)
    b0, b1 = dd.two_sum(a0, -c)
    b1 += a1
    a0, a1 = dd.two_sum(b0, -E)
    b1 += a1
    a0, a1 = dd.two_sum(a0, -rest)
    b1 += a1
    return dd.two_sum(a0, b1)


#: Bytes of a block's arrays that the gradient handles at once (larger blocks, as the in-memory
#: driver's, go piece by piece): its temporaries, a few copies of the piece, stay in cache. With two
#: threads each on its own pieces (1e6 x 50 in memory, columns offset by 1e6), 1 MiB took 0.25 s for
#: C-ordered rows and 0.19 s for F-ordered ones, 3 MiB 0.37 s and 0.22 s; a streamed Parquet fit
#: (6,400-row chunks) took as long with either. Since per-thread scratch buffers and the grouped column
#: maxima (:func:`jaxlm.core.split.column_top`), 2 MiB against 1 MiB (two threads, 1e6 rows): the same
#: at d = 50 and 100 and for offset columns, 7-14% faster at d = 10 and 20 (fewer NumPy calls on the
#: rows' vectors, whose Python overhead holds the GIL).
GRADIENT_PIECE_BYTES = 2 << 20


def _grad_flat(X, Y, w, coef, c, sx, sy, units):
    """One block's sums ``[Σ w r | Xsᵀ W r | Σ w r² | Σ w (x − sx)]`` as one flat double-double pair."""
    X, Y, w = st.scale_batch(*(np.asarray(a, dtype=np.float64) for a in (X, Y, w)), units)
    m, d = coef.shape
    n = X.shape[0]
    rows = max(ROWS, GRADIENT_PIECE_BYTES // (8 * (d + m + 1)))
    if n <= rows + rows // 2:
        return _grad_piece(X, Y, w, coef, c, sx, sy) if n else _grad_init(d, m)
    step = -(-n // -(-n // rows))
    acc = _grad_init(d, m)
    for s in range(0, n, step):
        acc = dd.add(acc, _grad_piece(X[s:s + step], Y[s:s + step], w[s:s + step], coef, c, sx, sy))
    return acc


def _grad_piece(X, Y, w, coef, c, sx, sy):
    m, d = coef.shape
    n = X.shape[0]
    # x − sx = S + R (S on each column's grid with BITS bits), in contiguous buffers laid out as the rows
    # (elementwise steps from C-ordered rows into F-ordered buffers transpose; on strided views of a
    # wider buffer NumPy loops row by row); r_hi = T_r + Q_r likewise, in K = [1 | T_r] and Q
    order = "C" if X.flags.c_contiguous and n > 1 else "F"
    S, R = scratch("grad_s", (n, d), order), scratch("grad_r", (n, d), order)
    g = _split_shifted(X, sx, S, R)
    # β = B₁ + B₂ with B₁ on the grid that makes every row sum Σ_j S_ij B₁_j an exact float64
    q = coef * g[None, :]
    G = np.ldexp(1.0, np.frexp(np.max(np.abs(q), axis=1))[1] - (53 - BITS - int(np.ceil(np.log2(max(d, 2))))))
    B1 = np.round(q / G[:, None]) * G[:, None] / g[None, :]
    P = skinny(S, np.concatenate([B1, coef - B1]).T)  # (n, 2m): [exact | rest]
    rest = P[:, m:]
    rest += skinny(R, coef.T)
    r = _residual(Y, sy, c, P[:, :m], rest)
    unit = bool(np.all(w == 1.0))
    u = r if unit else dd.mul_d(r, w[:, None])
    # B = [T_u | Q_u + u_lo (| w)], D = [u_hi (| w)]: the w columns (Σ w (x − sx)) only for shifted columns
    shifted = int(bool(np.any(sx)))
    B = np.empty((n, 2 * m + shifted), order="F")
    D = np.empty((n, m + shifted), order="F")
    split_columns(u[0], B[:, :m], B[:, m:2 * m])
    B[:, m:2 * m] += u[1]
    D[:, :m] = u[0]
    if shifted:
        B[:, 2 * m], D[:, m] = w, w
    K, Q = np.empty((n, 1 + m), order="F"), np.empty((n, m), order="F")
    K[:, 0] = 1.0
    if unit:
        K[:, 1:], Q[:] = B[:, :m], B[:, m:2 * m]
    else:
        split_columns(r[0], K[:, 1:], Q)
        Q += r[1]
    # AᵀB for A = [S | 1 | T_r] over ROWS rows at a time: its first m columns are sums of products of
    # grid values (exact)
    e_hi, e_lo, f = np.zeros((d + 1 + m, m)), np.zeros((d + 1 + m, m)), np.zeros((d + 1 + m, m + shifted))
    for s in range(0, n, ROWS):
        Bs = B[s:s + ROWS]
        AB = np.concatenate([skinny_t(S[s:s + ROWS], Bs), skinny_t(K[s:s + ROWS], Bs)])
        e_hi, lo = dd.two_sum(e_hi, AB[:, :m])
        e_lo += lo
        f += AB[:, m:]
    CD = np.concatenate([skinny_t(R, D), skinny_t(Q, D)])  # rows: R's columns, then Q_r + r_lo's
    k = np.arange(m)
    exact = np.concatenate([e_hi[d], e_hi[:d].ravel(), e_hi[d + 1 + k, k], np.zeros(d)])
    exact_lo = np.concatenate([e_lo[d], e_lo[:d].ravel(), e_lo[d + 1 + k, k], np.zeros(d)])
    fl = np.concatenate([f[d, :m], (f[:d, :m] + CD[:d, :m]).ravel(), f[d + 1 + k, k] + CD[d + k, k],
                         f[:d, m] + CD[:d, m] if shifted else np.zeros(d)])
    hi, lo = dd.two_sum(exact, fl)
    return hi, lo + exact_lo


def _unflat(pair, d, m):
    """The flat double-double sums as ``(Σ w r, Xsᵀ W r, Σ w r², Σ w (x − sx))`` pairs."""
    cut = np.cumsum([m, d * m, m])
    parts = [np.split(a, cut) for a in pair]
    shapes = ((m,), (d, m), (m,), (d,))
    return tuple((h.reshape(s), l.reshape(s)) for h, l, s in zip(*parts, shapes))


def dd_gradient_block(X, Y, w, coef: np.ndarray, c: np.ndarray, sx: np.ndarray, sy: np.ndarray,
                      units: st.Units | None = None):
    """One block's ``(Σ w r, Xsᵀ W r, Σ w r², Σ w (x − sx))`` as double-double pairs, for
    ``r = (y − sy) − c − (x − sx) coefᵀ``, with the block first scaled to ``units`` (the
    state's; :func:`jaxlm.core.state.scale_batch`). Sums of blocks combine with :func:`dd_merge`.

    Exact to ~2⁻⁷⁰ with BLAS products instead of a double-double product per element (an
    Ozaki-style split, :func:`jaxlm.core.split.split_grid`): ``x − sx`` is formed exactly
    (TwoSum, in the columns where ``sx ≠ 0``) and split into ``S + R``, ``S`` on each column's
    grid with 20 bits; β is split into ``B₁ + B₂`` with ``B₁`` on the grid that makes every row
    sum ``Σ_j S_ij B₁_j`` an exact float64 product (at most 2⁵³ units), so ``S B₁ᵀ`` is exact and
    the rest (``S B₂ᵀ + R βᵀ``) is 2⁻²⁰ of it, rounded once. The residual ``r`` and ``u = w r``
    are formed in double-double and their leading parts split the same way (``T + Q``); one
    product ``[S | 1 | T_r]ᵀ [T_u | Q_u + u_lo | w]`` per ROWS rows holds the exact parts of
    ``Xsᵀu``, ``Σu`` and ``Σ r u`` (sums of products of grid values) and their float64 rest,
    ``[R | Q_r + r_lo]ᵀ [u_hi | w]`` the remaining rest: each sum to ~2⁻⁷³ of the sum of its
    terms' magnitudes. Blocks are handled in pieces of :data:`GRADIENT_PIECE_BYTES`, whose
    temporaries stay in cache: per element of ``X`` five elementwise passes (the split) and four
    BLAS products: 0.15 CPU s per 1e6 × 50 rows on one core (0.28-0.35 s with TwoSums and
    pairwise double-double totals over whole columns). ``Σ w (x − sx)`` only sets the rate (float64),
    and is measured only when some column is shifted (``sx ≠ 0``; zeros otherwise): without a shift
    it is ``Σ w x``, which the state knows (:func:`jaxlm.core.exact.fit_reduced` takes it from there),
    and its two columns of products (``Sᵀw``, ``Rᵀw``) are saved."""
    m, d = coef.shape
    return _unflat(_grad_flat(X, Y, w, coef, c, sx, sy, units), d, m)


def dd_merge(a, b):
    """Sum of two :func:`dd_gradient_block` results (associative up to ~1e-32)."""
    return tuple(dd.add(x, y) for x, y in zip(a, b))


def _grad_update(coef, c, sx, sy, units, acc, X, Y, w, *extra):
    return dd.add(acc, _grad_flat(X, Y, w, coef, c, sx, sy, units))


def _grad_merge(a, b):
    return dd.add(a, b)


def _grad_finish(d, m, acc):
    return tuple(hi + lo for hi, lo in _unflat(acc, d, m))


def gradient_reduction(coef: np.ndarray, c: np.ndarray, sx: np.ndarray, sy: np.ndarray,
                       units: st.Units | None = None) -> Reduction:
    """:func:`dd_gradient_block` summed over all rows in double-double, rounded at ``finish`` to
    ``(g0 (m,), gx (d, m), sse (m,), gs (d,))`` (``gs`` zeros when no column is shifted: see
    :func:`dd_gradient_block`). No ``block`` form: the double-double arithmetic
    stays on the host (an FMA-contracting compiler breaks Dekker's product)."""
    m, d = coef.shape
    coef, c = np.asarray(coef, dtype=np.float64), np.asarray(c, dtype=np.float64)
    sx, sy = np.asarray(sx, dtype=np.float64), np.asarray(sy, dtype=np.float64)
    return Reduction(init=partial(_grad_init, d, m), update=partial(_grad_update, coef, c, sx, sy, units),
                     merge=_grad_merge, finish=partial(_grad_finish, d, m))
