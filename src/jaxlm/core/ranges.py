"""Data near the ends of the float64 range: the scaled problem's results in the data's units.

A least-squares state may hold the data in power-of-two units (:mod:`jaxlm.core.state`:
``X·2^-ux``, ``Y·2^-uy``, ``w·2^-uw``). Scaling by a power of two is exact, so the scaled
problem has the same solution; these helpers map its coefficients and statistics back
(``β = β̃·2^(uy − ux)``), express the ridge penalty in its units, and refuse, with an
:class:`~jaxlm.core.errors.InputError` that names the column, a result that is itself
not representable in float64.
"""
from __future__ import annotations

import math

import numpy as np

from . import state as st
from .errors import InputError

#: A coefficient below the normal float64 range is accepted while rounding it moves the
#: predictions by at most 2^LOST_SLACK_LOG2 units of y's resolution.
LOST_SLACK_LOG2 = 8
TINY = np.finfo(np.float64).tiny


def column_name(names, j: int, prefix: str) -> str:
    """Column j as messages name it: its name (quoted) when known, else x0, x1, ... or y, y1, ..."""
    if names is not None:
        return repr(str(list(names)[j]))
    return f"{prefix}{j}" if prefix == "x" else ("y" if j == 0 and prefix == "y" else f"y{j}")


def ldexp(a, e):
    """``a·2^e`` (arrays; exact unless out of range), without floating-point warnings."""
    if not np.any(e):
        return np.asarray(a, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        return np.ldexp(np.asarray(a, dtype=np.float64), np.asarray(e).astype(np.int64))


def to_data(a, e):
    """A statistic of the scaled problem in the data's units, ``a·2^e``: inf beyond float64, and
    NaN for a nonzero value below its normal range (0 or a subnormal would understate it: a
    zero variance is a plausible wrong number)."""
    if not np.any(e):
        return np.asarray(a, dtype=np.float64)
    v = ldexp(a, e)
    with np.errstate(invalid="ignore"):
        return np.where((np.asarray(a) != 0) & (np.abs(v) < TINY), np.nan, v)


def fmt(value_s: float, log2: float) -> str:
    """``value_s·2^log2`` as text, also when it lies outside float64."""
    v = float(ldexp(value_s, log2))
    if v == 0 or (math.isfinite(v) and abs(v) >= TINY):
        return f"{v:.3g}"
    if value_s == 0 or not math.isfinite(value_s):
        return f"{value_s:.3g}"
    t = math.log10(abs(value_s)) + log2 * math.log10(2)
    e = math.floor(t)
    return f"{'-' if value_s < 0 else ''}{10 ** (t - e):.3g}e{e:+d}"


def ridge_in_units(alpha: float, units: st.Units, *, feature_names=None) -> np.ndarray | float:
    """The ridge penalty of the scaled problem: ``α·2^(−uw − 2ux_j)`` per column (α itself when
    the state is in the data's units). Raises InputError when it exceeds float64."""
    if not units.scaled or alpha == 0:
        return alpha
    with np.errstate(over="ignore", under="ignore"):
        a = np.ldexp(float(alpha), (-units.w - 2 * units.x).astype(np.int64))
    if not np.all(np.isfinite(a)) or np.any(a > 2.0**1000):
        j = int(np.argmin(units.x))
        raise InputError("alpha", f"alpha={alpha!r} cannot be applied in float64 to these data: column "
                                  f"{column_name(feature_names, j, 'x')} has values of about 2^{int(units.x[j])} "
                                  f"(~1e{int(units.x[j] * math.log10(2))}), so the penalty on its coefficient is "
                                  f"beyond the float64 range. Rescale that column (or the weights) to moderate "
                                  f"magnitudes, or use alpha=0.")
    return a


def to_data_units(coef_s: np.ndarray, intercept_s: np.ndarray, units: st.Units, *, feature_names=None,
                  target_names=None):
    """Coefficients (m, d) and intercepts (m,) of the scaled problem mapped back exactly:
    ``β = β̃·2^(uy − ux)``, ``β₀ = β̃₀·2^uy``.

    Raises InputError when one is beyond float64, or is nonzero but falls below the normal
    range by so much that its rounding would move the predictions by more than the resolution
    of y (a coefficient rounded to zero there would be a plausible wrong number).
    """
    if not units.scaled:
        return coef_s, intercept_s
    e = (units.y[:, None] - units.x[None, :]).astype(np.int64)
    with np.errstate(over="ignore", under="ignore"):
        coef = np.ldexp(coef_s, e)
        intercept = np.ldexp(intercept_s, units.y.astype(np.int64))
    # log2 of y's resolution (an ulp of its largest values, or the smallest subnormal), and the
    # largest error that rounding the coefficient to the subnormal grid puts into x·β
    resolution = np.maximum(units.y[:, None] - 53, -1074)
    lost = (coef_s != 0) & (np.abs(coef) < TINY) & (units.x[None, :] - 1075 > resolution + LOST_SLACK_LOG2)
    bad = ~np.isfinite(coef) | lost
    if np.any(bad):
        k, j = (int(v) for v in np.argwhere(bad)[0])
        mag = math.log10(abs(coef_s[k, j])) + float(e[k, j]) * math.log10(2)
        where = "beyond" if mag > 0 else "below"
        raise InputError("X", f"the coefficient of column {column_name(feature_names, j, 'x')} on "
                              f"{column_name(target_names, k, 'y')} is about 1e{mag:+.0f}, {where} the float64 range "
                              f"(about 1e±308): that column's values are about 2^{int(units.x[j])} and the "
                              f"target's about 2^{int(units.y[k])}. Rescale the column (or the target) so that "
                              f"the coefficient is representable, e.g. express it in other units.")
    if not np.all(np.isfinite(intercept)):
        k = int(np.flatnonzero(~np.isfinite(intercept))[0])
        mag = math.log10(abs(intercept_s[k])) + float(units.y[k]) * math.log10(2)
        raise InputError("y", f"the intercept of {column_name(target_names, k, 'y')} is about 1e{mag:+.0f}, beyond the "
                              f"float64 range (about 1e±308). Centre or rescale the target (or the columns far "
                              f"from the origin), or fit without an intercept.")
    return coef, intercept
