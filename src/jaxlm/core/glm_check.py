"""The check pass of a GLM fit (pass 0, :mod:`jaxlm.core.glm_passes`) and the block helpers of every
GLM pass: validation of the rows (an InputError naming the first offending row) and the sums
of ``y`` that start IRLS (:class:`DataSummary`); :func:`host_summary`, the same from in-memory
per-row arrays without reading X (the first IRLS pass then checks X: ``Point.check_x``).
Blocks are ``(X (b, d), Y (b, 1) or (b,), w (b,), offset (b,), var_weights (b,))``.
"""
from __future__ import annotations

import functools
import operator
from typing import NamedTuple

import numpy as np

from .errors import InputError
from .families import Family
from .reduction import Reduction

__all__ = ["DataSummary", "block_arrays", "check_reduction", "host_summary", "positive_rows", "spread_reduction",
           "summarise"]


class DataSummary(NamedTuple):
    """What the check pass learnt about the rows (all over rows with ``w > 0``)."""

    rows: int            # rows seen (all, including w = 0)
    nobs: int            # rows with w > 0
    wnobs: float         # Σ w (frequency-weighted number of observations)
    y_mean: float        # Σ w y / Σ w (the starting mean)
    null_mean: float     # Σ w v y / Σ w v: the fitted mean of the intercept-only model without offset
    has_offset: bool     # some offset is nonzero
    x_checked: bool = True  # False (host_summary): X is still to be checked (by the first IRLS pass)


# --------------------------------------------------------------------------- block helpers
def block_arrays(X, Y, w, offset=None, var_weights=None, *, fill: bool = True):
    """float64 arrays of one block; absent offsets and var_weights are 0 and 1 (arrays, or
    None with ``fill=False``)."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(Y, dtype=np.float64).reshape(-1)
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    if offset is not None:
        offset = np.asarray(offset, dtype=np.float64).reshape(-1)
    elif fill:
        offset = np.zeros_like(w)
    if var_weights is not None:
        var_weights = np.asarray(var_weights, dtype=np.float64).reshape(-1)
    elif fill:
        var_weights = np.ones_like(w)
    return X, y, w, offset, var_weights


def _rows_of(a, k):
    return None if a is None else a[k]


def positive_rows(X, y, w, offset, vw):
    """The rows with w > 0 (views when all are)."""
    keep = w > 0
    if keep.all():
        return X, y, w, offset, vw
    return X[keep], y[keep], w[keep], _rows_of(offset, keep), _rows_of(vw, keep)


# ------------------------------------------------------------------------------ pass 0
class _Check(NamedTuple):
    rows: int
    nobs: int
    wsum: float
    wy: float
    iwsum: float
    iwy: float
    offset_nonzero: bool
    bad: tuple | None   # (row, param, value, column or None) of the first offending row


def _check_init():
    return _Check(0, 0, 0.0, 0.0, 0.0, 0.0, False, None)


def _first_bad(masks):
    """(row, param, column) of the earliest True among ``[(param, mask (b,) or (b, d))]``."""
    best = None
    for param, mask in masks:
        rows = np.flatnonzero(mask if mask.ndim == 1 else mask.any(axis=1))
        if rows.size and (best is None or rows[0] < best[0]):
            col = None if mask.ndim == 1 else int(np.flatnonzero(mask[rows[0]])[0])
            best = (int(rows[0]), param, col)
    return best


def _check_update(family: Family, acc: _Check, X, Y, w, offset=None, var_weights=None) -> _Check:
    X, y, w, offset, vw = block_arrays(X, Y, w, offset, var_weights, fill=False)
    b = w.shape[0]
    pos = w > 0
    allpos = bool(pos.all())
    with np.errstate(invalid="ignore", over="ignore"):
        # a NaN or inf anywhere in a row makes its (scaled) row sum non-finite: one matrix-vector
        # product reads X once; masks locating the first offending row are built only on failure
        rowsum = X @ np.full(X.shape[1], 2.0**-10) if X.shape[1] else np.zeros(b)
        # per element (not the sums: finite values whose sum overflows would leave no row to name)
        ok = (np.all(w >= 0) and np.isfinite(w).all() and not np.any(family.invalid_y(y[pos] if not allpos else y))
              and np.isfinite(rowsum if allpos else rowsum[pos]).all()
              and (vw is None or (np.all((vw if allpos else vw[pos]) > 0) and np.isfinite(vw[pos]).all()))
              and (offset is None or np.isfinite(offset[pos]).all()))
    bad = acc.bad
    if not ok and bad is None:
        vw1 = np.ones(b) if vw is None else vw
        off0 = np.zeros(b) if offset is None else offset
        with np.errstate(invalid="ignore", over="ignore"):
            masks = [("freq_weights", ~(np.isfinite(w) & (w >= 0))),
                     ("var_weights", pos & ~(np.isfinite(vw1) & (vw1 > 0))), ("offset", pos & ~np.isfinite(off0)),
                     ("y", pos & family.invalid_y(y)), ("X", ~np.isfinite(X) & pos[:, None])]
        found = _first_bad(masks)
        if found is None:  # every value finite, a row's sum not: values near the end of the float64 range
            raise InputError("X", "X must be small enough that each row's sum stays finite; got finite values whose "
                                  "sum overflows (near ±1.8e308). Rescale the very large columns.")
        row, param, col = found
        arrays = {"freq_weights": w, "var_weights": vw1, "offset": off0, "y": y}
        value = float(X[row, col]) if param == "X" else float(arrays[param][row])
        bad = (acc.rows + row, param, value, col)
    if bad is not None:  # the sums no longer matter
        return acc._replace(rows=acc.rows + b, bad=bad)
    if not allpos:
        y, w = y[pos], w[pos]
        vw = None if vw is None else vw[pos]
        offset = None if offset is None else offset[pos]
    iw = w if vw is None else w * vw
    return _Check(acc.rows + b, acc.nobs + int(w.shape[0]), acc.wsum + float(w.sum()), acc.wy + float(w @ y),
                  acc.iwsum + float(iw.sum()), acc.iwy + float(iw @ y),
                  acc.offset_nonzero or (offset is not None and bool(np.any(offset != 0))), None)


def _check_merge(a: _Check, b: _Check) -> _Check:
    bad = a.bad
    if bad is None and b.bad is not None:
        bad = (a.rows + b.bad[0],) + tuple(b.bad[1:])
    return _Check(a.rows + b.rows, a.nobs + b.nobs, a.wsum + b.wsum, a.wy + b.wy, a.iwsum + b.iwsum,
                  a.iwy + b.iwy, a.offset_nonzero or b.offset_nonzero, bad)


def check_reduction(family: Family) -> Reduction:
    """Pass 0: validation and the sums of ``y`` (see :func:`summarise`)."""
    return Reduction(_check_init, functools.partial(_check_update, family), _check_merge)


def _spread_update(acc, X, Y, w, *extra):  # acc: [n, Σx (d), Σx² (d)]
    X = np.asarray(X, dtype=np.float64)[np.asarray(w).reshape(-1) > 0]
    return acc + np.concatenate([[X.shape[0]], X.sum(axis=0), np.einsum("ij,ij->j", X, X)])


def _spread_finish(acc):
    d, n = (acc.size - 1) // 2, max(acc[0], 1.0)
    mean = acc[1:d + 1] / n
    return np.sqrt(np.maximum(acc[d + 1:] / n - mean * mean, 0.0))


def spread_reduction(d: int) -> Reduction:
    """The unweighted standard deviation of each column of X over rows with w > 0 (a scale,
    computed naively: only to compare coefficients, e.g. to name a separating direction)."""
    return Reduction(functools.partial(np.zeros, 2 * d + 1), _spread_update, operator.add, _spread_finish)


_RULES = {"freq_weights": "a finite number >= 0", "var_weights": "a finite number > 0",
          "offset": "a finite number", "X": "finite (no NaN or inf)"}
_FIXES = {"freq_weights": "Frequency weights count rows: use 0 to drop a row.",
          "var_weights": "Variance weights scale each row's variance; drop rows instead of giving them weight 0.",
          "offset": "Drop or impute missing offsets (an exposure of 0 gives log(0) = -inf).",
          "X": "Drop or impute missing values before fitting."}


def summarise(acc: _Check, family: Family) -> DataSummary:
    """The :class:`DataSummary` of a finished check pass; InputError for the first bad row."""
    if acc.bad is not None:
        row, param, value, col = acc.bad
        if param == "y":
            rule, fix = f"{family.support} for the {family.describe()} family", family.support_fix
        else:
            rule, fix = _RULES[param], _FIXES[param]
        where = f"row {row}" + (f", column {col}" if col is not None else "")
        raise InputError(param, f"{param} must be {rule}; got {param}={value!r} at {where}. {fix}")
    if acc.nobs == 0:
        raise InputError("freq_weights", "freq_weights must be positive for at least one row; got no rows with "
                                         "positive weight. Pass some data to fit.")
    return DataSummary(acc.rows, acc.nobs, acc.wsum, acc.wy / acc.wsum, acc.iwy / acc.iwsum, acc.offset_nonzero)


def host_summary(y, w, offset, var_weights, family: Family) -> DataSummary | None:
    """The :class:`DataSummary` of in-memory per-row arrays ((n,) each; offset, var_weights may be
    None) without reading X (``x_checked=False``: the first IRLS pass checks X), or None when
    some row breaks a rule (the check pass then names it)."""
    pos = w > 0
    allpos = bool(pos.all())
    yp, wp = (y, w) if allpos else (y[pos], w[pos])
    vp = None if var_weights is None else (var_weights if allpos else var_weights[pos])
    with np.errstate(invalid="ignore", over="ignore"):
        if not (np.all(w >= 0) and np.isfinite(w).all() and wp.size and not np.any(family.invalid_y(yp))
                and (vp is None or (np.all(vp > 0) and np.isfinite(vp).all()))
                and (offset is None or np.isfinite(offset[pos]).all())):
            return None
    iw = wp if vp is None else wp * vp
    wsum, iwsum = float(wp.sum()), float(iw.sum())
    return DataSummary(int(w.shape[0]), int(wp.shape[0]), wsum, float(wp @ yp) / wsum, float(iw @ yp) / iwsum,
                       offset is not None and bool(np.any(offset[pos] != 0)), x_checked=False)
