"""Double-double arithmetic (≈ 106-bit significands) from error-free transformations.

A double-double value is a pair (hi, lo) of float64 arrays with |lo| ≤ ulp(hi)/2 and
value hi + lo. The building blocks are Knuth's TwoSum and Dekker's TwoProd (with
Veltkamp splitting), which are exact in IEEE float64 arithmetic with round-to-nearest.

This runs in NumPy on the host on purpose: NumPy evaluates each elementwise operation
exactly as written, whereas a compiler that contracts ``a*b + c`` into a fused
multiply-add (as XLA may on GPUs) would break Dekker's splitting. It is used only by
the refinement step of the exact solvers, to compute least-squares gradients
``Xᵀ(y − Xβ)`` to ~32 digits, which is what lets refinement converge to the exact
solution of the float64 problem.
"""
from __future__ import annotations

import numpy as np

_SPLITTER = 134217729.0  # 2**27 + 1


def two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def diff_error(a, b, d, out, tmp):
    """TwoSum's error term of ``d = fl(a − b)`` (``a − b − d`` exactly; zero wherever the difference
    is exact, Sterbenz) into ``out``, with ``tmp`` as scratch (both shaped as ``d``): the in-place
    form of :func:`two_sum`'s second result for ``(a, −b)``. Returns ``out``."""
    bb = np.subtract(d, a, out=tmp)    # bb = s − a
    err = np.subtract(d, bb, out=out)  # s − bb
    np.subtract(a, err, out=err)       # a − (s − bb)
    np.add(bb, b, out=bb)              # −(−b − bb)
    return np.subtract(err, bb, out=err)


def fast_two_sum(a, b):
    """Exact when |a| ≥ |b| (or a == 0)."""
    s = a + b
    return s, b - (s - a)


def _split(a):
    c = _SPLITTER * a
    hi = c - (c - a)
    return hi, a - hi


def two_prod(a, b):
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def add(a, b):
    """(a_hi, a_lo) + (b_hi, b_lo)."""
    s, e = two_sum(a[0], b[0])
    t, f = two_sum(a[1], b[1])
    e = e + t
    s, e = fast_two_sum(s, e)
    e = e + f
    return fast_two_sum(s, e)


def mul(a, b):
    """(a_hi, a_lo) · (b_hi, b_lo)."""
    p, e = two_prod(a[0], b[0])
    e = e + (a[0] * b[1] + a[1] * b[0])
    return fast_two_sum(p, e)


def mul_d(a, b):
    """(a_hi, a_lo) · b for a float64 array b."""
    p, e = two_prod(a[0], b)
    e = e + a[1] * b
    return fast_two_sum(p, e)


def from_diff(a, b):
    """a − b exactly, as a double-double."""
    return two_sum(a, -b)


def total(a, axis=0):
    """Sum of a double-double array along ``axis`` by pairwise reduction."""
    hi = np.moveaxis(np.asarray(a[0], dtype=np.float64), axis, 0)
    lo = np.moveaxis(np.asarray(a[1], dtype=np.float64), axis, 0)
    while hi.shape[0] > 1:
        if hi.shape[0] % 2:
            pad = np.zeros((1,) + hi.shape[1:])
            hi = np.concatenate([hi, pad])
            lo = np.concatenate([lo, pad])
        hi, lo = add((hi[0::2], lo[0::2]), (hi[1::2], lo[1::2]))
    if hi.shape[0] == 0:
        return np.zeros(hi.shape[1:]), np.zeros(hi.shape[1:])
    return hi[0], lo[0]
