"""The gradient road for GLMs: ``jax.grad`` of the negative log-likelihood, stepped by optax L-BFGS.

The loss is written once, per family, as the part of the negative log-likelihood that depends
on the mean (the "kernel" ``κ(y, μ) = −(y θ(μ) − b(θ(μ)))``, half the unit deviance up to a
term in y alone), and differentiated by :func:`jax.grad`::

    L(β₀, β) = [Σ fᵢ vᵢ κ(yᵢ, g⁻¹(β₀ + xᵢᵀβ + oᵢ)) + α/2 ‖β‖²] / Σ fᵢ

so that its minimiser is IRLS's (``D + α‖β‖²``, D = 2 Σ f v κ + const). It runs on
standardised columns (``z = (x − x̄)/s``, weighted; no centring without an intercept) from
``β = 0`` and ``β₀ = g(ȳ)``, in one jitted ``lax.while_loop`` of ``optax.lbfgs`` (zoom line
search), until the gradient's largest entry is at most ``tol``; coefficients are mapped back
exactly (``β = P/s``, ``β₀ = P₀ − x̄ᵀβ``). With the log and logit links the kernels are written
in η (``softplus``, ``exp``), so they stay finite where μ would round to 0 or 1.

Canonical kernels: Gaussian ½(y − μ)²; Binomial −y log μ − (1 − y) log(1 − μ); Poisson μ − y log μ;
Gamma y/μ + log μ; inverse Gaussian y/(2μ²) − 1/μ; Tweedie (1 < p < 2)
μ^{2−p}/(2−p) − y μ^{1−p}/(1−p); negative binomial (y + 1/α) log(1 + αμ) − y log(αμ).
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import numpy as np

from .families import Family, Link
from .precision import MATMUL_PRECISION, jax, jnp, lazy_jit, x64_scope

#: The default iteration bound of the L-BFGS loop.
MAX_ITER = 1000


class GradientFit(NamedTuple):
    """coef (d,), intercept, iterations, converged (max |gradient| ≤ tol), the final max |gradient|
    of the standardised loss, and the loss at the end."""

    coef: np.ndarray
    intercept: float
    n_iter: int
    converged: bool
    grad_norm: float
    loss: float


# ------------------------------------------------------------------------ the kernels in JAX
def _mean(link: str, eta):
    """g⁻¹(η) in JAX (the probability links clipped to [ε, 1 − ε] as :mod:`jaxlm.core.links`)."""
    eps = jnp.finfo(eta.dtype).eps
    if link == "identity":
        return eta
    if link == "log":
        return jnp.exp(eta)
    if link == "logit":
        return jnp.clip(jax.nn.sigmoid(eta), eps, 1 - eps)
    if link == "probit":
        return jnp.clip(jax.scipy.special.ndtr(eta), eps, 1 - eps)
    if link == "cloglog":
        return jnp.clip(-jnp.expm1(-jnp.exp(eta)), eps, 1 - eps)
    powers = {"inverse": -1.0, "inverse_squared": -2.0, "sqrt": 0.5}
    return jnp.power(eta, 1.0 / powers[link])


def _kernel(family: str, link: str, param: float, y, eta):
    """κ(y, μ(η)) per row (see the module docstring)."""
    mu = _mean(link, eta)
    log_mu = eta if link == "log" else jnp.log(mu)
    if family == "gaussian":
        return 0.5 * jnp.square(y - mu)
    if family == "binomial":
        if link == "logit":
            return jax.nn.softplus(eta) - y * eta
        return -(y * jnp.log(mu) + (1.0 - y) * jnp.log1p(-mu))
    if family == "poisson" or (family == "tweedie" and param == 1.0):
        return mu - y * log_mu
    if family == "gamma" or (family == "tweedie" and param == 2.0):
        return y * jnp.exp(-log_mu) + log_mu
    if family == "inverse_gaussian":
        return 0.5 * y * jnp.exp(-2.0 * log_mu) - jnp.exp(-log_mu)
    if family == "tweedie":
        p = param
        return jnp.exp((2.0 - p) * log_mu) / (2.0 - p) - y * jnp.exp((1.0 - p) * log_mu) / (1.0 - p)
    if family == "negative_binomial":
        la = jnp.log(param) + log_mu  # log(αμ)
        return (y + 1.0 / param) * jax.nn.softplus(la) - y * la
    raise ValueError(family)  # pragma: no cover - families are validated before


def _loss(P, Z, y, wv, offset, pen, *, family, link, param, intercept):
    """The standardised loss L (weights ``wv = f v / Σ f``, ``pen = α/(2 s² Σ f)``)."""
    k = Z.shape[1]
    eta = jnp.matmul(Z, P[:k], precision=MATMUL_PRECISION) + offset
    if intercept:
        eta = eta + P[k]
    return jnp.dot(wv, _kernel(family, link, param, y, eta)) + jnp.dot(pen, P[:k] * P[:k])


def _lbfgs(P0, Z, y, wv, offset, pen, tol, *, family, link, param, intercept, max_iter):
    """(P, iterations, max |gradient|, loss): L-BFGS until max |∇L| ≤ tol or max_iter steps."""
    import optax

    loss = partial(_loss, Z=Z, y=y, wv=wv, offset=offset, pen=pen, family=family, link=link, param=param,
                   intercept=intercept)
    opt = optax.lbfgs()

    def body(c):
        P, state, it, _, _, _ = c
        value, g = optax.value_and_grad_from_state(loss)(P, state=state)
        gmax = jnp.max(jnp.abs(g))
        step = (gmax > tol) & (it < max_iter) & jnp.isfinite(value)
        upd, state = opt.update(g, state, P, value=value, grad=g, value_fn=loss)
        P = jnp.where(step, P + upd, P)
        return P, state, it + step.astype(it.dtype), gmax, value, step

    c0 = (P0, opt.init(P0), jnp.asarray(0, jnp.int32), jnp.asarray(jnp.inf, P0.dtype),
          jnp.asarray(jnp.inf, P0.dtype), jnp.asarray(True))
    P, _, it, gmax, value, _ = jax.lax.while_loop(lambda c: c[-1], body, c0)
    return P, it, gmax, value


_fit = lazy_jit(_lbfgs, static_argnames=("family", "link", "param", "intercept", "max_iter"))


# ------------------------------------------------------------------------------ host side
def _family_param(family: Family) -> float:
    if family.name == "tweedie":
        return float(family.var_power)
    if family.name == "negative_binomial":
        return float(family.alpha)
    return 0.0


def fit_lbfgs(X, y, f, offset=None, var_weights=None, *, family: Family, link: Link, fit_intercept: bool = True,
              alpha: float = 0.0, tol: float = 1e-10, max_iter: int = MAX_ITER, y_mean: float | None = None
              ) -> GradientFit:
    """Minimise the penalised negative log-likelihood by L-BFGS (see the module docstring).

    Parameters
    ----------
    X : (n, d) dense float64;  y, f (frequency weights), offset, var_weights : (n,) (validated
        by the caller: the check pass of :mod:`jaxlm.core.glm_passes`).
    family, link : validated objects;  alpha : ridge α‖β‖² on the deviance scale (as IRLS).
    tol : bound on the largest gradient entry of the standardised loss.
    y_mean : the weighted mean of y (the start's mean; computed when None).
    """
    X = np.asarray(X, dtype=np.float64)
    d = X.shape[1]
    f = np.asarray(f, dtype=np.float64)
    keep = f > 0
    if not keep.all():
        X, y, f = X[keep], np.asarray(y)[keep], f[keep]
        offset = None if offset is None else np.asarray(offset)[keep]
        var_weights = None if var_weights is None else np.asarray(var_weights)[keep]
    y = np.asarray(y, dtype=np.float64)
    fsum = float(f.sum())
    wv = f / fsum if var_weights is None else f * np.asarray(var_weights, dtype=np.float64) / fsum
    off = np.zeros(len(y)) if offset is None else np.asarray(offset, dtype=np.float64)
    mean = (f @ X) / fsum if fit_intercept else np.zeros(d)
    scale = np.sqrt(np.maximum(f @ np.square(X - mean), 0.0) / fsum) if d else np.zeros(0)
    scale = np.where(scale > 0, scale, 1.0)
    Z = (X - mean) / scale
    pen = float(alpha) / (2.0 * scale**2 * fsum)
    ybar = float(f @ y / fsum) if y_mean is None else float(y_mean)
    P0 = np.zeros(d + int(fit_intercept))
    if fit_intercept:
        start = np.asarray(link(np.asarray(ybar)), dtype=np.float64)
        P0[d] = float(start) if np.isfinite(start) else 0.0
    static = {"family": family.name, "link": link.name, "param": _family_param(family),
              "intercept": bool(fit_intercept), "max_iter": int(max_iter)}
    with x64_scope("float64"):
        P, it, gmax, value = _fit(P0, Z, y, wv, off, pen, float(tol), **static)
        P, it, gmax, value = np.asarray(P, dtype=np.float64), int(it), float(gmax), float(value)
    coef = P[:d] / scale
    intercept = float(P[d] - mean @ coef) if fit_intercept else 0.0
    converged = bool(gmax <= tol and np.isfinite(value))
    return GradientFit(coef, intercept, it, converged, gmax, value)


__all__ = ["MAX_ITER", "GradientFit", "fit_lbfgs"]
