"""The passes of a GLM fit as mergeable reductions (see :mod:`jaxlm.core.irls` for the fit).

Blocks are ``(X (b, d), Y (b, 1) or (b,), w (b,), offset (b,), var_weights (b,))`` (the last two
optional: 0 and 1). Every reduction here is built from module-level functions and
:func:`functools.partial`, so it pickles (Dask ships it to workers) and runs unchanged on any
driver of :mod:`jaxlm.reduce`.

``check_reduction``   pass 0: validation (InputError naming the first offending row) and sums
``pass_reduction``    one IRLS pass at a :class:`Point`: deviance, Pearson χ², the working
                      weights' least-squares state (:class:`jaxlm.core.state.GramState`)
``null_reduction``    one pass of the intercept-only model with the data's offsets

Within a block an IRLS pass runs chunk by chunk (``CHUNK_BYTES`` of X): the linear predictor,
the working terms (each transcendental once per row for the logit and Poisson–log pairs) and the
Gram's syrk (:func:`add_weighted_gram`) see the chunk while it is in cache, so each pass reads X
from memory once; a large block's chunks are shared between threads, one per core, with
single-threaded BLAS (:func:`in_threads`).
"""
from __future__ import annotations

import collections
import functools
import math
import operator
import queue
from typing import NamedTuple

import numpy as np

from . import state as st
from .blas import in_threads, pass_threads, single_threaded_blas  # noqa: F401 - re-exported
from .errors import InputError
from .families import Binomial, Family, Link, working_terms
from .links import FAST_TERMS, linear_predictor
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


def _spread_update(acc, X, Y, w, *extra):  # acc: [n, Σx (d), Σx² (d)]
    X = np.asarray(X, dtype=np.float64)[np.asarray(w).reshape(-1) > 0]
    return acc + np.concatenate([[X.shape[0]], X.sum(axis=0), np.einsum("ij,ij->j", X, X)])


def _spread_finish(acc):
    d, n = (acc.size - 1) // 2, max(acc[0], 1.0)
    mean = acc[1:d + 1] / n
    return np.sqrt(np.maximum(acc[d + 1:] / n - mean * mean, 0.0))


def spread_reduction(d: int) -> Reduction:
    """The unweighted standard deviation of each column of X over rows with w > 0 (a scale,
    computed naively: only to compare coefficients, e.g. to name a separating direction)."""
    return Reduction(functools.partial(np.zeros, 2 * d + 1), _spread_update, operator.add, _spread_finish)


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


def add_weighted_gram(G, Z, X, y, ww, shift=None, s=None, sy=None):
    """``G += [X − s | 1 | y]ᵀ W [X − s | 1 | y]`` ((d + 2)², W = diag(ww)): a syrk of ``√W (X − s)``
    in the scratch ``Z`` (≥ len(y) rows, d columns; ``s``, ``sy``: optional scratch for √W, √W y),
    two gemv and three dots for the last two columns (faster than a syrk of d + 2 strided columns)."""
    b, d = X.shape
    Z = Z[:b]
    s = np.sqrt(ww, out=None if s is None else s[:b])
    sy = np.multiply(s, y, out=None if sy is None else sy[:b])
    if shift is None:
        np.multiply(X, s[:, None], out=Z)
    else:
        np.subtract(X, shift[None, :], out=Z)
        Z *= s[:, None]
    c = np.stack([s @ Z, sy @ Z])  # (2, d): Σ W x, Σ W y x
    G[:d, :d] += Z.T @ Z
    G[d:, :d] += c
    G[:d, d:] += c.T
    sw, swy = s @ s, s @ sy
    G[d:, d:] += [[sw, swy], [swy, sy @ sy]]


def gram_state(G, count: float, wsum2: float, shift=None, fallback=None):
    """The :class:`~jaxlm.core.state.GramState` of the raw weighted sums ``G`` (:func:`add_weighted_gram`):
    the moments centred algebraically about the weighted mean, unless that cancels more than 4
    digits of a column's spread; then ``fallback()`` (the explicitly centred state) instead."""
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


# ------------------------------------------------------------------------- IRLS pass
class Point(NamedTuple):
    """Where a pass evaluates the model. ``start_mean`` not None: the start pass (μ₀ from y and
    this mean; coef/intercept unused). ``watch`` (d,), ``watch0``: when given, the pass also
    measures max |X watch + watch0| (the last step's change of η). ``shift``: centring point for
    the Gram (or None). ``extremes``: count the rows with fitted probabilities within
    SEPARATION_MU of 0 or 1."""

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
        return PassResult(st.merge(a.state, b.state), a.deviance + b.deviance, a.pearson + b.pearson,
                          a.invalid + b.invalid, a.extreme + b.extreme, max(a.max_deta, b.max_deta))


def _rows_of(a, k):
    return None if a is None else a[k]


#: A block of an IRLS pass: rows (w > 0), ``iw = w v`` (None: 1), ``ones`` (y = 1 of 0/1 outcomes, or
#: None), the working residuals ``yy`` and weights ``ww`` (chunk by chunk), each chunk's ``sums[j]``.
_Block = collections.namedtuple("_Block", "X y offset iw ones yy ww sums")


def _pass_chunks(family: Family, link: Link, point: Point, blk: _Block, chunks: queue.Queue, rows: int) -> None:
    """One thread's share of a block: :func:`_pass_chunk` of each chunk j it takes into ``blk.sums[j]``
    (an error too: the caller raises it)."""
    m, d = min(rows, blk.X.shape[0]), blk.X.shape[1]
    scratch = np.empty((m, d)), np.empty((4, m)), np.ones(m)
    fast = None if point.start_mean is not None or (blk.ones is None and isinstance(family, Binomial)) else (
        FAST_TERMS.get((family.name, link.name)))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        while True:
            try:
                j = chunks.get_nowait()
            except queue.Empty:
                return
            try:
                blk.sums[j] = _pass_chunk(family, link, point, blk, slice(j * rows, (j + 1) * rows), scratch, fast)
            except Exception as exc:  # noqa: BLE001 - raised by the caller
                blk.sums[j] = exc
            finally:
                chunks.task_done()


def _pass_chunk(family: Family, link: Link, point: Point, blk: _Block, k: slice, scratch, fast):
    """One chunk (while X's chunk is in cache): η, the working terms (``fast``, one of
    :data:`~jaxlm.core.links.FAST_TERMS`, else :func:`~jaxlm.core.families.working_terms`; at
    the start, the working response at μ₀) and the weighted Gram (:func:`add_weighted_gram`):
    ``(G, deviance, pearson, extreme, max |Δη|)``, or the number of invalid rows (0: discarded)."""
    X, y, start = blk.X[k], blk.y[k], point.start_mean is not None
    Z, buf, ones = scratch
    e, mu, s, sy = (a[:X.shape[0]] for a in buf)
    off, iw, mu0, deta = _rows_of(blk.offset, k), _rows_of(blk.iw, k), None, None
    if start:
        mu0 = family.starting_mu(y, point.start_mean)
        e[:] = link(mu0)
    else:
        deta = linear_predictor(X, point.coef, point.intercept, off, point.watch, point.watch0, out=e)[1]
    terms = None if fast is None else fast(y, _rows_of(blk.ones, k), e, iw, blk.ww[k], blk.yy[k], mu, s)
    if terms is None:
        out = working_terms(family, link, y, e, ones[:len(e)] if iw is None else iw, mu0)
        if isinstance(out, int):
            return out
        r, blk.ww[k], dev, pearson, mu = out
        blk.yy[k] = r if not start else (e if off is None else e - off) + r  # start: η₀ − offset + r
    else:
        dev, pearson = terms
    if any(isinstance(a, int) for a in blk.sums):
        return 0  # an invalid chunk: the pass is discarded
    G = np.zeros((X.shape[1] + 2,) * 2)
    add_weighted_gram(G, Z, X, blk.yy[k], blk.ww[k], point.shift, s, sy)
    ex = (mu < SEPARATION_MU) | (mu > 1.0 - SEPARATION_MU) if point.extremes and isinstance(family, Binomial) else ()
    return G, dev, pearson, int(np.count_nonzero(ex)), 0.0 if deta is None else float(np.max(np.abs(deta)))


def _pass_update(family: Family, link: Link, point: Point, acc: PassResult, X, Y, w, offset=None,
                 var_weights=None) -> PassResult:
    """Fold one block: chunk by chunk (in cache) the linear predictor, the working weights and
    the weighted Gram's syrk, so that X is read from memory once; a large block's chunks are
    shared between threads (:func:`in_threads`) and summed in chunk order (the same sums
    whichever thread took which chunk)."""
    X, y, w, offset, vw = positive_rows(*block_arrays(X, Y, w, offset, var_weights, fill=False))
    b, d = X.shape
    if b == 0:
        return acc
    rows, chunks = chunk_rows(d), queue.Queue()
    for j in range(-(-b // rows)):
        chunks.put(j)
    iw = (None if np.all(w == 1.0) else w) if vw is None else w * vw
    ones = y == 1.0 if isinstance(family, Binomial) else None  # the mask y = 1 of 0/1 outcomes
    if ones is not None and np.count_nonzero(ones) + np.count_nonzero(y == 0.0) < b:
        ones = None
    blk = _Block(X, y, offset, iw, ones, np.empty(b), np.empty(b), [None] * chunks.qsize())
    in_threads(functools.partial(_pass_chunks, family, link, point, blk, chunks, rows), chunks)
    for a in blk.sums:
        if isinstance(a, Exception):
            raise a
    bad = [a for a in blk.sums if isinstance(a, int)]
    if bad:
        return acc._replace(deviance=math.inf, invalid=acc.invalid + max(1, sum(bad)))
    G, dev, pearson, extreme, max_deta = blk.sums[0]
    for g, dv, pr, ex, md in blk.sums[1:]:
        G, dev, pearson, extreme, max_deta = G + g, dev + dv, pearson + pr, extreme + ex, max(max_deta, md)
    yy, ww = blk.yy, blk.ww
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
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
        out = working_terms(family, link, y, intercept + offset, w * vw)
    if isinstance(out, int):  # μ left the domain
        return acc._replace(deviance=math.inf)
    r, ww, deviance = out[:3]
    return _NullSums(acc.wsum + float(ww.sum()), acc.wr + float(ww @ r), acc.deviance + deviance)


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
           "block_arrays", "check_reduction", "chunk_rows", "gram_state", "in_threads", "linear_predictor",
           "null_reduction", "pass_reduction", "pass_threads", "positive_rows", "single_threaded_blas",
           "spread_reduction", "summarise", "thinned"]
