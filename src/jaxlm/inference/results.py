"""Regression statistics read off the fitted least-squares state and solution.

:func:`regression_results` turns a :class:`jaxlm.core.solution.Solution` into one immutable
:class:`RegressionResults` per target. Everything is read off the merged state (weight
sums, means, centred co-moments), the solution (coefficients, the measured residual sum of
squares, the factor of the normal matrix) and, when ``run`` is given, one extra pass of
mergeable sums (heteroskedasticity-consistent covariances, ``Σ log w``, and a double-double
Gram used to refine ``(XᵀWX)⁻¹``). A streamed or distributed fit therefore gets the same
summary as an in-memory one.

Notation
--------
``n`` observations with weights ``w_i``, ``d`` features, ``p = d + 1`` parameters with an
intercept (``d`` without), ``x̄ = Σ w x / Σ w``, ``Sxx = Σ w (x − x̄)(x − x̄)ᵀ``.
``(X̃ᵀWX̃)⁻¹`` is the "bread" for the design ``X̃ = [1, X]`` (``X`` without intercept). It
is never formed by inverting the uncentred Gram: with an intercept

    (X̃ᵀWX̃)⁻¹ = [[1/Σw + x̄ᵀ Sxx⁻¹ x̄,  −(Sxx⁻¹ x̄)ᵀ],
                 [−Sxx⁻¹ x̄,             Sxx⁻¹     ]]

with ``Sxx⁻¹`` applied by the solution's factor (Cholesky or TSQR of the equilibrated
centred design), refined in double-double when the design is ill-conditioned.

Weights
-------
``weights_kind="frequency"`` (default): a weight of k counts as k identical rows.
``n_obs = Σ w``, ``df_resid = Σ w − p``; every statistic equals that of statsmodels ``OLS``
on the rows repeated.

``weights_kind="analytic"``: inverse-variance weights (``Var(ε_i) = σ²/w_i``), as statsmodels
``WLS(y, X, weights=w)``. ``n_obs`` = number of rows with ``w > 0``, ``df_resid = n_obs − p``.
(Rows with ``w = 0`` are dropped; statsmodels would count them in ``nobs``.)

In both kinds ``σ̂² = Σ w e² / df_resid`` and ``Cov(β̂) = σ̂² (X̃ᵀWX̃)⁻¹``; only the degrees of
freedom, the log-likelihood and the HC weights differ.

Units
-----
A fit of data near the ends of the float64 range carries a state in power-of-two units
(``X·2^-ux``, ``Y·2^-uy``, ``w·2^-uw``; :mod:`jaxlm.core.state`). Every statistic is then
computed in those units and mapped back exactly: a coefficient's standard error is
``se·2^(uy − ux_j)``, t, p, R², F are unit-free, the log-likelihood adds
``(uw + 2uy)·log 2`` to ``log SSE``. Standard errors, t, p and intervals are therefore
finite wherever the coefficients are; a quantity that is itself beyond float64 (the SSE or
σ̂² of targets ~1e200, whose squares exceed 1e308) is reported as inf, and a note says so.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..core import dd
from ..core import state as st
from ..core.ranges import fmt as _fmt
from ..core.ranges import ldexp as _ldexp
from ..core.ranges import to_data as _to_data
from ..core.errors import InputError, check_choice
from ..core.passes import loop_runner
from ..core.reduction import Runner
from . import _pass

from ._common import (EPS, REFINE_BUDGET, REFINE_COND, WEIGHTS_KINDS, _Design, _names, _readonly,
                      _readonly_bool, _Scaled)
from .regression import RegressionResults


def _moments(state, d):
    """(mean_x, mean_y, Sxx, Syy) as float64 NumPy arrays, centred, of either state form."""
    mx = np.asarray(state.mean_x, dtype=np.float64)
    my = np.asarray(state.mean_y, dtype=np.float64)
    if hasattr(state, "r"):
        r = np.asarray(state.r, dtype=np.float64)
        S = r.T @ r
        return mx, my, S[:d, :d], S[d:, d:]
    return mx, my, np.asarray(state.sxx, dtype=np.float64), np.asarray(state.syy, dtype=np.float64)


def _gradient_state(run, d, m):
    """State of a fit that has none (gradient solvers): one Gram pass (rescaled by powers of two
    when the data need it, as for the exact solvers)."""
    from ..core import exact

    return exact.state_of(run, d, m)


def _sse_pass(run, coef, intercept, units: st.Units, state, fit_intercept: bool):
    """Σ w e² of the coefficients (in ``units``), measured in double-double about the state's
    means as the exact solvers measure theirs (a float64 residual ``y − β₀ − xβ`` of data far
    from the origin would cancel to rounding noise)."""
    from ..core.passes import gradient_reduction

    m, d = coef.shape
    sx, sy = (state.mean_x, state.mean_y) if fit_intercept else (np.zeros(d), np.zeros(m))
    # c = β₀ + β·s − ȳ, so that r = (y − ȳ) − c − (x − s)β = y − β₀ − xβ
    acc = dd.two_sum(intercept, -sy)
    for j in range(d):
        acc = dd.add(acc, dd.two_prod(coef[:, j], np.full(m, sx[j])))
    c = acc[0] + acc[1]
    return run(gradient_reduction(coef, c, sx, sy, units))[2]


def _check_refine(refine):
    if refine not in ("auto", True, False):
        raise InputError("refine", f"refine must be 'auto', True or False; got refine={refine!r}.")
    return refine


def pass_plan(solution, *, fit_intercept: bool, weights_kind: str = "frequency", alpha: float = 0.0,
              robust: bool | Sequence[str] = True, refine: bool | str = "auto") -> _pass.PassPlan:
    """The plan of the one extra pass over the data for an exact, unpenalised ``solution``.

    For fits whose data live elsewhere (Dask partitions, a stream): evaluate
    ``jaxlm.inference.block_sums(plan, X, Y, w)`` on every block, merge the results with
    ``PassSums.merge`` (associative and commutative: a tree reduction is fine) and pass the
    total as ``regression_results(solution, ..., sums=total)`` with the same keywords.
    The plan holds the coefficients, the state's means and the factor: it is small and
    picklable.
    """
    weights_kind = check_choice("weights_kind", weights_kind, WEIGHTS_KINDS)
    refine = _check_refine(refine)
    if solution.factor is None or solution.state is None or float(alpha) > 0:
        raise InputError("solution", "pass_plan needs an exact, unpenalised fit (alpha=0 and an exact solver): "
                                     "ridge and gradient fits have no inferential statistics to compute.")
    state = solution.state
    units = st.units_of(state)
    coef, intercept = _scaled_coef(solution, units, fit_intercept)
    d = coef.shape[1]
    wsum = float(np.asarray(state.wsum))
    count = float(np.asarray(state.count))
    analytic = weights_kind == "analytic"
    df_resid = (count if analytic else float(_ldexp(wsum, units.w))) - int(solution.rank) - int(bool(fit_intercept))
    cond = float(solution.condition_number)
    # (a rank-deficient pseudo-inverse is not refined: I − H H⁺ is the null-space projector)
    gram = int(solution.rank) == d and (refine is True or (refine == "auto" and cond > REFINE_COND
                                                           and count * d * d <= REFINE_BUDGET))
    shift = np.asarray(state.mean_x, dtype=np.float64) if fit_intercept else np.zeros(d)
    meats = _pass.meats_of(robust)  # (checked even where there is nothing to compute)
    meats = meats if df_resid > 0 else ()
    robust = bool(meats)
    # x̄ − s: the state keeps its mean in double-double (hi + lo); states without lo give 0
    lo = np.broadcast_to(np.asarray(getattr(state, "mean_x_lo", 0.0), dtype=np.float64), (d,))
    offset = (np.array(lo), np.zeros(d)) if fit_intercept and np.any(lo) else None
    m = coef.shape[0]
    ybar = ((np.asarray(state.mean_y, dtype=np.float64).reshape(m),
             np.array(np.broadcast_to(np.asarray(getattr(state, "mean_y_lo", 0.0), dtype=np.float64), (m,))))
            if fit_intercept else (np.zeros(m), np.zeros(m)))
    return _pass.PassPlan(coef, intercept, shift, wsum, bool(fit_intercept), analytic, solution.factor,
                          robust, bool(gram), units if units.scaled else None,
                          _pass.factor_basis(solution.factor) if robust else None, None, offset, ybar, meats)


def _scaled_coef(solution, units: st.Units, fit_intercept: bool):
    """The solution's coefficients (m, d) and intercepts (m,) in the state's units."""
    coef = np.atleast_2d(np.asarray(solution.coef, dtype=np.float64))
    m = coef.shape[0]
    intercept = np.asarray(solution.intercept, dtype=np.float64).reshape(m) if fit_intercept else np.zeros(m)
    if not units.scaled:
        return coef, intercept
    return _ldexp(coef, units.x[None, :] - units.y[:, None]), _ldexp(intercept, -units.y)


def regression_results(solution, *, fit_intercept: bool, weights_kind: str = "frequency", alpha: float = 0.0,
                       run: Runner | None = None, batches=None, feature_names: Sequence[str] | None = None,
                       target_names: Sequence[str] | None = None, robust: bool | Sequence[str] = True,
                       refine: bool | str = "auto", sums: _pass.PassSums | None = None
                       ) -> tuple[RegressionResults, ...]:
    """Regression statistics of a fitted linear model, one :class:`RegressionResults` per target.

    Parameters
    ----------
    solution : jaxlm.core.solution.Solution
        The fit. Exact solvers carry the merged state, the measured SSE and the factor of
        the normal matrix, from which everything is read. Gradient solutions carry none
        of these: their results hold the coefficients (and, given ``batches``, R² and the
        counts) but no inferential statistics.
    fit_intercept : bool
        Whether the model has an intercept (as passed to the solver).
    weights_kind : {"frequency", "analytic"}
        Meaning of the weights (see the module docstring): frequency weights count rows
        (``n_obs = Σw``, ``df_resid = Σw − p``); analytic weights are inverse variances
        (``n_obs`` = rows with ``w > 0``, ``df_resid = n_obs − p``, statsmodels ``WLS``).
    alpha : float
        The ridge penalty of the fit. For ``alpha > 0`` no inferential statistics are given
        (the ridge estimator is biased: its t and F statistics mean nothing).
    run : runner, optional
        A driver of :mod:`jaxlm.reduce` bound to the rows the fit used (``run(reduction) ->
        result``). Enables one extra pass, :func:`jaxlm.inference.stats_reduction`, computing
        mergeable sums: HC0–HC3 covariances, ``Σ log w`` (analytic log-likelihood) and, when the
        design is ill-conditioned, a double-double Gram that refines ``(XᵀWX)⁻¹`` to full
        precision; for a fit without a state (gradient solvers) also the state and Σ w e².
        It is not stored (results stay small and picklable).
    batches : callable, optional
        Instead of ``run``: a zero-argument callable yielding the ``(X, Y, w)`` float64 blocks
        that the fit used (a loop over them is the runner).
    feature_names : sequence of d str, optional (default "x0", "x1", ...)
    target_names : sequence of m str, optional (default "y" for one target, else "y0", "y1", ...)
    robust : bool or sequence of {"HC0", "HC1", "HC2", "HC3"}, default True
        The HC covariances the pass computes: True all four, False none, or those named (HC0 and
        HC1 share one meat; the results then have only those, and asking for another raises an
        InputError). Per block one ``syrk`` per meat and target, and for HC2/HC3 the leverages
        (one triangular product). Data that are refined get them from a second, double-double pass.
    refine : {"auto", True, False}
        Refine ``(XᵀWX)⁻¹`` with the double-double Gram (needs ``batches``). "auto" does so
        when the condition number exceeds ``REFINE_COND`` and ``n·d² ≤ REFINE_BUDGET``.
    sums : PassSums, optional
        The pass computed elsewhere (e.g. on Dask workers): ``plan = pass_plan(solution, ...)``
        with the same keywords, ``block_sums(plan, X, Y, w)`` per block, merged with
        ``PassSums.merge``. Replaces ``run``.

    Returns
    -------
    tuple of RegressionResults, one per target (length m; ``[0]`` for a single target).

    Notes
    -----
    Degenerate cases:

    - ``df_resid ≤ 0`` (as many parameters as observations): σ̂², standard errors, t, p,
      intervals, F and adjusted R² are NaN (never inf), with :attr:`~RegressionResults.inference_note`.
    - Perfect fit: an SSE below the rounding floor of the fitted values,
      ``(ε · Σ_j |β_j| ‖x_j − x̄_j‖_w)²`` with an intercept (the SSE is measured in
      double-double about the means, so the intercept's rounding does not enter) and
      ``(ε · Σ_j |β_j| ‖x_j‖_w)²`` without — the SSE that rounding the slopes to float64 alone
      would cause — is indistinguishable from zero and is set to exactly 0 (NIST Wampler1:
      SDs exactly 0). A note records it.
    - Rank deficiency: the pseudo-inverse (the solver's minimum-norm factor) gives the
      covariance of the estimable coefficients exactly; coefficients involved in the
      collinearity (``solution.aliased``, and the intercept when a null direction moves it)
      are not estimable and get NaN inference. df_model is the rank.
    """
    weights_kind = check_choice("weights_kind", weights_kind, WEIGHTS_KINDS)
    refine = _check_refine(refine)
    if not isinstance(fit_intercept, (bool, np.bool_)):
        raise InputError("fit_intercept", f"fit_intercept must be True or False; got fit_intercept={fit_intercept!r}.")
    fit_intercept = bool(fit_intercept)
    alpha = float(alpha)
    coef = np.atleast_2d(np.asarray(solution.coef, dtype=np.float64))
    m, d = coef.shape
    intercept = np.asarray(solution.intercept, dtype=np.float64).reshape(m) if fit_intercept else np.zeros(m)
    p = d + int(fit_intercept)
    feats = _names(feature_names, d, tuple(f"x{j}" for j in range(d)), "feature_names")
    targets = _names(target_names, m, ("y",) if m == 1 else tuple(f"y{k}" for k in range(m)), "target_names")
    terms = (("intercept",) if fit_intercept else ()) + feats
    analytic = weights_kind == "analytic"
    notes: list[str] = []

    state = solution.state
    factor = solution.factor
    sse = None if solution.sse is None else np.asarray(solution.sse, dtype=np.float64).reshape(m)
    exact = state is not None and factor is not None and sse is not None
    if run is None and batches is not None:
        run = loop_runner(batches)
    if state is None and run is not None and solution.factor is None:
        state = _gradient_state(run, d, m)
        units = st.units_of(state)
        sse = _sse_pass(run, *_scaled_coef(solution, units, fit_intercept), units, state, fit_intercept)
    # every statistic is computed in the state's units (see the module docstring)
    units = st.units_of(state) if state is not None else st.Units(np.zeros(d), np.zeros(m), 0.0)
    coef_s, intercept_s = _scaled_coef(solution, units, fit_intercept)
    ex = np.concatenate([[0.0], units.x]) if fit_intercept else units.x  # log2 units of the design's columns
    lc = units.y[:, None] - ex[None, :]  # (m, p) log2 units of the coefficients
    log2_sse = units.w + 2 * units.y  # (m,)

    # why inferential statistics are not given
    reason = None
    if not exact:
        reason = (f"solver {solution.solver!r} is iterative: its coefficients approximate the least-squares "
                  f"solution (converged={bool(solution.converged)}, gradient norm {solution.grad_norm:.2g}) and "
                  f"carry no factor of XᵀWX, so standard errors would describe a different estimate. Refit "
                  f"with an exact solver ('auto', 'qr', 'cholesky', 'svd') for inference.")
    elif alpha > 0:
        reason = (f"ridge fit (alpha={alpha:g}): the penalised estimator is biased and its sampling "
                  f"distribution is not the t/F of least squares, so standard errors, t, p, intervals and F "
                  f"would mean nothing. Refit with alpha=0 for inference.")

    # counts and sums of squares, from the state
    if state is not None:
        wsum = float(np.asarray(state.wsum))
        count = float(np.asarray(state.count))
        mean_x, mean_y, sxx_c, syy_c = _moments(state, d)
        if fit_intercept:
            sst = np.diag(syy_c).copy()
            gram_diag = np.diag(sxx_c).copy()
        else:
            sst = np.diag(syy_c) + wsum * mean_y**2
            gram_diag = np.diag(sxx_c) + wsum * mean_x**2
        sd = np.sqrt(np.maximum(np.diag(sxx_c), 0.0) / wsum) if wsum > 0 else np.full(d, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            cv = sd / np.abs(mean_x)
        centred_norms = np.sqrt(np.maximum(np.diag(sxx_c), 0.0))
        norms = np.sqrt(np.maximum(np.diag(sxx_c) + wsum * mean_x**2, 0.0))
    else:
        wsum = count = math.nan
        mean_x = np.zeros(d)
        sst = np.full(m, np.nan)
        gram_diag = np.full(d, np.nan)
        cv = np.full(d, np.nan)
        norms = centred_norms = np.full(d, np.nan)
        if sse is None:
            sse = np.full(m, np.nan)
        notes.append("No least-squares state: pass batches= to get R² and counts for a gradient fit.")
    wsum_data = float(_ldexp(wsum, units.w))  # Σ w in the data's units
    if not analytic and math.isinf(wsum_data):
        raise InputError("sample_weight", f"sample_weight must sum to at most 1.8e308 for frequency weights (they "
                                          f"count rows: n_obs = Σw); got a sum of about "
                                          f"{_fmt(wsum, units.w)}. Divide the weights by a constant, or use "
                                          f"weights_kind='analytic' if they are inverse variances.")
    n_obs = count if analytic else wsum_data
    rank = int(solution.rank) if exact else d
    df_model = float(rank)
    df_resid = n_obs - rank - int(fit_intercept)
    shift = mean_x if fit_intercept else np.zeros(d)

    # perfect fit: SSE below the float64 rounding floor of the fitted values is zero. The SSE is
    # measured in double-double about the state's mean (the intercept absorbs the offset), so
    # only the slopes' rounding counts, against the centred columns.
    if state is not None:
        with np.errstate(over="ignore"):
            if fit_intercept:
                floor = (EPS * (np.abs(coef_s) @ centred_norms)) ** 2
            else:
                floor = (EPS * (np.abs(intercept_s) * math.sqrt(max(wsum, 0.0)) + np.abs(coef_s) @ norms)) ** 2
        for k in np.flatnonzero(sse <= floor):
            if sse[k] > 0:
                notes_k = (f"Perfect fit: the measured SSE {_fmt(sse[k], log2_sse[k])} is below "
                           f"{_fmt(floor[k], log2_sse[k])}, the SSE that rounding the coefficients to float64 alone "
                           f"causes; it is treated as exactly 0.")
            else:
                notes_k = "Perfect fit: the residuals are exactly zero (SSE = 0)."
            notes.append(notes_k if m == 1 else f"[{targets[k]}] " + notes_k)
        perfect = sse <= floor
        sse = np.where(perfect, 0.0, sse)

    if reason is None and not df_resid > 0:
        reason = (f"no residual degrees of freedom: df_resid = n_obs − parameters = {n_obs:g} − "
                  f"{rank + fit_intercept}"
                  f" = {df_resid:g}, so the residual variance σ² — and with it standard errors, t, p, intervals "
                  f"and F — is undefined (reported as NaN, not inf). Add observations or remove terms.")

    # estimability under rank deficiency
    estimable = np.ones(p, dtype=bool)
    if exact and rank < d:
        off = int(fit_intercept)
        for j in solution.aliased:
            estimable[off + j] = False
        if fit_intercept and factor.v is not None:
            from scipy.linalg import null_space
            null = null_space(factor.v.T) / factor.scale[:, None]  # null directions of Sxx
            if null.size:
                dot = np.abs(mean_x @ null)
                mag = np.abs(mean_x) @ np.abs(null)
                if np.any(dot > 1e-8 * mag):
                    estimable[0] = False
        names = [terms[j] for j in np.flatnonzero(~estimable)]
        notes.append(f"Rank deficient: rank {rank} < {d} features; the design does not identify "
                     f"{', '.join(names) or 'a combination of coefficients'}, reported as NaN. Estimable "
                     f"coefficients' covariances use the pseudo-inverse (exact for estimable quantities).")

    # the bread (X̃ᵀWX̃)⁻¹, from the factor (refined in double-double if worthwhile)
    bread = sxx_inv = None
    hc = None
    hc_note = "the fit made no pass over the rows for them (a partial_fit, or a model read from a file)."
    steps = 0
    sum_log_w = 0.0 if (state is not None and count == wsum and float(np.asarray(state.wsum2)) == count) else math.nan
    if exact and alpha == 0:
        solve = factor.solve
        cond = float(solution.condition_number)
        plan = pass_plan(solution, fit_intercept=fit_intercept, weights_kind=weights_kind, alpha=alpha,
                         robust=robust, refine=refine)
        # ill-conditioned data that are refined get the HC meats from a second, precise pass
        precise = sums is None and run is not None and plan.robust and plan.gram
        if sums is None and run is not None and (plan.robust or plan.gram or plan.analytic):
            sums = run(_pass.stats_reduction(plan._replace(robust=False) if precise else plan))
        if sums is not None:
            sum_log_w = sums.sum_log_w
            if refine == "auto" and cond > REFINE_COND and rank == d and sums.gram_dd is None:
                notes.append(f"(XᵀWX)⁻¹ was not refined (n·d² = {count * d * d:.3g} > {REFINE_BUDGET:.3g}); with "
                             f"condition number {cond:.3g} expect about "
                             f"{max(0.0, 15.6 - 2 * math.log10(cond)):.0f} correct digits in the standard errors.")
        if sums is not None and sums.gram_dd is not None:
            inv_dd, off_dd, u, q, steps = _pass.refined_bread(solve, sums, shift, wsum, fit_intercept)
            sxx_inv = inv_dd[0]
            if precise:
                plan = _pass.precise_plan(plan, inv_dd, off_dd)
                hc_sums = run(_pass.stats_reduction(plan))
                sums = sums._replace(meat=hc_sums.meat, max_leverage=hc_sums.max_leverage)
        else:
            sxx_inv = solve(np.eye(d))
            if fit_intercept:
                u = solve(shift[:, None])[:, 0]
                q = float(shift @ u)
        sxx_inv = 0.5 * (sxx_inv + sxx_inv.T)
        if fit_intercept:
            bread = np.empty((p, p))
            bread[0, 0] = 1.0 / wsum + q
            bread[0, 1:] = bread[1:, 0] = -u
            bread[1:, 1:] = sxx_inv
        else:
            bread = sxx_inv
        if sums is not None and sums.meat is not None:
            hc = _pass.hc_covs(sums, plan, n_obs, df_resid)
            if not analytic and units.w:  # frequency weights: B M B carries one factor 2^-uw
                hc = {kind: _ldexp(v, -units.w) for kind, v in hc.items()}
            for v in hc.values():  # a perfect fit's residuals are zero (see Notes): so are its HC covariances
                v[perfect] = 0.0
            if sums.max_leverage >= 1.0 - 1e-12 and any(plan.meats):
                notes.append(f"An observation has leverage {sums.max_leverage:.6g} ≈ 1: HC2 and HC3 are undefined "
                             f"(NaN).")
        elif sums is not None and not df_resid > 0:
            hc_note = "the residual degrees of freedom are zero."  # (cov returns NaN first)
        elif sums is not None:
            hc_note = "the fit was made with cov_type='nonrobust' and robust=False."
        with np.errstate(divide="ignore", invalid="ignore"):
            vif = gram_diag * np.diag(sxx_inv)
        vif[[j for j in range(d) if not estimable[int(fit_intercept) + j]]] = np.inf
    else:
        vif = np.full(d, np.nan)
    if analytic and math.isnan(sum_log_w) and reason is None:
        notes.append("The analytic-weights log-likelihood needs Σ log w from a pass over the data: pass batches= "
                     "(log-likelihood, AIC and BIC are NaN).")
    design = _data_units_design(bread, sxx_inv, shift, wsum, units, ex)
    if units.scaled:
        notes.extend(_range_notes(sse, sst, log2_sse, df_resid, bread is not None, design, targets, bread, lc))

    out = []
    for k in range(m):
        coef_k = np.concatenate([[intercept[k]], coef[k]]) if fit_intercept else coef[k].copy()
        hc_k = None if hc is None else _pass.HCCovs({kind: _readonly(v[k]) for kind, v in hc.items()})
        notes_k = tuple(n for n in notes if m == 1 or not n.startswith("[") or n.startswith(f"[{targets[k]}]"))
        scaled = _Scaled(_readonly(lc[k]), float(log2_sse[k]), float(sse[k]), float(sst[k]), _readonly(bread),
                         _readonly(sxx_inv), _readonly(shift), wsum, _readonly(units.x), float(units.y[k]),
                         float(units.w))
        out.append(RegressionResults(
            coef=_readonly(coef_k), term_names=terms, target_name=targets[k], n_obs=float(n_obs),
            df_model=df_model, df_resid=float(df_resid), sse=float(_to_data(sse[k], log2_sse[k])),
            sst=float(_to_data(sst[k], log2_sse[k])),
            condition_number=float(solution.condition_number), fit_intercept=fit_intercept,
            weights_kind=weights_kind, solver=str(solution.solver), alpha=alpha,
            estimable=_readonly_bool(estimable), inference_note=reason, notes=notes_k, vif=_readonly(vif),
            cv=_readonly(cv), _design=_Design(_readonly(design.bread), _readonly(design.sxx_inv),
                                              _readonly(design.mean_x), design.wsum),
            cov_refinement_steps=steps, _hc=hc_k, _hc_note=hc_note,
            _sum_log_w=float(sum_log_w),
            _scaled=scaled))
    return tuple(out)


def _data_units_design(bread, sxx_inv, shift, wsum, units: st.Units, ex) -> _Design:
    """The design pieces in the data's units: ``B·2^(−uw − ex_i − ex_j)`` etc. An entry that
    falls outside the normal float64 range there makes the whole matrix NaN (its scaled form,
    used by every statistic, stays exact): a prediction interval computed from it would
    otherwise be silently wrong."""
    if not units.scaled:
        return _Design(bread, sxx_inv, shift, wsum)

    def back(a, e):
        if a is None:
            return None
        v = _ldexp(a, e)
        bad = (a != 0) & (~np.isfinite(v) | (np.abs(v) < np.finfo(np.float64).tiny))
        return np.full_like(v, np.nan) if np.any(bad) else v

    return _Design(back(bread, -units.w - ex[:, None] - ex[None, :]),
                   back(sxx_inv, -units.w - units.x[:, None] - units.x[None, :]),
                   _ldexp(shift, units.x), float(_ldexp(wsum, units.w)))


def _range_notes(sse, sst, log2_sse, df_resid, inferential: bool, design: _Design, targets, bread, lc) -> list:
    """Notes on statistics of rescaled data that lie beyond float64 in the data's units."""
    notes = []
    exact_part = ("standard errors, t, p, intervals, R², F and the log-likelihood" if inferential
                  else "R² and the other statistics")
    for k in range(len(sse)):
        items = [("SSE", sse[k]), ("total sum of squares", sst[k])]
        if inferential and df_resid > 0:
            items.append(("σ̂²", sse[k] / df_resid))
        over = [name for name, v in items if np.isinf(_to_data(v, log2_sse[k]))]
        under = [name for name, v in items if np.isnan(_to_data(v, log2_sse[k]))]
        if inferential and df_resid > 0 and bread is not None:
            cov = _to_data(sse[k] / df_resid * bread, lc[k][:, None] + lc[k][None, :])
            if np.any(np.isinf(cov)):
                over.append("some entries of cov()")
            if np.any(np.isnan(cov)):
                under.append("some entries of cov()")
        if over or under:
            tag = "" if len(sse) == 1 else f"[{targets[k]}] "
            parts = ([f"the {', '.join(over)} exceed 1.8e308 (reported as inf)"] if over else []) + \
                    ([f"the {', '.join(under)} are below 2.2e-308 (reported as NaN, not as a misleading 0)"]
                     if under else [])
            notes.append(f"{tag}Out of float64 range: {'; '.join(parts)}; {exact_part} are computed in "
                         f"power-of-two units and are exact.")
    if inferential and design.sxx_inv is not None and np.any(np.isnan(design.sxx_inv)):
        notes.append("Out of float64 range: (XᵀWX)⁻¹ of these data is not representable in float64 (the columns' "
                     "squares are beyond its range); it is kept in power-of-two units, from which the standard "
                     "errors and the other statistics are computed exactly.")
    return notes
