"""Exact float64 products by splitting (Ozaki's scheme, one level): the building block of the
double-double sums (:mod:`jaxlm.core.exact_sums`) and of the refinement pass
(:func:`jaxlm.core.passes.dd_gradient_block`).

A column ``a`` is split into ``S + R`` exactly, ``S`` on the grid ``2^(e − BITS)`` of the column's
largest magnitude ``2^e``: ``S`` holds integers below ``2^BITS`` times the grid. Products of two
such columns summed over at most ``ROWS`` rows are then exact in float64 (``2·BITS + log2(ROWS)
≤ 53``), whatever the order of the sum (BLAS); the remainders are ``2^-BITS`` of the total and
their float64 rounding ~2⁻⁷³ of it.
"""
from __future__ import annotations

import threading

import numpy as np

from . import dd
from .blas import dot

#: Rows per exact product: 2·BITS + log2(ROWS) ≤ 53.
ROWS = 4096
BITS = 20


def split_grid(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``a = S + R`` exactly, with ``S`` ``a`` rounded to its column's grid ``g = 2^(e − BITS)``
    (``|a| < 2^e``) by adding and subtracting ``1.5·2^(e − BITS + 52)`` (one rounding, exact
    difference), so that ``S/g`` are integers below ``2^BITS``. Returns ``(S, R, g)``
    (:func:`split_columns` into new arrays)."""
    s, r = np.empty_like(a), np.empty_like(a)
    return s, r, split_columns(a, s, r)


def split_columns(a: np.ndarray, out_s: np.ndarray, out_r: np.ndarray) -> np.ndarray:
    """``a = S + R`` exactly into ``out_s``, ``out_r``: :func:`split_grid` without its temporaries (the
    columns' largest magnitudes from their maximum and minimum). Returns the grid ``g`` (cols,)."""
    e = np.frexp(column_top(a))[1]
    big = np.ldexp(1.5, e - BITS + 52)
    np.add(a, big, out=out_s)
    out_s -= big
    np.subtract(a, out_s, out=out_r)
    return np.ldexp(1.0, e - BITS)


#: Elements per row of the view in which :func:`column_top` reduces a C-ordered array.
TOP_WIDTH = 512


def column_top(a: np.ndarray) -> np.ndarray:
    """Each column's largest magnitude, ``max |a[:, j]|`` (0 for no rows), from its maximum and minimum.

    NumPy reduces a C-ordered array over axis 0 one row at a time: 2.5 ns per element for rows of 20,
    9 ns for rows of 5 (one core). Here ``k`` rows are viewed as one row of ``k·cols`` (up to
    :data:`TOP_WIDTH`), reduced, and the ``k`` partial results folded: 0.36 ns per element."""
    n, cols = a.shape
    if not n:
        return np.zeros(cols)
    k = max(1, TOP_WIDTH // max(cols, 1)) if a.flags.c_contiguous else 1
    whole = (n // k) * k
    if k > 1 and whole:
        b = a[:whole].reshape(whole // k, k * cols)
        hi, lo = b.max(axis=0).reshape(k, cols).max(axis=0), b.min(axis=0).reshape(k, cols).min(axis=0)
        if whole < n:
            hi, lo = np.maximum(hi, a[whole:].max(axis=0)), np.minimum(lo, a[whole:].min(axis=0))
    else:
        hi, lo = a.max(axis=0), a.min(axis=0)
    return np.maximum(hi, -lo)


#: Up to this many columns on the thin side, :func:`skinny` and :func:`skinny_t` multiply column by column.
SKINNY = 4


def skinny(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for a tall ``a`` (rows, d) and a thin ``b`` (d, k): for ``k ≤ SKINNY`` one matrix-vector
    product per column of ``b`` (into a column-major result). OpenBLAS's ``dgemm`` with 2 or 3 columns
    costs 0.40-0.66 ns per element of ``a`` (one core, 2 MiB pieces), its ``dgemv`` 0.10-0.13 per
    column. Sums over the same rows, so a product that is exact either way stays exact."""
    k = b.shape[1]
    if k > SKINNY:
        return dot(a, b)
    out = np.empty((a.shape[0], k), dtype=np.result_type(a, b), order="F")
    for j in range(k):
        dot(a, b[:, j], out=out[:, j])
    return out


def skinny_t(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a.T @ b`` for tall ``a`` (rows, d) and ``b`` (rows, k): :func:`skinny`'s rule for the transpose."""
    k = b.shape[1]
    if k > SKINNY:
        return dot(a.T, b)
    out = np.empty((a.shape[1], k), dtype=np.result_type(a, b), order="F")
    for j in range(k):
        dot(a.T, b[:, j], out=out[:, j])
    return out


#: Largest scratch buffer (bytes) a thread keeps between pieces (:func:`scratch`).
SCRATCH_BYTES = 8 << 20
_SCRATCH = threading.local()


def scratch(key: str, shape: tuple, order: str = "C") -> np.ndarray:
    """An uninitialised (rows, cols) array for ``key``: this thread's buffer from an earlier piece
    when one fits (its first rows), else a new one, kept if at most :data:`SCRATCH_BYTES`. Fresh
    buffers of a few MB per piece cost their page faults every time (glibc returns freed memory at
    the top of the heap): the refinement gradient of 1e6 × 50 rows took 0.43 CPU s with a new set
    per piece, 0.12 s reusing them (6,400-row pieces, one core). Callers overwrite every element."""
    rows, cols = shape
    bufs = _SCRATCH.__dict__
    kept = bufs.get(key)
    if kept is not None and kept[0] == order and kept[1].shape[0] >= rows and kept[1].shape[1] == cols:
        return kept[1][:rows]
    buf = np.empty((rows, cols), order=order)
    if buf.nbytes <= SCRATCH_BYTES:
        bufs[key] = (order, buf)
    return buf


def exact_cross(s_a: np.ndarray, s_b: np.ndarray):
    """``s_aᵀ s_b`` exactly as a double-double, for column-grid splits (:func:`split_grid`):
    summed over blocks of ROWS rows, where float64 products and sums are exact."""
    hi = np.zeros((s_a.shape[1], s_b.shape[1]))
    lo = np.zeros_like(hi)
    for start in range(0, s_a.shape[0], ROWS):
        hi, lo = dd.add((hi, lo), (dot(s_a[start:start + ROWS].T, s_b[start:start + ROWS]), np.zeros_like(hi)))
    return hi, lo
