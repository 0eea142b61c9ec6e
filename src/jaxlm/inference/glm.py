"""Statistics of a fitted GLM (statsmodels' ``GLMResults``), from the IRLS solution and one pass.

:func:`glm_results` turns a :class:`jaxlm.core.irls.GLMSolution` into an immutable
:class:`GLMResults`. What the solution already holds at the estimates (the deviance, Pearson's
χ², the working weights' state and factor) is read off it; one extra reduction over the data
(run by the same driver as the fit, :mod:`jaxlm.inference.glm_stats_pass`) adds the
log-likelihood, the null model's deviance and log-likelihood and the sandwich ("HC") covariances.
With a nonzero offset the null model (the intercept-only fit *with* the offset, as statsmodels)
takes a few cheap passes of its own. For the families with φ = 1 (Binomial, Poisson, negative
binomial) without offset and without the HC covariances no pass is needed: the fit's first pass
summed the y-only terms, the saturated log-likelihood ``llsat = Σ f log f(y | μ = y)`` and the null
deviance, and ``llf = llsat − D/2``, ``llnull = llsat − D_null/2`` (in an exponential family with
φ = 1, ``log f(y | μ) = log f(y | y) − v d(y, μ)/2`` row by row).

Notation: frequency weights ``f`` (statsmodels ``freq_weights``), variance weights ``v``
(``var_weights``), ``W = f v (dμ/dη)² / V(μ)`` the working weights at β̂, ``p`` parameters
(intercept first when fitted), ``k`` = rank of ``[1, X]`` (``[X]`` without intercept).

- ``nobs`` = rows with ``f > 0``; ``wnobs = Σ f``; ``df_model = k − 1`` (statsmodels counts
  the intercept out even when there is none); ``df_resid = wnobs − k``.
- ``scale`` φ = Pearson χ² / df_resid for Gaussian, Gamma, inverse Gaussian and Tweedie; 1 for
  Binomial, Poisson, negative binomial.
- ``cov("nonrobust")`` = φ (X̃ᵀWX̃)⁻¹ (expected information), read off the solution's state in
  centred form.
- ``cov("HC0")`` = B M B with the meat ``M = Σ f v² u² x̃x̃ᵀ``, ``u = (y − μ)/(g'(μ) V(μ))``, and
  the bread ``B`` = the inverse *observed* information (statsmodels' ``cov_type="HC0"``; equal
  to the expected one for canonical links). ``HC1 = HC0 · wnobs / df_resid``; ``HC2``/``HC3``
  divide the meat's terms by ``(1 − h)`` / ``(1 − h)²`` with the leverage
  ``h = v (dμ/dη)²/V · x̃ᵀ(X̃ᵀWX̃)⁻¹x̃`` of one row (the IRLS hat matrix; R ``sandwich::vcovHC``).
  statsmodels' GLM returns HC0 for all four kinds. ``cov("cluster")``: one- or two-way CR1
  (:mod:`jaxlm.inference.glm_cluster`), added by :meth:`GLMResults.with_cov_type`, which also
  sets ``cov_type``, the kind that bse, z, p, ``conf_int`` and the summary use by default.
- ``z = β̂/se`` and ``p = 2Φ(−|z|)`` with the normal distribution also when φ is estimated
  (statsmodels' GLM default); ``conf_int`` = β̂ ∓ z_{(1+level)/2} se.
- ``llf``: Σ f · log-density(y | μ, φ, v) (Gaussian with identity link: φ = Σ f v e²/wnobs, the
  ML estimate, as statsmodels); ``llnull`` at the null model's means with φ; ``aic = −2llf + 2k``,
  ``bic_llf = −2llf + k log(wnobs)``, ``bic_deviance = D − df_resid log(wnobs)``,
  ``pseudo_rsquared("cs") = 1 − exp(2(llnull − llf)/nobs)`` (statsmodels' default, Cox–Snell)
  and ``"mcf"`` = 1 − llf/llnull.
- Ridge fits (alpha > 0) have no sampling distribution here: covariances are NaN. Under rank
  deficiency the aliased coefficients (the solution's ``aliased``) have NaN rows/columns.
- ``predict(X, offset, kind="mean"|"link")`` and ``get_prediction(X, offset, level, cov,
  method)``: the mean with its delta-method standard error ``|dμ/dη| se(η̂)`` and a confidence
  interval (statsmodels' ``get_prediction``; "endpoint": g⁻¹ of η̂'s normal interval).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple, Sequence

import numpy as np
from scipy import special

from ..core.errors import InputError, check_choice
from ..core.families import Gaussian
from ..core.irls import GLMSolution, fit_null
from ._common import _check_level, _readonly
from .glm_cluster import canonical, inverse_sym, z_bread_of
from .glm_stats_pass import StatsPlan, StatsSums, stats_reduction

COV_KINDS = ("nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster")
PREDICT_KINDS = ("mean", "link")
CI_METHODS = ("endpoint", "delta")


# ---------------------------------------------------------------------------- results
class CoefTable(NamedTuple):
    """params, bse, z, p and the confidence bounds, arrays (p,)."""

    params: np.ndarray
    bse: np.ndarray
    z: np.ndarray
    p: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


class Prediction(NamedTuple):
    """Predicted means with their delta-method standard errors and confidence bounds, (n,)
    each, and the linear predictor with its standard error."""

    mean: np.ndarray
    se_mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    linear: np.ndarray
    se_linear: np.ndarray


@dataclass(frozen=True, eq=False)
class GLMResults:
    """Statistics of a fitted GLM (immutable; see the module docstring for every definition).

    Coefficient-indexed arrays have length p in the order of :attr:`params`: the intercept
    first (where fitted), then the columns of X.
    """

    params: np.ndarray
    term_names: tuple
    family: object
    link: object
    fit_intercept: bool
    alpha: float
    nobs: int
    wnobs: float
    df_model: float
    df_resid: float
    deviance: float
    null_deviance: float
    pearson_chi2: float
    scale: float
    llf: float
    llnull: float
    converged: bool
    n_iter: int
    estimable: np.ndarray
    separated: tuple
    _shift: np.ndarray = field(repr=False)       # s: z = [1, x − s]
    _covs_z: MappingProxyType = field(repr=False)  # kind -> (p, p) covariance of the z-parameters
    _max_leverage: float = field(repr=False)
    #: the covariance kind that bse, z, p, intervals and the summary use when none is named
    cov_type: str = "nonrobust"
    notes: tuple = ()                             # said under the summary (e.g. of a loaded model)
    _labels: MappingProxyType = field(repr=False, default_factory=lambda: MappingProxyType({}))  # kind -> text

    # ------------------------------------------------------------------ covariance
    def _a(self) -> np.ndarray:
        """A with z = A x̃ (x̃ = [1, x]); the parameters' covariance is Aᵀ cov_z A."""
        p = len(self.params)
        A = np.eye(p)
        if self.fit_intercept:
            A[1:, 0] = -self._shift
        return A

    def cov(self, kind: str | None = None) -> np.ndarray:
        """Covariance of :attr:`params` (p, p) for ``kind`` in COV_KINDS (default :attr:`cov_type`;
        NaN rows/columns for non-estimable coefficients; all NaN for ridge fits)."""
        kind = check_choice("cov", self.cov_type if kind is None else kind, COV_KINDS)
        if kind not in self._covs_z:
            if kind == "cluster":
                raise InputError("cov", "cov='cluster' needs the cluster pass; fit with cov_type='cluster' and "
                                        "fit(X, y, groups=...) (fit_table: cluster=), or use cov='nonrobust'.")
            raise InputError("cov", f"cov={kind!r} needs the robust pass; got results built with robust=False. "
                                    f"Fit with robust=True or cov_type={kind!r} (glm_results(..., robust=True)), "
                                    f"or use cov='nonrobust'.")
        A = self._a()
        out = A.T @ self._covs_z[kind] @ A
        out = 0.5 * (out + out.T)
        bad = ~self.estimable
        out[bad, :] = np.nan
        out[:, bad] = np.nan
        return out

    def coef_table(self, *, cov: str | None = None, level: float = 0.95) -> CoefTable:
        """params, bse, z = params/bse, p = 2Φ(−|z|) and the ``level`` normal confidence bounds
        under ``cov`` (default :attr:`cov_type`; normal also when clustered, as statsmodels' GLM)."""
        level = _check_level(level)
        c = self.cov(cov)
        se = np.sqrt(np.maximum(np.diag(c), 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            z = self.params / se
        p = 2.0 * special.ndtr(-np.abs(z))
        q = special.ndtri(0.5 + level / 2.0)
        return CoefTable(self.params, se, z, p, self.params - q * se, self.params + q * se)

    @property
    def bse(self) -> np.ndarray:
        return self.coef_table().bse

    @property
    def zvalues(self) -> np.ndarray:
        return self.coef_table().z

    @property
    def pvalues(self) -> np.ndarray:
        return self.coef_table().p

    def conf_int(self, level: float = 0.95, *, cov: str | None = None) -> np.ndarray:
        """(p, 2) [lower, upper] normal confidence bounds."""
        t = self.coef_table(cov=cov, level=level)
        return np.column_stack([t.lower, t.upper])

    # ------------------------------------------------------------------ fit statistics
    @property
    def k_params(self) -> float:
        """k = df_model + 1: the number of estimated coefficients (rank)."""
        return self.df_model + 1.0

    @property
    def aic(self) -> float:
        return -2.0 * self.llf + 2.0 * self.k_params

    @property
    def bic_llf(self) -> float:
        return -2.0 * self.llf + self.k_params * math.log(self.wnobs)

    @property
    def bic_deviance(self) -> float:
        return self.deviance - self.df_resid * math.log(self.wnobs)

    def pseudo_rsquared(self, kind: str = "cs") -> float:
        """Cox–Snell ("cs", statsmodels' default) or McFadden ("mcf")."""
        kind = check_choice("kind", kind, ("cs", "mcf"))
        if kind == "mcf":
            return 1.0 - self.llf / self.llnull
        return 1.0 - math.exp((self.llnull - self.llf) * 2.0 / self.nobs)

    # ------------------------------------------------------------------ prediction
    def _design(self, X, offset):
        X = np.asarray(X, dtype=np.float64)
        d = len(self.params) - int(self.fit_intercept)
        if X.ndim == 1 and d == 1:
            X = X[:, None]
        if X.ndim != 2 or X.shape[1] != d:
            raise InputError("X", f"X must have {d} columns (the model's features); got X of shape {X.shape}.")
        off = np.zeros(X.shape[0]) if offset is None else np.broadcast_to(
            np.asarray(offset, dtype=np.float64), (X.shape[0],))
        return X, off

    def predict(self, X, offset=None, *, kind: str = "mean") -> np.ndarray:
        """μ = g⁻¹(x̃ᵀβ̂ + offset) (``kind="mean"``) or the linear predictor (``kind="link"``)."""
        kind = check_choice("kind", kind, PREDICT_KINDS)
        X, off = self._design(X, offset)
        b0 = self.params[0] if self.fit_intercept else 0.0
        eta = X @ self.params[int(self.fit_intercept):] + b0 + off
        return eta if kind == "link" else self.link.inverse(eta)

    def get_prediction(self, X, offset=None, *, level: float = 0.95, cov: str | None = None,
                       method: str = "endpoint") -> Prediction:
        """Predicted means with confidence intervals (statsmodels ``get_prediction``).

        ``se_linear² = x̃ᵀ Cov x̃`` (evaluated as ``zᵀ Cov_z z``, ``z = [1, x − s]``);
        ``se_mean = |dμ/dη| se_linear`` (delta method). ``method="endpoint"`` (statsmodels'
        default) maps the normal interval of η through g⁻¹ (sorted, so lower ≤ upper also for
        decreasing links); ``"delta"`` uses ``mean ∓ z se_mean``.
        """
        level = _check_level(level)
        method = check_choice("method", method, CI_METHODS)
        cov = check_choice("cov", self.cov_type if cov is None else cov, COV_KINDS)
        self.cov(cov)  # raises for unavailable kinds
        X, off = self._design(X, offset)
        eta = self.predict(X, off, kind="link")
        Z = np.concatenate([np.ones((X.shape[0], 1)), X - self._shift], axis=1) if self.fit_intercept else X
        cz = self._covs_z[cov].copy()
        A = self._a()
        if not self.estimable.all():
            full = A.T @ cz @ A
            full[~self.estimable, :] = np.nan
            full[:, ~self.estimable] = np.nan
            Zx = np.concatenate([np.ones((X.shape[0], 1)), X], axis=1) if self.fit_intercept else X
            var = np.einsum("ij,jk,ik->i", Zx, full, Zx)
        else:
            var = np.einsum("ij,jk,ik->i", Z, cz, Z)
        se_eta = np.sqrt(np.maximum(var, 0.0))
        mean = self.link.inverse(eta)
        se_mean = np.abs(self.link.inverse_deriv(eta)) * se_eta
        q = special.ndtri(0.5 + level / 2.0)
        if method == "endpoint" and self.link.name != "identity":
            lo, hi = self.link.inverse(eta - q * se_eta), self.link.inverse(eta + q * se_eta)
            lower, upper = np.minimum(lo, hi), np.maximum(lo, hi)
        else:
            lower, upper = mean - q * se_mean, mean + q * se_mean
        return Prediction(mean, se_mean, lower, upper, eta, se_eta)

    def with_cov_type(self, cov_type: str, extra: dict | None = None) -> GLMResults:
        """These results with ``cov_type`` the default covariance; ``extra`` adds computed kinds:
        ``{kind: (cov_z (p, p) in z = [1, x − s] coordinates, description)}``."""
        from dataclasses import replace

        cov_type = check_choice("cov_type", cov_type, COV_KINDS)
        covs, labels = dict(self._covs_z), dict(self._labels)
        for kind, (cov_z, label) in (extra or {}).items():
            covs[kind], labels[kind] = _readonly(np.asarray(cov_z, dtype=np.float64)), str(label)
        out = replace(self, cov_type=cov_type, _covs_z=MappingProxyType(covs), _labels=MappingProxyType(labels))
        out.cov(cov_type)  # raises for a kind these results lack
        return out

    def cov_label(self, kind: str | None = None) -> str:
        """A description of the covariance ``kind`` (default :attr:`cov_type`)."""
        kind = self.cov_type if kind is None else kind
        return self._labels.get(kind, kind)

    def __reduce__(self):
        """Pickle support (the read-only mappings are stored as dicts)."""
        state = {f: getattr(self, f) for f in self.__dataclass_fields__}
        state["_covs_z"], state["_labels"] = dict(self._covs_z), dict(self._labels)
        return _rebuild_results, (state,)

    def __repr__(self) -> str:
        return (f"GLMResults(family={self.family.describe()!r}, link={self.link.name!r}, p={len(self.params)}, "
                f"nobs={self.nobs}, deviance={self.deviance:.6g}, llf={self.llf:.6g})")


def _rebuild_results(state: dict) -> GLMResults:
    return GLMResults(**{**state, "_covs_z": MappingProxyType(dict(state["_covs_z"])),
                         "_labels": MappingProxyType(dict(state.get("_labels", {})))})


# ------------------------------------------------------------------------ building them
def z_bread(plan, p: int, fit_intercept: bool) -> np.ndarray:
    """The inverse information of the z-parameters, z = [1, x − s]: blockdiag(1/ΣW, Sxx⁻¹) there
    (s is the working-weighted mean, so the blocks decouple and need no inversion)."""
    return z_bread_of(plan.wsum, np.asarray(plan.sxx_inv, dtype=np.float64), fit_intercept)


def _term_names(names, d: int, fit_intercept: bool) -> tuple:
    if names is None:
        names = [f"x{j}" for j in range(d)]
    names = [str(n) for n in names]
    if len(names) != d:
        raise InputError("feature_names", f"feature_names must have {d} entries (one per column of X); "
                                          f"got {len(names)}.")
    return tuple((["intercept"] if fit_intercept else []) + names)


def stats_plan(solution: GLMSolution, *, robust: bool = True, null_intercept: float | None = None) -> StatsPlan:
    """The plan of the statistics' pass at the solution's estimates. ``null_intercept``: the
    null model's intercept when the data have offsets (:func:`jaxlm.core.irls.fit_null`);
    without, the null model's mean is the weighted mean of y."""
    sol = solution
    family, link, fi = sol.family, sol.link, sol.fit_intercept
    d = len(sol.coef)
    state = _host_state(sol.state)
    scale, scale_llf = _scales(sol)
    shift = np.asarray(state.mean_x, dtype=np.float64) if fi else np.zeros(d)
    sxx_inv = sol.factor.solve(np.eye(d)) if d else np.zeros((0, 0))
    null_mean = None if null_intercept is not None else sol.data.null_mean
    return StatsPlan(family, link, np.asarray(sol.coef, dtype=np.float64), float(sol.intercept), fi, shift,
                     sxx_inv, float(state.wsum), scale_llf, scale, null_mean, null_intercept, bool(robust),
                     not canonical(family, link))


def _scales(sol: GLMSolution) -> tuple[float, float]:
    """(φ, the φ of llf): Pearson χ²/df_resid or 1; llf of a Gaussian identity model uses the
    ML estimate Σ f v e² / wnobs (statsmodels)."""
    df_resid = sol.data.wnobs - (sol.rank + int(sol.fit_intercept))
    if not sol.family.estimates_scale:
        scale = 1.0
    else:
        scale = sol.pearson_chi2 / df_resid if df_resid > 0 else math.nan
    if isinstance(sol.family, Gaussian) and sol.link.name == "identity":
        return scale, sol.deviance / sol.data.wnobs
    return scale, scale


def glm_results(solution: GLMSolution, run, *, robust: bool = True, feature_names: Sequence[str] | None = None,
                null_tol: float = 1e-12) -> GLMResults:
    """Statistics of ``solution`` (see the module docstring); ``run`` is the driver the fit used.

    Passes over the data: one (the statistics' reduction), plus the null model's when the
    offset is nonzero; none for a family with φ = 1 without offset and ``robust=False`` (the
    fit's first pass summed the y-only terms: :func:`_folded_sums`). ``robust=False`` skips the
    HC covariances (their meats are the costly part of the pass: a few d×d products per block).
    """
    sol = solution
    family, link, fi = sol.family, sol.link, sol.fit_intercept
    d = len(sol.coef)
    p = d + int(fi)
    data = sol.data
    k = float(sol.rank + int(fi))
    df_resid = data.wnobs - k
    null_intercept = None
    if data.has_offset:  # the intercept-only model with the same offsets (statsmodels' null)
        null_intercept, _, _ = fit_null(run, family, link, start=float(link(np.asarray(data.y_mean))), tol=null_tol)
    plan = stats_plan(sol, robust=robust, null_intercept=null_intercept)
    sums = _folded_sums(sol) if not robust else None
    if sums is None:
        sums = run(stats_reduction(plan))
    bread = z_bread(plan, p, fi)
    inferential = sol.alpha == 0.0 and df_resid > 0
    nan = np.full((p, p), np.nan)
    covs = {"nonrobust": plan.scale * bread if inferential else nan}
    if robust:
        if inferential:
            b = inverse_sym(sums.observed) if plan.observed else bread
            hc0, hc2, hc3 = (b @ m @ b for m in sums.meat)
            if sums.max_leverage >= 1.0:
                hc2, hc3 = nan, nan
            covs.update(HC0=hc0, HC1=hc0 * (data.wnobs / df_resid), HC2=hc2, HC3=hc3)
        else:
            covs.update(HC0=nan, HC1=nan, HC2=nan, HC3=nan)
    estimable = np.ones(p, bool)
    if sol.aliased:
        estimable[np.asarray(sol.aliased) + int(fi)] = False
    estimable.setflags(write=False)
    params = np.concatenate([[sol.intercept], sol.coef]) if fi else np.asarray(sol.coef, dtype=np.float64)
    return GLMResults(params=_readonly(params), term_names=_term_names(feature_names, d, fi), family=family,
                      link=link, fit_intercept=fi, alpha=sol.alpha, nobs=int(data.nobs), wnobs=float(data.wnobs),
                      df_model=k - 1.0, df_resid=float(df_resid), deviance=float(sol.deviance),
                      null_deviance=float(sums.null_deviance), pearson_chi2=float(sol.pearson_chi2),
                      scale=float(plan.scale), llf=float(sums.llf), llnull=float(sums.llnull),
                      converged=sol.converged, n_iter=sol.n_iter, estimable=estimable,
                      separated=tuple(sol.separated), _shift=_readonly(plan.shift),
                      _covs_z=MappingProxyType({k_: _readonly(v) for k_, v in covs.items()}),
                      _max_leverage=float(sums.max_leverage))


def _folded_sums(sol: GLMSolution) -> StatsSums | None:
    """The statistics' sums without a pass, when the fit's first pass summed the y-only terms (a
    family with φ = 1, no offset): ``llf = llsat − D/2`` and ``llnull = llsat − D_null/2``
    (``log f(y | μ) = log f(y | y) − v d(y, μ)/2`` in an exponential family with φ = 1)."""
    if sol.family.estimates_scale or sol.data.has_offset or not (
            math.isfinite(sol.saturated) and math.isfinite(sol.null_deviance)):
        return None
    return StatsSums(sol.saturated - 0.5 * sol.deviance, sol.saturated - 0.5 * sol.null_deviance,
                     sol.null_deviance, None, None, 0.0)


def _host_state(state):
    """The state with host NumPy float64 arrays."""
    return type(state)(*(np.asarray(a, dtype=np.float64) for a in state))


__all__ = ["COV_KINDS", "CoefTable", "GLMResults", "Prediction", "StatsPlan", "StatsSums", "canonical",
           "glm_results", "stats_plan", "stats_reduction"]
