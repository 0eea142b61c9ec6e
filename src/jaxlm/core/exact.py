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
one extra pass; ``"auto"`` takes them only when the condition number says the plain
solve may have lost digits (κ > 10) or the data are small (n·d ≤ 2²⁰, where a pass
costs nothing), and stops when the correction is below rounding.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg as sla

from . import dd
from . import state as st
from .errors import check_choice
from .precision import x64_scope
from .solution import Solution

SOLVERS = ("auto", "cholesky", "qr", "svd")
EPS = np.finfo(np.float64).eps
#: Above this condition number (centred, equilibrated design) "auto" leaves the Gram for QR.
GRAM_COND_LIMIT = 1e6
#: Above this condition number "auto" refines even on large data.
REFINE_COND = 10.0
#: Data at most this large (rows × columns) are always refined: a pass is negligible.
REFINE_ALWAYS_SIZE = 2**20
MAX_REFINE_STEPS = 12

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
            z = sla.solve_triangular(self.r, sla.solve_triangular(self.r, ge, trans="T"), trans="N")
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


def factor_from_gram(sxx: np.ndarray, alpha: float, n: float) -> Factor:
    """Cholesky of the equilibrated ``Sxx + αI``; rank and condition from its eigenvalues."""
    d = sxx.shape[0]
    H = sxx + alpha * np.eye(d)
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


def factor_from_r(rx: np.ndarray, alpha: float, n: float, *, svd: bool = False) -> Factor:
    """From the TSQR factor of the centred X: equilibrate, SVD for rank, R (or, with
    ``svd=True``, the SVD of the equilibrated R) for the solve."""
    d = rx.shape[1]
    if alpha > 0:
        rx = np.linalg.qr(np.vstack([rx, math.sqrt(alpha) * np.eye(d)]), mode="r")
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


def dd_gradient_block(X, Y, w, coef: np.ndarray, c: np.ndarray, sx: np.ndarray, sy: np.ndarray):
    """One block's ``(Σ w r, Xsᵀ W r, Σ w r²)`` as double-double pairs, for
    ``r = (y − sy) − c − (x − sx) coefᵀ``. Sums of blocks combine with :func:`dd_merge`."""
    X, Y, w = (np.asarray(a, dtype=np.float64) for a in (X, Y, w))
    d = coef.shape[1]
    r = dd.add(dd.from_diff(Y, sy[None, :]), (np.broadcast_to(-c, Y.shape), np.zeros(Y.shape)))
    xs = []
    for j in range(d):
        xj = dd.from_diff(X[:, j], sx[j])
        xj = (xj[0][:, None], xj[1][:, None])
        xs.append(xj)
        t = dd.mul_d(xj, coef[None, :, j])
        r = dd.add(r, (-t[0], -t[1]))
    rw = dd.mul_d(r, w[:, None])
    gx = [dd.total(dd.mul(xj, rw)) for xj in xs]
    return (dd.total(rw), (np.stack([g[0] for g in gx]), np.stack([g[1] for g in gx])), dd.total(dd.mul(r, rw)))


def dd_merge(a, b):
    """Sum of two :func:`dd_gradient_block` results (associative up to ~1e-32)."""
    return tuple(dd.add(x, y) for x, y in zip(a, b))


def dd_gradient(batches: Batches, coef: np.ndarray, c: np.ndarray, sx: np.ndarray, sy: np.ndarray):
    """``(Σ w r, Xsᵀ W r, Σ w r²)`` over all batches in double-double, rounded to float64.

    Returns g0 (m,), gx (d, m) and sse (m,).
    """
    m, d = coef.shape
    acc = ((np.zeros(m), np.zeros(m)), (np.zeros((d, m)), np.zeros((d, m))), (np.zeros(m), np.zeros(m)))
    for X, Y, w in batches():
        acc = dd_merge(acc, dd_gradient_block(X, Y, w, coef, c, sx, sy))
    return tuple(hi + lo for hi, lo in acc)


def refine(gradient: Callable, factor: Factor, coef: np.ndarray, c: np.ndarray, *, wsum: float, alpha: float,
           fit_intercept: bool, max_steps: int = MAX_REFINE_STEPS):
    """Iterative refinement with double-double gradients. Returns (coef, c, steps, sse).

    ``gradient(coef, c)`` returns what :func:`dd_gradient` returns, over all rows (a local
    pass, or a distributed one). ``sse`` is the residual sum of squares measured in the last
    pass; it is stationary at the optimum, so the final correction changes it only to second
    order.
    """
    coef = coef.copy()
    c = c.copy()
    prev = math.inf
    steps = 0
    for _ in range(max_steps):
        g0, gx, sse = gradient(coef, c)
        gx = gx - alpha * coef.T
        delta = factor.solve(gx).T  # (m, d)
        dc = g0 / wsum if fit_intercept else np.zeros_like(c)
        size = np.max(np.abs(delta) / np.maximum(np.abs(coef), np.finfo(float).tiny), initial=0.0)
        if not np.all(np.isfinite(delta)) or size >= prev:  # no longer contracting
            break
        coef = coef + delta
        c = c + dc
        steps += 1
        prev = size
        if size <= 2 * EPS:
            break
    return coef, c, steps, sse


def _intercept(sy, c, sx, coef):
    """β₀ = sy + c − coef·sx, in double-double, rounded once."""
    acc = dd.add(dd.two_sum(sy, c), (np.zeros_like(sy), np.zeros_like(sy)))
    for j in range(coef.shape[1]):
        p = dd.two_prod(coef[:, j], np.full_like(sy, sx[j]))
        acc = dd.add(acc, (-p[0], -p[1]))
    return acc[0] + acc[1]


def _pad_rows(a: np.ndarray, size: int) -> np.ndarray:
    if a.shape[0] == size:
        return a
    return np.concatenate([a, np.zeros((size - a.shape[0],) + a.shape[1:], a.dtype)])


def state_batches(batches: Batches, dtype: str):
    """Batches in the form the state pass runs fastest on, and the array module to use.

    On a CPU backend, NumPy arrays (host BLAS path of :mod:`jaxlm.core.state`). On an
    accelerator, JAX arrays padded with zero-weight rows to a power-of-two row count, so
    that a stream of ragged batches compiles only a few shapes.
    """
    npdt = np.float64 if dtype == "float64" else np.float32
    if jax.default_backend() == "cpu":
        return (lambda: ((np.asarray(X, npdt), np.asarray(Y, npdt), np.asarray(w, npdt))
                         for X, Y, w in batches())), np

    def dev():
        for X, Y, w in batches():
            size = max(16, 1 << (X.shape[0] - 1).bit_length())
            yield tuple(jnp.asarray(_pad_rows(np.asarray(a, npdt), size)) for a in (X, Y, w))

    return dev, jnp


def fit_exact(batches: Batches, d: int, m: int, *, solver: str = "auto", alpha: float = 0.0,
              fit_intercept: bool = True, refine_data: bool | None = None, size: int | None = None,
              dtype: str = "float64", on_nonfinite: Callable[[], None] | None = None) -> Solution:
    """Exact (ridge) least squares over the rows yielded by ``batches()``.

    ``batches`` is a zero-argument callable returning a fresh iterable of float64
    ``(X (b, d), Y (b, m), w (b,))`` blocks, so that the data can be passed over more than
    once (refinement, QR after a Gram pass). Zero-weight rows are ignored.

    The data are not scanned for NaN/inf up front (that would be a pass of its own): a
    non-finite value makes the accumulated state non-finite, and then ``on_nonfinite()``
    is called to locate it and raise (default: a ValueError without location).
    """
    solver = check_choice("solver", solver, SOLVERS)
    return fit_reduced(
        lambda kind: accumulate_state(batches, d, m, kind=kind, dtype=dtype, on_nonfinite=on_nonfinite),
        lambda coef, c, sx, sy: dd_gradient(batches, coef, c, sx, sy),
        solver=solver, alpha=alpha, fit_intercept=fit_intercept, refine_data=refine_data, size=size, dtype=dtype)


def _check_finite_state(state, on_nonfinite):
    if all(np.all(np.isfinite(np.asarray(a))) for a in state):
        return
    if on_nonfinite is not None:
        on_nonfinite()
    raise ValueError("the data contain NaN or inf values (found in the accumulated least-squares state); "
                     "drop or impute them before fitting.")


def factor_state(state, *, alpha: float = 0.0, fit_intercept: bool = True, solver: str = "auto") -> Factor:
    """The factor of the (ridge) normal matrix read off a Gram or QR state."""
    to_np = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    n = float(state.count)
    if isinstance(state, st.GramState):
        s = st.moments(state) if fit_intercept else st.uncentred(state)
        return factor_from_gram(to_np(s[0]), alpha, n)
    d = state.mean_x.shape[0]
    r = to_np(state.r)
    if not fit_intercept:
        shift = math.sqrt(float(state.wsum)) * np.concatenate([to_np(state.mean_x), to_np(state.mean_y)])
        r = np.linalg.qr(np.vstack([r, shift[None, :]]), mode="r")
    return factor_from_r(r[:d, :d], alpha, n, svd=solver == "svd")


def solve_state(state, *, alpha: float = 0.0, fit_intercept: bool = True, solver: str = "auto",
                factor: Factor | None = None, dtype: str = "float64") -> Solution:
    """The solution read off a state alone (no refinement: that needs the data again)."""
    to_np = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    state = jax.tree_util.tree_map(to_np, state)
    if factor is None:
        factor = factor_state(state, alpha=alpha, fit_intercept=fit_intercept, solver=solver)
    m = state.mean_y.shape[0]
    s = st.moments(state) if fit_intercept else st.uncentred(state)
    coef = factor.solve(s[1]).T  # (m, d)
    # Σ w r² at the solution: Syy − coef·Sxy − α‖coef‖² (exact at the optimum)
    sse = np.maximum(np.diag(s[2]) - np.sum(coef.T * s[1], axis=0) - alpha * np.sum(coef**2, axis=1), 0.0)
    intercept = _intercept(state.mean_y, np.zeros(m), state.mean_x, coef) if fit_intercept else np.zeros(m)
    return Solution(coef=coef, intercept=intercept, solver=factor.kind, dtype=dtype, rank=factor.rank,
                    condition_number=factor.cond, aliased=factor.aliased, sse=sse, state=state, factor=factor)


def accumulate_state(batches: Batches, d: int, m: int, *, kind: str = "gram", dtype: str = "float64",
                     on_nonfinite: Callable[[], None] | None = None):
    """One pass over ``batches()`` into a Gram or QR state, checked for NaN/inf."""
    dev, xp = state_batches(batches, dtype)
    # NaN/inf in the data propagate into the state; they are reported by the check below.
    with x64_scope("float64"), np.errstate(invalid="ignore", over="ignore"):
        state = st.accumulate(dev(), d, m, dtype=np.float64 if dtype == "float64" else np.float32,
                              kind=kind, xp=xp)
        state = jax.tree_util.tree_map(lambda a: np.asarray(a, dtype=np.float64), state)
    _check_finite_state(state, on_nonfinite)
    return state


def state_kind(solver: str) -> str:
    """The state form a solver reads: the Gram for "auto"/"cholesky", TSQR's R otherwise."""
    return "gram" if solver in ("auto", "cholesky") else "qr"


def fit_reduced(accumulate: Callable[[str], object], gradient: Callable, *, solver: str = "auto",
                alpha: float = 0.0, fit_intercept: bool = True, refine_data: bool | None = None,
                size: int | None = None, dtype: str = "float64") -> Solution:
    """The exact fit, given the two reductions over the data it needs.

    ``accumulate(kind)`` returns the merged state ("gram" or "qr") of all rows;
    ``gradient(coef, c, sx, sy)`` returns :func:`dd_gradient` over all rows. In memory both
    are loops over blocks; on Dask they are tree reductions on the workers.
    """
    state = accumulate(state_kind(solver))
    factor = factor_state(state, alpha=alpha, fit_intercept=fit_intercept, solver=solver)
    if solver == "auto" and (factor.kind != "cholesky" or factor.cond > GRAM_COND_LIMIT):
        state = accumulate("qr")
        factor = factor_state(state, alpha=alpha, fit_intercept=fit_intercept, solver=solver)
    sol = solve_state(state, alpha=alpha, fit_intercept=fit_intercept, factor=factor, dtype=dtype)
    if refine_data is None:
        refine_data = dtype == "float64" and (factor.cond > REFINE_COND or (size or 0) <= REFINE_ALWAYS_SIZE)
    if not refine_data:
        return sol
    d, m = sol.coef.shape[1], sol.coef.shape[0]
    st_np = sol.state
    sx, sy = (st_np.mean_x, st_np.mean_y) if fit_intercept else (np.zeros(d), np.zeros(m))
    coef, c, steps, sse = refine(lambda coef_, c_: gradient(coef_, c_, sx, sy), factor, sol.coef, np.zeros(m),
                                 wsum=float(st_np.wsum), alpha=alpha, fit_intercept=fit_intercept)
    intercept = _intercept(sy, c, sx, coef) if fit_intercept else np.zeros(m)
    return sol._replace(coef=coef, intercept=intercept, refinement_steps=steps, sse=sse)
