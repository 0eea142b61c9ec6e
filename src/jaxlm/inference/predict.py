"""Confidence and prediction intervals for new observations (R's ``predict(interval=)``)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..core.errors import InputError, check_choice
from ..core.special import stdtrit  # the t quantile without SciPy (import scipy.special: ~0.1 s)
from ._common import _check_level, is_results

INTERVAL_KINDS = ("confidence", "prediction")


class Interval(NamedTuple):
    """Predicted mean and interval bounds, each (n,) for one target or (n, m) for several."""

    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def predict_interval(results, X_new, *,
                     kind: str = "confidence", level: float = 0.95, weights=None) -> Interval:
    """Mean prediction with a confidence or prediction interval.

    For a new row ``x`` (``x̃ = [1, x]`` with an intercept), ``ŷ = x̃ᵀβ̂`` and

    - ``kind="confidence"`` (the mean response): ``Var = σ̂² · x̃ᵀ (X̃ᵀWX̃)⁻¹ x̃``,
      evaluated in centred form ``σ̂² (1/Σw + (x − x̄)ᵀ Sxx⁻¹ (x − x̄))`` so that no digits
      are lost to the intercept;
    - ``kind="prediction"`` (a new observation): ``Var + σ̂² / w_new``.

    The interval is ``ŷ ∓ t_{(1+level)/2, df} · sqrt(Var)`` (``df`` as the results' t tests: ``df_resid``,
    ``G − 1`` under clustering); under a robust ``cov_type`` the variance of the mean is
    ``x̃ᵀ V x̃`` with that covariance ``V`` (statsmodels' ``get_prediction``).

    New-observation weights: with frequency weights a new observation is one row
    (``w_new = 1``; ``weights`` must be None). With analytic weights ``weights`` gives the
    new rows' inverse-variance weights (``Var(ε_new) = σ²/w_new``), default 1 — a new
    observation with unit weight, as statsmodels ``WLS.get_prediction``.

    Parameters
    ----------
    results : RegressionResults, or a sequence of them (one per target)
    X_new : array (n, d)
    kind : {"confidence", "prediction"};  level : float in (0, 1)
    weights : array (n,) of positive numbers, optional (analytic weights only)

    Returns
    -------
    Interval(mean, lower, upper): arrays (n,) for one results object, (n, m) for a sequence.
    Bounds are NaN when df_resid ≤ 0.

    Raises
    ------
    InputError for ridge and gradient fits (no sampling distribution to draw intervals from).
    """
    kind = check_choice("kind", kind, INTERVAL_KINDS)
    level = _check_level(level)
    many = not is_results(results)
    seq = tuple(results) if many else (results,)
    if not seq or not all(is_results(r) for r in seq):
        raise InputError("results", "results must be a RegressionResults or a sequence of them (one per target); "
                                    f"got {type(results).__name__}.")
    first = seq[0]
    design = first._design
    if design.bread is None:
        raise InputError("results", f"predict_interval needs an unpenalised exact fit; {first.inference_note}")
    d = first.n_params - first.k_constant
    X = np.asarray(X_new, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != d:
        raise InputError("X_new", f"X_new must be a 2-D array with {d} columns (n, {d}); got shape {X.shape}. "
                                  f"Reshape a single row with X_new.reshape(1, -1).")
    if not np.isfinite(X).all():
        raise InputError("X_new", "X_new contains NaN or inf; intervals need finite values.")
    if weights is not None:
        if first.weights_kind != "analytic":
            raise InputError("weights", "weights of new observations are meaningful only for analytic weights "
                                        "(weights_kind='analytic'); with frequency weights a new observation is one "
                                        "row. Pass weights=None.")
        wn = np.asarray(weights, dtype=np.float64).reshape(-1)
        if wn.shape[0] != X.shape[0] or not np.all(np.isfinite(wn)) or np.any(wn <= 0):
            raise InputError("weights", f"weights must be {X.shape[0]} finite positive numbers (one per row of "
                                        f"X_new); got {np.asarray(weights)!r}.")
    else:
        wn = np.ones(X.shape[0])
    means, lows, highs = [], [], []
    for r in seq:
        beta = np.asarray(r.coef)
        mean = X @ beta[r.k_constant:] + (beta[0] if r.fit_intercept else 0.0)
        df = r.inference_df()
        q = stdtrit(df, 0.5 + level / 2.0) if df > 0 and r.df_resid > 0 else np.nan
        # evaluated in the state's power-of-two units: finite wherever the standard deviation is,
        # also for data near the float64 range (see RegressionResults._prediction_sd)
        half = q * r._prediction_sd(X, kind, wn)
        means.append(mean)
        lows.append(mean - half)
        highs.append(mean + half)
    if many:
        return Interval(np.column_stack(means), np.column_stack(lows), np.column_stack(highs))
    return Interval(means[0], lows[0], highs[0])
