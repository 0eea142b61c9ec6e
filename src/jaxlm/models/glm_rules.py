"""Checks of the GLM estimators' per-row options (weights, offsets, exposure), shared by the
in-memory fit (:mod:`jaxlm.models.glm`), the streamed one (:mod:`jaxlm.models.glm_tables`)
and predictions from a table (:mod:`jaxlm.models.predict`)."""
from __future__ import annotations

import numpy as np

from ..core.errors import InputError

__all__ = ["binary_codes", "check_bool", "offsets", "row_values"]


def row_values(name: str, value, n: int, *, rule: str, ok, fix: str):
    """A float64 (n,) vector from a scalar or an array, or an InputError naming the first bad row."""
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(name, f"{name} must be numeric; got {type(value).__name__}.") from None
    if a.ndim == 0:
        a = np.full(n, float(a))
    if a.ndim != 1 or a.shape[0] != n:
        raise InputError(name, f"{name} must have one entry per row of X ({n}); got shape {a.shape}.")
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(a) & ok(a))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(name, f"{name} must be {rule}; got {name}={float(a[row])!r} at row {row} "
                               f"({int(bad.sum())} such rows). {fix}")
    return a


def offsets(offset, exposure, n: int):
    """The linear predictor's offset: ``offset + log(exposure)`` (None when neither is given)."""
    out = None
    if offset is not None:
        out = row_values("offset", offset, n, rule="a finite number", ok=np.isfinite,
                         fix="Drop or impute missing offsets.")
    if exposure is not None:
        e = row_values("exposure", exposure, n, rule="a finite number > 0", ok=lambda a: a > 0,
                       fix="Exposure is the time or size at risk; drop rows with none.")
        out = np.log(e) if out is None else out + np.log(e)
    return out


def check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(name, f"{name} must be True or False; got {name}={value!r}.")


def binary_codes(y):
    """``(classes, codes)`` of a 1-d numeric y holding one or two integer values, in one linear
    scan (what ``np.unique(y, return_inverse=True)`` gives, without sorting a million rows); None
    for anything else (labels of other types, more values, NaN), left to the general path."""
    if not isinstance(y, np.ndarray) or y.ndim != 1 or y.size == 0 or y.dtype.kind not in "iuf":
        return None
    lo, hi = y.min(), y.max()
    if not (np.isfinite(lo) and np.isfinite(hi) and lo == np.floor(lo) and hi == np.floor(hi)):
        return None
    upper = y == hi
    if lo != hi and np.count_nonzero(upper) + np.count_nonzero(y == lo) != y.size:
        return None
    classes = np.array([lo, hi] if lo != hi else [lo], dtype=y.dtype)
    return classes, upper.astype(np.float64) if lo != hi else np.zeros(y.size)
