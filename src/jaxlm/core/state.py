"""The mergeable least-squares state: ``init``, ``update(state, X, Y, w)``, ``merge(a, b)``.

Every exact fit is the same reduction: batches of rows → per-batch state → merge →
solve. Two forms of the state are provided, with the same three functions:

``GramState`` (fast)
    weight sum and weighted means of x (d,) and y (m,), and the centred co-moments
    ``Sxx = Σ w (x−x̄)(x−x̄)ᵀ``, ``Sxy``, ``Syy``. One GEMM per batch. Merged with the
    parallel-axis update of Chan, Golub & LeVeque::

        δ = mean_b − mean_a,  S = S_a + S_b + (w_a w_b / (w_a + w_b)) δ δᵀ

``QRState`` (accurate, TSQR)
    the same weight sum and means, and an upper-triangular R (p, p), p = d + m, with
    ``Rᵀ R = [[Sxx, Sxy], [Syx, Syy]]``, kept as a triangular factor so that the
    condition number squared never enters. Merged by one small QR of the stacked
    factors plus the mean-shift row ``sqrt(w_a w_b / (w_a + w_b)) δ``.

Both merges are associative up to rounding, so Dask can tree-reduce them and a device
mesh can combine them.

Units. Data near the ends of the float64 range (|x| ~ 1e200, weights ~ 1e300, subnormal
values) would overflow or underflow when squared. A state may therefore describe the data
in power-of-two units: ``log2_x`` (d,), ``log2_y`` (m,) and ``log2_w`` (even) say that it
holds the moments of ``X·2^-log2_x``, ``Y·2^-log2_y`` and ``w·2^-log2_w``. Scaling by a
power of two is exact, so the least-squares problem is the same; :func:`merge` brings two
states to common units (the larger exponent of each column) before combining them. The
units are zero unless :func:`jaxlm.core.exact.accumulate_state` found the data out of the
safe range (:func:`in_range`); :func:`data_units` picks them from the columns' magnitudes.

Centring. A batch is centred about its float64 mean ``m``, whose rounding ``r = Σw(x − m)/Σw``
is measured and removed (``Σw(x−m)(x−m)ᵀ − Σw·r rᵀ``, mean ``m + r``), so that columns far
from the origin with a spread of a few ulps (integers beyond 2^53, ``1e40 + i``) keep their
true centred moments, and a column that is constant in float64 has a zero spread. The mean is
kept in double-double, ``mean_x + mean_x_lo`` (and ``mean_y + mean_y_lo``): a merge takes the
difference of two means, and for columns far from the origin (1e12 + U(0, 1)) the difference of
their float64 roundings is off by their ulps, which the mean-shift term would carry into the
spread (``partial_fit`` of such data kept only 5–7 digits). States written without the lo
parts (older model files) read them as zero.

All functions are pure. They work on JAX arrays (jitted; on a GPU the batch is centred on
the device) and on NumPy arrays (the host path, measured faster on CPUs because BLAS's
``syrk`` forms ``XᵀX`` at half the flops of XLA's GEMM; there an
unweighted batch is not copied: its Gram is formed about the origin and centred
algebraically, unless that would cancel more than 4 digits of a column's spread
(|mean| ≳ 100·sd, e.g. x ≈ 1e9 + O(1)), in which case the batch is centred explicitly).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .dd import fast_two_sum, two_sum
from .blas import dot
from .split import scratch
from .precision import MATMUL_PRECISION, jnp, lazy_jit


class GramState(NamedTuple):
    count: jnp.ndarray   # rows seen (with nonzero weight)
    wsum: jnp.ndarray    # Σ w
    wsum2: jnp.ndarray   # Σ w²
    mean_x: jnp.ndarray  # (d,)
    mean_y: jnp.ndarray  # (m,)
    sxx: jnp.ndarray     # (d, d)
    sxy: jnp.ndarray     # (d, m)
    syy: jnp.ndarray     # (m, m)
    log2_x: jnp.ndarray = 0.0  # (d,) units: the state describes X·2^-log2_x (0: the data as given)
    log2_y: jnp.ndarray = 0.0  # (m,) ... Y·2^-log2_y
    log2_w: jnp.ndarray = 0.0  # ()  ... w·2^-log2_w (an even number)
    mean_x_lo: jnp.ndarray = 0.0  # (d,) the rounding of mean_x: the mean is mean_x + mean_x_lo
    mean_y_lo: jnp.ndarray = 0.0  # (m,) ... mean_y + mean_y_lo


class QRState(NamedTuple):
    count: jnp.ndarray
    wsum: jnp.ndarray
    wsum2: jnp.ndarray
    mean_x: jnp.ndarray
    mean_y: jnp.ndarray
    r: jnp.ndarray       # (d + m, d + m) upper triangular; Rᵀ R = centred co-moments of [x, y]
    log2_x: jnp.ndarray = 0.0
    log2_y: jnp.ndarray = 0.0
    log2_w: jnp.ndarray = 0.0
    mean_x_lo: jnp.ndarray = 0.0
    mean_y_lo: jnp.ndarray = 0.0


class Units(NamedTuple):
    """Power-of-two units of a state (host NumPy): the data are ``X·2^-x``, ``Y·2^-y``, ``w·2^-w``."""

    x: np.ndarray  # (d,) integers (as float64)
    y: np.ndarray  # (m,)
    w: float       # even

    @property
    def scaled(self) -> bool:
        return bool(self.w != 0 or self.x.any() or self.y.any())


def units_of(state) -> Units:
    """The units of a state (zeros for a state of the data as given)."""
    d, m = np.shape(state.mean_x)[0], np.shape(state.mean_y)[0]
    ux, uy = (np.asarray(a, dtype=np.float64) for a in (state.log2_x, state.log2_y))
    return Units(np.full(d, float(ux)) if ux.ndim == 0 else ux.copy(),
                 np.full(m, float(uy)) if uy.ndim == 0 else uy.copy(),
                 float(np.asarray(state.log2_w, dtype=np.float64)))


def scale_batch(X, Y, w, units: Units | None):
    """``(X·2^-ux, Y·2^-uy, w·2^-uw)``: exact (barring underflow of values far below the
    column's largest); the arrays themselves when ``units`` is None or all zero."""
    if units is None or not units.scaled:
        return X, Y, w
    xp = _xp(X, Y, w)
    ex = xp.asarray(-units.x, dtype=np.int32)
    ey = xp.asarray(-units.y, dtype=np.int32)
    return (xp.ldexp(X, ex[None, :]), xp.ldexp(Y, ey[None, :]), xp.ldexp(w, np.int32(-units.w)))


def shifted_batches(batches, units: Units, shift):
    """The batches scaled to ``units`` and shifted by ``shift = (sx (d,), sy (m,))`` (in those
    units): for columns far from the origin the differences are exact."""
    sx, sy = shift
    for X, Y, w in batches:
        Xs, Ys, ws = scale_batch(*(np.asarray(a, dtype=np.float64) for a in (X, Y, w)), units)
        yield Xs - sx[None, :], Ys - sy[None, :], ws


def init(d: int, m: int, *, dtype=np.float64, kind: str = "gram", xp=np, units: Units | None = None):
    """An empty state for d features and m targets (NumPy arrays unless ``xp=jax.numpy``)."""
    z = xp.zeros((), dtype)
    u = _unit_arrays(units, d, m, xp)
    lo = (xp.zeros(d, dtype), xp.zeros(m, dtype))
    if kind == "qr":
        return QRState(z, z, z, xp.zeros(d, dtype), xp.zeros(m, dtype), xp.zeros((d + m, d + m), dtype), *u, *lo)
    return GramState(z, z, z, xp.zeros(d, dtype), xp.zeros(m, dtype), xp.zeros((d, d), dtype),
                     xp.zeros((d, m), dtype), xp.zeros((m, m), dtype), *u, *lo)


def _unit_arrays(units: Units | None, d: int, m: int, xp=np):
    if units is None:
        return xp.zeros(d, np.float64), xp.zeros(m, np.float64), xp.zeros((), np.float64)
    return (xp.asarray(units.x, dtype=np.float64), xp.asarray(units.y, dtype=np.float64),
            xp.asarray(units.w, dtype=np.float64))


def _xp(*arrays):
    return np if all(isinstance(a, (np.ndarray, np.generic, float, int)) for a in arrays) else jnp


def _dot(a, b):
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return dot(a, b)  # (jaxlm.core.blas.dot: matmul holds the GIL for small results)
    return jnp.matmul(a, b, precision=MATMUL_PRECISION)


def _batch_moments(X, Y, w, xp):
    wsum = xp.sum(w)
    safe = xp.where(wsum > 0, wsum, 1.0)
    mx = _dot(w, X) / safe
    my = _dot(w, Y) / safe
    return wsum, mx, my


def _gram_centred(X, Y, w, xp, unit: bool = False):
    """The centred Gram state of one batch (units zero). ``unit`` (host float64, all weights 1): the
    rows centred into a reused buffer (:func:`jaxlm.core.split.scratch`), no weighted copy, ``syrk``."""
    wsum, mx, my = _batch_moments(X, Y, w, xp)
    if unit:
        Xc = np.subtract(X, mx, out=scratch("gram_xc", X.shape, "C" if X.flags.c_contiguous else "F"))
        Yc = Y - my
        Xw, Yw = Xc, Yc
    else:
        Xc, Yc = X - mx, Y - my
        Xw, Yw = Xc * w[:, None], Yc * w[:, None]
    sxx, sxy, syy = _dot(Xw.T, Xc), _dot(Xw.T, Yc), _dot(Yw.T, Yc)
    units = _unit_arrays(None, X.shape[1], Y.shape[1], xp)
    if xp is np and not (np.any(wsum * mx * mx > ROUNDED_MEAN * np.diag(sxx))
                         or np.any(wsum * my * my > ROUNDED_MEAN * np.diag(syy))):
        # no column far from the origin against its spread: the mean's rounding is negligible
        return GramState(np.sum(w > 0).astype(X.dtype), wsum, np.sum(w * w), mx, my, sxx, sxy, syy, *units,
                         np.zeros_like(mx), np.zeros_like(my))
    # the rounding of the float64 means, r = Σ w (x − m) / Σ w, removed from the moments and
    # kept: the mean is m + r in double-double
    safe = xp.where(wsum > 0, wsum, 1.0)
    rx, ry = _dot(w, Xc) / safe, _dot(w, Yc) / safe
    (mx, lx), (my, ly) = two_sum(mx, rx), two_sum(my, ry)
    return GramState(xp.sum(w > 0).astype(X.dtype), wsum, xp.sum(w * w), mx, my,
                     sxx - wsum * xp.outer(rx, rx), sxy - wsum * xp.outer(rx, ry), syy - wsum * xp.outer(ry, ry),
                     *units, lx, ly)


_gram_jit = lazy_jit(lambda X, Y, w: _gram_centred(X, Y, w, jnp))

#: On the host, the rounding of a batch's mean is measured and removed only when some column's
#: squared mean exceeds its variance by this factor (elsewhere it is far below rounding level).
ROUNDED_MEAN = 2.0**20

#: A column whose about-origin sum of squares exceeds its centred one by this factor loses
#: more than 4 digits to algebraic centring; the host path then centres explicitly.
CANCELLATION_LIMIT = 16.0


def _far_from_origin(X) -> bool:
    """Whether the first rows of ``X`` put some column's squared mean above CANCELLATION_LIMIT − 1
    times its variance: then the about-origin Gram would lose the digits :func:`_gram_host` checks
    for, and the block goes to the centred Gram at once (a guess from a sample: it only saves the
    about-origin products; the check after them still decides)."""
    head = X[:SAMPLE_ROWS]
    if head.shape[0] < 2:
        return False
    mean = head.mean(axis=0)
    return bool(np.any(mean * mean > (CANCELLATION_LIMIT - 1) * head.var(axis=0)))


#: Rows :func:`_far_from_origin` looks at.
SAMPLE_ROWS = 256


def _gram_host(X, Y, w):
    if not np.all(w == 1.0):
        return _gram_centred(X, Y, w, np)
    f64 = X.dtype == np.float64 and Y.dtype == np.float64  # (float32 states stay float32: _gram_centred)
    if f64 and (_far_from_origin(X) or _far_from_origin(Y)):
        return _gram_centred(X, Y, w, np, unit=True)
    n, m = Y.shape
    wsum = float(n)
    # one pass over X for both the column sums and Xᵀ Y: Xᵀ [1 | Y]
    ones_y = np.empty((n, m + 1), dtype=X.dtype)
    ones_y[:, 0] = 1.0
    ones_y[:, 1:] = Y
    # dgemm, not split.skinny_t's dgemv per column: dgemm's blocked sums round less, which fits that are
    # not refined keep (float32 coefficients to 1e-6, against 1e-5 with dgemv; absorbed fixed effects)
    xt1y = dot(X.T, ones_y)
    sxx_u, syy_u = dot(X.T, X), dot(Y.T, Y)
    mx = xt1y[:, 0] / max(n, 1)
    my = Y.sum(axis=0) / max(n, 1)
    sxx = sxx_u - wsum * np.outer(mx, mx)
    syy = syy_u - wsum * np.outer(my, my)
    lost = np.concatenate([np.diag(sxx_u) > CANCELLATION_LIMIT * np.abs(np.diag(sxx)),
                           np.diag(syy_u) > CANCELLATION_LIMIT * np.abs(np.diag(syy))])
    if lost.any():
        return _gram_centred(X, Y, w, np, unit=f64)
    return GramState(np.float64(n), np.float64(wsum), np.float64(wsum), mx, my, sxx,
                     xt1y[:, 1:] - wsum * np.outer(mx, my), syy, *_unit_arrays(None, len(mx), m),
                     np.zeros_like(mx), np.zeros_like(my))


def gram_of_batch(X, Y, w) -> GramState:
    """The state of one batch: X (n, d), Y (n, m), w (n,) (zero-weight rows are ignored)."""
    return _gram_host(X, Y, w) if _xp(X, Y, w) is np else _gram_jit(X, Y, w)


def _qr_of_batch(X, Y, w, xp):
    wsum, mx, my = _batch_moments(X, Y, w, xp)
    Z = xp.concatenate([X - mx, Y - my], axis=1)
    # remove the rounding of the float64 means (see _gram_centred)
    rz = _dot(w, Z) / xp.where(wsum > 0, wsum, 1.0)
    Z = (Z - rz) * xp.sqrt(w)[:, None]
    d = X.shape[1]
    (mx, lx), (my, ly) = two_sum(mx, rz[:d]), two_sum(my, rz[d:])
    p = Z.shape[1]
    if Z.shape[0] < p:
        Z = xp.concatenate([Z, xp.zeros((p - Z.shape[0], p), Z.dtype)])
    r = xp.linalg.qr(Z, mode="r")
    return QRState(xp.sum(w > 0).astype(X.dtype), wsum, xp.sum(w * w), mx, my, r[:p],
                   *_unit_arrays(None, X.shape[1], Y.shape[1], xp), lx, ly)


_qr_jit = lazy_jit(lambda X, Y, w: _qr_of_batch(X, Y, w, jnp))


def qr_of_batch(X, Y, w) -> QRState:
    return _qr_of_batch(X, Y, w, np) if _xp(X, Y, w) is np else _qr_jit(X, Y, w)


def _to_units(s, ux, uy, uw, xp):
    """The state ``s`` expressed in units (ux, uy, uw) ≥ its own (values are only scaled down:
    exact, but for those that fall below the float64 range, negligible against the columns
    that set the units)."""
    int_ = lambda a: xp.asarray(a, dtype=np.float64).astype(np.int32)  # noqa: E731
    sx, sy, sw = int_(s.log2_x - ux), int_(s.log2_y - uy), int_(s.log2_w - uw)
    ld = xp.ldexp
    common = (s.count, ld(s.wsum, sw), ld(s.wsum2, 2 * sw), ld(s.mean_x, sx), ld(s.mean_y, sy))
    units = (xp.asarray(ux, dtype=np.float64), xp.asarray(uy, dtype=np.float64), xp.asarray(uw, dtype=np.float64))
    lo = (ld(s.mean_x_lo, sx), ld(s.mean_y_lo, sy))
    if isinstance(s, QRState):
        sz = xp.concatenate([xp.broadcast_to(sx, s.mean_x.shape), xp.broadcast_to(sy, s.mean_y.shape)])
        return QRState(*common, ld(s.r, sz[None, :] + sw // 2), *units, *lo)
    bx, by = xp.broadcast_to(sx, s.mean_x.shape), xp.broadcast_to(sy, s.mean_y.shape)
    return GramState(*common, ld(s.sxx, bx[:, None] + bx[None, :] + sw), ld(s.sxy, bx[:, None] + by[None, :] + sw),
                     ld(s.syy, by[:, None] + by[None, :] + sw), *units, *lo)


def _same_units(a, b) -> bool:
    return all(np.array_equal(np.asarray(getattr(a, f)), np.asarray(getattr(b, f)))
               for f in ("log2_x", "log2_y", "log2_w"))


def _align(a, b, xp):
    """Both states in common units: per column the larger of their exponents."""
    ux, uy, uw = (xp.maximum(getattr(a, f), getattr(b, f)) for f in ("log2_x", "log2_y", "log2_w"))
    return _to_units(a, ux, uy, uw, xp), _to_units(b, ux, uy, uw, xp)


def _merge(a, b, xp):
    if xp is not np or not _same_units(a, b):
        a, b = _align(a, b, xp)
    units = (a.log2_x, a.log2_y, a.log2_w)
    wsum = a.wsum + b.wsum
    safe = xp.where(wsum > 0, wsum, 1.0)
    fb = b.wsum / safe
    (mean_x, mean_x_lo, dx), (mean_y, mean_y_lo, dy) = (_merge_means(a_hi, a_lo, b_hi, b_lo, fb) for a_hi, a_lo, b_hi, b_lo
                                                        in ((a.mean_x, a.mean_x_lo, b.mean_x, b.mean_x_lo),
                                                            (a.mean_y, a.mean_y_lo, b.mean_y, b.mean_y_lo)))
    c = a.wsum * fb  # weight of the mean-shift correction: w_a w_b / (w_a + w_b)
    count, wsum2 = a.count + b.count, a.wsum2 + b.wsum2
    lo = (mean_x_lo, mean_y_lo)
    if isinstance(a, QRState):
        shift_row = xp.sqrt(c) * xp.concatenate([dx, dy])
        stacked = xp.concatenate([a.r, b.r, shift_row[None, :]])
        r = xp.linalg.qr(stacked, mode="r")[: a.r.shape[0]]
        # Fix signs so that diag(R) ≥ 0: the factor is then unique and merges reproducible.
        sign = xp.where(xp.diag(r) < 0, -1.0, 1.0).astype(r.dtype)
        return QRState(count, wsum, wsum2, mean_x, mean_y, r * sign[:, None], *units, *lo)
    return GramState(count, wsum, wsum2, mean_x, mean_y,
                     a.sxx + b.sxx + c * xp.outer(dx, dx),
                     a.sxy + b.sxy + c * xp.outer(dx, dy),
                     a.syy + b.syy + c * xp.outer(dy, dy), *units, *lo)


def _merge_means(a_hi, a_lo, b_hi, b_lo, fb):
    """The merged mean ``a + fb·(b − a)`` in double-double, and ``δ = b − a`` rounded once.

    The means are kept as ``hi + lo`` so that ``δ`` of two means far from the origin (1e12 +
    O(1)) is their true difference, not the difference of their roundings: otherwise the
    mean-shift term ``w_a w_b/(w_a + w_b)·δδᵀ`` carries the ulps of the means into the spread.
    """
    d_hi, d_err = two_sum(b_hi, -a_hi)
    d_lo = d_err + (b_lo - a_lo)
    hi, err = two_sum(a_hi, fb * d_hi)
    hi, lo = fast_two_sum(hi, err + (a_lo + fb * d_lo))
    return hi, lo, d_hi + d_lo


_merge_jit = lazy_jit(lambda a, b: _merge(a, b, jnp))


def merge(a, b):
    """Combine the states of two disjoint sets of rows (associative, commutative; states in
    different units are first brought to common units)."""
    return _merge(a, b, np) if _xp(*a, *b) is np else _merge_jit(a, b)


def update(state, X, Y, w, units: Units | None = None):
    """``merge(state, state_of(X, Y, w))``; with ``units``, the batch is first scaled to them
    (:func:`scale_batch`) and its state carries them."""
    Xs, Ys, ws = scale_batch(X, Y, w, units)
    batch = qr_of_batch(Xs, Ys, ws) if isinstance(state, QRState) else gram_of_batch(Xs, Ys, ws)
    if units is not None and units.scaled:
        xp = _xp(*batch)
        batch = batch._replace(**dict(zip(("log2_x", "log2_y", "log2_w"),
                                          _unit_arrays(units, X.shape[1], Y.shape[1], xp))))
    return merge(state, batch)


def moments(state):
    """(Sxx, Sxy, Syy) of either form."""
    if isinstance(state, QRState):
        d = state.mean_x.shape[0]
        S = _dot(state.r.T, state.r)
        return S[:d, :d], S[:d, d:], S[d:, d:]
    return state.sxx, state.sxy, state.syy


def uncentred(state):
    """(Sxx, Sxy, Syy) about the origin, for models without an intercept."""
    sxx, sxy, syy = moments(state)
    xp = _xp(sxx)
    w = state.wsum
    mx, my = state.mean_x, state.mean_y
    lx, ly = xp.broadcast_to(state.mean_x_lo, mx.shape), xp.broadcast_to(state.mean_y_lo, my.shape)

    def outer(a, la, b, lb):  # w (a + la)(b + lb)ᵀ to first order in the roundings
        return w * (xp.outer(a, b) + (xp.outer(a, lb) + xp.outer(la, b)))

    return sxx + outer(mx, lx, mx, lx), sxy + outer(mx, lx, my, ly), syy + outer(my, ly, my, ly)


def accumulate(batches, d: int, m: int, *, dtype=np.float64, kind: str = "gram", xp=np,
               units: Units | None = None):
    """Fold an iterable of (X, Y, w) batches into one state (in ``units``, if given)."""
    state = init(d, m, dtype=dtype, kind=kind, xp=xp, units=units)
    for X, Y, w in batches:
        state = update(state, X, Y, w, units)
    return state


# ------------------------------------------------------------------------------ the safe range
#: A state whose columns' root-mean-square magnitudes, mean weight and spreads lie within
#: 2^±SAFE_LOG2 (float64) is solved and refined as is: every product the solve, the
#: double-double refinement and the statistics form (up to 4th powers of data and weights,
#: and Dekker's 2^27 split) then stays far from overflow and underflow. Outside it the data
#: are rescaled by powers of two (exact): see :func:`data_units`.
SAFE_LOG2 = {"float64": 100, "float32": 24}


def in_range(state, dtype: str = "float64") -> bool:
    """Whether a state (of the data as given, host NumPy) can be used without rescaling.

    False when anything is non-finite, the weight sum is out of range, or a column's
    root-mean-square magnitude or nonzero spread is out of range; also for a column whose
    spread and mean are both zero (all zeros, or squares that underflowed: only the data
    tell which).
    """
    lim = 2.0 ** SAFE_LOG2[dtype]
    if not all(np.isfinite(np.asarray(a, dtype=np.float64)).all() for a in state):
        return False
    wsum = float(state.wsum)
    if wsum == 0:
        return True  # no rows
    if not (1 / lim <= wsum <= lim and float(state.wsum2) <= lim * lim):
        return False
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):  # (an overflow here means: out of range)
        sxx, _, syy = (np.asarray(a, dtype=np.float64) for a in moments(state))
        spread = np.concatenate([np.diag(sxx), np.diag(syy)]) / wsum  # mean square deviations
        mean = np.abs(np.concatenate([np.asarray(state.mean_x), np.asarray(state.mean_y)]))
        rms = np.sqrt(spread + mean * mean)
    ok_rms = (rms >= 1 / lim) & (rms <= lim)  # (an all-zero column fails: squares may have underflowed)
    ok_spread = (spread == 0) | ((spread >= 1 / (lim * lim)) & (spread <= lim * lim))
    return bool(np.all(ok_rms & ok_spread))


def magnitude_units(x_max, y_max, w_max) -> Units:
    """Units that bring each column's largest magnitude into [1/2, 1) (0 for an all-zero
    column), and the largest weight to at most 1 (an even exponent, so that the square-root
    weights of the TSQR state scale by a power of two too)."""
    ex = np.where(np.asarray(x_max) > 0, np.frexp(np.asarray(x_max, dtype=np.float64))[1], 0)
    ey = np.where(np.asarray(y_max) > 0, np.frexp(np.asarray(y_max, dtype=np.float64))[1], 0)
    ew = int(np.frexp(float(w_max))[1]) if w_max > 0 else 0
    ew += ew % 2
    return Units(ex.astype(np.float64), ey.astype(np.float64), float(ew))


def data_units(batches, d: int, m: int) -> Units | None:
    """:func:`magnitude_units` of the largest |x|, |y| per column and largest weight over all
    batches (one pass); None when a value is NaN or inf (nothing to scale: the data are bad)."""
    x_max, y_max, w_max = np.zeros(d), np.zeros(m), 0.0
    for X, Y, w in batches:
        X, Y, w = (np.asarray(a, dtype=np.float64) for a in (X, Y, w))
        if len(w) == 0:
            continue
        keep = w > 0
        if not keep.all():
            X, Y, w = X[keep], Y[keep], w[keep]
            if len(w) == 0:
                continue
        x_max = np.maximum(x_max, np.max(np.abs(X), axis=0))
        y_max = np.maximum(y_max, np.max(np.abs(Y), axis=0))
        w_max = max(w_max, float(np.max(w)))
    if not (np.all(np.isfinite(x_max)) and np.all(np.isfinite(y_max)) and np.isfinite(w_max)):
        return None
    return magnitude_units(x_max, y_max, w_max)


def rounding_constant(state) -> np.ndarray:
    """(d,) bool: columns of X whose centred spread is below the rounding level of their mean.

    Such a column holds one float64 value (``1e40 + i`` rounds to ``1e40``) up to the rounding
    of the state's arithmetic: its spread ``Σw(x − x̄)²`` is at most a few ``ε·Σw·ulp(x̄)²``
    (the batch centring removes the rounding of the mean), whereas any two distinct values
    give at least ``~ulp(x̄)²`` times the smaller weight. With an intercept such a column is
    aliased with it.
    """
    sxx = np.asarray(moments(state)[0], dtype=np.float64)
    wsum = float(state.wsum)
    ulp = np.spacing(np.abs(np.asarray(state.mean_x, dtype=np.float64)))
    tol = 4.0 * (float(state.count) + 16.0) * np.finfo(np.float64).eps * wsum * ulp * ulp
    return np.diag(sxx) <= tol


__all__ = ["GramState", "QRState", "Units", "init", "update", "merge", "moments", "uncentred", "accumulate",
           "gram_of_batch", "qr_of_batch", "units_of", "scale_batch", "shifted_batches", "in_range", "data_units", "magnitude_units",
           "rounding_constant"]
