"""Double-double sums of the rows' cross products, for fits that cannot pass over the data again.

The exact solvers reach the exact least-squares solution of the float64 data by refinement
passes over the data (:mod:`jaxlm.core.exact`). ``partial_fit`` sees each batch once, and the
float64 state alone bounds its coefficients by the Gram's rounding, about ``κ²·ε`` (10 digits at
κ = 10³). These sums carry the batch's cross products to ~2⁻⁷⁰ instead, so that the same
refinement (:func:`jaxlm.core.exact.refine`) runs against them in place of the data.

What is summed: ``G = Σ w z̃ z̃ᵀ`` with ``z̃ = [1, x − sx, y − sy]``, as a double-double
(p+1)×(p+1) matrix, about a fixed float64 shift ``s`` (the first batch's mean): ``G[0, 0] = Σw``,
``G[0, 1:] = Σ w (z − s)`` and the rest the co-moments about ``s``. Sums about one shift merge by
addition; no mean-shift term, no rounding of means.

How (an Ozaki-style split, with one exact product): ``z − s`` is formed exactly as a
double-double (TwoSum), ``w (z − s)`` as well (TwoProd). Each column ``a`` is split into
``S + R`` where ``S`` is ``a`` rounded to the grid ``2^(e − 20)`` of the column's largest
magnitude ``2^e`` (an integer multiple of the grid below 2²⁰; the split is exact). Over at
most 4096 rows ``Σ S_a S_b`` is then exact in float64 (2·20 + 12 bits ≤ 53); the remaining
products ``S_aᵀ R_b + R_aᵀ B`` are 2⁻²⁰ of the total, so their float64 rounding is ~2⁻⁷³ of
it. Per block of rows one syrk and one gemm (unit weights: the rest as ``VᵀR + RᵀV``, ``V = S + R/2``),
three gemms with weights; runs of blocks shared over threads; summed in double-double.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import dd
from .blas import dot, in_chunks
from .split import ROWS, scratch, split_columns, split_grid
from .target_alpha import penalty



class ExactSums(NamedTuple):
    """``G = Σ w z̃ z̃ᵀ`` about ``shift`` as ``hi + lo``; ``z̃ = [1, x − shift[:d], y − shift[d:]]``."""

    shift: np.ndarray  # (p,)
    hi: np.ndarray     # (p + 1, p + 1)
    lo: np.ndarray


def _block(z, shift, w):
    """(hi, lo) of ``Σ w z̃ z̃ᵀ`` over one block of at most ROWS rows ``z``, ``z̃ = [1, z − shift]``,
    in this thread's scratch buffers (:func:`jaxlm.core.split.scratch`)."""
    n, p = z.shape
    a_hi = scratch("sums_a", (n, p + 1), "F")  # column-major, as the batch (column maxima: 6x faster)
    a_hi[:, 0] = 1.0
    c_hi = np.subtract(z, shift, out=a_hi[:, 1:])
    err = dd.diff_error(z, shift, c_hi, out=scratch("sums_err", (n, p), "F"), tmp=scratch("sums_bb", (n, p), "F"))
    s_a, r_a = scratch("sums_s", (n, p + 1), "F"), scratch("sums_r", (n, p + 1), "F")
    split_columns(a_hi, s_a, r_a)
    r_a[:, 1:] += err  # a = S + R exactly up to R's rounding (~2⁻⁷³ of the column)
    if w is None:
        # unit weights: Σ a aᵀ = SᵀS + (SᵀR + RᵀS + RᵀR) = SᵀS + (VᵀR + RᵀV) with V = S + R/2: the exact
        # part by one syrk, the rest (2⁻²⁰ of the total; V's rounding ~2⁻⁷³ of it) by one gemm
        exact = dot(s_a.T, s_a)
        v = np.multiply(r_a, 0.5, out=scratch("sums_v", (n, p + 1), "F"))
        v += s_a
        vr = dot(v.T, r_a)
        return dd.two_sum(exact, vr + vr.T)
    a_lo = np.zeros((n, p + 1))
    a_lo[:, 1:] = err
    b_hi, b_lo = dd.two_prod(a_hi, w[:, None])
    b_lo += a_lo * w[:, None]
    s_b, r_b, _ = split_grid(b_hi)
    exact = dot(s_a.T, s_b)
    rest = dot(s_a.T, r_b + b_lo) + dot(r_a.T, b_hi + b_lo)
    return dd.two_sum(exact, rest)


#: Blocks of ROWS rows per item shared over threads by :func:`sums_of_batch` (fixed: the same
#: sums, bit for bit, whatever the number of threads).
BLOCKS_PER_ITEM = 16


def sums_of_batch(X, Y, w, shift: np.ndarray | None = None) -> ExactSums:
    """The sums of one batch (float64 ``X (n, d)``, ``Y (n, m)``, ``w (n,)``) about ``shift``
    (default: the batch's float64 mean of ``[X, Y]``). Runs of :data:`BLOCKS_PER_ITEM` blocks are
    shared over threads (:func:`jaxlm.core.blas.in_chunks`) and added in row order."""
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    (n, d), p = X.shape, X.shape[1] + Y.shape[1]
    if shift is None:
        shift = np.concatenate([np.mean(X, axis=0), np.mean(Y, axis=0)]) if n else np.zeros(p)
    shift = np.asarray(shift, dtype=np.float64)
    unit = bool(np.all(w == 1.0))
    step = ROWS * BLOCKS_PER_ITEM

    def item(start):
        hi, lo = np.zeros((p + 1, p + 1)), np.zeros((p + 1, p + 1))
        for s in range(start, min(start + step, n), ROWS):
            z = scratch("sums_z", (min(ROWS, n - s), p), "F")  # the block's rows, column-major (see _block)
            z[:, :d], z[:, d:] = X[s:s + ROWS], Y[s:s + ROWS]
            hi, lo = dd.add((hi, lo), _block(z, shift, None if unit else w[s:s + ROWS]))
        return hi, lo

    starts = list(range(0, n, step))
    parts = in_chunks(item, starts) if len(starts) > 1 else [item(0)]
    hi, lo = parts[0]
    for part in parts[1:]:
        hi, lo = dd.add((hi, lo), part)
    return ExactSums(shift, hi, lo)


def merge_sums(a: ExactSums, b: ExactSums) -> ExactSums:
    """The sums of both batches (about the same shift)."""
    if not np.array_equal(a.shift, b.shift):
        raise ValueError("exact sums about different shifts cannot be added")
    return ExactSums(a.shift, *dd.add((a.hi, a.lo), (b.hi, b.lo)))


def _times(sums: ExactSums, v: np.ndarray, rows: slice):
    """``G[rows, :] @ v`` for float64 ``v (p + 1, m)``, in double-double: (hi, lo) of shape (r, m)."""
    g = (sums.hi[rows, :, None], sums.lo[rows, :, None])
    return dd.total(dd.mul_d(g, v[None, :, :]), axis=1)


def gradient(sums: ExactSums, d: int):
    """``gradient(coef, c)`` for :func:`jaxlm.core.exact.refine`, read off the sums instead of a
    pass over the data: ``(Σ w r, Σ w (x − sx) r, Σ w r², Σ w (x − sx))`` with
    ``r = (y − sy) − c − (x − sx)·β``, each rounded once from double-double."""

    def grad(coef, c):
        m = coef.shape[0]
        v = np.concatenate([-c[None, :], -coef.T, np.eye(m)], axis=0)  # (p + 1, m): r = z̃ · v
        gv = _times(sums, v, slice(None))  # (p + 1, m)
        g0 = gv[0][0] + gv[1][0]
        gx = gv[0][1:d + 1] + gv[1][1:d + 1]
        sse = dd.total(dd.mul_d(gv, v), axis=0)
        gs = sums.hi[0, 1:d + 1] + sums.lo[0, 1:d + 1]
        return g0, gx, np.maximum(sse[0] + sse[1], 0.0), gs

    return grad


def refine_solution(sol, sums: ExactSums, *, alpha=0.0, fit_intercept: bool = True):
    """``sol`` (read off the float64 state of the same rows, in the data's units) refined against
    the sums (:func:`jaxlm.core.exact.refine`): coefficients and intercept of the exact
    least-squares solution of the float64 rows, ``refinement_steps`` and ``sse`` measured from
    the sums. Without an intercept the sums must be about the origin (``shift`` zero). ``alpha``:
    a float, or one penalty per target (:mod:`jaxlm.core.target_alpha`; ``sol.factor`` then
    holds a factor per distinct penalty), each target refined against its own."""
    from .exact import _intercept, refine

    coef0 = np.atleast_2d(np.asarray(sol.coef, dtype=np.float64))
    m, d = coef0.shape
    sx, sy = sums.shift[:d], sums.shift[d:]
    c0 = np.zeros(m)
    if fit_intercept:
        c0 = np.asarray(sol.intercept, dtype=np.float64).reshape(m) - sy + coef0 @ sx
    elif np.any(sums.shift != 0):
        raise ValueError("sums of a model without intercept must be about the origin")
    wsum = float(sums.hi[0, 0] + sums.lo[0, 0])
    ref = refine(gradient(sums, d), sol.factor, coef0, c0, wsum=wsum, alpha=penalty(alpha, None, d),
                 fit_intercept=fit_intercept)
    intercept = _intercept(sy, ref.c, sx, ref.coef, ref.c_lo - ref.lo @ sx) if fit_intercept else np.zeros(m)
    return sol._replace(coef=ref.coef, intercept=intercept, refinement_steps=ref.steps, sse=ref.sse)
