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
   (cheap: one matrix-vector product reads X).
1. *start*: the working weights and response at statsmodels' starting means
   ``μ₀ = (y + ȳ)/2`` (Binomial ``(y + ½)/2``; ȳ the frequency-weighted mean), or at the
   coefficients ``start=``.
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

import contextlib
import functools
import math
import warnings
from typing import Callable, NamedTuple, Sequence

import numpy as np

from . import exact
from . import state as st
from .errors import InputError, check_nonnegative, check_positive, check_positive_int
from .families import Binomial, Family, Gaussian, Link, check_link, get_family
from .glm_passes import (SEPARATION_MU, DataSummary, PassResult, Point, check_reduction, null_reduction,
                         pass_reduction, pass_threads, single_threaded_blas, spread_reduction, summarise)
from .reduction import Reduction

#: Most halvings of one step before IRLS gives up (the step is then 2⁻³⁰ of the Newton step).
MAX_HALVINGS = 30
#: Convergence also needs the next step to move the linear predictor by at most
#: STEP_FACTOR·tol of its size (a deviance rule alone cannot certify the coefficients: the
#: deviance is quadratic in their error, so 1e-8 in β is 1e-16 in D, below rounding).
STEP_FACTOR = 1.0
#: ... or, below tol's reach, a step that has stopped shrinking (by half) while it is under
#: STEP_FLOOR of η's size: the iterates have reached the rounding floor (about κ·ε).
STEP_FLOOR = 1e-8
#: ... and a last step that moved some row's linear predictor by more than this.
SEPARATION_STEP = 1e-2
#: A step's η change is measured (one extra column in the pass's matrix product) once the
#: relative deviance change falls below this (Binomial only: the separation check).
_WATCH_CHANGE = 1e-3


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


# --------------------------------------------------------------------------- the solve
class _Iterate(NamedTuple):
    point: Point
    result: PassResult
    objective: float


def _objective(result: PassResult, point: Point, alpha: float) -> float:
    """The penalised deviance; inf for an invalid iterate (means outside the domain, or
    working weights so extreme that the state overflowed: the step is then halved)."""
    if result.invalid or not math.isfinite(result.deviance) or not _finite_state(result.state):
        return math.inf
    if point.start_mean is not None:
        return result.deviance
    return result.deviance + alpha * float(point.coef @ point.coef)


def _finite_state(state) -> bool:
    return all(np.all(np.isfinite(np.asarray(a))) for a in state)


def _newton_step(state, point: Point, alpha: float, fit_intercept: bool):
    """(δ, δ₀, factor): the weighted least-squares fit of the state's working residual (or
    working response, at the start) on [1, X], ridge-corrected for the current coefficients."""
    if point.coef.shape[0] == 0:  # intercept-only model: the step is the mean working residual
        factor = exact.Factor("cholesky", np.ones(0), np.zeros((0, 0)), None, None, 0, 1.0, ())
        return np.zeros(0), float(np.asarray(state.mean_y, dtype=np.float64)[0]), factor
    factor = exact.factor_state(state, alpha=alpha, fit_intercept=fit_intercept)
    s = st.moments(state) if fit_intercept else st.uncentred(state)
    coef = np.zeros_like(point.coef) if point.start_mean is not None else point.coef
    rhs = np.asarray(s[1], dtype=np.float64)[:, 0] - alpha * coef
    delta = factor.solve(rhs[:, None])[:, 0]
    if not fit_intercept:
        return delta, 0.0, factor
    mean_x = np.asarray(state.mean_x, dtype=np.float64)
    mean_y = float(np.asarray(state.mean_y, dtype=np.float64)[0])
    # the intercept of the fit of r on [1, X] with slope δ: r̄ − x̄ᵀδ
    return delta, mean_y - float(mean_x @ delta), factor


def _moved(point: Point, delta, d0) -> Point:
    """The point after a step (from the start pass, the step is the whole solution)."""
    if point.start_mean is not None:
        return Point(delta, d0)
    return Point(point.coef + delta, point.intercept + d0)


def _midpoint(a: Point, b: Point) -> Point:
    return Point(0.5 * (a.coef + b.coef), 0.5 * (a.intercept + b.intercept))


def _separating(result: PassResult) -> bool:
    """Fitted probabilities of 0 or 1 while the last step still moved η (see the module docstring)."""
    return result.extreme > 0 and result.max_deta > SEPARATION_STEP


def _column_sd(state) -> np.ndarray:
    """The working-weighted standard deviation of each column (from the state), 1 where it is 0."""
    sd = np.sqrt(np.maximum(np.diag(np.asarray(st.moments(state)[0], dtype=np.float64)), 0.0)
                 / max(float(state.wsum), 1e-300))
    return np.where(sd > 0, sd, 1.0)


def _step_size(delta, d0, state, fit_intercept: bool) -> float:
    """How far a step moves the linear predictor: max_j |δ_j| sd_j, and (with an intercept)
    the change of η at the weighted mean of X."""
    size = float(np.max(np.abs(delta) * _column_sd(state), initial=0.0))
    if fit_intercept:
        size = max(size, abs(d0 + float(np.asarray(state.mean_x, dtype=np.float64) @ delta)))
    return size


def _eta_scale(it: _Iterate, fit_intercept: bool) -> float:
    """The same measure of the coefficients themselves (the size of the linear predictor)."""
    return max(_step_size(it.point.coef, it.point.intercept, it.result.state, fit_intercept),
               np.finfo(np.float64).tiny)


def _fixed_weights(family: Family, link: Link) -> bool:
    """Working weights that do not depend on μ: one weighted least-squares fit is the MLE."""
    return isinstance(family, Gaussian) and link.name == "identity"


def _shift_for(state) -> np.ndarray | None:
    """A centring point for the next pass's Gram: the weighted mean, when some column lies
    far from the origin relative to its spread (algebraic centring would cancel digits)."""
    mean = np.asarray(state.mean_x, dtype=np.float64)
    spread = np.diag(np.asarray(st.moments(state)[0], dtype=np.float64)) / max(float(state.wsum), 1e-300)
    if np.any(mean * mean > 1e2 * spread):
        return mean
    return None


def _check_start(start, d: int, fit_intercept: bool):
    if start is None:
        return None
    coef, intercept = start if isinstance(start, tuple) else (start, 0.0)
    coef = np.asarray(coef, dtype=np.float64).reshape(-1)
    if coef.shape != (d,) or not np.all(np.isfinite(coef)) or not math.isfinite(float(intercept)):
        raise InputError("start", f"start must be finite coefficients of shape ({d},) (or a (coef, intercept) "
                                  f"pair); got start of shape {coef.shape}. Pass the coefficients of a previous fit.")
    return Point(coef.copy(), float(intercept) if fit_intercept else 0.0)


def _column_names(names, cols) -> str:
    if names is None:
        return ", ".join(f"x{j}" for j in cols)
    names = list(names)
    return ", ".join(repr(str(names[j])) for j in cols)


def _separating_columns(delta: np.ndarray, x_sd: np.ndarray) -> tuple:
    """Columns of the diverging direction: |δ_j|·sd_j at least a tenth of the largest (the
    columns' unweighted spread: the working weights vanish on the separated rows)."""
    size = np.abs(delta) * np.where(x_sd > 0, x_sd, 1.0)
    if not np.any(size > 0):
        return ()
    return tuple(int(j) for j in np.flatnonzero(size >= 0.1 * size.max()))


def _blas_held(fit):
    """``fit`` under one :func:`~jaxlm.core.glm_passes.single_threaded_blas` for all its passes (each
    shares its chunks between threads; setting OpenBLAS's threads back after every block costs more)."""
    @functools.wraps(fit)
    def held(*args, **kwargs):
        with single_threaded_blas() if pass_threads() > 1 else contextlib.nullcontext():
            return fit(*args, **kwargs)
    return held


@_blas_held
def fit_irls(run: Callable[[Reduction], object], d: int, *, family, link=None, fit_intercept: bool = True,
             alpha: float = 0.0, tol: float = 1e-10, max_iter: int = 100, start=None,
             feature_names: Sequence[str] | None = None, data: DataSummary | None = None) -> GLMSolution:
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
    data : the :class:`DataSummary` of an earlier check pass over the same data (skips it).
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

    first = start_point._replace(extremes=True) if start_point is not None else Point(np.zeros(d), 0.0,
                                                                                       start_mean=data.y_mean)
    cur = evaluate(first)
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
    delta, d0, factor = _newton_step(cur.result.state, cur.point, alpha, fit_intercept)
    for _ in range(max_iter):
        change_prev = (abs(path[-1] - path[-2]) / (abs(path[-1]) + 0.1)) if len(path) > 1 else math.inf
        new = _moved(cur.point, delta, d0)
        base = cur.point if cur.point.start_mean is None else anchor
        watch = isinstance(family, Binomial) and change_prev < _WATCH_CHANGE and cur.point.start_mean is None
        shift = _shift_for(cur.result.state)
        for h in range(MAX_HALVINGS + 1):
            pt = new._replace(shift=shift)
            if watch:
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
        delta, d0, factor = _newton_step(cur.result.state, cur.point, alpha, fit_intercept)
        size, scale = _step_size(delta, d0, cur.result.state, fit_intercept), _eta_scale(cur, fit_intercept)
        small = size <= STEP_FACTOR * tol * scale or (size <= STEP_FLOOR * scale and size >= 0.5 * prev_size)
        prev_size = size
        if fixed_done or (change <= tol * (abs(cur.objective) + 0.1) and small):
            converged = True
            break
        if (change <= tol * (abs(cur.objective) + 0.1) and isinstance(family, Binomial)
                and _separating(cur.result)):
            diverged = True  # the deviance has converged, the coefficients diverge: stop and warn below
            break
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
                       family=family, link=link, fit_intercept=bool(fit_intercept), alpha=alpha, data=data)


def fit_null(run: Callable[[Reduction], object], family, link=None, *, start: float, tol: float = 1e-10,
             max_iter: int = 100) -> tuple[float, float, int]:
    """The intercept-only model with the data's offsets (statsmodels' ``null`` model when an
    offset is given): one-dimensional IRLS, one cheap pass (y, weights, offset) per iteration.
    Returns ``(intercept, deviance, passes)``. Without offsets the fitted mean is simply the
    weighted mean ``Σ w v y / Σ w v`` (:attr:`DataSummary.null_mean`) and no pass is needed."""
    family = get_family(family)
    link = check_link(family, link)
    b = float(start)
    cur = run(null_reduction(family, link, b))
    passes = 1
    for _ in range(max_iter):
        if not cur.wsum > 0:
            break
        step = cur.wr / cur.wsum
        for _h in range(MAX_HALVINGS + 1):
            nxt = run(null_reduction(family, link, b + step))
            passes += 1
            if math.isfinite(nxt.deviance) and nxt.deviance <= cur.deviance + tol * (abs(nxt.deviance) + 0.1):
                break
            step *= 0.5
        else:
            break
        change = abs(nxt.deviance - cur.deviance)
        b, cur = b + step, nxt
        if change <= tol * (abs(cur.deviance) + 0.1) and abs(step) <= STEP_FACTOR * tol * max(abs(b), 1.0):
            break
    return b, float(cur.deviance), passes


@_blas_held
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
    result = run(pass_reduction(family, link, point, int(d)))
    objective = _objective(result, point, alpha)
    if not math.isfinite(objective):
        raise InputError("start", f"the coefficients must give valid means for the {family.describe()} family; "
                                  f"got {result.invalid} rows outside its domain. Use solver='irls'.")
    delta, d0, factor = _newton_step(result.state, point, alpha, fit_intercept)
    return GLMSolution(coef=point.coef, intercept=point.intercept, deviance=float(result.deviance),
                       pearson_chi2=float(result.pearson), objective=float(objective), n_iter=int(n_iter),
                       passes=passes, converged=bool(converged), deviance_path=np.asarray([objective]), step=delta,
                       step_intercept=float(d0), halvings=0, state=result.state, factor=factor,
                       rank=int(factor.rank), aliased=tuple(factor.aliased), condition_number=float(factor.cond),
                       separated=(), family=family, link=link, fit_intercept=bool(fit_intercept),
                       alpha=float(alpha), data=data)


__all__ = ["ConvergenceWarning", "DataSummary", "GLMSolution", "Point", "SeparationWarning", "fit_irls",
           "fit_null", "solution_at"]
