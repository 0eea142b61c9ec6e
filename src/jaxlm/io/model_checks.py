"""The numbers of a model file checked against each other, before the model is built.

A least-squares state must be one that data can give, and the coefficients, SSE and
intercept must be the ones it gives, up to the rounding a float64 state carries
(:func:`check_state_values`, :func:`check_solution_values`; :func:`check_numbers` runs them
on a document, with the factor of the state from :mod:`jaxlm.core.exact`).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .model_json import Invalid

__all__ = ["AGREEMENT", "GLMSolved", "Moments", "Solved", "check_glm_numbers", "check_numbers", "check_solution_values", "check_state_values",
           "tolerance"]


EPS = float(np.finfo(np.float64).eps)
#: Relative agreement asked of numbers that rounding alone separates (the stored state, the
#: refined coefficients and SSE): far above float64 rounding, far below any edit that matters.
AGREEMENT = 1e-6
#: A column the state holds no data for (zero spread) gets the coefficient 0 from every solver;
#: a file may differ from 0 there by at most this share of its largest coefficient.
NULL_SHARE = 1e-9


def tolerance(count: float, p: int) -> float:
    """Relative rounding bound of sums over ``count`` rows of ``p`` columns (with margin; a
    count, which the file states, cannot loosen it beyond 1e-4)."""
    return min(AGREEMENT + 20.0 * max(count, p) * EPS, 1e-4)


class Moments(NamedTuple):
    """The state's co-moments about the means (or about the origin without an intercept)."""

    h: np.ndarray      # (d, d) Sxx (+ alpha I)
    g: np.ndarray      # (d, m) Sxy
    yy: np.ndarray     # (m,)  diag Syy
    tol: float


def check_state_values(kind: str, a: dict, *, fit_intercept: bool, alpha, constant=None) -> Moments:
    """Refuse a state that no data could have produced: counts and weight sums out of order,
    a QR factor that is not triangular, a Gram that is not symmetric positive semidefinite.
    Returns the moments the coefficients are checked against, in the state's units: ``alpha``
    is the ridge penalty in those units (a number or one per column) and ``constant`` the
    columns the solver aliases with the intercept (their rows and columns are dropped)."""
    count, wsum, wsum2 = float(a["count"]), float(a["wsum"]), float(a["wsum2"])
    if not (count >= 1 and count.is_integer()):
        raise Invalid(f"'state.count' must be a whole number of rows >= 1; got {count!r}")
    if not (wsum > 0 and wsum2 > 0):
        raise Invalid(f"'state.wsum' and 'state.wsum2' must be > 0 (rows of positive weight); got {wsum!r} and "
                      f"{wsum2!r}")
    if wsum2 > wsum * wsum * (1 + AGREEMENT) or wsum * wsum > count * wsum2 * (1 + AGREEMENT):
        raise Invalid(f"'state' weight sums must satisfy wsum2 <= wsum² <= count·wsum2 (weights >= 0); got "
                      f"count={count!r}, wsum={wsum!r}, wsum2={wsum2!r}")
    mx, my = a["mean_x"], a["mean_y"]
    d, m = mx.size, my.size
    tol = tolerance(count, d + m)
    if kind == "qr":
        r = a["r"]
        big = float(np.max(np.abs(r), initial=0.0))
        if np.any(np.abs(np.tril(r, -1)) > 64 * EPS * big):
            raise Invalid("'state.r' must be an upper triangular factor; got nonzero entries below its diagonal")
        full = r.T @ r
    else:
        full = np.empty((d + m, d + m))
        full[:d, :d], full[:d, d:], full[d:, :d], full[d:, d:] = a["sxx"], a["sxy"], a["sxy"].T, a["syy"]
        diag = np.diag(full).copy()
        # a sum of squares about the mean; rounding may leave it a little below 0 (the sums
        # about the origin, Σw·x², set the scale of that rounding)
        floor = -tol * wsum * np.concatenate([mx, my]) ** 2
        if not np.all(diag >= floor):
            name = "sxx" if not np.all(diag[:d] >= floor[:d]) else "syy"
            raise Invalid(f"'state.{name}' must have a non-negative diagonal (sums of squares); got "
                          f"{float(diag.min())!r}")
        scale = np.sqrt(np.maximum(diag, 0.0))
        scale[scale == 0] = 1.0
        full /= scale[:, None]
        full /= scale[None, :]
        if not np.max(np.abs(full - full.T), initial=0.0) <= tol:
            name = "sxx" if np.max(np.abs(full[:d, :d] - full[:d, :d].T), initial=0.0) > tol else "syy"
            raise Invalid(f"'state.{name}' must be a symmetric matrix; got one that is not")
        full += full.T
        full *= 0.5
        full[np.diag_indices_from(full)] += tol
        try:
            np.linalg.cholesky(full)
        except np.linalg.LinAlgError:
            raise Invalid("'state' must hold the co-moments of some data (a positive semidefinite matrix "
                          "[[sxx, sxy], [sxyᵀ, syy]]); got one with a negative eigenvalue") from None
        full[np.diag_indices_from(full)] -= tol
        full *= scale[:, None]
        full *= scale[None, :]
    if not fit_intercept:  # about the origin
        mean = np.concatenate([mx, my])
        full += wsum * np.outer(mean, mean)
    if constant is not None and np.any(constant):
        full[:d][constant] = 0.0
        full[:, :d][:, constant] = 0.0
    h = full[:d, :d]
    h[np.diag_indices_from(h)] += alpha
    return Moments(h, full[:d, d:], np.diag(full[d:, d:]).copy(), tol)


def check_solution_values(mo: Moments, coef: np.ndarray, intercept: np.ndarray, sse: np.ndarray, a: dict, *,
                          fit_intercept: bool, alpha, full_rank: bool = True, positive: bool = False) -> None:
    """The coefficients must solve the state's normal equations, the intercept must pass
    through the means and the SSE must be the residual sum of squares the state gives at
    the coefficients, each up to the state's own rounding (everything in the state's units;
    ``alpha`` a number or one per column; ``full_rank`` False for a rank-deficient state,
    whose normal equations are then not checked; ``positive`` for a non-negative fit, whose
    coefficients must be >= 0 and satisfy the optimality conditions of the constrained problem:
    equation i holds where β_i > 0, and where β_i = 0 its residual may only be <= 0).

    A fit refined against the data is exact for the data, and the state is the data's sums
    rounded to float64. Its entries are then off by at most ``tol·s_i·s_j + Σw·δ_i·δ_j``, with
    ``s_j = sqrt(S_jj)`` (Cauchy-Schwarz bounds the rounding of a sum of products by its
    diagonal) and ``δ_j = 2ε·|mean_j|`` (with an intercept the moments are centred about the
    float64 mean, which rounding moves by up to δ_j: this dominates for a column whose spread
    is a few ulps of its mean). So with ``size = Σ_j s_j|β_j| + s_y`` and
    ``size_δ = Σ_j δ_j|β_j| + δ_y``, equation i may be off by ``tol·s_i·size + Σw·δ_i·size_δ``
    and the SSE by ``tol·size² + Σw·size_δ²``. The bounds are unit-free and involve no
    condition number.
    """
    tol = mo.tol
    b = coef.T                                             # (d, m)
    d = b.shape[0]
    alpha = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (d,))[:, None]
    wsum = float(a["wsum"])
    s = np.sqrt(np.maximum(np.diag(mo.h), 0.0))             # (d,) with the ridge term
    size = s @ np.abs(b) + np.sqrt(np.maximum(mo.yy, 0.0))  # (m,)
    if fit_intercept:
        dx, dy = 2 * EPS * np.abs(a["mean_x"]), 2 * EPS * np.abs(a["mean_y"])
    else:
        dx, dy = np.zeros(d), np.zeros(b.shape[1])
    size_d = dx @ np.abs(b) + dy
    resid = mo.g - mo.h @ b
    bound = tol * s[:, None] * size[None, :] + wsum * dx[:, None] * size_d[None, :]
    bad = ~(np.abs(resid) <= bound)  # NaN (an overflow) is a failure too
    if positive:
        if np.any(b < 0):
            j, k = (int(i) for i in np.argwhere(b < 0)[0])
            raise Invalid(f"'coef' must be >= 0 for a model with positive=true; got {float(coef[k, j])!r} for "
                          f"feature {j} (target {k})")
        bad = np.where(b > 0, bad, ~(resid <= bound))  # at a bound: the loss may not fall inwards
    if not full_rank:
        # The minimum-norm solution solves the equations only along the range it finds, which
        # float64 cannot pin down for a nearly singular state: not checked. A column without
        # data (zero spread) must still have no coefficient: none could be fitted to it.
        bad[:] = False
        empty = (s == 0)[:, None] & (np.abs(b) > NULL_SHARE * np.max(np.abs(b), axis=0, initial=0.0))
        if empty.any():
            j, k = (int(i) for i in np.argwhere(empty)[0])
            raise Invalid(f"'coef' must be 0 for a column the stored state holds no data for (zero spread); got "
                          f"{float(coef[k, j])!r} for feature {j} (target {k})")
    if bad.any():
        j, k = (int(i) for i in np.argwhere(bad)[0])
        raise Invalid(f"'coef' must solve the normal equations of the stored state; got a residual {resid[j, k]:.3g} "
                      f"in equation {j} (target {k}), over the rounding bound {bound[j, k]:.3g}")
    # SSE at coef: Syy − 2 βᵀSxy + βᵀ Sxx β (Sxx without the ridge term: the residual sum of squares)
    hb = mo.h @ b - alpha * b
    at = mo.yy - 2 * np.sum(b * mo.g, axis=0) + np.sum(b * hb, axis=0)
    off = ~(np.abs(sse - at) <= tol * size**2 + wsum * size_d**2)
    if off.any():
        k = int(np.flatnonzero(off)[0])
        raise Invalid(f"'solution.sse' must be the residual sum of squares of the stored state at the coefficients; "
                      f"got {float(sse[k])!r}, the state gives {at[k]:.17g} (target {k})")
    if fit_intercept:
        mx, my = a["mean_x"], a["mean_y"]
        sd_x = np.sqrt(np.maximum(np.diag(mo.h) - alpha[:, 0], 0.0) / wsum)
        sd_y = np.sqrt(np.maximum(mo.yy, 0.0) / wsum)
        want = my - coef @ mx
        scale = np.abs(my) + sd_y + np.abs(coef) @ (np.abs(mx) + sd_x)
        off = ~(np.abs(intercept - want) <= tol * scale)
        if off.any():
            k = int(np.flatnonzero(off)[0])
            raise Invalid(f"'intercept' must pass through the stored means (mean_y − coef·mean_x = {want[k]:.17g}); "
                          f"got {float(intercept[k])!r} (target {k})")


#: Units are integers of at most this magnitude (float64 exponents span -1074 .. 1023).
MAX_UNIT = 2200


def check_units(a: dict, d: int, m: int) -> tuple[np.ndarray, np.ndarray, float]:
    """The state's units (ux (d,), uy (m,), uw) from its parsed arrays: whole numbers of at
    most MAX_UNIT, uw even; zeros where the file has none."""
    ux = np.broadcast_to(a.get("log2_x", 0.0), (d,)).astype(np.float64)
    uy = np.broadcast_to(a.get("log2_y", 0.0), (m,)).astype(np.float64)
    uw = float(a.get("log2_w", 0.0))
    for name, u in (("log2_x", ux), ("log2_y", uy), ("log2_w", np.array([uw]))):
        if np.any(np.abs(u) > MAX_UNIT) or np.any(u != np.round(u)):
            raise Invalid(f"'state.{name}' must hold whole numbers (powers of two) of at most {MAX_UNIT} in "
                          f"magnitude")
    if uw % 2:
        raise Invalid(f"'state.log2_w' must be an even number; got {uw!r}")
    return ux, uy, uw


def _check_mean_roundings(arrays: dict) -> None:
    """The state's ``mean_x_lo``/``mean_y_lo`` (zeros where the file has none): each at most one
    ulp of its mean (the rounding the double-double mean carries), set into ``arrays``."""
    for name, mean in (("mean_x_lo", "mean_x"), ("mean_y_lo", "mean_y")):
        lo = np.broadcast_to(arrays.get(name, 0.0), arrays[mean].shape).astype(np.float64)
        if not np.all(np.abs(lo) <= np.spacing(np.abs(arrays[mean]))):
            raise Invalid(f"'state.{name}' must be the rounding of 'state.{mean}' (at most one ulp of it)")
        arrays[name] = lo


class Solved(NamedTuple):
    """What :func:`check_numbers` read off a document's state (both None without a state)."""

    state: object    # jaxlm.core.state.GramState or QRState
    factor: object   # jaxlm.core.exact.Factor of its (ridge) normal matrix


def check_numbers(doc) -> Solved:
    """Check the numbers of an expanded document (:func:`jaxlm.io.model_schema.expand`)
    against each other and factorise its state; raises Invalid.

    In order: the intercept is zero without ``fit_intercept``, the SSE is >= 0; with a state,
    its units, then :func:`check_state_values`, then the factor (``jaxlm.core.exact``), then
    :func:`check_solution_values` (the normal equations only for a full-rank factor).
    """
    from ..core import exact
    from ..core import state as st

    params, sse = doc.params, doc.solution["sse"]
    d, m = len(doc.features), len(doc.targets)
    fit_intercept = params.get("fit_intercept", True)
    alpha = params.get("alpha", 0.0)
    if isinstance(alpha, list):  # one per target (the schema checked its length): as the estimator takes it
        alpha = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (m,))
        alpha = float(alpha[0]) if np.all(alpha == alpha[0]) else alpha.copy()
    alpha = alpha if np.ndim(alpha) else float(alpha)
    if not fit_intercept and np.any(doc.intercept != 0):
        raise Invalid("'intercept' must be zero for a model with fit_intercept=false")
    if sse is not None and not np.all(sse >= 0):
        raise Invalid(f"'solution.sse' must be >= 0 (a sum of squares); got {float(sse.min())!r}")
    if doc.state is None:
        return Solved(None, None)
    kind = doc.state["kind"]
    arrays = {k: v for k, v in doc.state.items() if k != "kind"}
    ux, uy, uw = check_units(arrays, d, m)
    arrays.update(log2_x=ux, log2_y=uy, log2_w=np.float64(uw))
    _check_mean_roundings(arrays)
    state = (st.GramState if kind == "gram" else st.QRState)(
        **{k: (np.float64(v) if v.ndim == 0 else v) for k, v in arrays.items()})
    # the coefficients, intercept and ridge penalty in the state's units (exact powers of two)
    coef_s = np.ldexp(doc.coef, (ux[None, :] - uy[:, None]).astype(np.int64))
    intercept_s = np.ldexp(doc.intercept, (-uy).astype(np.int64))
    per_target = np.ndim(alpha) == 1
    alpha_s = np.ldexp(alpha if not per_target else alpha[None, :],
                       (-uw - 2 * ux if not per_target else (-uw - 2 * ux)[:, None]).astype(np.int64))
    if not (np.all(np.isfinite(coef_s)) and np.all(np.isfinite(alpha_s))):
        raise Invalid("'coef' and params.alpha must be representable in the state's units (state.log2_*)")
    constant = st.rounding_constant(state) if fit_intercept and hasattr(st, "rounding_constant") else None
    moments = check_state_values(kind, arrays, fit_intercept=fit_intercept, alpha=0.0 if per_target else alpha_s,
                                 constant=constant)
    solver = params.get("solver", "auto")
    try:
        factor = exact.factor_state(state, alpha=alpha, fit_intercept=fit_intercept,
                                    solver=solver if solver in exact.SOLVERS else "auto")
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as e:  # InputError is a ValueError
        raise Invalid(f"its least-squares state cannot be factorised ({e})") from None
    if per_target:
        _check_per_target(moments, factor, coef_s, intercept_s, sse, arrays, fit_intercept=fit_intercept,
                          alpha_s=alpha_s, positive=bool(params.get("positive", False)))
        return Solved(state, factor)
    check_solution_values(moments, coef_s, intercept_s, sse, arrays, fit_intercept=fit_intercept, alpha=alpha_s,
                          full_rank=not (factor.rank < d and factor.v is not None),
                          positive=bool(params.get("positive", False)))
    return Solved(state, factor)


def _check_per_target(moments: Moments, factor, coef_s, intercept_s, sse, arrays: dict, *, fit_intercept: bool,
                      alpha_s: np.ndarray, positive: bool) -> None:
    """:func:`check_solution_values` for a fit with one penalty per target: the targets of each
    distinct penalty (``factor.groups``, ``factor.parts``: :mod:`jaxlm.core.target_alpha`)
    against the normal equations of their own penalty (``alpha_s (d, m)``, the state's units)."""
    d = coef_s.shape[1]
    for a, idx, part in zip(factor.alphas, factor.groups, factor.parts):
        h = moments.h.copy()
        h[np.diag_indices_from(h)] += alpha_s[:, idx[0]]
        mo = Moments(h, moments.g[:, idx], moments.yy[idx], moments.tol)
        sub = dict(arrays, mean_y=arrays["mean_y"][idx])
        try:
            check_solution_values(mo, coef_s[idx], intercept_s[idx], sse[idx], sub, fit_intercept=fit_intercept,
                                  alpha=alpha_s[:, idx[0]], full_rank=not (part.rank < d and part.v is not None),
                                  positive=positive)
        except Invalid as e:
            raise Invalid(f"{e}, where target k is the k-th of the targets {idx.tolist()} with alpha={a!r}") from None


class GLMSolved(NamedTuple):
    """What :func:`check_glm_numbers` read off a GLM document."""

    state: object    # jaxlm.core.state.GramState of the working weights at the coefficients
    factor: object   # jaxlm.core.exact.Factor of its (ridge) normal matrix
    family: object   # jaxlm.core.families.Family
    link: object     # jaxlm.core.families.Link


def check_glm_numbers(doc) -> GLMSolved:
    """Check the numbers of an expanded GLM document (:func:`jaxlm.io.glm_schema.expand_glm`)
    against each other and factorise its working weights' state; raises Invalid.

    The intercept is zero without ``fit_intercept``; the state must be one that data can give
    (:func:`check_state_values`) and factorise; the scale must be the family's: 1 for the
    families with a fixed dispersion, Pearson χ²/df_resid (``df_resid = wnobs − rank − intercept``)
    for the others, NaN when df_resid <= 0. Not checkable from the file: the coefficients
    against the data (the state is the working weights' at them; the data are not stored).
    """
    import math

    from ..core import exact
    from ..core import state as st
    from ..core.families import check_link, get_family

    params, sol = doc.params, doc.solution
    d = len(doc.features)
    fit_intercept = params.get("fit_intercept", True)
    alpha = float(params.get("alpha", 0.0))
    if not fit_intercept and np.any(doc.intercept != 0):
        raise Invalid("'intercept' must be zero for a model with fit_intercept=false")
    fam_params = {("alpha" if k == "nb_alpha" else k): float(v) for k, v in doc.family.items() if k != "name"}
    try:  # (the schema admitted both; a second guard)
        family = get_family(doc.family["name"], **fam_params)
        link = check_link(family, doc.link)
    except ValueError as e:  # InputError is a ValueError
        raise Invalid(f"its family is refused ({e})") from None
    arrays = {k: v for k, v in doc.state.items() if k != "kind"}
    ux, uy, uw = check_units(arrays, d, 1)
    arrays.update(log2_x=ux, log2_y=uy, log2_w=np.float64(uw))
    _check_mean_roundings(arrays)
    alpha_s = np.ldexp(alpha, (-uw - 2 * ux).astype(np.int64))
    if not np.all(np.isfinite(alpha_s)):
        raise Invalid("params.alpha must be representable in the state's units (state.log2_*)")
    check_state_values("gram", arrays, fit_intercept=fit_intercept, alpha=alpha_s)
    state = st.GramState(**{k: (np.float64(v) if v.ndim == 0 else v) for k, v in arrays.items()})
    try:
        factor = exact.factor_state(state, alpha=alpha, fit_intercept=fit_intercept)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as e:  # InputError is a ValueError
        raise Invalid(f"its working weights' state cannot be factorised ({e})") from None
    df_resid = float(sol["wnobs"]) - (factor.rank + int(fit_intercept))
    scale = math.nan if sol["scale"] == "NaN" else float(sol["scale"])
    if not family.estimates_scale:
        want = 1.0
    else:
        want = float(sol["pearson_chi2"]) / df_resid if df_resid > 0 else math.nan
    same = (math.isnan(want) and math.isnan(scale)) or abs(scale - want) <= AGREEMENT * abs(want)
    if not same:
        raise Invalid(f"'solution.scale' must be the {family.describe()} family's dispersion "
                      f"({'Pearson chi2 / df_resid' if family.estimates_scale else '1'} = {want:.17g}); got {scale!r}")
    return GLMSolved(state, factor, family, link)
