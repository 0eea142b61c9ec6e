"""The one extra pass over the data that inference may take, as mergeable sums.

Everything else is read off the fitted state and solution. This pass adds, per batch,
sums that merge by plain addition (so a streamed or distributed fit gets the same result):

* the heteroskedasticity-consistent "meats" ``Σ a_i f_i f_iᵀ`` of the kinds the plan asks for
  (``meats``: HC0 (also HC1), HC2, HC3), given the leverages ``h_i``. The rows ``f_i`` are
  chosen so that the covariance is well conditioned to form (:func:`hc_covs` maps the meats to
  the coefficients):

  - fast pass (the plan's ``basis`` T, ``(XᵀWX)⁻¹ = T Tᵀ`` in centred coordinates, from the
    solution's factor): ``f_i = [1/√Σw, Tᵀ(x_i − s)]`` (``Tᵀx_i`` without intercept), so that
    ``h_i = |f_i|²``; per row chunk one product by ``T``, one row-wise sum of squares (the
    leverages) and one ``syrk`` per kind and target (:mod:`jaxlm.inference._fast_pass`).
    HC0/HC1 alone need no leverages: the rows are then ``[1/√Σw, x_i − s]`` (see
    :func:`~jaxlm.inference._fast_pass.centred_rows`) and :func:`hc_covs` maps the meat by T;
  - precise pass (the plan's ``inverse_dd``, the refined ``Sxx⁻¹`` in double-double): ``f_i`` is
    the row's influence on the coefficients, ``(X̃ᵀWX̃)⁻¹ x̃_i``, and ``h_i`` its leverage, both
    computed in double-double from the exactly centred row (ill-conditioned, small data);
* ``Σ log w_i`` over rows with ``w_i > 0`` (the analytic-weights log-likelihood);
* optionally the Gram matrix ``Σ w_i (x_i − s)(x_i − s)ᵀ`` and ``Σ w_i (x_i − s)`` in
  double-double arithmetic (:mod:`jaxlm.core.dd`), used to refine ``(XᵀWX)⁻¹`` by
  iterative refinement (:func:`refine_inverse`).

All arithmetic is NumPy on the host, in float64 (double-double where stated). When the fit's
state is in power-of-two units (data near the ends of the float64 range), each block is
scaled to them first and every sum is in those units (``Σ log w`` excepted).
"""
from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import numpy as np

from ..core import dd
from ..core.blas import dot, single_threaded_blas
from ..core.errors import InputError
from ..core.precision import LazyModule
from ..core.reduction import Reduction
from ..core import state as st
from ._fast_pass import centred_rows, fast_meats, leverage, residuals, ybar

sla = LazyModule("scipy.linalg")  # imported on first use

EPS = np.finfo(np.float64).eps
#: Largest (rows × d × d) block of double-double products formed at once.
_DD_CHUNK = 1 << 20
#: The HC kinds and the meat each is read from: the exponent j of ``a_i = w_i^k e_i² / (1 − h_i)^j``
#: (HC1 is HC0 rescaled).
HC_MEATS = {"HC0": 0, "HC1": 0, "HC2": 1, "HC3": 2}


class PassSums(NamedTuple):
    """The mergeable sums of the pass over some rows (see the module docstring)."""

    meat: np.ndarray | None      # (len(plan.meats), m, p, p): meats Σ a f fᵀ; None when not requested
    max_leverage: float          # max h_i over rows with w > 0 (1 means HC2/HC3 undefined)
    sum_log_w: float             # Σ log w over rows with w > 0
    gram_dd: tuple | None        # (hi, lo) (d, d): Σ w (x − s)(x − s)ᵀ in double-double
    gsum_dd: tuple | None        # (hi, lo) (d,):   Σ w (x − s) in double-double

    def merge(self, other: "PassSums") -> "PassSums":
        """Sum of the two passes' sums (associative and commutative up to rounding)."""
        add = lambda a, b: None if a is None else a + b  # noqa: E731
        ddadd = lambda a, b: None if a is None else dd.add(a, b)  # noqa: E731
        return PassSums(add(self.meat, other.meat), max(self.max_leverage, other.max_leverage),
                        self.sum_log_w + other.sum_log_w, ddadd(self.gram_dd, other.gram_dd),
                        ddadd(self.gsum_dd, other.gsum_dd))


def _dd_gram(xd, w):
    """Σ_i w_i x_i x_iᵀ for a double-double (hi, lo) array x of shape (b, d); exact products."""
    b, d = xd[0].shape
    out = (np.zeros((d, d)), np.zeros((d, d)))
    step = max(1, _DD_CHUNK // max(d * d, 1))
    for s in range(0, b, step):
        hi, lo = xd[0][s:s + step], xd[1][s:s + step]
        ww = w[s:s + step]
        xw = dd.mul_d((hi, lo), ww[:, None])
        prod = dd.mul((xw[0][:, :, None], xw[1][:, :, None]), (hi[:, None, :], lo[:, None, :]))
        out = dd.add(out, dd.total(prod))
    return out


class PassPlan(NamedTuple):
    """What the extra pass computes, and the fitted pieces it needs (picklable: ship it to workers).

    Build it with :func:`jaxlm.inference.pass_plan`; evaluate it per block with
    :func:`block_sums`; combine blocks with :meth:`PassSums.merge`.
    """

    coef: np.ndarray        # (m, d)
    intercept: np.ndarray   # (m,)
    shift: np.ndarray       # (d,) the centring s: the state's x̄ with an intercept, zeros without
    wsum: float             # Σ w
    fit_intercept: bool
    analytic: bool          # analytic (inverse-variance) weights
    factor: object          # the solution's Factor: factor.solve(G) = (XᵀWX)⁻¹ G (centred coordinates)
    robust: bool            # compute the HC meats (those of ``meats``)
    gram: bool              # accumulate the double-double Gram (refinement of (XᵀWX)⁻¹)
    units: st.Units | None = None  # the state's units (None: the data as given); all of the above are in them
    basis: np.ndarray | None = None     # (d, d) T with (XᵀWX)⁻¹ = T Tᵀ (fast pass; :func:`factor_basis`)
    inverse_dd: tuple | None = None     # (hi, lo) (d, d) refined (XᵀWX)⁻¹: the precise pass
    offset_dd: tuple | None = None      # (hi, lo) (d,) x̄ − s (the rounding of the state's mean; None: 0)
    ybar_dd: tuple | None = None        # (hi, lo) (m,) ȳ with an intercept (zeros without); None: β₀ + sβ
    meats: tuple = (0, 1, 2)            # the meats computed (:data:`HC_MEATS`): 0 HC0/HC1, 1 HC2, 2 HC3


def meats_of(robust) -> tuple:
    """The meats (:data:`HC_MEATS`) that ``robust`` asks for: True all, False none, or the HC
    kinds by name (one, or a sequence: ``("HC1",)`` needs the HC0 meat only)."""
    if isinstance(robust, (bool, np.bool_)) or robust is None:
        return (0, 1, 2) if robust else ()
    kinds = (robust,) if isinstance(robust, str) else tuple(robust) if hasattr(robust, "__iter__") else (robust,)
    if any(k not in HC_MEATS for k in kinds):
        raise InputError("robust", f"robust must be True, False or HC kinds among {', '.join(map(repr, HC_MEATS))}; "
                                   f"got robust={robust!r}. Pass robust=True for all of them.")
    return tuple(sorted({HC_MEATS[k] for k in kinds}))


def factor_basis(factor) -> np.ndarray:
    """``T`` (d, d) with ``T Tᵀ = factor.solve(I)`` (the pseudo-inverse under rank deficiency):
    ``D⁻¹R⁻¹`` (upper triangular) for a Cholesky or QR factor, ``D⁻¹ V S⁻¹`` padded with zero
    columns for the SVD form."""
    d = factor.scale.shape[0]
    if factor.kind == "svd":
        t = np.zeros((d, d))
        t[:, :factor.v.shape[1]] = factor.v * factor.s_inv[None, :]
    else:  # one BLAS thread: after a threaded call OpenBLAS's idle threads spin ~0.1 s, through the pass
        with single_threaded_blas():  # (a 50×50 solve before the HC1 pass at 1e6×50 slowed it ~35%)
            t = sla.solve_triangular(factor.r, np.eye(d))
    return t / factor.scale[:, None]


def precise_plan(plan: PassPlan, inverse_dd, offset_dd) -> PassPlan:
    """The plan of the precise HC pass (after :func:`refine_inverse`): the plan's meats only."""
    return plan._replace(gram=False, robust=True, inverse_dd=inverse_dd, offset_dd=offset_dd)


def empty_sums(plan: PassPlan) -> PassSums:
    """The sums of no rows (the identity of :meth:`PassSums.merge`)."""
    m, d = plan.coef.shape
    p = d + int(plan.fit_intercept)
    return PassSums(np.zeros((len(plan.meats), m, p, p)) if plan.robust else None, 0.0, 0.0,
                    (np.zeros((d, d)), np.zeros((d, d))) if plan.gram else None,
                    (np.zeros(d), np.zeros(d)) if plan.gram else None)


def block_sums(plan: PassPlan, X, Y, w) -> PassSums:
    """The mergeable sums of one block of rows ``X (b, d)``, ``Y (b, m)`` (or (b,)), ``w (b,)``.

    Residuals: ``e_i = y_i − β₀ − x_i β``, evaluated as ``(y_i − ŷ(s)) − (x_i − s) β``
    with ``ŷ(s) = β₀ + s β``. Leverage: ``h_i = c_i z_iᵀ B z_i`` with ``z_i = [1, x_i − x̄]``
    (``x_i`` without intercept), ``B`` the bread in centred coordinates
    (``blockdiag(1/Σw, Sxx⁻¹)`` with an intercept) and ``c_i = w_i`` for analytic weights,
    ``1`` for frequency weights (each repeated row's own leverage). Meat weights
    ``a_i = w_i^k e_i² / (1 − h_i)^j``, ``k = 2`` (analytic: the whitened rows ``√w x``,
    ``√w e`` of statsmodels WLS) or ``1`` (frequency: ``w`` repeated rows), and
    ``j = 0, 1, 2`` for HC0, HC2, HC3 (those of ``plan.meats``; HC0 alone takes no leverages
    and returns max h 0). Rows with ``w = 0`` are skipped.
    """
    out = empty_sums(plan)
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    Y = Y.reshape(-1, 1) if Y.ndim == 1 else Y
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    keep = w > 0
    if not keep.all():
        X, Y, w = X[keep], Y[keep], w[keep]
    if w.size == 0:
        return out
    slog = float(np.sum(np.log(w)))
    X, Y, w = st.scale_batch(X, Y, w, plan.units)
    gram_dd, gsum_dd = out.gram_dd, out.gsum_dd
    if plan.gram:
        xd = dd.from_diff(X, plan.shift[None, :])
        gram_dd = _dd_gram(xd, w)
        gsum_dd = dd.total(dd.mul_d(xd, w[:, None]))
    meat, hmax = out.meat, 0.0
    if plan.robust:
        meats = fast_meats if plan.inverse_dd is None else _precise_meats
        hmax = meats(plan, meat, X, Y, w)
    return PassSums(meat, hmax, slog, gram_dd, gsum_dd)


def _add_meats(meat, plan: PassPlan, F, E, h, w):
    """``meat[i, k] += Σ_l a_ljk f_l f_lᵀ`` (one ``syrk`` each) for the rows ``f_l`` of ``F``
    (b, p) and the meats ``j = plan.meats[i]`` (see :func:`block_sums` for ``a``; ``h`` is None
    when only ``j = 0`` is asked for)."""
    ra = (w if plan.analytic else np.sqrt(w))[:, None] * np.abs(E)  # √a of HC0, (b, m)
    c = None
    if any(plan.meats):
        with np.errstate(divide="ignore", invalid="ignore"):
            c = 1.0 / np.sqrt(1.0 - h)  # NaN where h > 1 (rounding): HC2/HC3 undefined
    for k in range(E.shape[1]):
        r0 = ra[:, k]
        for i, j in enumerate(plan.meats):
            r = r0 if j == 0 else r0 * c if j == 1 else r0 * (c * c)
            Fw = F * r[:, None]
            meat[i, k] += dot(Fw.T, Fw)  # syrk (jaxlm.core.blas.dot)


def _dd_inv_w(wsum: float):
    """1/Σw in double-double."""
    hi = 1.0 / wsum
    p, e = dd.two_prod(np.float64(wsum), hi)
    return hi, ((1.0 - p) - e) / wsum


def _precise_meats(plan: PassPlan, meat, X, Y, w) -> float:
    """Add the precise pass's meats (rows: the influence on the coefficients, computed in
    double-double from the exactly centred rows) to ``meat``; returns max h."""
    coef, shift = plan.coef, plan.shift
    m, d = coef.shape
    fi = int(plan.fit_intercept)
    inv, off = plan.inverse_dd, plan.offset_dd
    xbar = dd.add((shift, np.zeros(d)), off)
    iw = _dd_inv_w(plan.wsum) if fi else (0.0, 0.0)
    yb = ybar(plan)
    rows = max(1, _DD_CHUNK // max(d * d, 1))
    hmax = 0.0
    for s in range(0, X.shape[0], rows):
        xb = X[s:s + rows]
        xd = dd.add(dd.from_diff(xb, shift[None, :]), (-off[0][None, :], -off[1][None, :]))  # x − x̄
        g = dd.total(dd.mul((xd[0][:, None, :], xd[1][:, None, :]), (inv[0][None], inv[1][None])), axis=2)
        hq = dd.add(dd.total(dd.mul(xd, g), axis=1), iw)  # 1/Σw + (x − x̄)ᵀ Sxx⁻¹ (x − x̄)
        h = leverage(plan, hq[0] + hq[1], w[s:s + rows])
        hmax = max(hmax, float(np.max(h)))
        F = g[0] + g[1]
        if fi:  # the intercept's influence 1/Σw − x̄ᵀ Sxx⁻¹ (x − x̄)
            t = dd.total(dd.mul(g, (xbar[0][None, :], xbar[1][None, :])), axis=1)
            psi = dd.add(iw, (-t[0], -t[1]))
            F = np.concatenate([(psi[0] + psi[1])[:, None], F], axis=1)
        E = residuals(Y[s:s + rows], yb, xd[0] + xd[1], coef)
        _add_meats(meat, plan, F, E, h, w[s:s + rows])
    return hmax


def _stats_update(plan, acc, X, Y, w, *extra):
    return acc.merge(block_sums(plan, X, Y, w))


def _stats_merge(a, b):
    return a.merge(b)


def stats_reduction(plan: PassPlan) -> Reduction:
    """The statistics' pass as a reduction (:mod:`jaxlm.core.reduction`): :func:`block_sums` per
    block, merged with :meth:`PassSums.merge`; any driver of :mod:`jaxlm.reduce` runs it."""
    return Reduction(init=partial(empty_sums, plan), update=partial(_stats_update, plan), merge=_stats_merge)


def _dd_matmul(a, z):
    """Double-double A (d, d) times float64 Z (d, k), rounded-pair result (hi, lo)."""
    d = a[0].shape[0]
    k = z.shape[1]
    out_hi, out_lo = np.zeros((d, k)), np.zeros((d, k))
    step = max(1, _DD_CHUNK // max(d * d, 1))
    for s in range(0, k, step):
        zz = z[:, s:s + step]
        prod = dd.mul_d((a[0][:, :, None], a[1][:, :, None]), zz[None, :, :])  # (d, d, kk)
        hi, lo = dd.total(prod, axis=1)
        out_hi[:, s:s + step], out_lo[:, s:s + step] = hi, lo
    return out_hi, out_lo


def refine_inverse(solve, h_dd, rhs_dd, *, max_steps: int = 8):
    """Iteratively refined ``U = H⁻¹ RHS``, kept in double-double.

    ``solve`` applies an approximate inverse (the solution's factor), ``h_dd`` is ``H`` in
    double-double, ``rhs_dd`` the right-hand side (d, k) in double-double. Each step forms
    the residual ``RHS − H U`` in double-double and corrects ``U += solve(residual)`` (a
    double-double sum); it stops when the correction is below double-double rounding or stops
    shrinking. Returns ``((U_hi, U_lo), steps)``, ``steps`` counting the corrections up to the
    first at float64 rounding level (what a float64 iterate takes; the rest are below it).
    """
    u = (solve(rhs_dd[0] + rhs_dd[1]), np.zeros(rhs_dd[0].shape))
    prev = np.inf
    steps, at_float = 0, False
    tiny = np.finfo(float).tiny
    for _ in range(max_steps):
        hu = _dd_matmul(h_dd, u[0])
        res = dd.add(rhs_dd, (-hu[0], -hu[1]))
        res = dd.add(res, (-(h_dd[0] @ u[1]), np.zeros_like(res[0])))
        delta = solve(res[0] + res[1])
        size = float(np.max(np.abs(delta) / np.maximum(np.abs(u[0]), tiny), initial=0.0))
        if not np.all(np.isfinite(delta)) or size >= prev:
            break
        u = dd.add(u, (delta, np.zeros_like(delta)))
        steps += not at_float  # (the corrections a float64 iterate takes: up to rounding level)
        at_float = at_float or size <= 2 * EPS
        prev = size
        if size <= 4 * EPS * EPS:
            break
    return u, steps


def refined_bread(solve, sums: PassSums, shift, wsum: float, fit_intercept: bool):
    """``Sxx⁻¹`` refined against the pass's double-double Gram, and what the bread needs.

    With an intercept the Gram about ``s`` is centred exactly,
    ``Sxx = Σ w (x − s)(x − s)ᵀ − g gᵀ/Σw`` with ``g = Σ w (x − s)``, and ``x̄ = s + g/Σw``.
    Returns ``(inv_dd, offset_dd, u, q, steps)``: ``Sxx⁻¹`` (d, d) and ``x̄ − s`` (d,) in
    double-double, ``u = Sxx⁻¹ x̄`` and ``q = x̄ᵀ Sxx⁻¹ x̄`` (zeros without intercept).
    """
    d = shift.shape[0]
    h_dd, g_dd = sums.gram_dd, sums.gsum_dd
    zero = np.zeros(d)
    off = (zero, zero)
    if fit_intercept:
        g = g_dd[0] + g_dd[1]
        h_dd = dd.add(h_dd, (-np.outer(g, g) / wsum, np.zeros((d, d))))
        off = dd.two_sum(g / wsum, zero)
    inv, steps = refine_inverse(solve, h_dd, (np.eye(d), np.zeros((d, d))))
    inv = (0.5 * (inv[0] + inv[0].T), 0.5 * (inv[1] + inv[1].T))
    u, q = zero, 0.0
    if fit_intercept:
        xbar = dd.add((shift, zero), off)
        ud, _ = refine_inverse(solve, h_dd, (xbar[0][:, None], xbar[1][:, None]))
        ud = (ud[0][:, 0], ud[1][:, 0])
        u = ud[0] + ud[1]
        qd = dd.total(dd.mul(ud, xbar))
        q = float(qd[0] + qd[1])
    return inv, off, u, q, steps


def coef_map(plan: PassPlan) -> np.ndarray:
    """``P`` (p, p) with ``Cov(β̂) = P M Pᵀ`` for the plan's meats ``M`` (the identity for the
    precise pass; ``[[1/√Σw, −sᵀT], [0, T]]`` (``T`` without intercept) for the fast one)."""
    if plan.inverse_dd is not None:
        p = plan.coef.shape[1] + int(plan.fit_intercept)
        return np.eye(p)
    if not plan.fit_intercept:
        return plan.basis
    d = plan.basis.shape[0]
    P = np.zeros((d + 1, d + 1))
    P[0, 0] = 1.0 / math.sqrt(plan.wsum)
    P[0, 1:] = -(plan.shift @ plan.basis)
    if plan.offset_dd is not None:  # the rows were centred about x̄ = s + offset
        P[0, 1:] -= (plan.offset_dd[0] + plan.offset_dd[1]) @ plan.basis
    P[1:, 1:] = plan.basis
    return P


def _basis_meat(plan: PassPlan, meat):
    """The meats in the rows ``f`` of the fast pass: ``G M Gᵀ``, ``G = blockdiag(1, Tᵀ)``, for meats
    of the centred rows ``[c0, x − s]`` (:func:`~jaxlm.inference._fast_pass.centred_rows`);
    ``meat`` as it is otherwise."""
    if not centred_rows(plan):
        return meat
    o = int(plan.fit_intercept)
    G = np.eye(plan.basis.shape[0] + o)
    G[o:, o:] = plan.basis.T
    return G @ meat @ G.T


def hc_covs(sums: PassSums, plan: PassPlan, n_obs: float, df_resid: float) -> dict:
    """The HC kinds of the plan's meats (m, p, p), by name: ``P M Pᵀ`` (:func:`coef_map`); HC2 and
    HC3 are NaN when a leverage is 1 (to rounding)."""
    P = coef_map(plan)
    covs = P @ _basis_meat(plan, sums.meat) @ P.T  # (len(meats), m, p, p)
    covs = 0.5 * (covs + np.swapaxes(covs, -1, -2))
    if sums.max_leverage >= 1.0 - 1e-12:
        covs = np.where(np.array(plan.meats)[:, None, None, None] > 0, np.nan, covs)
    scale = n_obs / df_resid if df_resid > 0 else math.nan
    return {kind: covs[plan.meats.index(j)] * (scale if kind == "HC1" else 1.0)
            for kind, j in HC_MEATS.items() if j in plan.meats}


class HCCovs(dict):
    """``{kind: (p, p)}`` of the HC kinds a fit computed; asking for another raises an InputError
    that names the kinds there are and how to get the one asked for."""

    def __missing__(self, kind):
        have = " or ".join(f"cov={k!r}" for k in self)
        raise InputError("cov", f"cov={kind!r} (heteroskedasticity-robust) was not computed for this fit: its "
                                f"pass computed only the kinds its cov_type asked for ({', '.join(self)}). Fit with "
                                f"LinearRegression(cov_type={kind!r}), or robust=True for all of HC0–HC3; or use "
                                f"{have} or cov='nonrobust'.")
