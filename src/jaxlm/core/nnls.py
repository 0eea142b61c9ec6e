"""Non-negative least squares (scikit-learn's ``LinearRegression(positive=True)``) read off the state.

Minimise ``Σ w (y − β₀ − x·β)² + Σ α_j β_j²`` subject to ``β ≥ 0`` (the intercept is free). With
an intercept the problem in β is the centred one, ``βᵀ H β − 2 βᵀ g`` with ``H = Sxx + diag(α)``
and ``g = Sxy`` from the state; with the factor ``H = D Rᵀ R D`` (:mod:`jaxlm.core.exact`) it is
the least-squares problem ``min ‖R D β − R⁻ᵀ D⁻¹ g‖`` over ``β ≥ 0``, solved by scipy's
Lawson–Hanson active-set NNLS (``scipy.optimize.nnls``). On the passive set found (the
coefficients > 0) the solution is then re-solved from the state's own normal equations
(``H_PP β_P = g_P``), so that it is the state's unconstrained solution restricted to those
columns, to the Gram's rounding; ``β₀ = ȳ − β·x̄``.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as sla
from scipy.optimize import nnls

from . import state as st
from . import target_alpha as ta
from .ranges import ridge_in_units, to_data_units


def _passive_solve(H: np.ndarray, g: np.ndarray, passive: np.ndarray) -> np.ndarray:
    """β with β_P solving ``H_PP β_P = g_P`` (least squares if singular), zero elsewhere."""
    beta = np.zeros(H.shape[0])
    if passive.any():
        sub = H[np.ix_(passive, passive)]
        try:
            beta[passive] = sla.solve(sub, g[passive], assume_a="pos")
        except (np.linalg.LinAlgError, sla.LinAlgError):
            beta[passive] = np.linalg.lstsq(sub, g[passive], rcond=None)[0]
    return beta


def _nonnegative_targets(sxx, sxy, a, max_iter) -> np.ndarray:
    """The non-negative coefficients (m, d) of the targets ``sxy (d, m)`` under the penalty ``a (d,)``."""
    d, m = sxy.shape
    H = sxx + np.diag(a)
    scale = np.sqrt(np.maximum(np.diag(H), 0.0))
    scale = np.where(scale > 0, scale, 1.0)
    He = H / np.outer(scale, scale)
    lam, vecs = np.linalg.eigh(He)
    root = (vecs * np.sqrt(np.maximum(lam, 0.0))) @ vecs.T  # He = root², root symmetric
    coef = np.zeros((m, d))
    for k in range(m):
        ge = sxy[:, k] / scale
        b = np.linalg.lstsq(root, ge, rcond=None)[0]  # root⁻¹ ge (least squares if singular)
        z, _ = nnls(root, b, maxiter=max_iter)
        coef[k] = _passive_solve(H, sxy[:, k], z > 0) if np.all(lam > 0) else z / scale
    return coef


def nonnegative(sol, *, alpha=0.0, fit_intercept: bool = True, max_iter: int | None = None):
    """``sol`` (an exact :class:`~jaxlm.core.solution.Solution` with its state and factor) with the
    coefficients replaced by the non-negative least-squares ones (β ≥ 0), the intercept through
    the means and ``sse`` the residual sum of squares at them (in the state's units). ``alpha``: a
    float, or one penalty per target (:mod:`jaxlm.core.target_alpha`), each target solved with its own."""
    state = sol.state
    units = st.units_of(state)
    s = st.moments(state) if fit_intercept else st.uncentred(state)
    sxx, sxy, syy = (np.asarray(a, dtype=np.float64) for a in s)
    d, m = sxy.shape
    coef = np.zeros((m, d))
    for a_k, idx in ta.groups(alpha) if ta.is_per_target(alpha) else ((alpha, np.arange(m)),):
        a = np.broadcast_to(np.asarray(ridge_in_units(a_k, units), dtype=np.float64), (d,))
        coef[idx] = _nonnegative_targets(sxx, sxy[:, idx], a, max_iter)
    coef = np.maximum(coef, 0.0)
    sse = np.maximum(np.diag(syy) - 2 * np.sum(coef.T * sxy, axis=0)
                     + np.einsum("kd,de,ke->k", coef, sxx, coef), 0.0)
    if fit_intercept:
        from .exact import _state_intercept

        intercept = _state_intercept(state, coef)
    else:
        intercept = np.zeros(m)
    coef_d, intercept_d = to_data_units(coef, intercept, units)
    return sol._replace(coef=coef_d, intercept=intercept_d, sse=sse, refinement_steps=0)
