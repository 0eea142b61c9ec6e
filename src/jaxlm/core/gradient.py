"""Gradient road: a least-squares loss written once, differentiated by ``jax.grad``,
stepped by an optax optimizer inside one jitted ``lax.while_loop``.

Data are standardised first (:mod:`jaxlm.core.standardize`) and the result is mapped
back with the exact inverse. The loop stops when the gradient norm of the standardised
loss falls to ``tol`` (converged), when the loss becomes non-finite or grows a
million-fold over its starting value (diverged), or after ``max_iter`` steps.

Loss, in standardised units, per output k and averaged over outputs::

    L(W, b) = mean_k [ Σ_i w_i (ỹ_ik − x̃_i·W_k − b_k)² + α Σ_j (W_kj / σx_j)² ] / Σ_i w_i

which is sklearn's ``Ridge`` objective ``‖y − Xβ − β0‖² + α‖β‖²`` rescaled by a constant,
so its minimiser is the exact (ridge) least-squares solution.

Data near the ends of the float64 range (|x| ~ 1e200, weights ~ 1e300, subnormal values)
are first rescaled per column by powers of two (exact; :func:`jaxlm.core.state.magnitude_units`)
and the coefficients mapped back exactly, or refused with an InputError when they are
themselves beyond float64. With an intercept, a column that holds a single float64 value is
reported as aliased (``rank`` < d): its coefficient is 0.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import state as st
from .errors import check_choice, check_nonnegative, check_positive, check_positive_int
from .precision import MATMUL_PRECISION, check_dtype, x64_scope
from .ranges import ridge_in_units, to_data_units
from .solution import Solution
from .standardize import fit_standardizer, to_original, transform

METHODS = ("gd", "lbfgs", "adam")
#: Default gradient-norm tolerance per dtype (standardised units).
DEFAULT_TOL = {"float64": 1e-10, "float32": 1e-5}
DEFAULT_LR = {"gd": 0.1, "adam": 0.01, "lbfgs": None}
#: The loss may grow to this multiple of its starting value before the run is declared diverged.
DIVERGENCE_FACTOR = 1e6


#: Adam's rate halves every this many epochs (at least ``ADAM_MIN_HALFLIFE`` steps): minibatch
#: noise keeps a constant-rate Adam at a distance ~rate from the optimum.
ADAM_HALFLIFE_EPOCHS = 20
ADAM_MIN_HALFLIFE = 1000


class _Carry(NamedTuple):
    params: tuple
    opt_state: object
    it: jnp.ndarray
    grad_norm: jnp.ndarray
    loss0: jnp.ndarray
    diverged: jnp.ndarray
    losses: jnp.ndarray
    key: jnp.ndarray
    done: jnp.ndarray


def _loss(params, Xs, Ys, w, pen, intercept_mask):
    W, b = params
    pred = jnp.matmul(Xs, W.T, precision=MATMUL_PRECISION) + b * intercept_mask
    sse = jnp.sum(w[:, None] * (Ys - pred) ** 2, axis=0)
    ridge = jnp.sum(pen[None, :] * W**2, axis=1)
    return jnp.mean(sse + ridge) / jnp.sum(w)


def _optimizer(method: str, lr, epoch: int = 1):
    if method == "gd":
        return optax.sgd(lr)
    if method == "adam":
        halflife = max(ADAM_MIN_HALFLIFE, ADAM_HALFLIFE_EPOCHS * epoch)
        return optax.adam(optax.exponential_decay(lr, transition_steps=halflife, decay_rate=0.5))
    return optax.lbfgs(learning_rate=lr)


@partial(jax.jit, static_argnames=("method", "max_iter", "batch_size", "fit_intercept"))
def _fit(X, Y, w, alpha, lr, tol, seed, *, method, max_iter, batch_size, fit_intercept):
    """Standardise, run the optimizer loop, map back: one compiled program."""
    s = fit_standardizer(X, Y, w, fit_intercept=fit_intercept)
    Xs, Ys = transform(s, X, Y)
    pen = alpha / s.x_scale**2
    (W, b), it, gnorm, diverged, losses = _loop(Xs, Ys, w, pen, jnp.asarray(float(fit_intercept), X.dtype),
                                                lr, tol, seed, method=method, max_iter=max_iter,
                                                batch_size=batch_size)
    coef, intercept = to_original(s, W, b)
    return coef, intercept, it, gnorm, diverged, losses


def _loop(Xs, Ys, w, pen, intercept_mask, lr, tol, seed, *, method, max_iter, batch_size):
    n, d = Xs.shape
    m = Ys.shape[1]
    dtype = Xs.dtype
    epoch = max(1, n // batch_size)
    opt = _optimizer(method, lr, epoch)
    full = partial(_loss, Xs=Xs, Ys=Ys, w=w, pen=pen, intercept_mask=intercept_mask)
    params0 = (jnp.zeros((m, d), dtype), jnp.zeros((m,), dtype))
    loss0 = full(params0)

    # Each pass evaluates the loss and gradient at the current point and steps only while the
    # point is neither converged, diverged nor at the iteration bound; so the loop ends having
    # measured its final point (no second copy of the gradient program after the loop).
    def cond(c: _Carry):
        return ~c.done

    def body(c: _Carry):
        key = c.key
        if method == "lbfgs":
            value, g = optax.value_and_grad_from_state(full)(c.params, state=c.opt_state)
            updates, opt_state = opt.update(g, c.opt_state, c.params, value=value, grad=g, value_fn=full)
        elif method == "adam":
            key, sub = jax.random.split(key)
            idx = jax.random.randint(sub, (batch_size,), 0, n)
            wb = w[idx] * (n / batch_size)
            batch = partial(_loss, Xs=Xs[idx], Ys=Ys[idx], w=wb, pen=pen * jnp.sum(wb) / jnp.sum(w),
                            intercept_mask=intercept_mask)
            gb = jax.grad(batch)(c.params)
            value, g = jax.value_and_grad(full)(c.params)
            updates, opt_state = opt.update(gb, c.opt_state, c.params)
        else:
            value, g = jax.value_and_grad(full)(c.params)
            updates, opt_state = opt.update(g, c.opt_state, c.params)
        gnorm = optax.tree.norm(g)
        diverged = ~jnp.isfinite(value) | ~jnp.isfinite(gnorm) | (value > DIVERGENCE_FACTOR * c.loss0)
        step = ~((gnorm <= tol) | diverged | (c.it >= max_iter))
        params = jax.tree_util.tree_map(lambda p, u: jnp.where(step, p + u, p), c.params, updates)
        return _Carry(params, opt_state, c.it + step.astype(c.it.dtype), gnorm, c.loss0, diverged,
                      c.losses.at[c.it].set(value), key, ~step)

    key = jax.random.key(seed) if method == "adam" else jnp.zeros((), jnp.uint32)
    c0 = _Carry(params0, opt.init(params0), jnp.zeros((), jnp.int32), jnp.asarray(jnp.inf, dtype), loss0,
                jnp.zeros((), bool), jnp.full((max_iter + 1,), jnp.nan, dtype), key, jnp.zeros((), bool))
    c = jax.lax.while_loop(cond, body, c0)
    return c.params, c.it, c.grad_norm, c.diverged, c.losses


def _in_range(X, Y, w, alpha, dtype: str):
    """The data rescaled per column by powers of two when they are near the ends of the range
    (else as given), their units, and the ridge penalty in them (a (d,) vector when rescaled)."""
    keep = w > 0
    Xk, Yk = (X, Y) if keep.all() else (X[keep], Y[keep])
    with np.errstate(invalid="ignore"):
        units = st.magnitude_units(np.max(np.abs(Xk), axis=0, initial=0.0), np.max(np.abs(Yk), axis=0, initial=0.0),
                                   float(np.max(w, initial=0.0)))
    lim = st.SAFE_LOG2[dtype] // 2
    if max(np.max(np.abs(units.x), initial=0), np.max(np.abs(units.y), initial=0), abs(units.w)) <= lim:
        return X, Y, w, st.Units(np.zeros_like(units.x), np.zeros_like(units.y), 0.0), alpha
    Xs, Ys, ws = st.scale_batch(np.asarray(X, np.float64), np.asarray(Y, np.float64), np.asarray(w, np.float64),
                                units)
    return Xs, Ys, ws, units, ridge_in_units(alpha, units)


def _constant_columns(X, w) -> np.ndarray:
    """(d,) bool: columns holding a single value over the rows of positive weight."""
    Xk = X[w > 0]
    if Xk.shape[0] == 0:
        return np.zeros(X.shape[1], bool)
    return np.all(Xk == Xk[0], axis=0)


def fit_gradient(
    X,
    Y,
    w=None,
    *,
    method: str = "gd",
    fit_intercept: bool = True,
    alpha: float = 0.0,
    dtype: str = "float64",
    learning_rate: float | None = None,
    tol: float | None = None,
    max_iter: int = 10_000,
    batch_size: int | None = None,
    random_state: int | None = 0,
    feature_names=None,
    target_names=None,
) -> Solution:
    """Fit ``Y ≈ X coefᵀ + intercept`` by gradient descent on standardised data.

    Parameters
    ----------
    X : array, shape (n, d);  Y : array, shape (n, m);  w : array, shape (n,), optional weights.
    method : "gd" (full batch, ``optax.sgd``), "lbfgs" (``optax.lbfgs`` with zoom line search)
        or "adam" (seeded minibatches of ``batch_size`` rows, rate halved on plateaus).
    learning_rate : step size in standardised units (defaults: gd 0.1, adam 0.01, lbfgs line search).
    tol : stop when the gradient norm of the standardised loss is ≤ tol
        (defaults: 1e-10 in float64, 1e-5 in float32).

    Returns
    -------
    Solution with ``n_iter``, ``converged``, ``diverged``, ``grad_norm`` and ``loss_curve``.
    A diverged run has NaN ``coef`` and ``intercept``: no fit is presented.
    ``feature_names``/``target_names`` name the columns in the InputError raised when a
    coefficient lies beyond float64.
    """
    method = check_choice("solver", method, METHODS)
    dtype = check_dtype(dtype)
    max_iter = check_positive_int("max_iter", max_iter)
    alpha = check_nonnegative("alpha", alpha)
    tol = DEFAULT_TOL[dtype] if tol is None else check_positive("tol", tol)
    lr = DEFAULT_LR[method] if learning_rate is None else check_positive("learning_rate", learning_rate)
    X = np.asarray(X)
    Y = np.asarray(Y)
    n = X.shape[0]
    w = np.ones(n) if w is None else np.asarray(w)
    X, Y, w, units, alpha = _in_range(X, Y, w, alpha, dtype)
    if batch_size is None:
        batch_size = min(n, 256)
    batch_size = min(check_positive_int("batch_size", batch_size), n)
    seed = 0 if random_state is None else int(random_state)
    with x64_scope(dtype):
        # Cast on the host: an eager dtype conversion on the device would compile a program of its own.
        Xj, Yj, wj = (jnp.asarray(np.asarray(a, dtype=dtype)) for a in (X, Y, w))
        coef, intercept, it, gnorm, diverged, losses = _fit(
            Xj, Yj, wj, alpha, lr, tol, seed,
            method=method, max_iter=max_iter, batch_size=batch_size, fit_intercept=fit_intercept,
        )
        it = int(it)
        gnorm = float(gnorm)
        diverged = bool(diverged)
        converged = (not diverged) and gnorm <= tol
        coef = np.asarray(coef, dtype=np.float64)
        intercept = np.asarray(intercept, dtype=np.float64)
        if not fit_intercept:
            intercept = np.zeros_like(intercept)
        if not (np.all(np.isfinite(coef)) and np.all(np.isfinite(intercept))):
            diverged, converged = True, False  # no fit is presented (see Returns)
        if diverged:
            coef = np.full_like(coef, np.nan)
            intercept = np.full_like(intercept, np.nan)
        else:
            coef, intercept = to_data_units(coef, intercept, units, feature_names=feature_names,
                                            target_names=target_names)
        aliased = tuple(int(j) for j in np.flatnonzero(_constant_columns(X, w))) if fit_intercept else ()
        return Solution(
            coef=coef,
            intercept=intercept,
            solver=method,
            dtype=dtype,
            rank=X.shape[1] - len(aliased),
            aliased=aliased,
            n_iter=it,
            converged=converged,
            diverged=diverged,
            grad_norm=gnorm,
            loss_curve=np.asarray(losses, dtype=np.float64)[: it + 1],  # sliced on the host: no compile
        )
