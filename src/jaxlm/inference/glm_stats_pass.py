"""The statistics' pass of a GLM fit (:mod:`jaxlm.inference.glm`): one reduction at the estimates that
sums the log-likelihood, the null model's deviance and log-likelihood and, when robust, the sandwich
("HC") meats and the observed information (definitions in :mod:`jaxlm.inference.glm`).
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from ..core.glm_passes import block_arrays, linear_predictor, positive_rows
from ..core.reduction import Reduction
from .glm_cluster import observed_weights

__all__ = ["StatsPlan", "StatsSums", "stats_reduction"]

class StatsPlan(NamedTuple):
    """What the statistics' pass needs (picklable: it is shipped to Dask workers)."""

    family: object
    link: object
    coef: np.ndarray          # (d,)
    intercept: float
    fit_intercept: bool
    shift: np.ndarray         # (d,) s: the working-weighted mean of X (zeros without intercept)
    sxx_inv: np.ndarray       # (d, d) (Xᵀ W X)⁻¹ about s (pseudo-inverse when rank deficient)
    wsum: float               # Σ W
    scale_llf: float          # φ used in llf
    scale: float              # φ used in llnull
    null_mean: float | None   # fitted mean of the null model without offset ...
    null_intercept: float | None  # ... or its intercept with the offset
    robust: bool
    observed: bool            # accumulate the observed information (non-canonical links)


class StatsSums(NamedTuple):
    llf: float
    llnull: float
    null_deviance: float
    meat: np.ndarray | None       # (3, p, p): HC0, HC2, HC3 meats in z = [1, x − s] coordinates
    observed: np.ndarray | None   # (p, p) observed information Σ f·oim z zᵀ
    max_leverage: float


def _empty_sums(plan: StatsPlan) -> StatsSums:
    p = len(plan.coef) + int(plan.fit_intercept)
    return StatsSums(0.0, 0.0, 0.0, np.zeros((3, p, p)) if plan.robust else None,
                     np.zeros((p, p)) if plan.robust and plan.observed else None, 0.0)


def _merge_sums(a: StatsSums, b: StatsSums) -> StatsSums:
    add = lambda x, y: None if x is None else x + y  # noqa: E731
    return StatsSums(a.llf + b.llf, a.llnull + b.llnull, a.null_deviance + b.null_deviance,
                     add(a.meat, b.meat), add(a.observed, b.observed), max(a.max_leverage, b.max_leverage))


def _gram(Z, a):
    """Σ a_i z_i z_iᵀ for a ≥ 0 (one syrk of √a Z)."""
    Zs = Z * np.sqrt(a)[:, None]
    return Zs.T @ Zs


def _stats_update(plan: StatsPlan, acc: StatsSums, X, Y, w, offset=None, var_weights=None) -> StatsSums:
    X, y, f, offset, vw = positive_rows(*block_arrays(X, Y, w, offset, var_weights))
    if f.size == 0:
        return acc
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # a perfect fit: φ = 0, llf = inf
        return _stats_block(plan, acc, X, y, f, offset, vw)


def _stats_block(plan: StatsPlan, acc: StatsSums, X, y, f, offset, vw) -> StatsSums:
    family, link = plan.family, plan.link
    eta = linear_predictor(X, plan.coef, plan.intercept, offset)
    mu = link.inverse(eta)
    llf = float(f @ family.loglike_obs(y, mu, vw, plan.scale_llf))
    mu0 = (np.full_like(y, plan.null_mean) if plan.null_intercept is None
           else link.inverse(plan.null_intercept + offset))
    llnull = float(f @ family.loglike_obs(y, mu0, vw, plan.scale))
    nulldev = float((f * vw) @ family.unit_deviance(y, mu0))
    meat, observed, hmax = acc.meat, acc.observed, acc.max_leverage
    if plan.robust:
        Xc = X - plan.shift[None, :]
        Z = np.concatenate([np.ones((len(y), 1)), Xc], axis=1) if plan.fit_intercept else Xc
        var = family.variance(mu)
        dmu = link.inverse_deriv(eta)
        resid = y - mu
        u = resid * dmu / var                       # (y − μ) / (g'(μ) V(μ))
        a0 = f * (vw * u) ** 2
        quad = np.einsum("ij,ij->i", Xc @ plan.sxx_inv, Xc)
        if plan.fit_intercept:
            quad = quad + 1.0 / plan.wsum
        h = vw * dmu * dmu / var * quad             # one row's leverage (IRLS hat matrix)
        hmax = max(hmax, float(np.max(h)))
        with np.errstate(divide="ignore", invalid="ignore"):
            a2 = a0 / (1.0 - h)
            a3 = a2 / (1.0 - h)
        meat = meat + np.stack([_gram(Z, a0), _gram(Z, np.maximum(a2, 0.0)), _gram(Z, np.maximum(a3, 0.0))])
        if plan.observed:
            oim = f * vw * observed_weights(family, link, resid, mu, dmu, var)
            observed = observed + (Z * oim[:, None]).T @ Z
    return StatsSums(acc.llf + llf, acc.llnull + llnull, acc.null_deviance + nulldev, meat, observed, hmax)


def stats_reduction(plan: StatsPlan) -> Reduction:
    """The statistics' pass as a reduction (picklable)."""
    return Reduction(functools.partial(_empty_sums, plan), functools.partial(_stats_update, plan), _merge_sums)
