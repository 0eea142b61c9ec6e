"""The passes of a GLM fit as mergeable reductions (see :mod:`jaxlm.core.irls` for the fit).

Blocks are ``(X (b, d), Y (b, 1) or (b,), w (b,), offset (b,), var_weights (b,))`` (the last two
optional: 0 and 1). Every reduction here is built from module-level functions and
:func:`functools.partial`, so it pickles (Dask ships it to workers) and runs unchanged on any
driver of :mod:`jaxlm.reduce`.

``check_reduction``   pass 0: validation (InputError naming the first offending row) and sums
``pass_reduction``    one IRLS pass at a :class:`Point`: deviance, Pearson χ², the working
                      weights' least-squares state (:class:`jaxlm.core.state.GramState`)
``null_reduction``    one pass of the intercept-only model with the data's offsets

Within a block an IRLS pass runs chunk by chunk (``CHUNK_BYTES`` of X): the linear
predictor, the working weights and the Gram's syrk (:func:`add_weighted_gram`) see the chunk
while it is in cache, so each pass reads X from memory once.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
from scipy import special

from . import state as st
from .errors import InputError
from .families import Binomial, Family, Link
from .links import clip_unit
from .reduction import Reduction

#: Separation: fitted probabilities within this of 0 or 1 ...
SEPARATION_MU = 1e-6
#: The host Gram is formed about a shift and centred algebraically unless that would cancel
#: more than 4 digits of a column's spread (then the block is centred explicitly).
CANCELLATION_LIMIT = 1e4


class DataSummary(NamedTuple):
    """What the check pass learnt about the rows (all over rows with ``w > 0``)."""

    rows: int            # rows seen (all, including w = 0)
    nobs: int            # rows with w > 0
    wnobs: float         # Σ w (frequency-weighted number of observations)
    y_mean: float        # Σ w y / Σ w (the starting mean)
    null_mean: float     # Σ w v y / Σ w v: the fitted mean of the intercept-only model without offset
    has_offset: bool     # some offset is nonzero


# --------------------------------------------------------------------------- block helpers
def block_arrays(X, Y, w, offset=None, var_weights=None, *, fill: bool = True):
    """float64 arrays of one block; absent offsets and var_weights are 0 and 1 (arrays, or
    None with ``fill=False``)."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(Y, dtype=np.float64).reshape(-1)
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    if offset is not None:
        offset = np.asarray(offset, dtype=np.float64).reshape(-1)
    elif fill:
        offset = np.zeros_like(w)
    if var_weights is not None:
        var_weights = np.asarray(var_weights, dtype=np.float64).reshape(-1)
    elif fill:
        var_weights = np.ones_like(w)
    return X, y, w, offset, var_weights


def positive_rows(X, y, w, offset, vw):
    """The rows with w > 0 (views when all are)."""
    keep = w > 0
    if keep.all():
        return X, y, w, offset, vw
    return X[keep], y[keep], w[keep], _rows_of(offset, keep), _rows_of(vw, keep)


# ------------------------------------------------------------------------------ pass 0
class _Check(NamedTuple):
    rows: int
    nobs: int
    wsum: float
    wy: float
    iwsum: float
    iwy: float
    offset_nonzero: bool
    bad: tuple | None   # (row, param, value, column or None) of the first offending row


def _check_init():
    return _Check(0, 0, 0.0, 0.0, 0.0, 0.0, False, None)


def _first_bad(masks):
    """(row, param, column) of the earliest True among ``[(param, mask (b,) or (b, d))]``."""
    best = None
    for param, mask in masks:
        rows = np.flatnonzero(mask if mask.ndim == 1 else mask.any(axis=1))
        if rows.size and (best is None or rows[0] < best[0]):
            col = None if mask.ndim == 1 else int(np.flatnonzero(mask[rows[0]])[0])
            best = (int(rows[0]), param, col)
    return best


def _check_update(family: Family, acc: _Check, X, Y, w, offset=None, var_weights=None) -> _Check:
    X, y, w, offset, vw = block_arrays(X, Y, w, offset, var_weights, fill=False)
    b = w.shape[0]
    pos = w > 0
    allpos = bool(pos.all())
    with np.errstate(invalid="ignore", over="ignore"):
        # a NaN or inf anywhere in a row makes its (scaled) row sum non-finite: one matrix-vector
        # product reads X once; masks locating the first offending row are built only on failure
        rowsum = X @ np.full(X.shape[1], 2.0**-10) if X.shape[1] else np.zeros(b)
        ok = (np.all(w >= 0) and np.isfinite(w.sum()) and not np.any(family.invalid_y(y[pos] if not allpos else y))
              and np.isfinite((rowsum if allpos else rowsum[pos]).sum())
              and (vw is None or (np.all((vw if allpos else vw[pos]) > 0) and np.isfinite(vw[pos].sum())))
              and (offset is None or np.isfinite(offset[pos].sum())))
    bad = acc.bad
    if not ok and bad is None:
        vw1 = np.ones(b) if vw is None else vw
        off0 = np.zeros(b) if offset is None else offset
        with np.errstate(invalid="ignore", over="ignore"):
            masks = [("freq_weights", ~(np.isfinite(w) & (w >= 0))),
                     ("var_weights", pos & ~(np.isfinite(vw1) & (vw1 > 0))), ("offset", pos & ~np.isfinite(off0)),
                     ("y", pos & family.invalid_y(y)), ("X", ~np.isfinite(X) & pos[:, None])]
        row, param, col = _first_bad(masks)
        arrays = {"freq_weights": w, "var_weights": vw1, "offset": off0, "y": y}
        value = float(X[row, col]) if param == "X" else float(arrays[param][row])
        bad = (acc.rows + row, param, value, col)
    if bad is not None:  # the sums no longer matter
        return acc._replace(rows=acc.rows + b, bad=bad)
    if not allpos:
        y, w = y[pos], w[pos]
        vw = None if vw is None else vw[pos]
        offset = None if offset is None else offset[pos]
    iw = w if vw is None else w * vw
    return _Check(acc.rows + b, acc.nobs + int(w.shape[0]), acc.wsum + float(w.sum()), acc.wy + float(w @ y),
                  acc.iwsum + float(iw.sum()), acc.iwy + float(iw @ y),
                  acc.offset_nonzero or (offset is not None and bool(np.any(offset != 0))), None)


def _check_merge(a: _Check, b: _Check) -> _Check:
    bad = a.bad
    if bad is None and b.bad is not None:
        bad = (a.rows + b.bad[0],) + tuple(b.bad[1:])
    return _Check(a.rows + b.rows, a.nobs + b.nobs, a.wsum + b.wsum, a.wy + b.wy, a.iwsum + b.iwsum,
                  a.iwy + b.iwy, a.offset_nonzero or b.offset_nonzero, bad)


def check_reduction(family: Family) -> Reduction:
    """Pass 0: validation and the sums of ``y`` (see :func:`summarise`)."""
    return Reduction(_check_init, functools.partial(_check_update, family), _check_merge)


def _spread_init(d: int):
    return 0.0, np.zeros(d), np.zeros(d)


def _spread_update(acc, X, Y, w, *extra):
    X = np.asarray(X, dtype=np.float64)[np.asarray(w).reshape(-1) > 0]
    return acc[0] + X.shape[0], acc[1] + X.sum(axis=0), acc[2] + np.einsum("ij,ij->j", X, X)


def _spread_merge(a, b):
    return a[0] + b[0], a[1] + b[1], a[2] + b[2]


def _spread_finish(acc):
    n, s1, s2 = acc
    mean = s1 / max(n, 1.0)
    return np.sqrt(np.maximum(s2 / max(n, 1.0) - mean * mean, 0.0))


def spread_reduction(d: int) -> Reduction:
    """The unweighted standard deviation of each column of X over rows with w > 0 (a scale,
    computed naively: only to compare coefficients, e.g. to name a separating direction)."""
    return Reduction(functools.partial(_spread_init, d), _spread_update, _spread_merge, _spread_finish)


_RULES = {"freq_weights": "a finite number >= 0", "var_weights": "a finite number > 0",
          "offset": "a finite number", "X": "finite (no NaN or inf)"}
_FIXES = {"freq_weights": "Frequency weights count rows: use 0 to drop a row.",
          "var_weights": "Variance weights scale each row's variance; drop rows instead of giving them weight 0.",
          "offset": "Drop or impute missing offsets (an exposure of 0 gives log(0) = -inf).",
          "X": "Drop or impute missing values before fitting."}


def summarise(acc: _Check, family: Family) -> DataSummary:
    """The :class:`DataSummary` of a finished check pass; InputError for the first bad row."""
    if acc.bad is not None:
        row, param, value, col = acc.bad
        if param == "y":
            rule, fix = f"{family.support} for the {family.describe()} family", family.support_fix
        else:
            rule, fix = _RULES[param], _FIXES[param]
        where = f"row {row}" + (f", column {col}" if col is not None else "")
        raise InputError(param, f"{param} must be {rule}; got {param}={value!r} at {where}. {fix}")
    if acc.nobs == 0:
        raise InputError("freq_weights", "freq_weights must be positive for at least one row; got no rows with "
                                         "positive weight. Pass some data to fit.")
    return DataSummary(acc.rows, acc.nobs, acc.wsum, acc.wy / acc.wsum, acc.iwy / acc.iwsum, acc.offset_nonzero)


# ------------------------------------------------------------------------ the state
#: Rows per chunk of a pass: a chunk of X and its weighted copy stay in cache between the
#: linear predictor, the weights and the Gram product (one read of X from memory per pass).
CHUNK_BYTES = 1 << 22


def chunk_rows(d: int) -> int:
    """Rows per cache-sized chunk for ``d`` columns."""
    return max(256, CHUNK_BYTES // (8 * (d + 2)))


def add_weighted_gram(G, Z, X, y, ww, shift=None):
    """``G += [X − s | 1 | y]ᵀ W [X − s | 1 | y]`` ((d + 2)², W = diag(ww)): a syrk of
    ``√W (X − s)`` into the scratch buffer ``Z`` (at least ``len(y)`` rows, d columns) and one
    few small products for the last two columns (measured faster than one syrk of d + 2 columns,
    whose two column writes are strided)."""
    b, d = X.shape
    Z = Z[:b]
    s = np.sqrt(ww)
    if shift is None:
        np.multiply(X, s[:, None], out=Z)
    else:
        np.subtract(X, shift[None, :], out=Z)
        Z *= s[:, None]
    S = np.stack([s, s * y])  # (2, b)
    c = np.stack([s @ Z, S[1] @ Z])  # (2, d): Σ W x, Σ W y x (two gemv: half the time of one (2, b) gemm)
    G[:d, :d] += Z.T @ Z
    G[d:, :d] += c
    G[:d, d:] += c.T
    G[d:, d:] += S @ S.T


def gram_state(G, count: float, wsum2: float, shift=None, fallback=None):
    """The :class:`~jaxlm.core.state.GramState` of the raw weighted sums ``G`` (from
    :func:`add_weighted_gram`): the moments centred algebraically about the weighted mean,
    unless that cancels more than 4 digits of a column's spread; then ``fallback()`` (the
    explicitly centred state of the same rows) is returned instead."""
    d = G.shape[0] - 2
    template = st.init(d, 1)
    W = G[d, d]
    if not W > 0:
        return template
    mx, my = G[:d, d] / W, G[d, d + 1] / W
    sxx = G[:d, :d] - W * np.outer(mx, mx)
    sxy = G[:d, d + 1] - W * mx * my
    syy = G[d + 1, d + 1] - W * my * my
    raw = np.append(np.diag(G)[:d], G[d + 1, d + 1])
    cen = np.append(np.diag(sxx), syy)
    if (np.any(raw > CANCELLATION_LIMIT * np.abs(cen)) or not np.isfinite(W)) and fallback is not None:
        return fallback()
    if shift is not None:
        mx = mx + shift
    return template._replace(count=np.float64(count), wsum=np.float64(W), wsum2=np.float64(wsum2), mean_x=mx,
                             mean_y=np.array([my]), sxx=sxx, sxy=sxy[:, None], syy=np.array([[syy]]))


def weighted_state(X, y, ww, shift=None):
    """The :class:`~jaxlm.core.state.GramState` of ``(X, y[:, None], ww)``, equal (up to
    rounding) to :func:`jaxlm.core.state.gram_of_batch`, at half its flops.

    ``Z = √W [X − s | 1 | y]`` and ``ZᵀZ`` (a syrk, chunk by chunk in cache) give every weighted
    sum at once; the moments are then centred algebraically about the weighted mean, unless
    that cancels more than 4 digits of a column's spread, in which case the rows are centred
    explicitly by :func:`~jaxlm.core.state.gram_of_batch`. ``shift`` (d,) (optional) is
    subtracted from X first: a point near the weighted mean (the previous iterate's) keeps the
    cancellation small for columns far from the origin.
    """
    b, d = X.shape
    rows = chunk_rows(d)
    G = np.zeros((d + 2, d + 2))
    Z = np.empty((min(rows, b), d))
    for i in range(0, b, rows):
        add_weighted_gram(G, Z, X[i:i + rows], y[i:i + rows], ww[i:i + rows], shift)
    return gram_state(G, np.count_nonzero(ww), float(ww @ ww), shift,
                      lambda: st.gram_of_batch(X, y[:, None], ww))


# ------------------------------------------------------------------------- IRLS pass
class Point(NamedTuple):
    """Where a pass evaluates the model.

    ``start_mean`` not None: the start pass (μ₀ from y and this mean; coef/intercept unused).
    ``watch`` (d,), ``watch0``: when given, the pass also measures max |X watch + watch0| (the
    last step's change of η). ``shift``: centring point for the Gram (or None).
    ``extremes``: count the rows with fitted probabilities within SEPARATION_MU of 0 or 1.
    """

    coef: np.ndarray
    intercept: float
    start_mean: float | None = None
    watch: np.ndarray | None = None
    watch0: float = 0.0
    shift: np.ndarray | None = None
    extremes: bool = False


class PassResult(NamedTuple):
    """The accumulator of an IRLS pass."""

    state: object         # GramState of (X, r, W)
    deviance: float       # Σ w v d(y, μ)   (inf when some μ left the family's domain)
    pearson: float        # Σ w v (y − μ)² / V(μ)
    invalid: int          # rows whose μ left the domain or whose η is not finite
    extreme: int          # rows with μ within SEPARATION_MU of 0 or 1 (Binomial)
    max_deta: float       # max |Δη| of the watched step (0 when not watched)


def _pass_init(d: int) -> PassResult:
    return PassResult(st.init(d, 1), 0.0, 0.0, 0, 0, 0.0)


def _pass_merge(a: PassResult, b: PassResult) -> PassResult:
    with np.errstate(over="ignore", invalid="ignore"):
        merged = st.merge(a.state, b.state)
    return PassResult(merged, a.deviance + b.deviance, a.pearson + b.pearson,
                      a.invalid + b.invalid, a.extreme + b.extreme, max(a.max_deta, b.max_deta))


def linear_predictor(X, coef, intercept, offset, watch=None, watch0=0.0):
    """η = Xβ + β₀ + offset (offset may be None), and X watch + watch0 in the same matrix
    product when watched."""
    if watch is None:
        eta, deta = X @ coef, None
    else:
        both = X @ np.column_stack([coef, watch])
        eta, deta = both[:, 0], both[:, 1] + watch0
    eta += intercept
    if offset is not None:
        eta += offset
    return eta, deta


def _working(family: Family, link: Link, point: Point, X, y, w, offset, vw):
    """One chunk's working response (or residual) and weights, deviance, Pearson χ², the
    rows with extreme probabilities and the watched |Δη|; when some μ is invalid, the number
    of invalid rows instead. ``offset``/``vw`` may be None (0 and 1)."""
    deta = dmu = None
    if point.start_mean is not None:
        mu = family.starting_mu(y, point.start_mean)
        eta = link(mu)
        base = eta if offset is None else eta - offset
    elif link.name == "logit":  # μ and dμ/dη from one expit (the link's own formulas, not evaluated twice)
        eta, deta = linear_predictor(X, point.coef, point.intercept, offset, point.watch, point.watch0)
        q = special.expit(eta)
        mu, dmu, base = clip_unit(q), q * (1.0 - q), None
    else:
        eta, deta = linear_predictor(X, point.coef, point.intercept, offset, point.watch, point.watch0)
        mu = link.inverse(eta)
        base = None
    if not _maps_into_domain(family, link):  # a mean outside the family's domain: halve the step
        ok = np.isfinite(eta) & family.valid_mu(mu)
        if not ok.all():
            return int(np.count_nonzero(~ok))
    iw = w if vw is None else w * vw
    dev = float(iw @ family.unit_deviance(y, mu))
    var = family.variance(mu)
    if dmu is None:
        dmu = link.inverse_deriv(eta)
    resid = y - mu
    wv = iw / var
    pearson = float(wv @ (resid * resid))
    if not (math.isfinite(dev) and math.isfinite(pearson)):  # η or μ not finite (an overflowing step)
        return max(1, int(np.count_nonzero(~(np.isfinite(eta) & np.isfinite(mu)))))
    ww = wv * dmu * dmu
    r = resid / dmu
    if not (math.isfinite(float(np.sum(ww))) and math.isfinite(float(np.sum(r)))):
        dead = ~(np.isfinite(ww) & np.isfinite(r))  # weights that underflowed carry no information
        ww, r = np.where(dead, 0.0, ww), np.where(dead, 0.0, r)
    yy = r if base is None else base + r
    extreme = 0
    if point.extremes and isinstance(family, Binomial):
        extreme = int(np.count_nonzero((mu < SEPARATION_MU) | (mu > 1.0 - SEPARATION_MU)))
    max_deta = float(np.max(np.abs(deta))) if deta is not None else 0.0
    return yy, ww, dev, pearson, extreme, max_deta


def _maps_into_domain(family: Family, link: Link) -> bool:
    """Whether every finite η gives a mean inside the family's domain (no per-row check needed;
    a non-finite η or μ still shows up as a non-finite deviance)."""
    if isinstance(family, Binomial):
        return link.name in ("logit", "probit", "cloglog")  # inverses clipped to [ε, 1 − ε]
    if family.name == "gaussian":
        return True
    return link.name == "log"


def _rows_of(a, k):
    return None if a is None else a[k]


def _pass_update(family: Family, link: Link, point: Point, acc: PassResult, X, Y, w, offset=None,
                 var_weights=None) -> PassResult:
    """Fold one block: chunk by chunk (in cache) the linear predictor, the working weights and
    the weighted Gram's syrk, so that X is read from memory once."""
    X, y, w, offset, vw = positive_rows(*block_arrays(X, Y, w, offset, var_weights, fill=False))
    b, d = X.shape
    if b == 0:
        return acc
    rows = chunk_rows(d)
    G = np.zeros((d + 2, d + 2))
    Z = np.empty((min(rows, b), d))
    yy, ww = np.empty(b), np.empty(b)   # kept for the explicit-centring fallback
    dev = pearson = max_deta = 0.0
    extreme = invalid = 0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        for i in range(0, b, rows):
            k = slice(i, i + rows)
            out = _working(family, link, point, X[k], y[k], w[k], _rows_of(offset, k), _rows_of(vw, k))
            if isinstance(out, int):
                invalid += out
                continue
            if invalid:
                continue
            yy[k], ww[k], dv, pr, ex, md = out
            dev, pearson, extreme, max_deta = dev + dv, pearson + pr, extreme + ex, max(max_deta, md)
            add_weighted_gram(G, Z, X[k], yy[k], ww[k], point.shift)
        if invalid:
            return acc._replace(deviance=math.inf, invalid=acc.invalid + invalid)
        state = gram_state(G, np.count_nonzero(ww), float(ww @ ww), point.shift,
                           lambda: st.gram_of_batch(X, yy[:, None], ww))
        merged = st.merge(acc.state, state)
    return PassResult(merged, acc.deviance + dev, acc.pearson + pearson, acc.invalid, acc.extreme + extreme,
                      max(acc.max_deta, max_deta))


def pass_reduction(family: Family, link: Link, point: Point, d: int) -> Reduction:
    """One IRLS pass at ``point`` (picklable: module-level functions and partials)."""
    return Reduction(functools.partial(_pass_init, d), functools.partial(_pass_update, family, link, point),
                     _pass_merge)


# ------------------------------------------------------------------ the null model
class _NullSums(NamedTuple):
    wsum: float      # Σ W
    wr: float        # Σ W r
    deviance: float  # Σ w v d(y, μ)  (inf when μ leaves the domain)


def _null_init():
    return _NullSums(0.0, 0.0, 0.0)


def _null_update(family: Family, link: Link, intercept: float, acc: _NullSums, X, Y, w, offset=None,
                 var_weights=None) -> _NullSums:
    _, y, w, offset, vw = positive_rows(*block_arrays(X, Y, w, offset, var_weights))
    if w.size == 0:
        return acc
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        eta = intercept + offset
        mu = link.inverse(eta)
        if not (np.all(np.isfinite(eta)) and np.all(family.valid_mu(mu))):
            return acc._replace(deviance=math.inf)
        iw = w * vw
        dmu = link.inverse_deriv(eta)
        ww = iw * dmu * dmu / family.variance(mu)
        r = (y - mu) / dmu
        ok = np.isfinite(ww) & np.isfinite(r) & (dmu != 0)
        ww, r = np.where(ok, ww, 0.0), np.where(ok, r, 0.0)
        return _NullSums(acc.wsum + float(ww.sum()), acc.wr + float(ww @ r),
                         acc.deviance + float(iw @ family.unit_deviance(y, mu)))


def _null_merge(a: _NullSums, b: _NullSums) -> _NullSums:
    return _NullSums(a.wsum + b.wsum, a.wr + b.wr, a.deviance + b.deviance)


def null_reduction(family: Family, link: Link, intercept: float) -> Reduction:
    """One pass of the intercept-only model ``μ = g⁻¹(β₀ + offset)`` (X is not read)."""
    return Reduction(_null_init, functools.partial(_null_update, family, link, float(intercept)), _null_merge)


# ------------------------------------------------------------------ a row subsample
def _thinned_update(update, step: int, acc, X, *rest):
    return update(acc, X[::step], *(None if a is None else a[::step] for a in rest))


def thinned(reduction: Reduction, step: int) -> Reduction:
    """``reduction`` over every ``step``-th row of each block (a systematic subsample read at
    ``1/step`` of the memory traffic; e.g. the first IRLS iterations' start)."""
    return reduction._replace(update=functools.partial(_thinned_update, reduction.update, int(step)), block=None)


__all__ = ["CHUNK_BYTES", "DataSummary", "PassResult", "Point", "SEPARATION_MU", "add_weighted_gram",
           "block_arrays", "check_reduction", "chunk_rows", "gram_state", "linear_predictor", "null_reduction",
           "pass_reduction", "positive_rows", "spread_reduction", "summarise", "thinned", "weighted_state"]
