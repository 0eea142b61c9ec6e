"""Generalised linear models by IRLS on the mergeable least-squares state.

Every IRLS iteration is ONE pass over the data, and that pass is a reduction
(:class:`jaxlm.core.reduction.Reduction`), so a GLM fits wherever a least-squares fit does:
in memory, streamed, on Dask, across devices (any ``run`` of :mod:`jaxlm.reduce`).

Blocks
------
``(X (b, d), Y (b, 1) or (b,), w (b,), offset (b,), var_weights (b,))``; the last two may be
left out (offset 0, var_weights 1).

``w`` are **frequency weights** (statsmodels ``freq_weights``): a row of weight k counts as k
identical rows (deviance, log-likelihood, ``df_resid = Σw − p``). Rows with ``w = 0`` are
ignored entirely (drivers pad with them). ``var_weights`` are statsmodels' **variance
weights** (prior weights, R's ``weights=``): row i has variance ``φ V(μᵢ) / vᵢ``; they scale
the deviance and the information but do not count observations. ``offset`` is added to the
linear predictor with a coefficient fixed at 1 (``log(exposure)`` for a rate model).

The passes
----------
0. *check*: validates the rows (``y`` in the family's support, weights and offsets finite,
   X finite: an InputError naming the first offending row) and sums ``Σw``, ``Σw y``, ``Σw v y``
   (cheap: one matrix-vector product reads X). In memory the sums and the per-row vectors are
   checked on the host (:func:`~jaxlm.core.glm_check.host_summary`) and the first pass below
   checks X in the product of η (the check pass then runs only to name a bad row).
1. *start*: the working weights and response at statsmodels' starting means
   ``μ₀ = (y + ȳ)/2`` (Binomial ``(y + ½)/2``; ȳ the frequency-weighted mean), or at the
   coefficients ``start=``. For a family with φ = 1 without offset this pass also sums the
   y-only terms of the statistics (the saturated log-likelihood and the null deviance), so
   that :func:`jaxlm.inference.glm.glm_results` needs no pass of its own.
k. *IRLS*: at the current coefficients (β, β₀) each block computes ``η = Xβ + β₀ + offset``,
   ``μ = g⁻¹(η)``, the deviance, Pearson's χ², and folds the working weights
   ``Wᵢ = wᵢ vᵢ (dμ/dη)² / V(μ)`` and working residuals ``rᵢ = (yᵢ − μᵢ)/(dμ/dη)`` into the
   centred least-squares state (:class:`jaxlm.core.state.GramState` of ``(X, r, W)``,
   merged with :func:`jaxlm.core.state.merge`). The step is the weighted least-squares fit of
   ``r`` on ``[1, X]`` (with ridge: ``(XᵀWX + αI) δ = XᵀWr − αβ``), read off the state with
   :func:`jaxlm.core.exact.factor_state`. Solving for the *correction* δ rather than the
   working response makes the fixed point depend only on the score ``XᵀW r`` (accurate to
   rounding), not on the conditioning of the Gram (like iterative refinement).
   A pass runs chunk by chunk (:mod:`jaxlm.core.glm_passes`: η, weights, syrk in cache, X read
   once), its chunks shared between threads; the fit holds BLAS single-threaded throughout.
q. *quasi-Newton* (with ``start`` and a ``curvature``, :class:`~jaxlm.core.irls_steps.Curvature`:
   in memory, a fit on every 20th row and its information matrix, scaled): a *score pass* sums
   only ``[Σ W r, Σ W r x]`` (two matrix-vector products, no syrk; ~1/4 of a Gram pass at
   d = 50) and the step solves the curvature's system for it. The fixed point is the same (the
   score is exact); the rate is linear, about the curvature's relative error (√(d/m) for a
   subsample of m rows), measured as the ratio of successive steps. The road
   (:func:`~jaxlm.core.irls_steps.after_score`, :func:`~jaxlm.core.irls_steps.after_full`):
   score passes until the predicted error of the next point is below tol^(1/3); one Newton
   (full) pass, which squares it (its Gram in float32 when the subsample's design is well
   conditioned and centred: only a curvature, never a reported state); one or two *chord*
   steps (score passes with that full pass's own information, whose error ~ its step is the
   rate) take it below tol; the last pass is a full float64 one, at which the rules below are
   checked as always (so the statistics and the covariance belong to the reported
   coefficients). A halving, a poor rate or more than ``QN_MAX_PASSES`` score passes: Newton
   passes from there. On the benchmark (1e6 × 50, logistic and Poisson) the road is 3 score
   passes + a float32 Newton pass + the last pass, instead of 4 full passes.

Ridge: ``alpha`` minimises ``D(β) + α‖β‖²`` (deviance D, intercept not penalised), as
:class:`jaxlm.LinearRegression`'s ridge does for Gaussian data. scikit-learn's GLMs minimise
``D/(2Σw) + α_sk/2 ‖β‖²``, i.e. ``alpha = α_sk · Σw``.

Rules
-----
*Convergence*: after each pass, both of
  (1) the relative change of the (penalised) deviance between successive iterates,
      ``|D_k − D_{k−1}| ≤ tol · (|D_k| + 0.1)`` (R's ``glm.fit`` rule; R uses tol = 1e-8), and
  (2) the next step (solved from the same pass's state, so free) moves the linear predictor
      by at most ``tol`` times its size: ``max(max_j |δ_j| s_j, |δ₀ + x̄ᵀδ|) ≤ tol ·
      max(max_j |β_j| s_j, |β₀ + x̄ᵀβ|)`` (``s_j`` the working-weighted spread of column j),
      or the step has stopped halving while under ``STEP_FLOOR`` of that size (the rounding
      floor, about κ·ε, which a tiny tol cannot beat).
A deviance rule alone cannot certify the coefficients: D is quadratic in their error (1e-8
in β is 1e-16 in D, below rounding), and for non-canonical links IRLS (Fisher scoring)
converges only linearly. The reported coefficients are the last iterate at which the data
were evaluated, so that the deviance, Pearson χ², working weights (the state) and factor in
:class:`GLMSolution` all belong to them. Measured (96 random problems, 8 family/link pairs,
``tol=1e-10``): coefficients within 4e-10 (relative to the largest) of a fully converged
fit; canonical links (logit, Poisson log, Gamma inverse) take no extra pass for (2),
non-canonical ones (probit, cloglog, log links of Gamma, Gaussian, Tweedie, negative
binomial) about 0.6 more on average.

*Step halving*: when an iterate's deviance is not finite, its means leave the family's
domain (``Family.valid_mu``), or its deviance rises by more than the convergence tolerance,
the step is halved towards the previous iterate (up to ``MAX_HALVINGS`` times); R's
``glm2`` does the same.

*Separation* (Binomial): when the data are (quasi-)completely separated the maximum
likelihood estimate does not exist; IRLS then drives some coefficients towards ±∞ while the
deviance of the separated rows → 0 (the probability links keep μ in [ε, 1 − ε], as R's do).
It is detected once the deviance rule holds: fitted probabilities within ``SEPARATION_MU``
of 0 or 1 *and* a last step that still moved some row's linear predictor by more than
``SEPARATION_STEP`` (a converged fit's last step moves it by ~√tol; the pass measures
``max |XΔβ + Δβ₀|`` in the same matrix product as η once the deviance change is small).
IRLS stops there (``converged=False``) and a :class:`SeparationWarning` names the columns
of the diverging direction (``|Δβ_j|·sd_j`` at least a tenth of the largest, sd_j the
column's unweighted spread, from one extra pass); the coefficients are returned, but they
are not estimates.

*Non-convergence* warns (:class:`ConvergenceWarning`) with the deviance path.
"""
from __future__ import annotations

import math
import warnings
from typing import Callable, NamedTuple, Sequence

import numpy as np

from .errors import InputError, check_nonnegative, check_positive, check_positive_int
from .families import Binomial, Family, Link, check_link, get_family
from .glm_passes import SEPARATION_MU, DataSummary, Point, check_reduction, pass_reduction, spread_reduction, summarise
from .blas import blas_held
from .irls_steps import (MAX_HALVINGS, SEPARATION_STEP, STEP_FACTOR, STEP_FLOOR, _WATCH_CHANGE,  # noqa: F401
                         Curvature, Schedule, _Iterate, _check_start, _column_names, _eta_scale, _finite_state,
                         _fixed_weights, _midpoint, _moved, _newton_step, _objective, _score_step, _separating,
                         _separating_columns, _shift_for, _step_size, after_full, after_score,
                         curvature_of, first_rate, fit_null)
from .reduction import Reduction


class SeparationWarning(UserWarning):
    """The binomial data are (quasi-)completely separated: the MLE does not exist, some
    coefficients diverge (like :class:`jaxlm.core.errors.RankWarning`, a warning, not an error)."""


class ConvergenceWarning(UserWarning):
    """IRLS stopped before the convergence rule was met."""


class GLMSolution(NamedTuple):
    """A fitted GLM ``μ = g⁻¹(Xβ + β₀ + offset)`` (see the module docstring for the rules).

    coef : (d,);  intercept : float (0.0 without intercept)
    deviance : float          Σ w v d(y, μ) at coef (unpenalised)
    pearson_chi2 : float      Σ w v (y − μ)² / V(μ) at coef
    objective : float         deviance + α‖coef‖² (what IRLS minimised)
    n_iter : int              IRLS iterations (steps taken, each one pass)
    passes : int              passes over the data (check + start + iterations + halvings)
    converged : bool
    deviance_path : (k,)      the objective at the start and after every iteration
    step : (d,), step_intercept : float   the next IRLS step from coef (not taken): an
                              a-posteriori estimate of the coefficients' remaining error
    halvings : int            step halvings taken
    state : GramState         the working weights' state at coef: ``Σ W`` (wsum), weighted means,
                              centred ``Sxx = Σ W (x − x̄)(x − x̄)ᵀ`` (Y column: the working residual)
    factor : exact.Factor     factor of ``Sxx (+ αI)`` (``XᵀWX`` uncentred without intercept)
    rank, aliased, condition_number : as :func:`jaxlm.core.exact.factor_state` reports them
    separated : tuple[int, ...]  columns of a separating direction (Binomial; empty otherwise)
    family, link, fit_intercept, alpha : the model
    data : DataSummary
    saturated : float         Σ f log-density(y | μ = y, v, φ = 1) (families with φ = 1, no offset;
                              else NaN): ``llf = saturated − deviance/2`` (see :mod:`jaxlm.inference.glm`)
    null_deviance : float     Σ f v d(y, null_mean), the intercept-only model's deviance (same cases)
    """

    coef: np.ndarray
    intercept: float
    deviance: float
    pearson_chi2: float
    objective: float
    n_iter: int
    passes: int
    converged: bool
    deviance_path: np.ndarray
    step: np.ndarray
    step_intercept: float
    halvings: int
    state: object
    factor: object
    rank: int
    aliased: tuple
    condition_number: float
    separated: tuple
    family: Family
    link: Link
    fit_intercept: bool
    alpha: float
    data: DataSummary
    saturated: float = math.nan
    null_deviance: float = math.nan


def _is_score(it) -> bool:
    return it.point.score_only


def _step(it, curvature, alpha: float, fit_intercept: bool):
    """(δ, δ₀, factor) from an iterate: the Newton step off a full pass's state, or the quasi-Newton
    step off a score pass (the curvature's factor)."""
    if _is_score(it):
        return (*_score_step(it.result.state, it.point, curvature, alpha, fit_intercept), curvature.factor)
    return _newton_step(it.result.state, it.point, alpha, fit_intercept)


def _null_mean(family: Family, data: DataSummary) -> float | None:
    """The null model's mean when a pass can sum the statistics' y-only terms (φ = 1, no offset)."""
    return None if family.estimates_scale or data.has_offset else data.null_mean


def _null_sums(family: Family, data: DataSummary, result) -> tuple[float, float]:
    """(saturated log-likelihood, null deviance) from a pass at a Point with ``null_mean``, or NaNs."""
    if _null_mean(family, data) is None or result.invalid or not (
            math.isfinite(result.saturated) and math.isfinite(result.null_deviance)):
        return math.nan, math.nan
    return float(result.saturated), float(result.null_deviance)


@blas_held
def fit_irls(run: Callable[[Reduction], object], d: int, *, family, link=None, fit_intercept: bool = True,
             alpha: float = 0.0, tol: float = 1e-10, max_iter: int = 100, start=None,
             feature_names: Sequence[str] | None = None, data: DataSummary | None = None,
             curvature: Curvature | None = None) -> GLMSolution:
    """Fit a GLM by IRLS, one reduction per iteration (see the module docstring).

    Parameters
    ----------
    run : a driver bound to the data (:mod:`jaxlm.reduce`): ``run(reduction) -> result`` over
        blocks ``(X, Y, w, offset, var_weights)``; it is called once per pass.
    d : number of columns of X.
    family : a :class:`~jaxlm.core.families.Family` or its name; link : a Link, its name or
        None (the family's default).
    fit_intercept, alpha : intercept, ridge penalty α‖β‖² (intercept not penalised).
    tol, max_iter : convergence rule ``|ΔD| ≤ tol (|D| + 0.1)`` and the iteration cap.
    start : optional coefficients (d,) or ``(coef, intercept)`` to start from (e.g. a fit on a
        subsample) instead of statsmodels' starting means.
    feature_names : names for warnings (default x0, x1, ...).
    data : the :class:`DataSummary` of an earlier check pass over the same data (skips it), or of
        the in-memory rows (:func:`~jaxlm.core.glm_check.host_summary`: the first pass checks X).
    curvature : with ``start``, an approximate information matrix there (:func:`curvature_of` a
        subsample's fit): the first iterations are quasi-Newton steps from score passes.
    """
    family = get_family(family)
    link = check_link(family, link)
    d = int(d)
    alpha = check_nonnegative("alpha", alpha)
    tol = check_positive("tol", tol)
    max_iter = check_positive_int("max_iter", max_iter)
    if d == 0 and not fit_intercept:
        raise InputError("fit_intercept", "fit_intercept must be True when X has no columns; got "
                                          "fit_intercept=False and d=0 (there would be nothing to fit).")
    start_point = _check_start(start, d, fit_intercept)
    passes = int(data is None)
    if data is None:
        data = summarise(run(check_reduction(family)), family)

    def evaluate(point: Point) -> _Iterate:
        nonlocal passes
        passes += 1
        result = run(pass_reduction(family, link, point, d))
        return _Iterate(point, result, _objective(result, point, alpha))

    # quasi-Newton (score) passes first, from a start with its curvature (not for a one-step Gaussian fit)
    qn = curvature is not None and start_point is not None and max_iter > 2 and not _fixed_weights(family, link)
    sched = Schedule(qn, curvature, rate=first_rate(curvature)) if qn else Schedule(False, None)
    first = start_point._replace(extremes=True) if start_point is not None else Point(np.zeros(d), 0.0,
                                                                                       start_mean=data.y_mean)
    cur = evaluate(first._replace(null_mean=_null_mean(family, data), score_only=sched.score,
                                  check_x=not data.x_checked))
    if not cur.result.x_finite:  # X was not checked before (in-memory data): name the first bad row
        summarise(run(check_reduction(family)), family)
        raise InputError("X", "X must be finite (no NaN or inf); got a row that is not. Drop or impute missing "
                              "values before fitting.")
    null = _null_sums(family, data, cur.result)
    if cur.result.invalid == 0 and math.isfinite(cur.result.deviance) and not _finite_state(cur.result.state):
        raise InputError("X", "X must be small enough that the weighted Gram matrix stays finite; got an "
                              "overflow at the starting values. Rescale the very large columns.")
    if isinstance(family, Binomial) and start_point is not None and cur.result.extreme == data.nobs:
        raise InputError("start", "start must give some fitted probabilities away from 0 and 1; got "
                                  f"probabilities within {SEPARATION_MU:g} of 0 or 1 for every row. Pass smaller "
                                  "starting coefficients (or none: the default start needs none).")
    if not math.isfinite(cur.objective):
        raise InputError("start", f"start must give valid means for the {family.describe()} family with the "
                                  f"{link.name} link; got {cur.result.invalid} rows outside the family's domain at "
                                  f"the starting values. Pass start=... or use the family's default link.")
    # an anchor to halve towards from the start pass: the intercept-only point μ = ȳ
    anchor = Point(np.zeros(d), float(link(np.asarray(data.y_mean))) if fit_intercept else 0.0)
    path = [cur.objective]
    halvings = 0
    converged = False
    diverged = False
    n_iter = 0
    last_delta = np.zeros(d)
    prev_size = math.inf
    delta, d0, factor = _step(cur, sched.curvature, alpha, fit_intercept)
    for _ in range(max_iter):
        change_prev = (abs(path[-1] - path[-2]) / (abs(path[-1]) + 0.1)) if len(path) > 1 else math.inf
        new = _moved(cur.point, delta, d0)
        base = cur.point if cur.point.start_mean is None else anchor
        watch = isinstance(family, Binomial) and change_prev < _WATCH_CHANGE and cur.point.start_mean is None
        shift = _shift_for(sched.curvature.state if _is_score(cur) else cur.result.state)
        halvings_before = halvings
        for h in range(MAX_HALVINGS + 1):
            pt = new._replace(shift=shift, score_only=sched.score, gram32=sched.gram32 and shift is None)
            if watch and not sched.score:
                pt = pt._replace(watch=new.coef - base.coef, watch0=new.intercept - base.intercept, extremes=True)
            nxt = evaluate(pt)
            ok = math.isfinite(nxt.objective)
            if ok and cur.point.start_mean is None:
                ok = nxt.objective <= cur.objective + tol * (abs(nxt.objective) + 0.1)
            if ok:
                break
            if h == MAX_HALVINGS:
                nxt = None
                break
            new = _midpoint(base, new)
            halvings += 1
        if nxt is None:
            break
        n_iter += 1
        last_delta = nxt.point.coef - (cur.point.coef if cur.point.start_mean is None else 0.0)
        change = abs(nxt.objective - cur.objective)
        fixed_done = _fixed_weights(family, link)  # the first step already solved the weighted least squares
        cur = nxt
        path.append(cur.objective)
        delta, d0, factor = _step(cur, sched.curvature, alpha, fit_intercept)
        if _is_score(cur):  # a quasi-Newton step: never the last (the statistics need a full pass's state)
            st_ = sched.curvature.state
            rel = _step_size(delta, d0, st_, fit_intercept) / _eta_scale(cur, fit_intercept, st_)
            sched = after_score(sched, rel, tol=tol, halved=halvings > halvings_before, iters_left=max_iter - n_iter)
            continue
        size, scale = _step_size(delta, d0, cur.result.state, fit_intercept), _eta_scale(cur, fit_intercept)
        small = size <= STEP_FACTOR * tol * scale or (size <= STEP_FLOOR * scale and size >= 0.5 * prev_size)
        prev_size = size
        done = fixed_done or (change <= tol * (abs(cur.objective) + 0.1) and small)
        if done and not cur.point.gram32:
            converged = True
            break
        if (change <= tol * (abs(cur.objective) + 0.1) and isinstance(family, Binomial)
                and _separating(cur.result) and not cur.point.gram32):
            diverged = True  # the deviance has converged, the coefficients diverge: stop and warn below
            break
        sched = after_full(sched, size / scale, cur.result.state, factor, tol=tol, iters_left=max_iter - n_iter,
                           final=done)
    if _is_score(cur) or cur.point.gram32:  # stopped at a score or float32 pass: the statistics need a state
        cur = evaluate(cur.point._replace(score_only=False, gram32=False,
                                          shift=_shift_for((sched.curvature or cur.result).state)))
        delta, d0, factor = _step(cur, None, alpha, fit_intercept)
    if cur.point.start_mean is not None:  # never left the start: report the first solve
        raise InputError("link", f"link must give means inside the {family.describe()} family's domain "
                                 f"({link.name} link); got no coefficients that do after {MAX_HALVINGS} step "
                                 f"halvings (the maximum likelihood estimate lies outside it). Fit an intercept, "
                                 f"use the log link, or pass start=... .")
    state = cur.result.state
    point = cur.point
    separated = ()
    if isinstance(family, Binomial) and _separating(cur.result):
        separated = _separating_columns(last_delta, run(spread_reduction(d)))
        passes += 1
        warnings.warn(f"the binomial data are perfectly or quasi-completely separated: fitted probabilities of 0 "
                      f"or 1 occur for {cur.result.extreme} rows and the coefficients of columns "
                      f"{_column_names(feature_names, separated) or '(none singled out)'} grow without bound "
                      f"(the maximum likelihood estimate does not exist; the returned coefficients are not "
                      f"estimates). Drop or merge "
                      f"those columns, or use alpha > 0.", SeparationWarning, stacklevel=3)
    if not converged and not diverged:
        tail = ", ".join(f"{v:.10g}" for v in path[-6:])
        warnings.warn(f"IRLS did not converge in {n_iter} iterations (max_iter={max_iter}, tol={tol:g}); "
                      f"the deviance path ends with [{tail}]. Increase max_iter, check for separation or "
                      f"extreme values, or pass start=...", ConvergenceWarning, stacklevel=3)
    return GLMSolution(coef=point.coef.copy(), intercept=float(point.intercept), deviance=float(cur.result.deviance),
                       pearson_chi2=float(cur.result.pearson), objective=float(cur.objective), n_iter=n_iter,
                       passes=passes, converged=converged, deviance_path=np.asarray(path), step=delta,
                       step_intercept=float(d0),
                       halvings=halvings, state=state, factor=factor, rank=int(factor.rank),
                       aliased=tuple(factor.aliased), condition_number=float(factor.cond), separated=separated,
                       family=family, link=link, fit_intercept=bool(fit_intercept), alpha=alpha, data=data,
                       saturated=null[0], null_deviance=null[1])


@blas_held
def solution_at(run: Callable[[Reduction], object], d: int, coef, intercept: float, *, family, link=None,
                fit_intercept: bool = True, alpha: float = 0.0, n_iter: int = 0, converged: bool = True,
                data: DataSummary | None = None) -> GLMSolution:
    """The :class:`GLMSolution` at given coefficients (e.g. from the gradient road,
    :mod:`jaxlm.core.glm_gradient`): one IRLS pass there (plus the check pass when ``data`` is
    None) gives the deviance, Pearson χ², working weights' state and factor that the statistics
    read; ``step`` is the IRLS step from there (an estimate of the coefficients' error)."""
    family = get_family(family)
    link = check_link(family, link)
    passes = 1
    if data is None:
        data, passes = summarise(run(check_reduction(family)), family), 2
    point = Point(np.asarray(coef, dtype=np.float64).reshape(-1).copy(), float(intercept) if fit_intercept else 0.0)
    result = run(pass_reduction(family, link, point._replace(null_mean=_null_mean(family, data)), int(d)))
    objective = _objective(result, point, alpha)
    if not math.isfinite(objective):
        raise InputError("start", f"the coefficients must give valid means for the {family.describe()} family; "
                                  f"got {result.invalid} rows outside its domain. Use solver='irls'.")
    delta, d0, factor = _newton_step(result.state, point, alpha, fit_intercept)
    saturated, null_deviance = _null_sums(family, data, result)
    return GLMSolution(coef=point.coef, intercept=point.intercept, deviance=float(result.deviance),
                       pearson_chi2=float(result.pearson), objective=float(objective), n_iter=int(n_iter),
                       passes=passes, converged=bool(converged), deviance_path=np.asarray([objective]), step=delta,
                       step_intercept=float(d0), halvings=0, state=result.state, factor=factor,
                       rank=int(factor.rank), aliased=tuple(factor.aliased), condition_number=float(factor.cond),
                       separated=(), family=family, link=link, fit_intercept=bool(fit_intercept),
                       alpha=float(alpha), data=data, saturated=saturated,
                       null_deviance=null_deviance)


__all__ = ["ConvergenceWarning", "Curvature", "DataSummary", "GLMSolution", "Point", "SeparationWarning",
           "curvature_of", "fit_irls", "fit_null", "solution_at"]
