"""Absorbed fixed effects (``y ~ x | firm + year``): least squares on ``x`` and the dummies of
one or more factors, without forming the dummies; and per-key sums merged by key.

By Frisch–Waugh–Lovell the coefficients of ``x`` are those of the *within* regression (``y`` and
``x`` less their projections on the fixed effects, no intercept). Blocks are ``(X, Y, w, fe₁, ...,
fe_F)``, the factors extra per-row arrays of level values of any dtype (missing values are an
InputError); rows with ``w = 0`` are ignored. ``z = [x, y]`` has ``q = d + m`` columns.

One factor: exact, one pass (:func:`within_reduction`): per level the weight ``W_l`` and means
``z̄_l``, and ``T = Σ_l Σ_{i∈l} w (z − z̄_l)(z − z̄_l)ᵀ``; parts merge by key with the parallel-axis
rule per level (``T = Σ T_part + Σ W_part (z̄_part − z̄_l)(…)ᵀ``), so a level spread over many
partitions is exact. Memory ``O(L·q)``.

Two or more factors: ``α`` solves ``DᵀWD α = DᵀW z``. In memory :func:`demean` runs alternating
projections (MAP, pyfixest's ``demean``). As reductions (:func:`absorb`, any driver) each
iteration is ONE pass giving every factor's per-level sums of ``w·Dp`` (a product with
``DᵀWD``), and the iteration is conjugate gradients preconditioned by the level weights: a MAP
sweep cannot be one pass (factor 2's means depend on factor 1's update of every row) and the
one-pass simultaneous-means variant (block Jacobi) does not converge for two factors; CG needs
no more passes than MAP needs sweeps (cf. pyfixest's Krylov ``LSMR`` demeaner). CG stops at
``tol`` relative to its initial residual and, once a Gram pass has measured ``‖z̃‖``, relative
to the demeaned column itself (when level constants dwarf the within variation).

The within Gram is solved by :func:`jaxlm.core.exact.solve_state` (no intercept). A regressor
whose within norm is at most ``COLLINEAR_TOL`` of its centred norm is collinear with the fixed
effects: it is dropped (coefficient NaN, listed in ``AbsorbedFit.collinear``). Degrees of
freedom and clustered covariances: :mod:`jaxlm.inference.cluster` (``fe_dof``, ``absorbed_stats``).
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd

from . import exact
from .blas import dot, tall_product
from .keyed import KeyedSums, LevelIndex, add_by_key, concat_keys, empty_keyed, group_codes, indicator, merge_keyed  # noqa: F401
from . import state as st
from .errors import InputError, NonFiniteData, check_choice
from .reduction import Reduction, fold
from .solution import Solution

TOL = 1e-12                   # stopping tolerance of the iterative (several factors) demeaning
MAX_ITER = 10_000
COLLINEAR_TOL = 1e-9          # within / centred norm at which a regressor is collinear with the FE
CANCELLATION_LIMIT = st.CANCELLATION_LIMIT  # see _within_block
CHUNK_ROWS = 8192             # rows per chunk when rows are centred on their level means explicitly
SUM_ROWS = 4096               # rows per chunk of the one-factor pass (z = [x, y] of a chunk stays in cache)
ROUNDING = 8 * np.finfo(np.float64).eps     # demeaning is not more accurate than the data
PARAM = "fixed_effects"
#: Largest memory (bytes) the per-level tables of a pass may take before the fit is refused.
MAX_BYTES = 2 << 30


# ------------------------------------------------------------------------------------ levels
def _z(X, Y) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    return np.concatenate([X, np.asarray(Y, dtype=np.float64).reshape(X.shape[0], -1)], axis=1)


def _positive(X, Y, w, fe):
    """The rows with w > 0 (all of them, uncopied, when every weight is positive)."""
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    keep = w > 0
    if np.isnan(w).any():  # not a weight of 0: refused, not dropped
        raise InputError("w", f"weights must not be missing; got NaN at row {int(np.flatnonzero(np.isnan(w))[0])}.")
    if keep.all():
        return X, Y, w, list(fe)
    return np.asarray(X)[keep], np.asarray(Y)[keep], w[keep], [np.asarray(f)[keep] for f in fe]


class FeTable(NamedTuple):
    """One factor: level values ``keys`` (L,), weights ``wsum`` (L,), fixed effects ``alpha`` (L, q)."""

    keys: np.ndarray
    wsum: np.ndarray
    alpha: np.ndarray

    @property
    def index(self) -> pd.Index:
        return pd.Index(self.keys)

    @property
    def positions(self) -> LevelIndex:
        """Positions of level values in the table (:class:`~jaxlm.core.keyed.LevelIndex`)."""
        return LevelIndex(self.keys)


def lookup(index, col, f: int) -> np.ndarray:
    """Positions of a block's level values in a factor's table (``index``: a LevelIndex or pandas Index)."""
    idx = index.get_indexer(np.asarray(col))
    if idx.size and idx.min() < 0:
        bad = np.asarray(col)[idx < 0][0]
        raise InputError(PARAM, f"fixed effect {f + 1} has a level {bad!r} that the fit did not see (or a missing "
                                f"value); the data must not change between passes. Drop rows with missing levels.")
    return idx


def demeaned(indexes, alphas, X, Y, fe) -> np.ndarray:
    """``z − Σ_f α_f[level_f]`` for one block (n, q)."""
    Z = _z(X, Y)
    for f, (index, alpha) in enumerate(zip(indexes, alphas)):
        Z -= alpha[lookup(index, fe[f], f)]
    return Z


# ------------------------------------------------------------------------------------ one factor
class WithinAcc(NamedTuple):
    """Per-level weights and means of ``z``, the within co-moment ``T`` (q, q), counts."""

    keys: np.ndarray
    wsum: np.ndarray
    mean: np.ndarray
    T: np.ndarray
    count: int            # rows with w > 0
    wsum2: float          # Σ w²


def _within_init(q: int) -> WithinAcc:
    return WithinAcc(np.empty(0), np.zeros(0), np.zeros((0, q)), np.zeros((q, q)), 0, 0.0)


def _gram(A, B, w, unit: bool) -> np.ndarray:
    return dot(A.T, B) if unit else dot((A * w[:, None]).T, B)  # (jaxlm.core.blas.dot)


def _level_sums(X, Y, w, codes, L: int, unit: bool):
    """``(S (L, q), Σ w z zᵀ (q, q))``, ``S`` the per-level sums of ``w z``, in one read of the rows:
    chunks of ``z = [x, y]`` in cache feed both the Gram and the level sums (as separate products
    they were three reads of X, each about as long as the plain fit's Gram). One thread: at 1e6×20
    with 100 to 100,000 levels, row ranges over two threads (a level table each) took 1.1–1.3× as
    long, the scattered sums being bound by memory."""
    n, d = X.shape
    S, G, buf = np.zeros((L, d + Y.shape[1])), np.zeros((d + Y.shape[1],) * 2), np.empty((min(SUM_ROWS, n), d + Y.shape[1]))
    for s in range(0, n, SUM_ROWS):
        Z = buf[:min(s + SUM_ROWS, n) - s]
        Z[:, :d], Z[:, d:] = X[s:s + SUM_ROWS], Y[s:s + SUM_ROWS]
        G += _gram(Z, Z, w[s:s + SUM_ROWS], unit)
        add_by_key(S, codes[s:s + SUM_ROWS], Z, None if unit else w[s:s + SUM_ROWS])
    return S, G


def _within_block(X, Y, w, fe) -> WithinAcc:
    """One block's levels and ``T``, formed algebraically (``Σ w z zᵀ − Σ_l W_l z̄_l z̄_lᵀ``: one Gram
    of the block, no per-row gather) unless that cancels more than 4 digits of a column (its
    about-origin sum of squares exceeds the within one 10⁴-fold: large offsets, or levels explaining
    nearly all of its variation); then rows are centred on their level means, in chunks."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64).reshape(X.shape[0], -1)
    codes, L, first = group_codes([fe], PARAM)
    W = np.bincount(codes, weights=w, minlength=L)
    unit = bool(np.all(w == 1.0))
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite data: non-finite sums, refused by the caller
        S, raw = _level_sums(X, Y, w, codes, L, unit)
        mean = S / W[:, None]
        T = raw - tall_product(S, mean)
    if np.isfinite(raw).all() and np.any(np.diag(raw) > CANCELLATION_LIMIT * np.abs(np.diag(T))):
        T = np.zeros_like(T)
        for s in range(0, w.size, CHUNK_ROWS):
            Zc = _z(X[s:s + CHUNK_ROWS], Y[s:s + CHUNK_ROWS]) - mean[codes[s:s + CHUNK_ROWS]]
            T += _gram(Zc, Zc, w[s:s + CHUNK_ROWS], unit)
    return WithinAcc(np.asarray(fe)[first], W, mean, 0.5 * (T + T.T), int(w.size), float(w @ w))


def _within_update(acc: WithinAcc, X, Y, w, *fe) -> WithinAcc:
    if len(fe) != 1:
        raise InputError(PARAM, f"the one-factor within pass needs exactly one fixed-effect column; got {len(fe)}.")
    X, Y, w, fe = _positive(X, Y, w, fe)
    return acc if w.size == 0 else _within_merge(acc, _within_block(X, Y, w, fe[0]))


def _bounded(acc, tables: list):
    """``acc``, unless its per-level tables outgrow :data:`MAX_BYTES` (a factor with nearly one
    level per row, streamed from a file): then an InputError, before memory runs out."""
    size = sum(t.nbytes for t in tables)
    if size > MAX_BYTES:
        L = max(t.shape[0] for t in tables)
        raise InputError(PARAM, f"fixed_effects must have far fewer levels than rows: the fit keeps one row of "
                                f"means per level, and {L:,} levels so far need {size / 2**30:.1f} GiB, more than "
                                f"the {MAX_BYTES / 2**30:.0f} GiB allowed. A factor with about one level per row "
                                f"(an id or a timestamp column?) absorbs nearly every row; check the column.")
    return acc


def _within_merge(a: WithinAcc, b: WithinAcc) -> WithinAcc:
    if a.wsum.size == 0 or b.wsum.size == 0:
        return _bounded(b if a.wsum.size == 0 else a, [a.mean, b.mean])
    keys = concat_keys(a.keys, b.keys)
    codes, L, first = group_codes([keys], PARAM)
    Wp, Mp = np.concatenate([a.wsum, b.wsum]), np.concatenate([a.mean, b.mean])
    W = np.bincount(codes, weights=Wp, minlength=L)
    mean = np.asarray(indicator(codes, L, Wp) @ Mp) / W[:, None]
    D = Mp - mean[codes]
    return _bounded(WithinAcc(keys[first], W, mean, a.T + b.T + (D * Wp[:, None]).T @ D, a.count + b.count,
                              a.wsum2 + b.wsum2), [mean])


def within_reduction(q: int) -> Reduction:
    """The exact one-factor pass over blocks ``(X, Y, w, fe)``; returns a :class:`WithinAcc`."""
    return Reduction(init=partial(_within_init, q), update=_within_update, merge=_within_merge)


# ------------------------------------------------------------------------------------ several factors
class LevelsAcc(NamedTuple):
    """First pass for F ≥ 2: factor 1's within accumulator, and for factors 2.. keyed
    ``[W_l, Σ_{i∈l} w z]`` (L, 1 + q)."""

    first: WithinAcc
    others: tuple


def _levels_update(F: int, acc: LevelsAcc, X, Y, w, *fe) -> LevelsAcc:
    if len(fe) != F:
        raise InputError(PARAM, f"the fixed-effects pass needs {F} fixed-effect columns; got {len(fe)}.")
    X, Y, w, fe = _positive(X, Y, w, fe)
    if w.size == 0:
        return acc
    Z1 = np.concatenate([np.ones((w.size, 1)), _z(X, Y)], axis=1)
    others = []
    for f in range(1, F):
        codes, L, first = group_codes([fe[f]], PARAM)
        blk = KeyedSums((np.asarray(fe[f])[first],), np.asarray(indicator(codes, L, w) @ Z1))
        others.append(merge_keyed(acc.others[f - 1], blk))
    out = LevelsAcc(_within_merge(acc.first, _within_block(X, Y, w, fe[0])), tuple(others))
    return _bounded(out, [out.first.mean] + [o.sums for o in others])


def _levels_merge(a: LevelsAcc, b: LevelsAcc) -> LevelsAcc:
    out = LevelsAcc(_within_merge(a.first, b.first), tuple(merge_keyed(x, y) for x, y in zip(a.others, b.others)))
    return _bounded(out, [out.first.mean] + [o.sums for o in out.others])


def levels_reduction(q: int, F: int) -> Reduction:
    """The first pass for ``F ≥ 2`` factors over blocks ``(X, Y, w, fe₁, ..., fe_F)``."""
    init = LevelsAcc(_within_init(q), tuple(empty_keyed(1, (1 + q,)) for _ in range(F - 1)))
    return Reduction(init=partial(_identity, init), update=partial(_levels_update, F), merge=_levels_merge)


def _identity(value):
    return value


def _matvec_update(indexes, P, acc, X, Y, w, *fe):
    X, Y, w, fe = _positive(X, Y, w, fe)
    if w.size == 0:
        return acc
    idx = [lookup(index, fe[f], f) for f, index in enumerate(indexes)]
    v = sum(p[i] for p, i in zip(P, idx))
    return tuple(a + np.asarray(indicator(i, a.shape[0], w) @ v) for a, i in zip(acc, idx))


def _add(a, b):
    return tuple(x + y for x, y in zip(a, b))


def matvec_reduction(indexes, P) -> Reduction:
    """One pass of ``DᵀWD P``: each factor's per-level sums of ``w · Σ_f P_f[level_f]``."""
    init = tuple(np.zeros((len(i), P[0].shape[1])) for i in indexes)
    return Reduction(init=partial(_identity, init), update=partial(_matvec_update, tuple(indexes), tuple(P)),
                     merge=_add)


def _gram_update(indexes, alphas, d, acc, X, Y, w, *fe):
    X, Y, w, fe = _positive(X, Y, w, fe)
    if w.size == 0:
        return acc
    Z = demeaned(indexes, alphas, X, Y, fe)
    return st.update(acc, np.ascontiguousarray(Z[:, :d]), np.ascontiguousarray(Z[:, d:]), w)


def gram_reduction(indexes, alphas, d: int, m: int) -> Reduction:
    """The least-squares state (:mod:`jaxlm.core.state`) of the demeaned ``[x, y]``."""
    return Reduction(init=partial(st.init, d, m), update=partial(_gram_update, tuple(indexes), tuple(alphas), d),
                     merge=st.merge)


def _dot(a, b) -> np.ndarray:
    """(q,) column-wise inner products of two stacked level vectors."""
    return sum(np.einsum("lq,lq->q", x, y) for x, y in zip(a, b))


class CG(NamedTuple):
    """Preconditioned CG for ``DᵀWD α = b`` (one (L_f, q) array per factor; scalars per column)."""

    alpha: list
    r: list               # b − DᵀWD α (updated recursively)
    p: list               # search direction
    rho: np.ndarray       # (q,) rᵀ M⁻¹ r, M = diag(DᵀWD) = the level weights
    rho0: np.ndarray


def _inverse(Ws):
    return [np.where(W > 0, 1.0 / np.where(W > 0, W, 1.0), 0.0)[:, None] for W in Ws]


def cg_start(Ws, b) -> CG:
    p = [x * m for x, m in zip(b, _inverse(Ws))]
    rho = _dot(b, p)
    return CG([np.zeros_like(x) for x in b], [x.copy() for x in b], p, rho, rho.copy())


def cg_run(run, Ws, indexes, cg: CG, target: np.ndarray, max_iter: int):
    """Iterate (one ``run`` pass each) until every column's ``rho ≤ target``: ``(cg, iterations, converged)``."""
    inv = _inverse(Ws)
    alpha, r, p, rho = cg.alpha, cg.r, cg.p, cg.rho
    active = rho > target
    it = 0
    while active.any() and it < max_iter:
        it += 1
        Ap = run(matvec_reduction(indexes, p))
        pAp = _dot(p, Ap)
        ok = active & (pAp > 0)
        a = np.where(ok, rho / np.where(ok, pAp, 1.0), 0.0)
        alpha = [x + a * pi for x, pi in zip(alpha, p)]
        r = [x - a * api for x, api in zip(r, Ap)]
        y = [ri * m for ri, m in zip(r, inv)]
        rho_new = np.where(ok, _dot(r, y), rho)
        beta = np.where(ok, rho_new / np.where(rho > 0, rho, 1.0), 0.0)
        p = [yi + beta * pi for yi, pi in zip(y, p)]
        active, rho = ok & (rho_new > target), rho_new
    return CG(alpha, r, p, rho, cg.rho0), it, not active.any()


def demean(Z, codes: Sequence[np.ndarray], w, *, tol: float = TOL, max_iter: int = MAX_ITER):
    """In-memory alternating projections (pyfixest's ``demean``): ``(Z̃, alphas, sweeps, converged)``.

    ``codes``: dense level codes per factor. A sweep subtracts each factor's weighted level means
    in turn (accumulated in ``alphas``); stop when the largest mean subtracted in a sweep is at most
    ``tol`` times the demeaned column's largest ``|z̃|`` (or ``ROUNDING`` times the column's ``|z|``).
    """
    Zd = np.array(Z, dtype=np.float64, copy=True)
    w = np.asarray(w, dtype=np.float64)
    sizes = [int(c.max()) + 1 if c.size else 0 for c in codes]
    H = [indicator(c, L, w) for c, L in zip(codes, sizes)]
    W = [np.bincount(c, weights=w, minlength=L) for c, L in zip(codes, sizes)]
    alphas = [np.zeros((L, Zd.shape[1])) for L in sizes]
    floor = ROUNDING * np.max(np.abs(Zd), axis=0, initial=0.0)
    for sweep in range(1, max_iter + 1):
        change = np.zeros(Zd.shape[1])
        for f, c in enumerate(codes):
            m = np.asarray(H[f] @ Zd) / np.where(W[f] > 0, W[f], 1.0)[:, None]
            Zd -= m[c]
            alphas[f] += m
            change = np.maximum(change, np.max(np.abs(m), axis=0, initial=0.0))
        if np.all(change <= np.maximum(tol * np.max(np.abs(Zd), axis=0, initial=0.0), floor)):
            return Zd, alphas, sweep, True
    return Zd, alphas, max_iter, False


# ------------------------------------------------------------------------------------ the fit
class AbsorbedFit(NamedTuple):
    """An absorbed fit (all targets): ``solution`` is the within regression (coef (m, d), no
    intercept; its ``factor`` gives the bread ``(X̃ᵀWX̃)⁻¹``), ``tables`` the fixed effects per
    factor, ``sst`` (m,) ``Σ w (y − ȳ)²`` and ``sst_within`` (m,) ``Σ w ỹ²``."""

    solution: Solution
    tables: tuple
    count: float          # rows with w > 0
    wsum: float           # Σ w
    sst: np.ndarray
    sst_within: np.ndarray
    iterations: int       # CG iterations or MAP sweeps (1 for one factor)
    converged: bool
    collinear: tuple = ()  # regressors collinear with the fixed effects (dropped: coefficient NaN)

    @property
    def n_levels(self) -> tuple:
        return tuple(int(np.sum(t.wsum > 0)) for t in self.tables)


def _ss(first: WithinAcc, cols: slice) -> tuple[np.ndarray, np.ndarray]:
    """(total Σ w (z − z̄)², within factor 1) for the columns ``cols`` of z."""
    W, mean = first.wsum, first.mean[:, cols]
    between = tall_product(W, (mean - tall_product(W, mean) / W.sum()) ** 2)
    within = np.diag(first.T)[cols]
    return within + between, within


def _diag_uncentred(state) -> np.ndarray:
    sxx, _, syy = st.uncentred(state)
    return np.concatenate([np.diag(np.asarray(sxx)), np.diag(np.asarray(syy))])


def _drop_collinear(state: st.GramState, total_ss: np.ndarray):
    """Zero the moments of regressors collinear with the fixed effects (``COLLINEAR_TOL``), so
    that the solver reports them as aliased. Returns ``(state, dropped columns)``."""
    d = total_ss.size
    dropped = np.flatnonzero(_diag_uncentred(state)[:d] <= COLLINEAR_TOL**2 * total_ss)
    if dropped.size == 0:
        return state, ()
    mean_x, sxx, sxy = (np.array(a, dtype=np.float64, copy=True) for a in (state.mean_x, state.sxx, state.sxy))
    mean_x[dropped] = 0.0
    sxx[dropped, :] = sxx[:, dropped] = sxy[dropped, :] = 0.0
    return state._replace(mean_x=mean_x, sxx=sxx, sxy=sxy), tuple(int(j) for j in dropped)


def _finish_fit(state, first: WithinAcc, tables, d, solver, iterations, converged) -> AbsorbedFit:
    state, dropped = _drop_collinear(state, _ss(first, slice(None, d))[0])
    sol = exact.solve_state(state, fit_intercept=False, solver=solver)
    sst = _ss(first, slice(d, None))[0]
    return AbsorbedFit(sol, tuple(tables), float(first.count), float(first.wsum.sum()), sst,
                       _diag_uncentred(sol.state)[d:], iterations, converged, dropped)


def _check_fe(n_fe) -> int:
    if isinstance(n_fe, bool) or not isinstance(n_fe, (int, np.integer)) or n_fe < 1:
        raise InputError(PARAM, f"fixed_effects must name at least one factor column; got {n_fe!r} column(s).")
    return int(n_fe)


def _finite(A) -> None:
    """A NonFiniteData error unless the sums ``A`` are finite (checked before any solve or iteration)."""
    if not np.isfinite(A).all():
        raise NonFiniteData("X", "X and y must be finite: the fit's sums of squares are not (a missing or infinite "
                                 "value, or values beyond ±1e154 whose squares overflow). Remove or replace them.")


def _nonempty(count):
    if count == 0:
        raise InputError("X", "the fit needs at least one row with weight > 0; got none.")


def absorb(run, d: int, m: int, n_fe: int, *, tol: float = TOL, max_iter: int = MAX_ITER,
           solver: str = "auto") -> AbsorbedFit:
    """Absorbed-fixed-effects least squares over a driver ``run`` bound to blocks ``(X, Y, w,
    fe₁, ..., fe_F)``: one pass for one factor; for more, a levels pass, one pass per CG
    iteration and a Gram pass (two when the level constants dominate; see the module docstring)."""
    F = _check_fe(n_fe)
    q = d + m
    if F == 1:
        acc = run(within_reduction(q))
        _nonempty(acc.count)
        _finite(acc.T)
        state = st.GramState(*(np.float64(v) for v in (acc.count, acc.wsum.sum(), acc.wsum2)), np.zeros(d),
                             np.zeros(m), acc.T[:d, :d].copy(), acc.T[:d, d:].copy(), acc.T[d:, d:].copy(),
                             mean_x_lo=np.zeros(d), mean_y_lo=np.zeros(m))
        return _finish_fit(state, acc, [FeTable(acc.keys, acc.wsum, acc.mean)], d, solver, 1, True)
    lv = run(levels_reduction(q, F))
    _nonempty(lv.first.count)
    _finite(lv.first.T)
    keys = [lv.first.keys] + [o.keys[0] for o in lv.others]
    Ws = [lv.first.wsum] + [o.sums[:, 0] for o in lv.others]
    b = [lv.first.mean * lv.first.wsum[:, None]] + [o.sums[:, 1:] for o in lv.others]
    indexes = [LevelIndex(k) for k in keys]
    cg = cg_start(Ws, b)
    floor = ROUNDING**2 * cg.rho0
    cg, iters, ok = cg_run(run, Ws, indexes, cg, np.maximum(tol**2 * cg.rho0, floor), max_iter)
    gram = run(gram_reduction(indexes, cg.alpha, d, m))
    target = np.maximum(tol**2 * _diag_uncentred(gram), floor)
    if ok and np.any(cg.rho > target):  # the fixed-effect part dominated: on to tol relative to ‖z̃‖
        cg, more, ok = cg_run(run, Ws, indexes, cg, target, max_iter - iters)
        iters += more
        gram = run(gram_reduction(indexes, cg.alpha, d, m))
    tables = [FeTable(k, W, a) for k, W, a in zip(keys, Ws, cg.alpha)]
    return _finish_fit(gram, lv.first, tables, d, solver, iters, ok)


def absorb_arrays(X, Y, w, fe: Sequence, *, method: str = "map", tol: float = TOL, max_iter: int = MAX_ITER,
                  solver: str = "auto") -> AbsorbedFit:
    """In-memory absorbed fit of ``X (n, d)``, ``Y (n, m)``, ``w (n,)`` with factor columns ``fe``.
    One factor: the exact within pass over one block. Several: ``method="map"`` (alternating
    projections, :func:`demean`) or ``"cg"`` (the reduction path of :func:`absorb`, one block)."""
    method = check_choice("method", method, ("map", "cg"))
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64).reshape(X.shape[0], -1)
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    fe = list(fe)
    F = _check_fe(len(fe))
    d, m = X.shape[1], Y.shape[1]
    if F == 1 or method == "cg":
        def run(reduction):  # the whole arrays as one block
            return reduction.finish(fold(reduction, [(X, Y, w, *fe)]))

        return absorb(run, d, m, F, tol=tol, max_iter=max_iter, solver=solver)
    X, Y, w, fe = _positive(X, Y, w, fe)
    _nonempty(w.size)
    coded = [group_codes([f], PARAM) for f in fe]
    Z = _z(X, Y)
    _finite(Z)
    Zd, alphas, sweeps, ok = demean(Z, [c[0] for c in coded], w, tol=tol, max_iter=max_iter)
    state = st.update(st.init(d, m), np.ascontiguousarray(Zd[:, :d]), np.ascontiguousarray(Zd[:, d:]), w)
    tables = [FeTable(np.asarray(f)[c[2]], np.bincount(c[0], weights=w, minlength=c[1]), a)
              for f, c, a in zip(fe, coded, alphas)]
    return _finish_fit(state, _within_block(X, Y, w, fe[0]), tables, d, solver, sweeps, ok)


__all__ = ["AbsorbedFit", "CG", "FeTable", "KeyedSums", "LevelsAcc", "TOL", "WithinAcc", "absorb", "absorb_arrays",
           "cg_run", "cg_start", "concat_keys", "demean", "demeaned", "empty_keyed", "gram_reduction", "group_codes",
           "indicator", "levels_reduction", "lookup", "matvec_reduction", "merge_keyed", "within_reduction"]
