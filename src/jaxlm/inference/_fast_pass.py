"""The fast pass's HC meats (:mod:`jaxlm.inference._pass`): row chunks, one product by ``T`` for
the leverages, one ``syrk`` per meat and target, chunks shared over threads.

Per row chunk, in cache-resident scratch buffers (rows, d):

1. ``F = x − s`` (the one read of the rows; ``− offset`` where the state's mean carries one) and
   the residuals ``e = (y − ȳ) − (x − x̄) β`` (a ``gemv`` on the centred rows: see :func:`residuals`);
2. unless the rows stay centred (HC0/HC1 of a Cholesky factor: :func:`centred_rows`), ``F ← F T``
   (a ``gemm``: SciPy's ``dtrmm``, half the flops, holds the GIL, so threads would take turns),
   and the leverages ``h_i = 1/Σw + |f_i|²`` where HC2/HC3 are asked for;
3. the rows scaled in place by ``r_i = √a_i``, ``r = w^(k/2)|e|/(1 − h)^(j/2)``, and one ``syrk``
   per meat, plus a ``gemv`` for the intercept's row ``c0 = 1/√Σw`` (its column ``c0 Σ r² f``);
   the next meat's rows are the previous ones times ``(1 − h)^(−Δj/2)``: every kind costs one
   row scaling and one ``syrk``.

The buffers keep ``d`` columns: a column for the intercept (one ``syrk`` of ``d + 1``) cost more
than the ``gemv`` at d = 50 (a strided subtraction, and BLAS kernels slower for widths that are not
multiples of 4). Each chunk's sums are separate, added in chunk order: the result is the same, bit
for bit, whatever the number of threads. BLAS runs single-threaded while the chunks are shared over
threads (:func:`jaxlm.core.blas.in_chunks`).
"""
from __future__ import annotations

import math
import threading
from typing import NamedTuple

import numpy as np

from ..core.blas import dot, in_chunks
from ..core.split import skinny

#: Bytes of a row chunk's buffer: BLAS works on rows resident in the cache (at 1e6×50 on 2 cores,
#: 1 MiB chunks took ~5% longer than 2 MiB, 8 MiB ones longer again).
CHUNK_BYTES = 1 << 21
#: Rows per thread below which a block runs in the calling thread alone.
MIN_THREAD_ROWS = 8192


def centred_rows(plan) -> bool:
    """Whether the fast pass's rows are ``x − s`` rather than ``Tᵀ(x − s)``: no leverage needed
    (HC0/HC1 alone) and a Cholesky factor of the Gram, whose ``T`` is as accurate as mapping the
    meat by it (relative error ~ εκ² either way; TSQR's ``T``, ~ εκ, keeps the rows ``Tᵀ(x − s)``)."""
    return plan.inverse_dd is None and not any(plan.meats) and plan.factor.kind == "cholesky"


def leverage(plan, h, w):
    """The rows' leverages from ``z_iᵀ B z_i`` (see :func:`jaxlm.inference._pass.block_sums`)."""
    if plan.analytic:
        return h * w
    if plan.units is not None and plan.units.w:
        return np.ldexp(h, -int(plan.units.w))  # a repeated row's leverage: B carries 2^uw
    return h


def ybar(plan):
    """``(c_hi, c_lo)`` (m,): the fitted value at ``x̄`` (``ȳ`` with an intercept, the state's
    double-double mean; 0 without), so that ``e = (y − c) − (x − x̄) β``."""
    if plan.ybar_dd is not None:
        return plan.ybar_dd
    return plan.intercept + plan.coef @ plan.shift, np.zeros_like(plan.intercept)


def residuals(Y, yb, xc, coef):
    """``e = (y − ȳ) − (x − x̄) β`` (b, m) from rows centred about ``x̄``: with the exact means the
    rounding of the coefficients (and of the intercept) hardly moves the residuals of data far
    from the origin, which ``y − β₀ − x β`` in float64 would bury in the rounding of ``β₀ + x β``."""
    return ((Y - yb[0][None, :]) - yb[1][None, :]) - xc @ coef.T


class _Block(NamedTuple):
    """What every chunk of a block shares (:func:`fast_meats`)."""

    plan: object
    X: np.ndarray          # (b, d)
    Y: np.ndarray          # (b, m)
    w: np.ndarray          # (b,)
    yb: tuple              # (m,) (hi, lo): ȳ (:func:`ybar`)
    off: np.ndarray | None  # (d,) the offset x̄ − s (subtracted after s: exactly about x̄)
    coef_t: np.ndarray     # (d, m) βᵀ
    centred: bool          # the rows x − s (:func:`centred_rows`)
    c0: float              # 1/√Σw with an intercept, 0 without
    rows: int              # rows per chunk


def fast_meats(plan, meat, X, Y, w) -> float:
    """Add the fast pass's meats of the rows to ``meat`` (len(meats), m, p, p) (see the module
    docstring); returns max h (0 without leverages).

    Blocks of ``2 ·`` :data:`MIN_THREAD_ROWS` rows or more share their chunks over threads (one per
    core), each running single-threaded BLAS on its own cache-sized chunks: OpenBLAS's own threads
    on such chunks cost 2–8× the single-threaded time (measured at 1e6×50 on 2 cores)."""
    b, d = X.shape
    fi = plan.fit_intercept
    yb = ybar(plan)
    off = plan.offset_dd[0] + plan.offset_dd[1] if fi and plan.offset_dd is not None else None
    m = Y.shape[1]
    centred = centred_rows(plan)
    blk = _Block(plan, X, Y, w, (yb[0][None, :], yb[1][None, :]), off, np.ascontiguousarray(plan.coef.T), centred,
                 1.0 / math.sqrt(plan.wsum) if fi else 0.0, min(b, max(64, CHUNK_BYTES // (8 * d))))
    starts = list(range(0, b, blk.rows))
    local = threading.local()

    def work(s):
        bufs = getattr(local, "bufs", None)
        if bufs is None:  # this thread's: the centred rows, F T (not for centred rows), one target's scaled rows
            bufs = local.bufs = tuple(np.empty((blk.rows, d)) if need else None for need in (True, not centred, m > 1))
        return _chunk(blk, s, bufs)

    parts = in_chunks(work, starts) if b >= 2 * MIN_THREAD_ROWS else [work(s) for s in starts]
    S, v, rr, hmax = parts[0]
    for part in parts[1:]:  # in chunk order: the same sums for any number of threads
        S += part[0]
        v += part[1]
        rr += part[2]
        hmax = max(hmax, part[3])
    o = int(fi)
    meat[:, :, o:, o:] += S
    if fi:
        c0 = blk.c0
        meat[:, :, 1:, 0] += c0 * v
        meat[:, :, 0, 1:] += c0 * v
        meat[:, :, 0, 0] += (c0 * c0) * rr
    return hmax


def _chunk(blk: _Block, s: int, bufs):
    """The sums of the chunk of rows ``s:s + rows``: ``Σ r² f fᵀ`` (len(meats), m, d, d),
    ``Σ r² f`` (len(meats), m, d) and ``Σ r²`` (len(meats), m) of each meat and target, and max h;
    ``bufs``: the thread's scratch arrays (see :func:`fast_meats`)."""
    plan = blk.plan
    m, d = plan.coef.shape
    buf, qbuf, gbuf = bufs
    X = blk.X[s:s + blk.rows]
    k = X.shape[0]
    F = np.subtract(X, plan.shift[None, :], out=buf[:k])
    if blk.off is not None:
        F -= blk.off[None, :]  # exactly about x̄ = s + off: the bread is blockdiag(1/Σw, Sxx⁻¹)
    E = ((blk.Y[s:s + k] - blk.yb[0]) - blk.yb[1]) - skinny(F, blk.coef_t)  # as :func:`residuals`
    if not blk.centred:  # a GEMM, not a TRMM: SciPy's dtrmm holds the GIL (threads would wait)
        F = np.matmul(F, plan.basis, out=qbuf[:k])
    w = blk.w[s:s + k]
    hmax, c = 0.0, None
    meats = plan.meats
    if any(meats):  # the leverages (HC2, HC3)
        h = leverage(plan, np.einsum("ij,ij->i", F, F) + blk.c0 * blk.c0, w)
        hmax = float(np.max(h))
        with np.errstate(divide="ignore", invalid="ignore"):
            q = 1.0 / (1.0 - h)  # NaN where h > 1 (rounding): HC2/HC3 undefined
        c = (np.sqrt(q), q)  # (1 − h)^(−1/2), (1 − h)^(−1)
    ra = np.abs(E)
    ra *= (w if plan.analytic else np.sqrt(w))[:, None]  # √a of HC0, (k, m)
    K = len(meats)
    S, v, rr = np.empty((K, m, d, d)), np.zeros((K, m, d)), np.zeros((K, m))
    for t in range(m):
        r = ra[:, t]
        if meats[0]:
            r = r * c[meats[0] - 1]
        G = np.multiply(F, r[:, None], out=F if gbuf is None else gbuf[:k])
        for i, j in enumerate(meats):
            if i:
                dj = j - meats[i - 1]
                G *= c[dj - 1][:, None]
                r = r * c[dj - 1]
            S[i, t] = dot(G.T, G)  # syrk (jaxlm.core.blas.dot)
            if blk.c0:
                v[i, t] = dot(G.T, r)
                rr[i, t] = dot(r, r)
    return S, v, rr, hmax
