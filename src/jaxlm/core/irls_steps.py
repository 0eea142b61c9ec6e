"""The steps of IRLS (:mod:`jaxlm.core.irls`): the iterate's objective, the Newton step read off a
pass's state (or a quasi-Newton step from a score pass and a :class:`Curvature`), step sizes,
halving, separation helpers, and the intercept-only (null) model's one-dimensional IRLS. Pure
functions over NumPy; the rules they implement are stated in :mod:`jaxlm.core.irls`.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

from . import exact
from . import state as st
from .errors import InputError
from .families import Family, Gaussian, Link, check_link, get_family
from .glm_passes import PassResult, Point, null_reduction
from .reduction import Reduction

__all__ = ["CHORD_SLACK", "Curvature", "GRAM32_MAX_COND", "MAX_HALVINGS", "QN_FINAL", "QN_MAX_PASSES",
           "QN_MAX_RATE", "QN_RATE0", "SEPARATION_STEP", "STEP_FACTOR", "STEP_FLOOR", "Schedule", "after_full",
           "after_score", "curvature_of", "first_rate", "fit_null"]


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
#: A step's η change is measured (one more matrix-vector product in the pass) once the
#: relative deviance change falls below this (Binomial only: the separation check).
_WATCH_CHANGE = 1e-3
#: Quasi-Newton (score passes with a :class:`Curvature`, see :func:`after_score`): the linear rate
#: of a subsample's curvature is first guessed (:func:`first_rate`: 2√(d/m) for m rows, the
#: spread of a sample Gram's eigenvalues, at least QN_RATE0), then measured (the ratio of
#: successive steps); the score passes stop when it exceeds QN_MAX_RATE ...
QN_RATE0 = 0.05
QN_MAX_RATE = 0.5
#: ... or after this many score passes.
QN_MAX_PASSES = 8
#: The last pass is a full one once the next point's predicted error is at most QN_FINAL·tol.
QN_FINAL = 0.1
#: A chord step is taken after a Newton step of relative size rel when rel³ ≤ CHORD_SLACK·tol.
CHORD_SLACK = 10.0
#: The Newton pass after a subsample's score passes accumulates its Gram in float32 (entries
#: within ~3e-7, its inverse within ~3e-7·cond²: a curvature; the last pass is always float64)
#: when the subsample's condition number is at most this and no column's mean exceeds its spread.
GRAM32_MAX_COND = 20.0


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
    if isinstance(state, np.ndarray):  # a score pass's score
        return bool(np.all(np.isfinite(state)))
    return all(np.all(np.isfinite(np.asarray(a))) for a in state)


class Curvature(NamedTuple):
    """An approximate information matrix for quasi-Newton steps from score passes: ``scale`` times
    that of a fit on a row subsample at its solution (its working weights' ``state`` and the
    ``factor`` of ``Sxx + α_sub I``; scale = full Σw / subsample Σw), or (scale 1) that of an
    earlier full pass of the same fit (a chord step)."""

    state: object
    factor: object
    scale: float


class Schedule(NamedTuple):
    """The quasi-Newton road of a fit: whether the next pass is a score pass, with which curvature
    (``chord``: a full pass's own, else a subsample's), its linear ``rate`` (estimated), the relative
    size of the last score step with it (``last``) and the score passes so far."""

    score: bool
    curvature: Curvature | None
    rate: float = QN_RATE0
    last: float = math.inf
    passes: int = 0
    chord: bool = False
    gram32: bool = False  # the next full pass: a curvature in float32 (the Newton pass between the score passes)


def after_score(sch: Schedule, rel: float, *, tol: float, halved: bool, iters_left: int) -> Schedule:
    """After a score pass whose quasi-Newton step has relative size ``rel`` (the error of the
    point it left, about): the next point's error is predicted as ``rate · rel``. More score
    passes until that is small enough for what follows: with a subsample's curvature, tol^(1/3)
    (a Newton pass squares it, then a chord step with that pass's curvature, rate ≈ its error,
    cubes it: :func:`after_full`); with a chord curvature, QN_FINAL·tol (the last, full, pass).
    A halving, a poor rate or too many passes: full passes from here."""
    rate = min(rel / sch.last, 1.0) if sch.last < math.inf else sch.rate
    target = QN_FINAL * tol if sch.chord else tol ** (1.0 / 3.0)
    more = (not halved and rate <= QN_MAX_RATE and sch.passes + 1 < QN_MAX_PASSES and iters_left > 2
            and rate * rel > target)
    # the Newton pass that follows a subsample's score passes only needs a curvature: float32 for
    # its Gram when the design is well conditioned (its error, ~1e-6 κ, then stays below the step's)
    low = not more and not sch.chord and not halved and rate * rel > QN_FINAL * tol and _gram32_ok(sch.curvature)
    return sch._replace(score=more, rate=rate, last=rel, passes=sch.passes + 1, gram32=low)


def _gram32_ok(curv: Curvature) -> bool:
    """Whether a float32 Gram is a good curvature here: well conditioned, means within the spreads
    (algebraic centring then cancels at most one digit)."""
    mean = np.asarray(curv.state.mean_x, dtype=np.float64)
    var = np.diag(np.asarray(st.moments(curv.state)[0], dtype=np.float64)) / max(float(curv.state.wsum), 1e-300)
    return float(curv.factor.cond) <= GRAM32_MAX_COND and bool(np.all(mean * mean <= var))


def after_full(sch: Schedule, rel: float, state, factor, *, tol: float, iters_left: int,
               final: bool = False) -> Schedule:
    """After a full pass (not converged) whose Newton step has relative size ``rel``: Newton's next
    point has error ~rel²; when that is not yet final (> QN_FINAL·tol) but one chord step (a score
    pass with this pass's curvature, rate ~rel) makes it so (rel³ ≤ CHORD_SLACK·tol), a chord
    step; else a full pass (only on the quasi-Newton road: a fit without a curvature takes Newton
    steps). A chord step too few costs one more full pass; its gain is one full pass for a score
    pass: hence the slack over the (constant-free) estimate.
    ``final``: the pass met the convergence rules but was a float32 one: a float64 pass next."""
    if (final or sch.curvature is None or iters_left <= 2 or rel * rel <= QN_FINAL * tol
            or rel ** 3 > CHORD_SLACK * tol):
        return sch._replace(score=False, gram32=False)
    return Schedule(True, Curvature(state, factor, 1.0), rate=rel, passes=sch.passes, chord=True)


def first_rate(curv: Curvature) -> float:
    """The linear rate expected of a subsample's curvature before one is measured: 2√(d/m)."""
    d, m = len(np.asarray(curv.state.mean_x)), max(float(curv.state.count), 1.0)
    return min(max(2.0 * math.sqrt(d / m), QN_RATE0), QN_MAX_RATE)


def curvature_of(solution, scale: float) -> Curvature:
    """The :class:`Curvature` of a (subsample) fit's :class:`~jaxlm.core.irls.GLMSolution`."""
    return Curvature(solution.state, solution.factor, float(scale))


def _score_step(score, point: Point, curv: Curvature, alpha: float, fit_intercept: bool):
    """(δ, δ₀): the quasi-Newton step ``H̃⁻¹ (score − α[0, β])`` with H̃ the curvature's ``[1, X]``
    information, solved about its weighted mean x̃ (where it is block diagonal: ``c ΣW̃`` and
    ``c S̃xx``): δ = (c S̃xx)⁻¹ (Σ W r x − x̃ Σ W r − αβ), δ₀ = Σ W r / (c ΣW̃) − x̃ᵀδ."""
    score = np.asarray(score, dtype=np.float64)
    s0, rhs = float(score[0]), score[1:] - alpha * point.coef
    mean_x = np.asarray(curv.state.mean_x, dtype=np.float64)
    if fit_intercept:
        rhs = rhs - mean_x * s0
    delta = curv.factor.solve(rhs[:, None])[:, 0] / curv.scale if len(rhs) else np.zeros(0)
    if not fit_intercept:
        return delta, 0.0
    return delta, s0 / (curv.scale * float(curv.state.wsum)) - float(mean_x @ delta)


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


def _eta_scale(it: _Iterate, fit_intercept: bool, state=None) -> float:
    """The same measure of the coefficients themselves (the size of the linear predictor), with
    the spreads of ``state`` (default: the iterate's)."""
    state = it.result.state if state is None else state
    return max(_step_size(it.point.coef, it.point.intercept, state, fit_intercept), np.finfo(np.float64).tiny)


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
