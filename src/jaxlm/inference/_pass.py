"""The one extra pass over the data that inference may take, as mergeable sums.

Everything else is read off the fitted state and solution. This pass adds, per batch,
sums that merge by plain addition (so a streamed or distributed fit gets the same result):

* the heteroskedasticity-consistent "meats" ``Σ a_i z_i z_iᵀ`` for HC0, HC2 and HC3
  (``z_i = [1, x_i − x̄]`` with an intercept, ``x_i`` without), given the leverages
  ``h_i`` computed from the solution's factor;
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
from ..core.reduction import Reduction, fold
from ..core import state as st

EPS = np.finfo(np.float64).eps
#: Largest (rows × d × d) block of double-double products formed at once.
_DD_CHUNK = 1 << 20


class PassSums(NamedTuple):
    """The mergeable sums of the pass over some rows (see the module docstring)."""

    meat: np.ndarray | None      # (3, m, p, p): HC0, HC2, HC3 meats; None when not requested
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
    robust: bool            # compute the HC meats
    gram: bool              # accumulate the double-double Gram (refinement of (XᵀWX)⁻¹)
    units: st.Units | None = None  # the state's units (None: the data as given); all of the above are in them


def empty_sums(plan: PassPlan) -> PassSums:
    """The sums of no rows (the identity of :meth:`PassSums.merge`)."""
    m, d = plan.coef.shape
    p = d + int(plan.fit_intercept)
    return PassSums(np.zeros((3, m, p, p)) if plan.robust else None, 0.0, 0.0,
                    (np.zeros((d, d)), np.zeros((d, d))) if plan.gram else None,
                    (np.zeros(d), np.zeros(d)) if plan.gram else None)


def block_sums(plan: PassPlan, X, Y, w) -> PassSums:
    """The mergeable sums of one block of rows ``X (b, d)``, ``Y (b, m)`` (or (b,)), ``w (b,)``.

    Residuals: ``e_i = y_i − β₀ − x_i β``, evaluated as ``(y_i − ŷ(s)) − (x_i − s) β``
    with ``ŷ(s) = β₀ + s β``. Leverage: ``h_i = c_i z_iᵀ B z_i`` with ``z_i = [1, x_i − s]``
    (``x_i`` without intercept), ``B`` the bread in centred coordinates
    (``blockdiag(1/Σw, Sxx⁻¹)`` with an intercept) and ``c_i = w_i`` for analytic weights,
    ``1`` for frequency weights (each repeated row's own leverage). Meat weights
    ``a_i = w_i^k e_i² / (1 − h_i)^j``, ``k = 2`` (analytic: the whitened rows ``√w x``,
    ``√w e`` of statsmodels WLS) or ``1`` (frequency: ``w`` repeated rows), and
    ``j = 0, 1, 2`` for HC0, HC2, HC3. Rows with ``w = 0`` are skipped.
    """
    coef, shift = plan.coef, plan.shift
    m, d = coef.shape
    out = empty_sums(plan)
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64).reshape(X.shape[0], -1)
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
        xd = dd.from_diff(X, shift[None, :])
        gram_dd = _dd_gram(xd, w)
        gsum_dd = dd.total(dd.mul_d(xd, w[:, None]))
    meat, hmax = out.meat, 0.0
    if plan.robust:
        Xc = X - shift[None, :]
        base = plan.intercept + coef @ shift  # (m,) fitted value at x = s
        E = (Y - base[None, :]) - Xc @ coef.T  # (b, m)
        h = np.sum(Xc * plan.factor.solve(Xc.T).T, axis=1)
        if plan.fit_intercept:
            h = h + 1.0 / plan.wsum
        if plan.analytic:
            h = h * w
        elif plan.units is not None and plan.units.w:
            h = np.ldexp(h, -int(plan.units.w))  # a repeated row's leverage: B carries 2^uw
        hmax = float(np.max(h))
        a0 = (w * w if plan.analytic else w)[:, None] * E * E  # (b, m)
        Z = np.concatenate([np.ones((X.shape[0], 1)), Xc], axis=1) if plan.fit_intercept else Xc
        with np.errstate(divide="ignore", invalid="ignore"):
            inv1 = 1.0 / (1.0 - h)
        for k in range(m):
            a = a0[:, k]
            with np.errstate(invalid="ignore"):
                a2 = a * inv1
                a3 = a2 * inv1
            # Σ_i a_i z_i z_iᵀ: one GEMM per (kind, target)
            for j, aj in enumerate((a, a2, a3)):
                meat[j, k] += (Z * aj[:, None]).T @ Z
    return PassSums(meat, hmax, slog, gram_dd, gsum_dd)


def _stats_update(plan, acc, X, Y, w, *extra):
    return acc.merge(block_sums(plan, X, Y, w))


def _stats_merge(a, b):
    return a.merge(b)


def stats_reduction(plan: PassPlan) -> Reduction:
    """The statistics' pass as a reduction (:mod:`jaxlm.core.reduction`): :func:`block_sums` per
    block, merged with :meth:`PassSums.merge`; any driver of :mod:`jaxlm.reduce` runs it."""
    return Reduction(init=partial(empty_sums, plan), update=partial(_stats_update, plan), merge=_stats_merge)


def data_pass(batches, plan: PassPlan) -> PassSums:
    """:func:`block_sums` of every block of ``batches()``, merged (a loop over ``batches``)."""
    return fold(stats_reduction(plan), batches())


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
    """Iteratively refined ``U = H⁻¹ RHS``.

    ``solve`` applies an approximate inverse (the solution's factor), ``h_dd`` is ``H`` in
    double-double, ``rhs_dd`` the right-hand side (d, k) in double-double. Each step forms
    the residual ``RHS − H U`` in double-double and corrects ``U += solve(residual)``;
    it stops when the correction is at rounding level or stops shrinking. Returns
    ``(U, steps)``.
    """
    u = solve(rhs_dd[0] + rhs_dd[1])
    prev = np.inf
    steps = 0
    for _ in range(max_steps):
        hu = _dd_matmul(h_dd, u)
        res = dd.add(rhs_dd, (-hu[0], -hu[1]))
        delta = solve(res[0] + res[1])
        size = float(np.max(np.abs(delta) / np.maximum(np.abs(u), np.finfo(float).tiny), initial=0.0))
        if not np.all(np.isfinite(delta)) or size >= prev:
            break
        u = u + delta
        steps += 1
        prev = size
        if size <= 2 * EPS:
            break
    return u, steps


def dd_dot(a_dd, b):
    """Double-double a (d,) · float64 b (d,), rounded to float64."""
    return float(sum(dd.total(dd.mul_d(a_dd, b))))


def _hc_covs(sums, bread, shift, fit_intercept, n_obs, df_resid):
    """HC0–HC3 (m, p, p) from the meats in centred coordinates.

    The pass used ``z = [1, x − s]``; with ``A = [[1, −sᵀ], [0, I]]`` (so that ``z = Aᵀ x̃``)
    the meat about the origin is ``A⁻ᵀ M_z A⁻¹``, and ``B M B`` is invariant to the choice.
    """
    p = bread.shape[0]
    meats = sums.meat  # (3, m, p, p)
    if fit_intercept:
        # x̃ = A⁻ᵀ z  with  A⁻ᵀ = [[1, 0], [s, I]]
        T = np.eye(p)
        T[1:, 0] = shift
        meats = T @ meats @ T.T
    covs = bread @ meats @ bread  # (3, m, p, p)
    covs = 0.5 * (covs + np.swapaxes(covs, -1, -2))
    hc0, hc2, hc3 = covs
    scale = n_obs / df_resid if df_resid > 0 else math.nan
    return {"HC0": hc0, "HC1": hc0 * scale, "HC2": hc2, "HC3": hc3}
