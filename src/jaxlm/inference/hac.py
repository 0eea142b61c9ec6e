"""Newey–West (HAC) covariance for rows in time order, as a mergeable reduction with a carry.

The meat is (statsmodels ``S_hac_simple``)

    S = Σ_{l=0}^{L} k_l Σ_t (u_t u_{t−l}ᵀ + u_{t−l} u_tᵀ) / (1 + [l = 0]),   u_t = w_t z_t e_t

with Bartlett weights ``k_l = 1 − l/(L+1)`` (or uniform ``k_l = 1``), ``z_t`` the design row
(intercept included), ``e_t`` the residual, ``w_t`` the weight (statsmodels ``WLS``'s whitened
scores ``√w z · √w e``). The covariance is ``B S B`` (``B = (X̃ᵀWX̃)⁻¹``) with no small-sample
correction: statsmodels ``fit(cov_type="HAC", cov_kwds={"maxlags": L})``. ``L = 0`` is HC0.

The reduction's accumulator for a *contiguous run of rows* holds its within-run lag
cross-products, its first ``L`` and last ``L`` score rows and its row count. Two runs that are
*adjacent, in order* merge exactly: the cross-products between the first run's last ``L`` rows
and the second's first ``L`` rows are the only lags that straddle the seam. ``merge(a, b)`` is
therefore associative for adjacent runs but NOT commutative: a driver must merge accumulators
in row order. Every jaxlm driver does — the memory and stream drivers fold blocks in order;
the Dask driver's tree merges neighbours ``(i, i+1)`` of the partitions in order; the devices
driver merges its contiguous per-device shares in order — so each gives the in-memory result.

Each row is one period: rows must be sorted by time, equally spaced, with no gaps (a time
index passed as the first extra column is checked to be strictly increasing across all blocks
and an unsorted one is an InputError; gaps are not modelled, as in statsmodels). Rows with
``w = 0`` keep their period and contribute a zero score (drivers pad with them at the end).

Lags: ``L`` must be an integer ``0 ≤ L < n``; :func:`newey_west_lags` gives the automatic rule
``⌊4 (n/100)^{2/9}⌋`` (Newey & West 1994; statsmodels' default when ``nlags=None``).

Frequency weights other than 1 have no time-series meaning (a weight of 3 would be three rows
at one instant) and are refused; use ``weights_kind="analytic"`` (inverse-variance weights).

This module also holds the *scorers* that both this pass and the cluster pass
(:mod:`jaxlm.inference.cluster`) evaluate per block: :class:`LinearScorer` (an exact fit,
:func:`scorer_from_solution`) and :class:`AbsorbedScorer` (an absorbed-fixed-effects fit,
:func:`absorbed_scorer`), and the bread :func:`bread_from_solution`.
"""
from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import numpy as np

from ..core import state as st
from ..core.absorb import demeaned, lookup
from ..core.blas import tall_product
from ..core.errors import InputError, check_choice
from ..core.reduction import Reduction

KERNELS = ("bartlett", "uniform")
CANCELLATION_LIMIT = 100.0  # |mean| / spread above which LinearScorer centres a column explicitly


# ------------------------------------------------------------------------------------ scorers
# (the per-row scores w·z·e of a fitted model; shared with jaxlm.inference.cluster)
def scorer_const(scorer) -> bool:
    """Whether a scorer's design rows carry the constant (``z = [1, …]``): a fit with an intercept."""
    return bool(scorer.fit_intercept)


def scorer_offset(scorer) -> np.ndarray:
    """The centring a scorer leaves to the sums (``D − offset``): ``s_j`` for the columns it does not
    centre explicitly, 0 for those it does."""
    return np.where(scorer.centre, 0.0, scorer.shift)


class LinearScorer(NamedTuple):
    """Scores of a fitted linear model ``y ≈ β₀ + x β`` (picklable: shipped to Dask workers).

    Build with :func:`scorer_from_solution`. The design row is ``z = [1, x − s]`` (``x``
    without an intercept, ``s = 0``), ``s`` the state's weighted mean ``x̄``; columns with
    ``|s_j| ≤ CANCELLATION_LIMIT · spread_j`` are passed uncentred (``offset_j = s_j``: the
    centring is applied to the sums, saving a copy of the block), the others are centred.

    With an intercept the residual is formed as ``(y − ȳ) − (x − x̄) β`` (a least-squares fit
    with an intercept has ``β₀ = ȳ − x̄ β`` exactly), with the state's double-double means
    ``ȳ = ybar[0] + ybar[1]`` and ``x̄ = s + mean_lo``: on data far from zero (``y ~ 1e6``) the
    float64 intercept would round ``e`` by ``ulp(ȳ)``.
    """

    coef: np.ndarray       # (m, d)
    intercept: np.ndarray  # (m,)
    shift: np.ndarray      # (d,) s
    fit_intercept: bool
    centre: np.ndarray     # (d,) bool: centre this column explicitly
    ybar: tuple | None = None     # (hi (m,), lo (m,)): ȳ in double-double (with an intercept)
    mean_lo: np.ndarray | None = None  # (d,) x̄ − s

    const = property(scorer_const)
    offset = property(scorer_offset)

    @property
    def transform(self) -> np.ndarray:
        """``T`` with ``x̃ = T z`` (``x̃ = [1, x]``): meats map as ``T M Tᵀ``."""
        d = self.coef.shape[1]
        if not self.fit_intercept:
            return np.eye(d)
        T = np.eye(d + 1)
        T[1:, 0] = self.shift
        return T

    def __call__(self, X, Y, w, *extra):
        """``(D (b, d), WE (b, m))`` for one block (see the module docstring)."""
        X = np.asarray(X, dtype=np.float64)
        Y = np.asarray(Y, dtype=np.float64).reshape(X.shape[0], -1)
        w = np.asarray(w, dtype=np.float64).reshape(-1)
        if self.centre.any():
            X = X.copy()
            X[:, self.centre] -= self.shift[self.centre]
        o = self.offset
        if self.ybar is not None:
            # e = (y − ȳ) − (x − x̄) β = (y − ȳ_hi) − (ȳ_lo − (x̄ − s) β − o β) − D β
            rest = self.ybar[1] - self.coef @ self.mean_lo - self.coef @ o
            E = (Y - self.ybar[0][None, :]) - rest[None, :] - X @ self.coef.T
            return X, E * w[:, None]
        # e = (y − β₀ − s β) − (x − s) β = y − (β₀ + s β − o β) − D β
        base = self.intercept + self.coef @ self.shift - self.coef @ o
        E = Y - base[None, :] - X @ self.coef.T
        return X, E * w[:, None]


def scorer_from_solution(solution, *, fit_intercept: bool) -> LinearScorer:
    """The :class:`LinearScorer` of an exact fit (:class:`jaxlm.core.solution.Solution`)."""
    if solution.state is None:
        raise InputError("solution", "cluster-robust and HAC covariances need an exact fit (its state); a gradient "
                                     "fit has none. Refit with an exact solver ('auto', 'qr', 'cholesky', 'svd').")
    state = solution.state
    if st.units_of(state).scaled:
        raise InputError("solution", "cluster-robust and HAC covariances are not available for data beyond float64's "
                                     "safe range (the fit rescaled them by powers of two); rescale the columns "
                                     "(e.g. to thousands instead of units) and refit.")
    coef = np.atleast_2d(np.asarray(solution.coef, dtype=np.float64))
    m, d = coef.shape
    intercept = np.asarray(solution.intercept, dtype=np.float64).reshape(m) if fit_intercept else np.zeros(m)
    mean = np.asarray(state.mean_x, dtype=np.float64)
    shift = mean if fit_intercept else np.zeros(d)
    wsum = float(np.asarray(state.wsum))
    sxx = _sxx(state)
    spread = np.sqrt(np.maximum(np.diag(sxx), 0.0) / wsum) if wsum > 0 else np.zeros(d)
    centre = np.abs(shift) > CANCELLATION_LIMIT * spread
    ybar = mean_lo = None
    if fit_intercept:
        ybar = (np.asarray(state.mean_y, dtype=np.float64).reshape(m),
                np.broadcast_to(np.asarray(getattr(state, "mean_y_lo", 0.0), dtype=np.float64), (m,)).copy())
        mean_lo = np.broadcast_to(np.asarray(getattr(state, "mean_x_lo", 0.0), dtype=np.float64), (d,)).copy()
    return LinearScorer(coef, intercept, shift, bool(fit_intercept), centre, ybar, mean_lo)


def _sxx(state) -> np.ndarray:
    if hasattr(state, "r"):
        d = np.asarray(state.mean_x).shape[0]
        r = np.asarray(state.r, dtype=np.float64)
        return (r.T @ r)[:d, :d]
    return np.asarray(state.sxx, dtype=np.float64)


def bread_from_solution(solution, *, fit_intercept: bool, centred: bool = False) -> np.ndarray:
    """``B = (X̃ᵀWX̃)⁻¹`` (p, p), intercept first, from the solution's factor (the
    pseudo-inverse under rank deficiency), as :mod:`jaxlm.inference.results` forms it::

        B = [[1/Σw + x̄ᵀ Sxx⁻¹ x̄, −(Sxx⁻¹ x̄)ᵀ], [−Sxx⁻¹ x̄, Sxx⁻¹]]   (with an intercept)

    ``centred``: the bread of ``z = [1, x − x̄]`` instead, ``blockdiag(1/Σw, Sxx⁻¹)``.
    """
    if solution.factor is None or solution.state is None:
        raise InputError("solution", "the bread (XᵀWX)⁻¹ needs an exact fit; refit with an exact solver.")
    d = np.atleast_2d(np.asarray(solution.coef)).shape[1]
    solve = solution.factor.solve
    sxx_inv = solve(np.eye(d))
    sxx_inv = 0.5 * (sxx_inv + sxx_inv.T)
    if not fit_intercept:
        return sxx_inv
    state = solution.state
    wsum = float(np.asarray(state.wsum))
    mean = np.asarray(state.mean_x, dtype=np.float64)
    if centred:  # z = [1, x − s] with s = x̄ rounded: Σ w z zᵀ = K diag(Σw, Sxx) Kᵀ, K = [[1, 0], [x̄ − s, I]]
        B = np.zeros((d + 1, d + 1))
        B[0, 0] = 1.0 / wsum
        B[1:, 1:] = sxx_inv
        lo = getattr(state, "mean_x_lo", None)
        if lo is not None and np.any(np.asarray(lo)):
            K_inv = np.eye(d + 1)
            K_inv[1:, 0] = -np.asarray(lo, dtype=np.float64)
            B = K_inv.T @ B @ K_inv
        return B
    u = solve(mean[:, None])[:, 0]
    B = np.empty((d + 1, d + 1))
    B[0, 0] = 1.0 / wsum + float(mean @ u)
    B[0, 1:] = B[1:, 0] = -u
    B[1:, 1:] = sxx_inv
    return B


def design_rows(D, offset, const):
    """The design rows ``z = [1, D − offset]`` (``D − offset`` without a constant), in one new
    array (no subtraction where ``offset`` is zero)."""
    Z = np.empty((D.shape[0], D.shape[1] + int(const)))
    Z[:, int(const):] = D - offset[None, :] if np.any(offset) else D
    if const:
        Z[:, 0] = 1.0
    return Z


class AbsorbedScorer(NamedTuple):
    """Scores of an absorbed-fixed-effects fit (:mod:`jaxlm.core.absorb`): blocks ``(X, Y, w,
    [groups...,] fe₁, ..., fe_F)`` → ``(X̃, w·ẽ)`` with ``ẽ = ỹ − X̃ β`` (demeaned, no constant).

    With ``resid`` (one factor nested in every cluster column, :func:`absorbed_scorer`) the design
    part is the raw ``X``: the residuals of each level sum to zero (Σ_{i∈l} w ẽ = 0, the dummies'
    normal equations), and a cluster is a union of levels, so ``Σ_{i∈g} w x̃ ẽ = Σ_{i∈g} w x ẽ``;
    ``ẽ = (y − Xβ) − resid[level]`` needs one scalar per row and target, not a demeaned row."""

    indexes: tuple        # LevelIndex of each factor's level values
    alphas: tuple         # (L_f, d + m) fixed effects of each factor
    coef: np.ndarray      # (m, d)
    resid: np.ndarray | None = None   # (L, m) the level constants of y − Xβ (raw scores), else None

    const = False

    @property
    def offset(self) -> np.ndarray:
        return np.zeros(self.coef.shape[1])

    @property
    def transform(self) -> np.ndarray:
        return np.eye(self.coef.shape[1])

    def __call__(self, X, Y, w, *fe):
        if len(fe) < len(self.indexes):
            raise InputError("fixed_effects", f"the blocks must carry the {len(self.indexes)} fixed-effect column(s) "
                                              f"after the cluster column(s); got {len(fe)}.")
        d = self.coef.shape[1]
        w = np.asarray(w, dtype=np.float64).reshape(-1, 1)
        if self.resid is not None:
            X = np.asarray(X, dtype=np.float64)
            E = np.asarray(Y, dtype=np.float64).reshape(X.shape[0], -1) - X @ self.coef.T
            E -= self.resid[lookup(self.indexes[0], fe[0], 0)]
            return X, E * w
        Z = demeaned(self.indexes, self.alphas, X, Y, fe[:len(self.indexes)])
        return Z[:, :d], (Z[:, d:] - Z[:, :d] @ self.coef.T) * w


def absorbed_scorer(fit, nested=None) -> AbsorbedScorer:
    """The :class:`AbsorbedScorer` of a :class:`jaxlm.core.absorb.AbsorbedFit`. ``nested``: one
    bool per factor, whether it is nested in *every* cluster column of the pass (levels never
    straddle clusters); a single nested factor gets the raw scores, unless forming them from the
    raw ``x`` and ``y − Xβ`` would cancel more than two digits of a column (the fixed effects
    large against the within spread: :data:`CANCELLATION_LIMIT`)."""
    coef = np.atleast_2d(np.asarray(fit.solution.coef, dtype=np.float64))
    tables = fit.tables
    scorer = AbsorbedScorer(tuple(t.positions for t in tables), tuple(t.alpha for t in tables), coef)
    if nested is None or len(tables) != 1 or not all(nested) or not np.all(np.isfinite(coef)):
        return scorer
    d = coef.shape[1]
    alpha, W = np.asarray(tables[0].alpha, dtype=np.float64), np.asarray(tables[0].wsum, dtype=np.float64)
    resid = alpha[:, d:] - alpha[:, :d] @ coef.T                     # (L, m): level constants of y − Xβ
    sxx = st.uncentred(fit.solution.state)[0]
    within = np.concatenate([np.diag(np.asarray(sxx)), np.asarray(fit.sst_within, dtype=np.float64)])
    level = np.sqrt(tall_product(W, np.concatenate([alpha[:, :d], resid], axis=1) ** 2))  # ‖FE part‖ per column
    if np.all(level <= CANCELLATION_LIMIT * np.sqrt(within)):
        return scorer._replace(resid=resid)
    return scorer


def newey_west_lags(n: int) -> int:
    """The automatic lag ``⌊4 (n/100)^{2/9}⌋`` (statsmodels' ``S_hac_simple`` default)."""
    return int(math.floor(4.0 * (n / 100.0) ** (2.0 / 9.0)))


def kernel_weights(lags: int, kernel: str = "bartlett") -> np.ndarray:
    """(L+1,) weights ``k_0..k_L``: Bartlett ``1 − l/(L+1)`` or uniform 1."""
    kernel = check_choice("kernel", kernel, KERNELS)
    if kernel == "uniform":
        return np.ones(lags + 1)
    return 1.0 - np.arange(lags + 1) / (lags + 1.0)


def check_lags(lags, n: int | None = None) -> int:
    """``lags`` as an int ``0 ≤ L`` (and ``< n`` when ``n`` is known), else an InputError."""
    if isinstance(lags, bool) or not isinstance(lags, (int, np.integer)) or lags < 0:
        raise InputError("maxlags", f"maxlags must be an integer >= 0; got maxlags={lags!r}. Use e.g. "
                                    f"maxlags=newey_west_lags(n), or 0 for HC0.")
    if n is not None and lags >= n:
        raise InputError("maxlags", f"maxlags must be smaller than the number of rows (periods); got maxlags={lags} "
                                    f"with {n} rows. Use fewer lags (the automatic rule gives "
                                    f"{newey_west_lags(n)}).")
    return int(lags)


def resolve_lags(maxlags, n_rows: int) -> int:
    """An estimator's ``hac_maxlags`` for ``n_rows`` rows: None gives :func:`newey_west_lags`; a
    given lag must be an integer ``0 ≤ L < n`` (an InputError naming ``hac_maxlags`` otherwise)."""
    if maxlags is None:
        return newey_west_lags(n_rows)
    if isinstance(maxlags, bool) or not isinstance(maxlags, (int, np.integer)) or maxlags < 0:
        raise InputError("hac_maxlags", f"hac_maxlags must be an integer >= 0 or None (the automatic rule); got "
                                        f"hac_maxlags={maxlags!r}.")
    if maxlags >= n_rows:
        raise InputError("hac_maxlags", f"hac_maxlags must be smaller than the number of rows (periods); got "
                                        f"hac_maxlags={maxlags} with {n_rows} rows. Use fewer lags, or None for the "
                                        f"automatic rule ({newey_west_lags(n_rows)} here).")
    return int(maxlags)


class HacAcc(NamedTuple):
    """Accumulator of a contiguous run of rows (see the module docstring)."""

    meat: np.ndarray      # (m, p, p) within-run weighted lag cross-products
    head: np.ndarray      # (≤L, m, p) first score rows
    tail: np.ndarray      # (≤L, m, p) last score rows
    rows: int             # rows (periods) in the run
    count: int            # rows with w > 0
    unit: bool            # all weights of rows with w > 0 equal 1
    t_first: object       # first and last time values (None without a time column)
    t_last: object


class HacMeat(NamedTuple):
    meat: np.ndarray      # (m, p, p) in the coefficients' coordinates
    rows: int
    count: int
    unit_weights: bool
    lags: int
    kernel: str


def _lag_products(U: np.ndarray, k: np.ndarray, split: int | None):
    """Σ_l k_l Σ_t (u_t u_{t−l}ᵀ + u_{t−l} u_tᵀ) (l ≥ 1) over W = U; with ``split`` only pairs whose
    later row is at index ≥ split and earlier row < split (the seam of two runs)."""
    n, m, p = U.shape
    out = np.zeros((m, p, p))
    for lag in range(1, len(k)):
        if split is None:
            t0, t1 = lag, n
        else:
            t0, t1 = max(split, lag), min(split + lag, n)
        if t1 <= t0:
            continue
        a, b = U[t0:t1], U[t0 - lag:t1 - lag]
        for j in range(m):
            g = a[:, j].T @ b[:, j]
            out[j] += k[lag] * (g + g.T)
    return out


def _init(m: int, p: int) -> HacAcc:
    e = np.zeros((0, m, p))
    return HacAcc(np.zeros((m, p, p)), e, e, 0, 0, True, None, None)


def _times(t) -> tuple:
    t = np.asarray(t)
    if t.ndim != 1:
        raise InputError("time", f"time must be one value per row; got shape {t.shape}.")
    if t.size > 1:
        with np.errstate(invalid="ignore"):
            ok = np.asarray(t[1:] > t[:-1])
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            raise InputError("time", f"time must be strictly increasing (rows in time order, one row per period); got "
                                     f"{t[i]!r} followed by {t[i + 1]!r}. Sort the rows by time (and aggregate "
                                     f"duplicate periods) before a HAC fit.")
    return (t[0], t[-1]) if t.size else (None, None)


def _update(scorer, k: np.ndarray, has_time: bool, acc: HacAcc, X, Y, w, *extra) -> HacAcc:
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    rest = extra[1:] if has_time else extra
    t_first = t_last = None
    if has_time:
        if not extra:
            raise InputError("time", "the HAC pass was told to check a time column, but the blocks carry none.")
        t_first, t_last = _times(extra[0])
    if w.size == 0:
        return acc
    D, WE = scorer(X, Y, w, *rest)
    Z = design_rows(D, scorer.offset, scorer.const)
    U = WE[:, :, None] * Z[:, None, :]           # (b, m, p) scores; zero for w = 0
    meat = np.einsum("tmi,tmj->mij", U, U) + _lag_products(U, k, None)
    L = len(k) - 1
    pos = w > 0
    blk = HacAcc(meat, U[:L].copy(), U[max(0, U.shape[0] - L):].copy(), int(w.size),
                 int(pos.sum()), bool(np.all(w[pos] == 1.0)), t_first, t_last)
    return _merge(k, acc, blk)


def _merge(k: np.ndarray, a: HacAcc, b: HacAcc) -> HacAcc:
    """``a`` then ``b``: adjacent runs, in this order."""
    if a.rows == 0:
        return b
    if b.rows == 0:
        return a
    if a.t_last is not None and b.t_first is not None and not b.t_first > a.t_last:
        raise InputError("time", f"time must be strictly increasing (rows in time order); got {a.t_last!r} followed "
                                 f"by {b.t_first!r} at a block boundary. Sort the rows by time before a HAC fit.")
    L = len(k) - 1
    meat = a.meat + b.meat
    if L:
        seam = np.concatenate([a.tail, b.head])
        meat = meat + _lag_products(seam, k, a.tail.shape[0])
    head = np.concatenate([a.head, b.head])[:L]
    tail = np.concatenate([a.tail, b.tail])
    tail = tail[max(0, tail.shape[0] - L):]
    return HacAcc(meat, head, tail, a.rows + b.rows, a.count + b.count, a.unit and b.unit,
                  a.t_first if a.t_first is not None else b.t_first, b.t_last if b.t_last is not None else a.t_last)


def _finish(transform: np.ndarray, lags: int, kernel: str, acc: HacAcc) -> HacMeat:
    check_lags(lags, acc.rows)
    meat = transform @ acc.meat @ transform.T
    return HacMeat(meat, acc.rows, acc.count, acc.unit, lags, kernel)


def hac_reduction(scorer, lags: int, *, kernel: str = "bartlett", time: bool = False,
                  centred: bool = False) -> Reduction:
    """The HAC pass over blocks ``(X, Y, w[, time], *rest)`` in time order; ``time=True`` checks a
    time column (the first extra) for strict increase. ``run(hac_reduction(...))`` returns
    :class:`HacMeat` (in the coefficients' coordinates; ``centred``: in the scorer's own). See
    the module docstring for the order the drivers must keep."""
    lags = check_lags(lags)
    k = kernel_weights(lags, kernel)
    m = np.atleast_2d(np.asarray(scorer.coef)).shape[0]
    T = np.asarray(scorer.transform, dtype=np.float64)
    T = np.eye(T.shape[0]) if centred else T
    return Reduction(init=partial(_init, m, T.shape[0]), update=partial(_update, scorer, k, bool(time)),
                     merge=partial(_merge, k), finish=partial(_finish, T, lags, kernel))


def hac_cov(meat: HacMeat, bread: np.ndarray, *, weights_kind: str = "frequency") -> np.ndarray:
    """``B S B`` (m, p, p) from a finished HAC pass (statsmodels' default: no small-sample factor)."""
    weights_kind = check_choice("weights_kind", weights_kind, ("frequency", "analytic"))
    if weights_kind == "frequency" and not meat.unit_weights:
        raise InputError("weights_kind", "HAC with frequency weights other than 1 is undefined: a frequency weight "
                                         "repeats a row, and repeated rows have no place in a time order. Use "
                                         "weights_kind='analytic' (inverse-variance weights), or no weights.")
    bread = np.asarray(bread, dtype=np.float64)
    cov = bread @ meat.meat @ bread
    return 0.5 * (cov + np.swapaxes(cov, -1, -2))


def hac_label(lags: int, kernel: str = "bartlett") -> str:
    """The covariance's line in a summary: ``HAC (Newey–West, Bartlett kernel, 4 lags)``."""
    return f"HAC (Newey–West, {kernel.capitalize()} kernel, {lags} lags)"


def hac(run, solution, *, fit_intercept: bool, weights_kind: str = "frequency", maxlags: int | None = None,
        kernel: str = "bartlett", time: bool = False) -> np.ndarray:
    """Newey–West covariance (m, p, p) of an exact fit in one call; ``run`` is a driver bound to
    the fit's data in time order (with the time column as the first extra if ``time``).
    ``maxlags=None``: :func:`newey_west_lags` of the number of rows."""
    state = solution.state
    if state is None:
        raise InputError("solution", "HAC covariances need an exact fit; refit with an exact solver.")
    if maxlags is None:
        maxlags = newey_west_lags(int(np.asarray(state.count)))
    scorer = scorer_from_solution(solution, fit_intercept=fit_intercept)
    # the sandwich in the centred coordinates z = [1, x − x̄], then mapped (see cluster.clustered)
    meat = run(hac_reduction(scorer, maxlags, kernel=kernel, time=time, centred=fit_intercept))
    cov = hac_cov(meat, bread_from_solution(solution, fit_intercept=fit_intercept, centred=fit_intercept),
                  weights_kind=weights_kind)
    if not fit_intercept:
        return cov
    J = np.linalg.inv(scorer.transform).T
    cov = J @ cov @ J.T
    return 0.5 * (cov + np.swapaxes(cov, -1, -2))


__all__ = ["AbsorbedScorer", "HacMeat", "KERNELS", "LinearScorer", "absorbed_scorer", "bread_from_solution",
           "check_lags", "design_rows", "hac", "hac_cov", "hac_label", "hac_reduction", "kernel_weights",
           "newey_west_lags", "resolve_lags", "scorer_const", "scorer_from_solution", "scorer_offset"]
