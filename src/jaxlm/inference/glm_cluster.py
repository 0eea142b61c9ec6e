"""Cluster-robust (one- and two-way CR1) covariance of a fitted GLM, as statsmodels'
``GLM(...).fit(cov_type="cluster", cov_kwds={"groups": g})``, as a mergeable reduction.

Coordinates: ``z = [1, x − s]`` (``s`` the working-weighted mean of X at β̂; ``z = x`` and
``s = 0`` without intercept), the coordinates of :mod:`jaxlm.inference.glm`'s covariances; the
parameters' covariance is ``Aᵀ V_z A`` with ``z = A x̃``.

- Score of row i: ``u_i z_i`` with ``u_i = f_i v_i (y_i − μ_i) (dμ/dη)_i / V(μ_i)`` (frequency
  weight f, variance weight v). statsmodels' ``score_obs`` is this divided by the scale φ and its
  Hessian is divided by φ too, so φ cancels in the sandwich ``H⁻¹ M H⁻¹``; both are unscaled here.
- Meat ``M = Σ_g S_g S_gᵀ``, ``S_g = Σ_{i∈g} u_i z_i`` (:func:`jaxlm.inference.cluster.cluster_reduction`:
  the sums are keyed by the cluster values, so a cluster may be spread over any number of blocks,
  row groups, files).
- Bread ``B``: the inverse information ``(Σ f v (dμ/dη)²/V · z zᵀ)⁻¹`` read off the IRLS solution
  (its working weights' state at β̂) for canonical links; otherwise the inverse *observed*
  information, whose weights carry ``1 + (V g'' + V' g')(y − μ)/(g' V)`` (statsmodels'
  ``hessian(observed=True)``), summed in the same pass.
- ``V = c · B M B`` with ``c = G/(G−1) · (N−1)/(N−K)`` (statsmodels' ``use_correction=True``);
  two-way: ``V₁ + V₂ − V₁₂`` over the two groupings and their intersection, each with its own
  ``G`` (statsmodels' ``cov_cluster_2groups``; need not be positive semi-definite).
  ``K = p`` (parameters, intercept included). ``N = Σ f``: frequency weights count rows, so the
  answer is statsmodels' on the rows repeated. (statsmodels' ``freq_weights`` fit — which warns
  "cov_type not fully supported with freq_weights" — takes ``N`` = rows instead; the two differ
  by ``(N_rows − K)(Σf − 1) / ((N_rows − 1)(Σf − K))`` only.) Rows with ``f = 0`` are ignored,
  their cluster values too (statsmodels counts them).
- Inference: z and p from the normal distribution, as statsmodels' GLM default (``use_t=False``);
  ``ClusterCov.df = G − 1`` (``min(G₁, G₂) − 1``) is what statsmodels' ``use_t=True`` would use.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import numpy as np

from ..core.errors import check_choice
from ..core.families import Binomial, Gamma, Gaussian, InverseGaussian, Poisson, Tweedie
from ..core.reduction import Reduction
from .cluster import G_DF, ClusterCov, ClusterMeats, cluster_cov, cluster_reduction
from .hac import CANCELLATION_LIMIT, design_rows, scorer_const, scorer_offset

__all__ = ["GLMClusterSums", "GLMScorer", "canonical", "glm_cluster_pass", "glm_clustered",
           "glm_clustered_z", "glm_scorer", "inverse_sym", "observed_weights", "z_bread_of"]


# ------------------------------------------------------------------------ shared with the statistics' pass
def canonical(family, link) -> bool:
    """Whether ``link`` is the canonical link of ``family`` (observed = expected information)."""
    pairs = {Gaussian: "identity", Binomial: "logit", Poisson: "log", Gamma: "inverse",
             InverseGaussian: "inverse_squared"}
    if isinstance(family, Tweedie):
        return family.var_power == 1.0 and link.name == "log"
    return pairs.get(type(family)) == link.name


def observed_weights(family, link, resid, mu, dmu, var):
    """Per-row weights of the observed information without ``f v``:
    ``(dμ/dη)²/V · (1 + (V g'' + V' g')(y − μ)/(g' V))`` (statsmodels' ``hessian_factor``)."""
    gp = link.deriv(mu)
    tmp = (var * link.deriv2(mu) + family.variance_deriv(mu) * gp) * resid / (gp * var)
    return dmu * dmu / var * (1.0 + tmp)


def inverse_sym(M: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric matrix, equilibrated (pseudo-inverse when singular)."""
    s = np.sqrt(np.abs(np.diag(M)))
    s = np.where(s > 0, s, 1.0)
    A = M / np.outer(s, s)
    try:
        inv = np.linalg.inv(A)
        if not np.all(np.isfinite(inv)):
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        inv = np.linalg.pinv(A, hermitian=True)
    return inv / np.outer(s, s)


def z_bread_of(wsum: float, sxx_inv: np.ndarray, fit_intercept: bool) -> np.ndarray:
    """The inverse information of the z-parameters: blockdiag(1/ΣW, Sxx⁻¹) (s is the
    working-weighted mean, so the blocks decouple), Sxx⁻¹ alone without intercept."""
    d = sxx_inv.shape[0]
    p = d + int(fit_intercept)
    bread = np.zeros((p, p))
    if fit_intercept:
        bread[0, 0] = 1.0 / wsum
    bread[p - d:, p - d:] = sxx_inv
    return bread


# ------------------------------------------------------------------------ the scorer
class GLMScorer(NamedTuple):
    """Scores of a fitted GLM for :func:`jaxlm.inference.cluster.cluster_reduction` (picklable).

    Blocks ``(X, Y, w[, offset[, var_weights]])`` → ``(D, WE)``: ``D`` the columns of X (those
    with ``|s_j| > CANCELLATION_LIMIT · spread_j`` centred explicitly, the others centred in the
    sums through ``offset``) and ``WE`` (b, 1) ``= u`` of the module docstring. Build with
    :func:`glm_scorer`."""

    family: object
    link: object
    coef: np.ndarray       # (1, d)
    intercept: float
    shift: np.ndarray      # (d,) s
    fit_intercept: bool
    centre: np.ndarray     # (d,) bool

    const = property(scorer_const)
    offset = property(scorer_offset)

    @property
    def transform(self) -> np.ndarray:
        """The identity: the meats stay in z coordinates (:func:`glm_clustered` maps them)."""
        return np.eye(self.coef.shape[1] + int(self.fit_intercept))

    def rows(self, X, Y, w, offset=None, var_weights=None):
        """``(D, y − μ, μ, dμ/dη, V(μ), f·v)`` of one block."""
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(Y, dtype=np.float64).reshape(-1)
        fv = np.asarray(w, dtype=np.float64).reshape(-1)
        eta = X @ self.coef[0] + self.intercept
        if offset is not None:
            eta = eta + np.asarray(offset, dtype=np.float64).reshape(-1)
        if var_weights is not None:
            fv = fv * np.asarray(var_weights, dtype=np.float64).reshape(-1)
        if self.centre.any():
            X = X.copy()
            X[:, self.centre] -= self.shift[self.centre]
        mu = self.link.inverse(eta)
        return X, y - mu, mu, self.link.inverse_deriv(eta), self.family.variance(mu), fv

    def __call__(self, X, Y, w, offset=None, var_weights=None):
        D, resid, _, dmu, var, fv = self.rows(X, Y, w, offset, var_weights)
        with np.errstate(divide="ignore", invalid="ignore"):
            return D, (fv * resid * dmu / var)[:, None]


def _host(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def glm_scorer(solution) -> GLMScorer:
    """The :class:`GLMScorer` of a :class:`jaxlm.core.irls.GLMSolution`."""
    state, fi = solution.state, bool(solution.fit_intercept)
    coef = _host(solution.coef).reshape(1, -1)
    d = coef.shape[1]
    shift = _host(state.mean_x).reshape(d) if fi else np.zeros(d)
    wsum = float(_host(state.wsum))
    sxx = _host(state.sxx).reshape(d, d)
    spread = np.sqrt(np.maximum(np.diag(sxx), 0.0) / wsum) if wsum > 0 else np.zeros(d)
    centre = np.abs(shift) > CANCELLATION_LIMIT * spread
    return GLMScorer(solution.family, solution.link, coef, float(solution.intercept) if fi else 0.0, shift, fi,
                     centre)


# ------------------------------------------------------------------------ the pass
class GLMClusterSums(NamedTuple):
    """The finished pass: the cluster meats (z coordinates) and, for a non-canonical link, the
    observed information ``Σ f v w_obs z zᵀ`` (else None)."""

    meats: ClusterMeats
    observed: np.ndarray | None


class _Acc(NamedTuple):
    cluster: object
    observed: np.ndarray | None


def _init(inner: Reduction, p: int, observed: bool) -> _Acc:
    return _Acc(inner.init(), np.zeros((p, p)) if observed else None)


def _observed_gram(scorer: GLMScorer, X, Y, w, *rest) -> np.ndarray:
    keep = np.asarray(w, dtype=np.float64).reshape(-1) > 0
    if not keep.all():
        X, Y, w = np.asarray(X)[keep], np.asarray(Y)[keep], np.asarray(w)[keep]
        rest = tuple(np.asarray(r)[keep] for r in rest)
    D, resid, mu, dmu, var, fv = scorer.rows(X, Y, w, *rest)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = fv * observed_weights(scorer.family, scorer.link, resid, mu, dmu, var)
    Z = design_rows(D, scorer.offset, scorer.const)
    return (Z * a[:, None]).T @ Z


def _update(inner: Reduction, scorer: GLMScorer, n_dims: int, acc: _Acc, X, Y, w, *extra) -> _Acc:
    obs = acc.observed
    if obs is not None:
        obs = obs + _observed_gram(scorer, X, Y, w, *extra[n_dims:])
    return _Acc(inner.update(acc.cluster, X, Y, w, *extra), obs)


def _merge(inner: Reduction, a: _Acc, b: _Acc) -> _Acc:
    return _Acc(inner.merge(a.cluster, b.cluster), None if a.observed is None else a.observed + b.observed)


def _finish(inner: Reduction, acc: _Acc) -> GLMClusterSums:
    return GLMClusterSums(inner.finish(acc.cluster), acc.observed)


def glm_cluster_pass(scorer: GLMScorer, n_dims: int = 1) -> Reduction:
    """The cluster pass of a GLM over blocks ``(X, Y, w, g₁[, g₂][, offset[, var_weights]])``
    (``n_dims`` cluster columns of any dtype after ``w``, then the fit's per-row arrays);
    ``run(...)`` returns :class:`GLMClusterSums`. Picklable."""
    inner = cluster_reduction(scorer, n_dims)
    p = scorer.coef.shape[1] + int(scorer.fit_intercept)
    observed = not canonical(scorer.family, scorer.link)
    return Reduction(partial(_init, inner, p, observed), partial(_update, inner, scorer, n_dims),
                     partial(_merge, inner), partial(_finish, inner))


# ------------------------------------------------------------------------ the covariance
def glm_clustered_z(run, solution, *, n_dims: int = 1, small_sample: bool = True,
                    g_df: str = "conventional") -> ClusterCov:
    """The clustered covariance in z coordinates (``cov`` (1, p, p)); one pass of ``run``."""
    g_df = check_choice("g_df", g_df, G_DF)
    scorer = glm_scorer(solution)
    sums = run(glm_cluster_pass(scorer, n_dims))
    d = scorer.coef.shape[1]
    if sums.observed is not None:
        bread = inverse_sym(sums.observed)
    else:
        sxx_inv = solution.factor.solve(np.eye(d)) if d else np.zeros((0, 0))
        bread = z_bread_of(float(_host(solution.state.wsum)), _host(sxx_inv), scorer.fit_intercept)
    return cluster_cov(sums.meats, bread, n_obs=float(solution.data.wnobs), k_params=d + int(scorer.fit_intercept),
                       small_sample=small_sample, g_df=g_df)


def glm_clustered(run, solution, *, n_dims: int = 1, small_sample: bool = True,
                  g_df: str = "conventional") -> ClusterCov:
    """Cluster-robust covariance of a GLM fit's parameters (intercept first; ``cov`` (1, p, p))
    in one pass: ``run`` is a driver over the fit's rows with the cluster column(s) after the
    weights, e.g. ``jaxlm.reduce.memory.arrays_runner(X, y[:, None], w, firm, offset)``.
    ``small_sample=False`` drops ``c``; ``g_df="min"`` uses ``min(G₁, G₂)`` in every two-way term."""
    cc = glm_clustered_z(run, solution, n_dims=n_dims, small_sample=small_sample, g_df=g_df)
    scorer_shift = _host(solution.state.mean_x).reshape(-1) if solution.fit_intercept else None
    p = cc.cov.shape[-1]
    A = np.eye(p)
    if scorer_shift is not None:
        A[1:, 0] = -scorer_shift
    return cc._replace(cov=np.einsum("ji,mjk,kl->mil", A, cc.cov, A))


