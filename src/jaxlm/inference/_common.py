"""What the statistics modules share: kinds, result tuples, small checks. Imports nothing of
:mod:`jaxlm.inference` (so summary, prediction and results need not import each other)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..core.errors import InputError

WEIGHTS_KINDS = ("frequency", "analytic")
COV_KINDS = ("nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster", "HAC")
#: The kinds computed from the state and the statistics' pass (the others need their own pass:
#: cluster columns or rows in time order).
HC_KINDS = ("HC0", "HC1", "HC2", "HC3")
#: ``refine="auto"`` refines ``(XᵀWX)⁻¹`` above this condition number (centred, equilibrated
#: design): below it, plain float64 triangular solves already give ≥ 13 digits.
REFINE_COND = 10.0
#: ... and only while the double-double Gram pass costs at most this many n·d² products
#: (≈ 1 s of NumPy); above it a note says how many digits to expect instead.
REFINE_BUDGET = 1 << 24
EPS = np.finfo(np.float64).eps

class CoefTable(NamedTuple):
    """The coefficient table for one covariance kind and confidence level (arrays (p,))."""

    coef: np.ndarray
    std_errors: np.ndarray
    t_values: np.ndarray
    p_values: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


class _Design(NamedTuple):
    """Pieces shared by all targets: the bread and what prediction intervals need (in the
    data's units; entries that are not representable there are NaN, see :class:`_Scaled`)."""

    bread: np.ndarray | None      # (p, p) (X̃ᵀWX̃)⁻¹ (pseudo-inverse if rank deficient); None: no inference
    sxx_inv: np.ndarray | None    # (d, d) (Xcᵀ W Xc)⁻¹ (centred with an intercept, uncentred without)
    mean_x: np.ndarray            # (d,) x̄ (zeros without intercept)
    wsum: float                   # Σ w


class _Scaled(NamedTuple):
    """One target's statistics in the state's power-of-two units (all zero for data in range).

    Data-unit values: ``sse = sse·2^log2_sse``, a coefficient-indexed covariance entry
    ``cov[i, j] = cov_s[i, j]·2^(lc_i + lc_j)``, a standard error ``se_s·2^lc``.
    """

    lc: np.ndarray                # (p,) log2 units of the coefficients: uy for the intercept, uy − ux_j
    log2_sse: float               # uw + 2·uy
    sse: float                    # Σ w̃ ẽ² (scaled)
    sst: float
    bread: np.ndarray | None      # (X̃ᵀW̃X̃)⁻¹ of the scaled data (None: no inference)
    sxx_inv: np.ndarray | None
    mean_x: np.ndarray            # (d,) scaled x̄ (zeros without intercept)
    wsum: float                   # Σ w̃
    ux: np.ndarray                # (d,)
    uy: float
    uw: float


def _readonly(a):
    if a is None:
        return None
    a = np.array(a, dtype=np.float64, copy=True)
    a.setflags(write=False)
    return a


def _check_level(level) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) or not 0 < level < 1:
        raise InputError("level", f"level must be a number strictly between 0 and 1; got level={level!r}. "
                                  f"Use e.g. level=0.95 for 95% intervals.")
    return float(level)


def _names(names, k, default, what):
    if names is None:
        return default
    names = tuple(str(v) for v in names)
    if len(names) != k:
        raise InputError(what, f"{what} must have {k} entries; got {len(names)}: {list(names)[:10]}.")
    return names


def is_results(obj) -> bool:
    """Whether ``obj`` is one target's :class:`~jaxlm.inference.regression.RegressionResults`
    (checked by its marker, so that summary and prediction need not import that module)."""
    return getattr(type(obj), "_REGRESSION_RESULTS", False) is True


def _readonly_bool(a):
    a = np.array(a, dtype=bool, copy=True)
    a.setflags(write=False)
    return a
