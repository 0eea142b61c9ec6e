"""The passes of a GLM fit as mergeable reductions (see :mod:`jaxlm.core.irls` for the fit).

Blocks are ``(X (b, d), Y (b, 1) or (b,), w (b,), offset (b,), var_weights (b,))`` (the last two
optional: 0 and 1). Every reduction here is built from module-level functions and
:func:`functools.partial`, so it pickles (Dask ships it to workers) and runs unchanged on any
driver of :mod:`jaxlm.reduce`.

``check_reduction``   pass 0: validation (InputError naming the first offending row) and sums
                      (:mod:`jaxlm.core.glm_check`, re-exported here)
``pass_reduction``    one IRLS pass at a :class:`Point`: deviance, Pearson χ², the working
                      weights' least-squares state (:class:`jaxlm.core.state.GramState`), or
                      with ``score_only`` the score ``[Σ W r, Σ W r x]`` (a quasi-Newton step);
                      optionally the statistics' y-only sums and the check of X
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
import queue
from typing import NamedTuple

import numpy as np

from . import state as st
from .blas import dot, in_threads, pass_threads, single_threaded_blas  # noqa: F401 - re-exported
from .families import Binomial, Family, Link, working_terms
from .glm_check import (DataSummary, _rows_of, block_arrays, check_reduction, host_summary,  # noqa: F401
                        positive_rows, spread_reduction, summarise)
from .links import FAST_TERMS, linear_predictor
from .reduction import Reduction

#: Separation: fitted probabilities within this of 0 or 1 ...
SEPARATION_MU = 1e-6
#: The host Gram is formed about a shift and centred algebraically unless that would cancel
#: more than 4 digits of a column's spread (then the block is centred explicitly).
CANCELLATION_LIMIT = 1e4


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
    two gemv and three dots for the last two columns (faster than a syrk of d + 2 strided columns).
    A float32 ``Z`` (no shift): the X block's syrk in float32 (twice as fast; ~1e-6 relative: a
    curvature, :attr:`Point.gram32`), the last two columns from X in float64."""
    b, d = X.shape
    Z = Z[:b]
    s = np.sqrt(ww, out=None if s is None else s[:b])
    sy = np.multiply(s, y, out=None if sy is None else sy[:b])
    if Z.dtype == np.float32:  # (never with a shift)
        np.multiply(X, s[:, None], out=Z, casting="same_kind")
        c = np.stack([dot(ww, X), dot(ww * y, X)])
    elif shift is None:
        np.multiply(X, s[:, None], out=Z)
    else:
        np.subtract(X, shift[None, :], out=Z)
        Z *= s[:, None]
    if Z.dtype == np.float64:
        c = np.stack([dot(s, Z), dot(sy, Z)])  # (2, d): Σ W x, Σ W y x (jaxlm.core.blas.dot)
    G[:d, :d] += dot(Z.T, Z)
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
    SEPARATION_MU of 0 or 1. ``null_mean``: when given, the pass also sums the y-only terms of the
    statistics (:attr:`PassResult.saturated`, :attr:`PassResult.null_deviance`). ``score_only``: the
    pass sums the score ``[Σ W r, Σ W r x]`` ((d + 1,), the result's ``state``) instead of the
    working weights' Gram (two matrix-vector products instead of a syrk: a quasi-Newton step).
    ``check_x``: the pass also checks that every row of X (w > 0) is finite, as the check pass does
    (:attr:`PassResult.x_finite`). ``gram32``: the Gram's X block accumulated in float32 (when
    ``shift`` is None): a curvature for a Newton step, never the state of a reported fit."""

    coef: np.ndarray
    intercept: float
    start_mean: float | None = None
    watch: np.ndarray | None = None
    watch0: float = 0.0
    shift: np.ndarray | None = None
    extremes: bool = False
    null_mean: float | None = None
    score_only: bool = False
    check_x: bool = False
    gram32: bool = False


class PassResult(NamedTuple):
    """The accumulator of an IRLS pass."""

    state: object         # GramState of (X, r, W); the score (d + 1,) of a score_only pass
    deviance: float       # Σ w v d(y, μ)   (inf when some μ left the family's domain)
    pearson: float        # Σ w v (y − μ)² / V(μ)
    invalid: int          # rows whose μ left the domain or whose η is not finite
    extreme: int          # rows with μ within SEPARATION_MU of 0 or 1 (Binomial)
    max_deta: float       # max |Δη| of the watched step (0 when not watched)
    saturated: float = 0.0      # Σ f log-density(y | μ = y, v, φ = 1)        } with Point.null_mean
    null_deviance: float = 0.0  # Σ f v d(y, null_mean)                        } (else 0)
    x_finite: bool = True       # False: some row of X is not finite (with Point.check_x)


def _pass_init(d: int, score_only: bool = False) -> PassResult:
    return PassResult(np.zeros(d + 1) if score_only else st.init(d, 1), 0.0, 0.0, 0, 0, 0.0, 0.0, 0.0, True)


def _merge_states(a, b):
    return a + b if isinstance(a, np.ndarray) else st.merge(a, b)


def _pass_merge(a: PassResult, b: PassResult) -> PassResult:
    with np.errstate(over="ignore", invalid="ignore"):
        return PassResult(_merge_states(a.state, b.state), a.deviance + b.deviance, a.pearson + b.pearson,
                          a.invalid + b.invalid, a.extreme + b.extreme, max(a.max_deta, b.max_deta),
                          a.saturated + b.saturated, a.null_deviance + b.null_deviance, a.x_finite and b.x_finite)


def _null_terms(family: Family, y, f, vw, null_mean: float) -> tuple[float, float]:
    """``(Σ f log-density(y | μ = y, v, 1), Σ f v d(y, null_mean))`` of a chunk: the y-only parts of
    the log-likelihoods (the identity ``llf(μ) = llsat − D(μ)/2`` of a family with φ = 1) and the
    null model's deviance. ``f``, ``vw`` None: 1. Counts and 0/1 outcomes without variance weights
    take each term once per value (weighted by the value's Σ f, :data:`COUNTS_MAX` values at most)."""
    values = _small_counts(y) if vw is None else None
    if values is not None:  # Σ_i f_i t(y_i) = Σ_u (Σ_{y_i = u} f_i) t(u)
        fsum = np.bincount(values, weights=f)
        u = np.arange(fsum.shape[0], dtype=np.float64)
        return _sum_w(fsum, family.loglike_obs(u, u, 1.0, 1.0)), _sum_w(fsum, family.unit_deviance(
            u, np.full_like(u, null_mean)))
    sat = family.loglike_obs(y, y, 1.0 if vw is None else vw, 1.0)
    iw = f if vw is None else (vw if f is None else f * vw)
    dev = family.unit_deviance(y, np.full_like(y, null_mean))
    return _sum_w(f, sat), _sum_w(iw, dev)


#: y-only terms per value (not per row) when y holds integers in [0, COUNTS_MAX).
COUNTS_MAX = 1 << 16


def _small_counts(y):
    """y as int64 when every entry is an integer in [0, COUNTS_MAX), else None."""
    if not y.size or not (y.min() >= 0 and y.max() < COUNTS_MAX):  # also False for NaN
        return None
    values = y.astype(np.int64)
    return values if np.array_equal(values, y) else None


def _sum_w(weights, a) -> float:
    return float(np.sum(a) if weights is None else weights @ a)


#: A block of an IRLS pass: rows (w > 0), ``iw = w v`` (None: 1), ``ones`` (y = 1 of 0/1 outcomes, or
#: None), the working residuals ``yy`` and weights ``ww`` (chunk by chunk), each chunk's ``sums[j]``,
#: the frequency and variance weights ``f``, ``vw`` (None: 1).
_Block = collections.namedtuple("_Block", "X y offset iw ones yy ww sums f vw")


def _pass_chunks(family: Family, link: Link, point: Point, blk: _Block, chunks: queue.Queue, rows: int) -> None:
    """One thread's share of a block: :func:`_pass_chunk` of each chunk j it takes into ``blk.sums[j]``
    (an error too: the caller raises it)."""
    m, d = min(rows, blk.X.shape[0]), blk.X.shape[1]
    low = point.gram32 and point.shift is None and not point.score_only
    scratch = np.empty((m, d), np.float32 if low else np.float64), np.empty((5, m)), np.ones(m)
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
    ``(G, deviance, pearson, extreme, max |Δη|, (saturated, null deviance))``, or the number of
    invalid rows (0: discarded; -1: X is not finite, with ``point.check_x``)."""
    X, y, start = blk.X[k], blk.y[k], point.start_mean is not None
    Z, buf, ones = scratch
    e, mu, s, sy, aux = (a[:X.shape[0]] for a in buf)
    off, iw, mu0, deta = _rows_of(blk.offset, k), _rows_of(blk.iw, k), None, None
    # matrix-vector products into scratch (a product with two columns costs 2-4 times as much)
    if point.check_x and not np.isfinite(np.matmul(X, np.full(X.shape[1], 2.0**-10), out=aux)).all():
        return -1  # a row with NaN or inf has a non-finite row sum
    if start:
        mu0 = family.starting_mu(y, point.start_mean)
        e[:] = link(mu0)
    else:
        linear_predictor(X, point.coef, point.intercept, off, out=e)
        if point.watch is not None:
            deta = np.matmul(X, point.watch, out=aux)
            deta += point.watch0
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
    if point.score_only:  # Σ W r [1, x]
        np.multiply(blk.ww[k], blk.yy[k], out=s)
        G = np.concatenate([[s.sum()], dot(s, X)])
    else:
        G = np.zeros((X.shape[1] + 2,) * 2)
        add_weighted_gram(G, Z, X, blk.yy[k], blk.ww[k], point.shift, s, sy)
    ex = (mu < SEPARATION_MU) | (mu > 1.0 - SEPARATION_MU) if point.extremes and isinstance(family, Binomial) else ()
    null = (0.0, 0.0) if point.null_mean is None else _null_terms(family, y, _rows_of(blk.f, k), _rows_of(blk.vw, k),
                                                                 point.null_mean)
    return G, dev, pearson, int(np.count_nonzero(ex)), 0.0 if deta is None else float(np.max(np.abs(deta))), null


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
    blk = _Block(X, y, offset, iw, ones, np.empty(b), np.empty(b), [None] * chunks.qsize(),
                 None if vw is None and iw is None else w, vw)
    in_threads(functools.partial(_pass_chunks, family, link, point, blk, chunks, rows), chunks)
    for a in blk.sums:
        if isinstance(a, Exception):
            raise a
    bad = [a for a in blk.sums if isinstance(a, int)]
    if bad:
        return acc._replace(deviance=math.inf, invalid=acc.invalid + max(1, sum(max(a, 0) for a in bad)),
                            x_finite=acc.x_finite and -1 not in bad)
    G, dev, pearson, extreme, max_deta, (sat, nulldev) = blk.sums[0]
    for g, dv, pr, ex, md, (sa, nd) in blk.sums[1:]:
        G, dev, pearson, extreme, max_deta = G + g, dev + dv, pearson + pr, extreme + ex, max(max_deta, md)
        sat, nulldev = sat + sa, nulldev + nd
    yy, ww = blk.yy, blk.ww
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        if point.score_only:
            merged = acc.state + G
        else:
            state = gram_state(G, np.count_nonzero(ww), float(ww @ ww), point.shift,
                               lambda: st.gram_of_batch(X, yy[:, None], ww))
            merged = st.merge(acc.state, state)
    return PassResult(merged, acc.deviance + dev, acc.pearson + pearson, acc.invalid, acc.extreme + extreme,
                      max(acc.max_deta, max_deta), acc.saturated + sat, acc.null_deviance + nulldev, acc.x_finite)


def pass_reduction(family: Family, link: Link, point: Point, d: int) -> Reduction:
    """One IRLS pass at ``point`` (picklable: module-level functions and partials)."""
    return Reduction(functools.partial(_pass_init, d, bool(point.score_only)),
                     functools.partial(_pass_update, family, link, point), _pass_merge)


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
           "block_arrays", "check_reduction", "chunk_rows", "gram_state", "host_summary", "in_threads",
           "linear_predictor", "null_reduction", "pass_reduction", "pass_threads", "positive_rows",
           "single_threaded_blas", "spread_reduction", "summarise", "thinned"]
