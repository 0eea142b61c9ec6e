"""Exact least squares read off the mergeable state, with double-double refinement.

Solvers (``SOLVERS``):

``"cholesky"``  Cholesky of the column-equilibrated centred Gram ``Sxx (+ αI)``. One pass
                over the data (a GEMM per block); the fastest.
``"qr"``        TSQR: the triangular factor R of the centred, weighted ``[X | Y]``, merged
                block by block (never squares the condition number), then the
                triangular solve.
``"svd"``       minimum-norm solution from the SVD of R; the path for rank-deficient designs.
``"auto"``      Gram pass; the condition number of the centred, equilibrated design
                decides: ≤ 1e6 → Cholesky, else QR; a rank-deficient R → SVD.

Refinement. The float64 solve of an ill-conditioned problem loses digits (Wampler4 and
Filip lose 6–8 even with QR). Each refinement step computes the normal-equations
gradient ``g = Xᵀ W (y − Xβ) − αβ`` in double-double arithmetic (:mod:`jaxlm.core.dd`)
over the data and corrects ``β += H⁻¹ g`` with the already-computed factor ``H``. Since
``g`` is exact to ~32 digits, the fixed point is the exact least-squares solution of
the float64 data; the factor only sets the rate, about ``κ²·ε`` per step. Each step is
one extra pass. Every float64 fit takes at least one (``refine_data=None``), and stops when
the correction is below rounding: the plain solve's error is norm-wise, ~ε·κ²·‖β‖ in
equilibrated units (larger where the Gram about the origin cancels against the means), so a
coefficient 100× below the largest loses two digits, and no bound cheap enough to test
after the state pass is tight enough to skip the pass safely (on integer designs of 2¹⁸ rows,
κ ≈ 2.5, with exact rational references, 5 of 8 plain solves missed 1e-14 on some coefficient,
by up to 5e-14; on random designs with offsets of one spread, 6 of 6 up to 5e-13). The
first step also certifies the result: its correction measures the plain solve's error.
The last correction is kept below rounding (``β + lo``), so that the intercept is formed
from the exact β: β's rounding times an offset of 1e12 would otherwise be most of the
intercept's digits. The step is the exact
Newton step of the shifted problem: the state's mean ``s`` is only the float64 rounding of
the true mean, so the pass also measures ``Σw(x − s)`` and the step solves with its Schur
complement (this matters for columns far from the origin with a spread of a few ulps,
such as integers beyond 2^53).

Range. Data whose squares would overflow or underflow float64 (|x| ~ 1e200, weights ~ 1e300,
subnormal values) are detected on the state (:func:`jaxlm.core.state.in_range`) and the
fit is redone on the data scaled per column by powers of two (exact); the state, the factor
and the measured SSE of the solution are then in those units (``state.log2_*``), and the
coefficients are mapped back exactly. A coefficient or intercept that itself lies beyond
float64 is refused with an :class:`~jaxlm.core.errors.InputError` naming the column.

Columns that hold a single float64 value up to rounding (``1e40 + i`` for small i) are
aliased with the intercept (:func:`jaxlm.core.state.rounding_constant`): coefficient 0,
reported in ``aliased``.
"""
from __future__ import annotations

import math
from functools import partial
from typing import Callable, Iterable, NamedTuple

import numpy as np

from . import dd, state as st, target_alpha as ta
from .errors import check_choice
from .passes import gradient_reduction, loop_runner, magnitude_reduction, state_reduction
from .precision import jax, x64_scope
from .ranges import ridge_in_units, to_data_units
from .reduction import Runner
from .solution import Solution
from .triangular import solve_triangular  # NumPy: import scipy.linalg costs ~0.1 s of a CLI fit

SOLVERS = ("auto", "cholesky", "qr", "svd")
EPS = np.finfo(np.float64).eps
#: Above this condition number (centred, equilibrated design) "auto" leaves the Gram for QR.
GRAM_COND_LIMIT = 1e6
MAX_REFINE_STEPS = 12
#: A refinement whose last correction is below this (relative) has reached rounding level.
REFINED = 1e-12

Batches = Callable[[], Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]]


class Factor(NamedTuple):
    """``H = D Rᵀ R D`` ≈ the (ridge) normal matrix, or its pseudo-inverse pieces for SVD.

    ``scale`` is D⁻¹'s diagonal (column norms), ``r`` is upper triangular in equilibrated
    coordinates. For the SVD form ``v``/``s_inv`` hold the rank-truncated pseudo-inverse.
    """

    kind: str
    scale: np.ndarray
    r: np.ndarray | None
    v: np.ndarray | None
    s_inv: np.ndarray | None
    rank: int
    cond: float
    aliased: tuple

    def solve(self, g: np.ndarray) -> np.ndarray:
        """H⁻¹ g (or H⁺ g) for g of shape (d, m)."""
        ge = g / self.scale[:, None]
        if self.kind == "svd":
            # H = D V S² Vᵀ D in equilibrated coordinates
            z = self.v @ ((self.v.T @ ge) * (self.s_inv**2)[:, None])
        else:
            z = solve_triangular(self.r, solve_triangular(self.r, ge, trans=True))
        return z / self.scale[:, None]


def _scales(diag: np.ndarray) -> np.ndarray:
    s = np.sqrt(np.maximum(diag, 0.0))
    return np.where(s > 0, s, 1.0)


def _aliased(v_null: np.ndarray) -> tuple:
    if v_null.size == 0:
        return ()
    weight = np.max(np.abs(v_null), axis=1)
    return tuple(int(j) for j in np.flatnonzero(weight > 1e-6))


def _min_norm(a: np.ndarray, rank: int, cond: float, aliased: tuple, *, gram: bool) -> Factor:
    """Pseudo-inverse pieces of the normal matrix, truncated to ``rank``, in original units.

    The rank is decided on the equilibrated matrix (unit-free); the truncation is applied to
    the unscaled one so that the result is the minimum-norm solution in the user's units,
    as ``numpy.linalg.lstsq`` gives it. ``a`` is the Gram matrix (``gram=True``) or R.
    """
    if gram:
        lam, vecs = np.linalg.eigh(a)
        order = np.argsort(lam)[::-1][:rank]
        v, s = vecs[:, order], np.sqrt(np.maximum(lam[order], 0.0))
    else:
        _, s, vt = np.linalg.svd(a)
        v, s = vt[:rank].T, s[:rank]
    return Factor("svd", np.ones(a.shape[1]), None, v, 1.0 / s, rank, cond, aliased)


def _ridge(alpha, d: int) -> np.ndarray:
    """The ridge penalty as a (d,) vector (one α per column; a scalar is broadcast), or as a
    (d, m) matrix given one (one column per target: :mod:`jaxlm.core.target_alpha`)."""
    a = np.asarray(alpha, dtype=np.float64)
    return a if a.ndim == 2 else np.broadcast_to(a, (d,))


def factor_from_gram(sxx: np.ndarray, alpha, n: float) -> Factor:
    """Cholesky of the equilibrated ``Sxx + diag(α)``; rank and condition from its eigenvalues."""
    d = sxx.shape[0]
    H = sxx + np.diag(_ridge(alpha, d))
    scale = _scales(np.diag(H))
    A = H / np.outer(scale, scale)
    lam, vecs = np.linalg.eigh(A)
    lam_max = max(lam[-1], 0.0)
    tol = lam_max * max(n, d) * EPS * 10
    null = lam <= tol
    rank = int(d - np.sum(null))
    cond = math.sqrt(lam_max / lam[0]) if lam[0] > 0 else math.inf
    if rank < d:
        return _min_norm(H, rank, cond, _aliased(vecs[:, null]), gram=True)
    try:
        r = np.linalg.cholesky(A).T
    except np.linalg.LinAlgError:
        return _min_norm(H, rank, cond, (), gram=True)
    return Factor("cholesky", scale, r, None, None, rank, cond, ())


def factor_from_r(rx: np.ndarray, alpha, n: float, *, svd: bool = False) -> Factor:
    """From the TSQR factor of the centred X: equilibrate, SVD for rank, R (or, with
    ``svd=True``, the SVD of the equilibrated R) for the solve."""
    d = rx.shape[1]
    a = _ridge(alpha, d)
    if np.any(a > 0):
        rx = np.linalg.qr(np.vstack([rx, np.diag(np.sqrt(a))]), mode="r")
    scale = _scales(np.sum(rx * rx, axis=0))
    re = rx / scale[None, :]
    _, s, vt = np.linalg.svd(re)
    tol = s[0] * max(n, d) * EPS
    keep = s > tol
    rank = int(np.sum(keep))
    cond = float(s[0] / s[-1]) if s[-1] > 0 else math.inf
    if rank < d:
        return _min_norm(rx, rank, cond, _aliased(vt[~keep].T), gram=False)
    if svd:  # full rank: the minimum-norm solution is the unique one; solve in equilibrated units
        return Factor("svd", scale, None, vt.T, 1.0 / s, rank, cond, ())
    return Factor("qr", scale, np.triu(re), None, None, rank, cond, ())


def refine(gradient: Callable, factor: Factor, coef: np.ndarray, c: np.ndarray, *, wsum: float, alpha,
           fit_intercept: bool, max_steps: int = MAX_REFINE_STEPS):
    """Iterative refinement with double-double gradients. Returns (coef, c, steps, sse, converged).

    ``gradient(coef, c)`` returns ``(g0, gx, sse[, gs])`` over all rows, as
    :func:`jaxlm.core.passes.gradient_reduction` sums them (a local pass, or a distributed one),
    with ``gs = Σw(x − s)``: the pass measures it only for shifted columns, and :func:`fit_reduced`
    puts in the state's ``Σw x`` otherwise; a result without it is taken as centred about the exact
    mean. ``gs`` only sets the rate: at the fixed point the step is zero whatever it is. With an
    intercept the step is Newton's for ``[c, β]`` about the shift ``s``, whose Hessian
    ``[[Σw, gᵀ], [g, S + ggᵀ/Σw]]`` has the centred (ridge) matrix ``S`` of the factor as the Schur complement:
    ``δβ = S⁻¹ (gx − g·g0/Σw)``, ``δc = (g0 − gᵀδβ)/Σw``. ``sse`` is the residual sum of
    squares measured in the last pass; it is stationary at the optimum, so the final
    correction changes it only to second order. ``converged``: the last correction applied
    was below ``REFINED`` relative to the coefficients (the factor was close enough to
    the data's normal matrix for the iteration to reach rounding level).
    The last correction is kept to below rounding: ``lo``, ``c_lo`` (the parts of ``coef + δ``
    and ``c + δc`` that float64 rounds away, or the correction measured but too small to
    change them) let the intercept ``ȳ + c − β·s`` be formed from the exact β when ``s`` is
    large (β's rounding times s = 1e12 would otherwise be most of the intercept's digits).
    """
    coef = coef.copy()
    c = c.copy()
    lo, c_lo = np.zeros_like(coef), np.zeros_like(c)
    prev = math.inf
    steps = 0
    a = _ridge(alpha, coef.shape[1])
    sse = None
    for _ in range(max_steps):
        out = gradient(coef, c)
        g0, gx, sse = out[:3]
        gs = out[3] if len(out) > 3 and fit_intercept else np.zeros(coef.shape[1])
        gx = gx - (a if a.ndim == 2 else a[:, None]) * coef.T
        gn = gx - np.outer(gs, g0) / wsum if fit_intercept else gx
        delta = factor.solve(gn).T  # (m, d)
        dc = (g0 - delta @ gs) / wsum if fit_intercept else np.zeros_like(c)
        size = np.max(np.abs(delta) / np.maximum(np.abs(coef), np.finfo(float).tiny), initial=0.0)
        if not np.all(np.isfinite(delta)) or not np.all(np.isfinite(dc)):
            break
        if size >= prev:  # no longer contracting: at rounding level, the correction is what is left
            if size <= 4 * EPS:
                lo, c_lo = delta, dc
            break
        coef, lo = dd.two_sum(coef, delta)
        c, c_lo = dd.two_sum(c, dc)
        steps += 1
        prev = size
        # the step lowers Σ w r² by about dc·g0 + δ·gx: if that is above rounding, the SSE
        # measured in this pass is stale and one more pass measures it (and checks the step)
        gain = dc * g0 + np.sum(delta * gx.T, axis=1)
        # settled: the next correction, about size·κ²ε (the factor's error), is below rounding already
        settled = size <= 2 * EPS or size * min(1.0, 64 * EPS * factor.cond**2) <= EPS / 4
        if settled and np.all(gain <= 8 * EPS * np.maximum(sse, np.finfo(float).tiny)):
            break
    return Refined(coef, c, steps, sse, prev <= REFINED, lo, c_lo)


class Refined(NamedTuple):
    """What :func:`refine` returns: ``coef`` (m, d), ``c`` (m,) and their parts below rounding
    ``lo``, ``c_lo``; the steps taken, the last measured SSE, and whether it converged."""

    coef: np.ndarray
    c: np.ndarray
    steps: int
    sse: np.ndarray
    converged: bool
    lo: np.ndarray
    c_lo: np.ndarray


def _intercept(sy, c, sx, coef, small=None):
    """β₀ = sy + c − coef·sx (+ ``small``, terms below the others' rounding) in double-double."""
    acc = dd.two_sum(sy, c)
    if small is not None:
        acc = dd.add(acc, (small, np.zeros_like(sy)))
    p = dd.total(dd.two_prod(coef, np.broadcast_to(sx, coef.shape)), axis=1)  # Σ_j coef_j sx_j, pairwise
    acc = dd.add(acc, (-p[0], -p[1]))
    return acc[0] + acc[1]


def _state_intercept(state, coef, c=None, small=None):
    """The intercept through the state's double-double means: ``ȳ + c − coef·x̄`` (+ ``small``)."""
    m = coef.shape[0]
    mx_lo = np.broadcast_to(np.asarray(state.mean_x_lo, dtype=np.float64), (coef.shape[1],))
    my_lo = np.broadcast_to(np.asarray(state.mean_y_lo, dtype=np.float64), (m,))
    lo = my_lo - coef @ mx_lo + (0.0 if small is None else small)
    return _intercept(np.asarray(state.mean_y, dtype=np.float64), np.zeros(m) if c is None else c,
                      np.asarray(state.mean_x, dtype=np.float64), coef, lo)


def refine_shift(state) -> tuple[np.ndarray, np.ndarray]:
    """The shift ``(sx, sy)`` of the refinement passes: the state's mean for a column far from
    the origin (|mean| > sd, where centring is what keeps its digits), 0 for the others, whose
    differences ``x − 0`` are then exact without a TwoSum per element (any shift gives the same
    Newton step: its Schur complement is the centred Gram)."""
    def pick(mean, spread):
        mean = np.asarray(mean, dtype=np.float64)
        sd = np.sqrt(np.maximum(np.diag(np.asarray(spread, dtype=np.float64)), 0.0) / max(float(state.wsum), 1e-300))
        return np.where(np.abs(mean) > sd, mean, 0.0)

    sxx, _, syy = st.moments(state)
    return pick(state.mean_x, sxx), pick(state.mean_y, syy)


def fit_exact(batches: Batches, d: int, m: int, *, solver: str = "auto", alpha: float = 0.0,
              fit_intercept: bool = True, refine_data: bool | None = None,
              dtype: str = "float64", on_nonfinite: Callable[[], None] | None = None,
              feature_names=None, target_names=None) -> Solution:
    """Exact (ridge) least squares over the rows yielded by ``batches()``:
    :func:`fit_reduced` with a loop over ``batches`` as the runner.

    ``batches`` is a zero-argument callable returning a fresh iterable of float64
    ``(X (b, d), Y (b, m), w (b,))`` blocks, so that the data can be passed over more than
    once (refinement, QR after a Gram pass). Zero-weight rows are ignored.
    """
    return fit_reduced(loop_runner(batches), d, m, solver=solver, alpha=alpha, fit_intercept=fit_intercept,
                       refine_data=refine_data, dtype=dtype, on_nonfinite=on_nonfinite,
                       feature_names=feature_names, target_names=target_names)


def _raise_nonfinite(on_nonfinite):
    if on_nonfinite is not None:
        on_nonfinite()
    raise ValueError("the data contain NaN or inf values (found in the accumulated least-squares state); "
                     "drop or impute them before fitting.")


def _check_finite_state(state, on_nonfinite):
    if not all(np.isfinite(np.asarray(a)).all() for a in state):
        _raise_nonfinite(on_nonfinite)


def factor_state(state, *, alpha: float = 0.0, fit_intercept: bool = True, solver: str = "auto") -> Factor:
    """The factor of the (ridge) normal matrix read off a Gram or QR state (in the state's units;
    ``alpha`` in the data's). With an intercept, columns that are constant up to rounding
    (:func:`jaxlm.core.state.rounding_constant`) are aliased: their rows of the matrix are zero."""
    if ta.is_per_target(alpha):  # one penalty per target (jaxlm.core.target_alpha): a factor per distinct one
        return ta.Grouped.build(partial(factor_state, state, fit_intercept=fit_intercept, solver=solver), alpha)
    to_np = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    n = float(state.count)
    alpha = ridge_in_units(alpha, st.units_of(state))
    const = st.rounding_constant(state) if fit_intercept else np.zeros(state.mean_x.shape[0], bool)
    if isinstance(state, st.GramState):
        s = st.moments(state) if fit_intercept else st.uncentred(state)
        sxx = to_np(s[0]).copy()
        sxx[const, :] = 0.0
        sxx[:, const] = 0.0
        return factor_from_gram(sxx, alpha, n)
    d = state.mean_x.shape[0]
    r = to_np(state.r)
    if not fit_intercept:
        shift = math.sqrt(float(state.wsum)) * np.concatenate([to_np(state.mean_x), to_np(state.mean_y)])
        r = np.linalg.qr(np.vstack([r, shift[None, :]]), mode="r")
    rx = r[:d, :d].copy()
    rx[:, const] = 0.0
    return factor_from_r(rx, alpha, n, svd=solver == "svd")


def _solve_scaled(state, factor: Factor, alpha, fit_intercept: bool):
    """Coefficients (m, d) and Σ w r² (m,) read off a state, in its units."""
    s = st.moments(state) if fit_intercept else st.uncentred(state)
    coef = factor.solve(s[1]).T  # (m, d)
    a = _ridge(alpha, coef.shape[1])
    # Σ w r² at the solution: Syy − coef·Sxy − Σ α_j coef_j² (exact at the optimum)
    sse = np.maximum(np.diag(s[2]) - np.sum(coef.T * s[1], axis=0) - np.sum(a.T * coef**2, axis=1), 0.0)
    return coef, sse


def solve_state(state, *, alpha: float = 0.0, fit_intercept: bool = True, solver: str = "auto",
                factor: Factor | None = None, dtype: str = "float64", feature_names=None,
                target_names=None) -> Solution:
    """The solution read off a state alone (no refinement: that needs the data again).

    ``coef`` and ``intercept`` are in the data's units; ``sse``, ``state`` and ``factor`` in
    the state's (see the module docstring).
    """
    to_np = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    state = jax.tree_util.tree_map(to_np, state)
    units = st.units_of(state)
    if factor is None:
        factor = factor_state(state, alpha=alpha, fit_intercept=fit_intercept, solver=solver)
    m = state.mean_y.shape[0]
    coef, sse = _solve_scaled(state, factor, ta.penalty(alpha, units, state.mean_x.shape[0]), fit_intercept)
    intercept = _state_intercept(state, coef) if fit_intercept else np.zeros(m)
    coef, intercept = to_data_units(coef, intercept, units, feature_names=feature_names, target_names=target_names)
    return Solution(coef=coef, intercept=intercept, solver=factor.kind, dtype=dtype, rank=factor.rank,
                    condition_number=factor.cond, aliased=factor.aliased, sse=sse, state=state, factor=factor)


def state_of(run: Runner, d: int, m: int, *, kind: str = "gram", dtype: str = "float64",
             on_nonfinite: Callable[[], None] | None = None, units: st.Units | None = None):
    """The Gram or QR state of all rows (``run`` one pass, or three), checked for NaN/inf.

    With ``units`` None the data are taken as given unless the state shows them out of the
    safe range (:func:`jaxlm.core.state.in_range`); then one pass measures the columns'
    magnitudes and, where they are extreme, another accumulates the data rescaled by powers
    of two (exact). Given ``units``, the data are accumulated in them directly.
    """
    with x64_scope("float64"):
        state = run(state_reduction(d, m, kind=kind, dtype=dtype, units=units))
    if units is None and st.in_range(state, dtype):
        return state  # (finite)
    found = None if units is not None else run(magnitude_reduction(d, m))
    if units is None and found is None:  # NaN or inf in the data
        _raise_nonfinite(on_nonfinite)
    if found is not None and np.max(np.abs(np.r_[found.x, found.y, found.w])) > st.SAFE_LOG2[dtype] // 2:
        with x64_scope("float64"):
            state = run(state_reduction(d, m, kind=kind, dtype=dtype, units=found))
    _check_finite_state(state, on_nonfinite)
    return state


def accumulate_state(batches: Batches, d: int, m: int, *, kind: str = "gram", dtype: str = "float64",
                     on_nonfinite: Callable[[], None] | None = None, units: st.Units | None = None):
    """:func:`state_of` with a loop over ``batches()`` as the runner."""
    return state_of(loop_runner(batches), d, m, kind=kind, dtype=dtype, on_nonfinite=on_nonfinite, units=units)


def state_kind(solver: str) -> str:
    """The state form a solver reads: the Gram for "auto"/"cholesky", TSQR's R otherwise."""
    return "gram" if solver in ("auto", "cholesky") else "qr"


def fit_reduced(run: Runner, d: int, m: int, *, solver: str = "auto", alpha: float = 0.0,
                fit_intercept: bool = True, refine_data: bool | None = None, dtype: str = "float64",
                on_nonfinite: Callable[[], None] | None = None, feature_names=None,
                target_names=None) -> Solution:
    """The exact fit of the rows behind ``run`` (a driver of :mod:`jaxlm.reduce`, or
    :func:`jaxlm.core.passes.loop_runner`): ``run(reduction) -> result``.

    It asks ``run`` for the state (:func:`state_of`: one pass, three for data out of the safe
    range), a QR state when "auto" finds the Gram too ill-conditioned, and the double-double
    gradient (:func:`jaxlm.core.passes.gradient_reduction`) per refinement step. If the
    refinement stalls with the state's factor, the state of the rows shifted by the state's
    means finishes it. ``refine_data`` None refines every float64 fit (see the module docstring);
    False returns the plain solve of the state. The data are not scanned for NaN/inf up front: a
    non-finite value makes the state non-finite, and then ``on_nonfinite()`` locates it and raises (default: a
    ValueError without location). ``feature_names``/``target_names`` name the columns in the
    error raised when a coefficient itself lies beyond float64.
    """
    solver = check_choice("solver", solver, SOLVERS)
    known: dict = {}

    def accumulate(kind, shift=None):
        if shift is None:
            state = state_of(run, d, m, kind=kind, dtype=dtype, on_nonfinite=on_nonfinite, units=known.get("units"))
            known["units"] = st.units_of(state)  # the QR pass after a Gram pass need not search again
            return state
        with x64_scope("float64"):
            return run(state_reduction(d, m, kind=kind, dtype=dtype, units=known["units"], shift=shift))

    def gradient(coef, c, sx, sy, units=None):
        return run(gradient_reduction(coef, c, sx, sy, units))

    state = accumulate(state_kind(solver))
    factor = factor_state(state, alpha=alpha, fit_intercept=fit_intercept, solver=solver)
    if solver == "auto" and (factor.kind != "cholesky" or factor.cond > GRAM_COND_LIMIT):
        state = accumulate("qr")
        factor = factor_state(state, alpha=alpha, fit_intercept=fit_intercept, solver=solver)
    sol = solve_state(state, alpha=alpha, fit_intercept=fit_intercept, factor=factor, dtype=dtype,
                      feature_names=feature_names, target_names=target_names)
    st_np = sol.state
    units = st.units_of(st_np)
    d, m = sol.coef.shape[1], sol.coef.shape[0]
    alpha_s = ta.penalty(alpha, units, d)
    coef_s, _ = _solve_scaled(st_np, factor, alpha_s, fit_intercept)
    if refine_data is None:
        refine_data = dtype == "float64"
    if not refine_data:
        return sol
    grad = partial(gradient, units=units) if units.scaled else gradient
    sx, sy = refine_shift(st_np) if fit_intercept else (np.zeros(d), np.zeros(m))
    c0 = (np.asarray(st_np.mean_y, dtype=np.float64) - sy) - coef_s @ (np.asarray(st_np.mean_x, dtype=np.float64) - sx) \
        if fit_intercept else np.zeros(m)
    gs = float(st_np.wsum) * np.asarray(st_np.mean_x, dtype=np.float64)

    def measured(coef_, c_):  # Σ w x from the state where no column is shifted (the pass measures none)
        out = grad(coef_, c_, sx, sy)
        return out if np.any(sx) else out[:3] + (gs,)

    ref = refine(measured, factor, coef_s, c0, wsum=float(st_np.wsum), alpha=alpha_s, fit_intercept=fit_intercept)
    steps = ref.steps
    if not ref.converged and fit_intercept:
        # The state's merges lost digits of the spread (columns far from the origin with a
        # spread of a few ulps, merged from small batches): the moments of the data shifted by
        # the state's means are accurate, and their factor finishes the refinement.
        kind = "qr" if isinstance(st_np, st.QRState) else "gram"
        shifted = accumulate(kind, shift=(sx, sy))
        factor = factor_state(shifted, alpha=alpha, fit_intercept=True, solver=solver)
        ref = refine(measured, factor, ref.coef, ref.c, wsum=float(st_np.wsum), alpha=alpha_s, fit_intercept=True)
        steps += ref.steps
        (mx, lx), (my, ly) = dd.two_sum(sx, shifted.mean_x), dd.two_sum(sy, shifted.mean_y)
        state = shifted._replace(mean_x=mx, mean_y=my, mean_x_lo=lx + shifted.mean_x_lo,  # the accurate moments
                                 mean_y_lo=ly + shifted.mean_y_lo)
        sol = sol._replace(state=state, factor=factor, rank=factor.rank, condition_number=factor.cond,
                           aliased=factor.aliased)
    coef, c, sse = ref.coef, ref.c, ref.sse
    # the parts of β and c below rounding enter the intercept: β's rounding times a shift of 1e12
    # is most of the intercept's digits otherwise
    intercept = _intercept(sy, c, sx, coef, ref.c_lo - ref.lo @ sx) if fit_intercept else np.zeros(m)
    coef, intercept = to_data_units(coef, intercept, units, feature_names=feature_names, target_names=target_names)
    return sol._replace(coef=coef, intercept=intercept, refinement_steps=steps, sse=sse)
