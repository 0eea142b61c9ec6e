"""Exponential families of generalised linear models (links: :mod:`jaxlm.core.links`).

Small immutable objects of pure NumPy functions (statsmodels' ``genmod.families`` is the
anchor: every formula below is the one statsmodels uses, so that deviances and
log-likelihoods agree with it to rounding).

    ``variance(mu)``, ``variance_deriv(mu)``  V(μ) and V'(μ)
    ``unit_deviance(y, mu)``  dᵢ: the deviance is ``Σ fᵢ vᵢ dᵢ`` (frequency and variance weights)
    ``loglike_obs(y, mu, var_weights, scale)``  the exact log density of one row (Tweedie:
                          the series density of Dunn & Smyth through ``log_wright_bessel``)
    ``invalid_y(y)``      mask of responses outside the family's support, ``support`` names it
    ``starting_mu(y, y_mean)``  statsmodels' start ``(y + ȳ)/2`` (Binomial: ``(y + ½)/2``)
    ``valid_mu(mu)``      whether a mean lies in the family's domain (IRLS halves steps that leave it)
    ``estimates_scale``   True when the dispersion φ is estimated (Pearson χ²/df), else φ = 1

:class:`Gaussian`, :class:`Binomial`, :class:`Poisson`, :class:`Gamma`,
:class:`InverseGaussian`, :class:`Tweedie` (``var_power`` in [1, 2]) and
:class:`NegativeBinomial` (``alpha`` given). :func:`get_family` builds one from its name,
:func:`check_link` validates a family/link pair (the links are re-exported here).
:func:`working_terms`: the IRLS terms of a chunk of rows (:data:`~jaxlm.core.links.FAST_TERMS`:
those of the Binomial–logit and Poisson–log pairs, in place, each transcendental once per row).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import special

from .errors import InputError, check_positive, fail
from .links import (FAST_TERMS, LINK_NAMES, CLogLog, Identity, Inverse, InverseSquared, Link, Log, Logit, Power,
                    Probit, Sqrt, clip_unit, clip_positive, expit, get_link)

_LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class Family:
    """An exponential family (see the module docstring)."""

    name: ClassVar[str] = "family"
    links: ClassVar[tuple] = ()          # names of the links this family accepts
    default_link: ClassVar[str] = ""
    estimates_scale: ClassVar[bool] = True
    support: ClassVar[str] = "a finite number"
    support_fix: ClassVar[str] = ""

    def link(self) -> Link:
        """The family's default link."""
        return get_link(self.default_link)

    def variance(self, mu):
        raise NotImplementedError

    def variance_deriv(self, mu):
        raise NotImplementedError

    def unit_deviance(self, y, mu):
        raise NotImplementedError

    def loglike_obs(self, y, mu, var_weights=1.0, scale=1.0):
        raise NotImplementedError

    def invalid_y(self, y):
        return ~np.isfinite(y)

    def valid_mu(self, mu):
        return np.isfinite(mu)

    def starting_mu(self, y, y_mean: float):
        return (y + y_mean) / 2.0

    def describe(self) -> str:
        return self.name


@dataclass(frozen=True)
class Gaussian(Family):
    """Normal responses, V(μ) = 1, φ estimated."""

    name: ClassVar[str] = "gaussian"
    links: ClassVar[tuple] = ("identity", "log", "inverse")
    default_link: ClassVar[str] = "identity"
    support: ClassVar[str] = "a finite number"
    support_fix: ClassVar[str] = "Drop or impute missing and infinite responses."

    def variance(self, mu):
        return np.ones_like(mu)

    def variance_deriv(self, mu):
        return np.zeros_like(mu)

    def unit_deviance(self, y, mu):
        return np.square(y - mu)

    def loglike_obs(self, y, mu, var_weights=1.0, scale=1.0):
        return -0.5 * (var_weights * np.square(y - mu) / scale + np.log(scale / var_weights) + _LOG_2PI)


def _binary_log_p(y, mu):
    """log(P(y) + 1e-20) with P(y) = μ or 1 − μ (statsmodels' guard) when every y is 0 or 1, else None."""
    ones = np.equal(y, 1.0)
    if np.count_nonzero(ones) + np.count_nonzero(np.equal(y, 0.0)) < np.size(y):
        return None
    p = np.where(ones, mu, 1.0 - mu)
    p += 1e-20
    return np.log(p, out=p)


@dataclass(frozen=True)
class Binomial(Family):
    """Binary outcomes or proportions in [0, 1], V(μ) = μ(1 − μ), φ = 1.

    A proportion of ``n`` trials is fitted as ``y = successes / n`` with ``var_weights = n``
    (R's ``glm(cbind(s, f) ~ ., binomial)``; statsmodels' two-column endog). The deviance,
    estimates and covariances are then the binomial ones. ``trials=True`` also makes the
    log-likelihood the binomial one of ``n y`` successes in ``n`` trials (with the binomial
    coefficient, as R and statsmodels' two-column form report it); with ``trials=False``
    (default) it is statsmodels' ``var_weights`` form, ``n`` times the log-likelihood of one
    trial with outcome ``y``.
    """

    trials: bool = False
    name: ClassVar[str] = "binomial"
    links: ClassVar[tuple] = ("logit", "probit", "cloglog")
    default_link: ClassVar[str] = "logit"
    estimates_scale: ClassVar[bool] = False
    support: ClassVar[str] = "in [0, 1] (a 0/1 outcome or a proportion)"
    support_fix: ClassVar[str] = "Recode the response as 0/1 (or successes/trials with the trials as var_weights)."

    def variance(self, mu):
        p = clip_unit(mu)
        return p * (1.0 - p)

    def variance_deriv(self, mu):
        return 1.0 - 2.0 * clip_unit(mu)

    def unit_deviance(self, y, mu):
        logp = _binary_log_p(y, mu)
        if logp is not None:  # 0/1 outcomes: −2 log P(y) (statsmodels' formula, fewer steps)
            return np.multiply(logp, -2.0, out=logp)
        a = special.xlogy(y, clip_positive(y / (mu + 1e-20)))
        b = special.xlogy(1.0 - y, clip_positive((1.0 - y) / (1.0 - mu + 1e-20)))
        return 2.0 * (a + b)

    def describe(self) -> str:
        return "binomial(trials)" if self.trials else "binomial"

    def loglike_obs(self, y, mu, var_weights=1.0, scale=1.0):
        # log C(n, ny) + ny log μ + (n − ny) log(1 − μ) (statsmodels' formula, with its 1e-20 guards)
        n = var_weights if self.trials else 1.0
        logp = None if self.trials else _binary_log_p(y, mu)
        if logp is not None:  # 0/1 outcomes: log C(1, y) = 0
            unit = np.ndim(var_weights) == 0 and var_weights == 1.0
            return logp if unit else logp * var_weights
        k = n * y
        ll = (special.gammaln(n + 1.0) - special.gammaln(k + 1.0) - special.gammaln(n - k + 1.0)
              + k * np.log((mu + 1e-20) / (1.0 - mu + 1e-20)) + n * np.log(1.0 - mu + 1e-20))
        return ll if self.trials else ll * var_weights

    def invalid_y(self, y):
        return ~((y >= 0.0) & (y <= 1.0))

    def valid_mu(self, mu):
        # R's binomial()$validmu: a probability of exactly 0 or 1 has no working weight
        return (mu > 0.0) & (mu < 1.0)

    def starting_mu(self, y, y_mean: float):
        return (y + 0.5) / 2.0


@dataclass(frozen=True)
class Poisson(Family):
    """Counts, V(μ) = μ, φ = 1."""

    name: ClassVar[str] = "poisson"
    links: ClassVar[tuple] = ("log", "identity", "sqrt")
    default_link: ClassVar[str] = "log"
    estimates_scale: ClassVar[bool] = False
    support: ClassVar[str] = ">= 0 (a count)"
    support_fix: ClassVar[str] = "Counts cannot be negative: check the response column."

    def variance(self, mu):
        return np.abs(mu)

    def variance_deriv(self, mu):
        return np.where(mu < 0, -1.0, 1.0)

    def unit_deviance(self, y, mu):
        return 2.0 * (special.xlogy(y, clip_positive(y / mu)) - (y - mu))

    def loglike_obs(self, y, mu, var_weights=1.0, scale=1.0):
        return var_weights / scale * (special.xlogy(y, mu) - mu - special.gammaln(y + 1.0))

    def invalid_y(self, y):
        return ~((y >= 0.0) & np.isfinite(y))

    def valid_mu(self, mu):
        return (mu > 0.0) & np.isfinite(mu)


@dataclass(frozen=True)
class Gamma(Family):
    """Positive continuous responses, V(μ) = μ², φ estimated."""

    name: ClassVar[str] = "gamma"
    links: ClassVar[tuple] = ("inverse", "log", "identity")
    default_link: ClassVar[str] = "inverse"
    support: ClassVar[str] = "> 0"
    support_fix: ClassVar[str] = "The Gamma family models positive responses: drop the rows or use Tweedie."

    def variance(self, mu):
        return np.square(mu)

    def variance_deriv(self, mu):
        return 2.0 * mu

    def unit_deviance(self, y, mu):
        ratio = clip_positive(y / mu)
        return 2.0 * (-np.log(ratio) + (y - mu) / mu)

    def loglike_obs(self, y, mu, var_weights=1.0, scale=1.0):
        ratio = clip_positive(y / mu)
        ws = var_weights / scale
        return ws * np.log(ws * ratio) - ws * ratio - special.gammaln(ws) - np.log(y)

    def invalid_y(self, y):
        return ~((y > 0.0) & np.isfinite(y))

    def valid_mu(self, mu):
        return (mu > 0.0) & np.isfinite(mu)


@dataclass(frozen=True)
class InverseGaussian(Family):
    """Positive continuous responses, V(μ) = μ³, φ estimated."""

    name: ClassVar[str] = "inverse_gaussian"
    links: ClassVar[tuple] = ("inverse_squared", "log", "inverse", "identity")
    default_link: ClassVar[str] = "inverse_squared"
    support: ClassVar[str] = "> 0"
    support_fix: ClassVar[str] = "The inverse Gaussian family models positive responses."

    def variance(self, mu):
        return np.power(np.abs(mu), 3.0)

    def variance_deriv(self, mu):
        return 3.0 * np.square(mu)

    def unit_deviance(self, y, mu):
        return np.square(y - mu) / (y * np.square(mu))

    def loglike_obs(self, y, mu, var_weights=1.0, scale=1.0):
        return -0.5 * (var_weights * np.square(y - mu) / (scale * y * np.square(mu))
                       + np.log(scale * y**3 / var_weights) + _LOG_2PI)

    def invalid_y(self, y):
        return ~((y > 0.0) & np.isfinite(y))

    def valid_mu(self, mu):
        return (mu > 0.0) & np.isfinite(mu)


@dataclass(frozen=True)
class Tweedie(Family):
    """Compound Poisson–Gamma responses (≥ 0, exact zeros allowed), V(μ) = μ^p, 1 ≤ p ≤ 2, φ estimated.

    ``var_power`` 1 is the (over-dispersed) Poisson and 2 the Gamma; the log-likelihood for
    1 < p < 2 is the exact density (statsmodels' ``Tweedie(eql=False)``).
    """

    var_power: float = 1.5
    name: ClassVar[str] = "tweedie"
    links: ClassVar[tuple] = ("log",)
    default_link: ClassVar[str] = "log"

    def __post_init__(self):
        p = self.var_power
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not 1.0 <= p <= 2.0:
            raise fail("var_power", "a number in [1, 2]", p,
                       "Tweedie densities are implemented for 1 <= var_power <= 2 (1: Poisson, 2: Gamma).")
        object.__setattr__(self, "var_power", float(p))

    @property
    def support(self) -> str:  # type: ignore[override]
        return "> 0" if self.var_power == 2.0 else ">= 0"

    @property
    def support_fix(self) -> str:  # type: ignore[override]
        return ("With var_power=2 (Gamma) the response must be positive; use var_power < 2 for exact zeros."
                if self.var_power == 2.0 else "Tweedie responses cannot be negative.")

    def describe(self) -> str:
        return f"tweedie(var_power={self.var_power:g})"

    def variance(self, mu):
        return np.power(np.abs(mu), self.var_power)

    def variance_deriv(self, mu):
        p = self.var_power
        der = p * np.power(np.abs(mu), p - 1.0)
        return np.where(mu < 0, -der, der)

    def unit_deviance(self, y, mu):
        p = self.var_power
        if p == 1.0:
            dev = np.where(y == 0, mu, special.xlogy(y, y / mu) + (mu - y))
        elif p == 2.0:
            dev = (y - mu) / mu - np.log(clip_positive(y) / mu)
        else:
            dev = (np.power(y, 2.0 - p) / ((1.0 - p) * (2.0 - p)) - y * np.power(mu, 1.0 - p) / (1.0 - p)
                   + np.power(mu, 2.0 - p) / (2.0 - p))
        return 2.0 * dev

    def loglike_obs(self, y, mu, var_weights=1.0, scale=1.0):
        p = self.var_power
        if p == 1.0:
            return Poisson().loglike_obs(y, mu, var_weights, scale)
        if p == 2.0:
            return Gamma().loglike_obs(y, mu, var_weights, scale)
        y = np.asarray(y, dtype=np.float64)
        phi = np.broadcast_to(scale / np.asarray(var_weights, dtype=np.float64), y.shape)
        theta = np.power(mu, 1.0 - p) / (1.0 - p)
        kappa = np.power(mu, 2.0 - p) / (2.0 - p)
        a = (2.0 - p) / (1.0 - p)
        ll = (y * theta - kappa) / phi
        pos = y > 0
        if np.any(pos):
            yp, fp = y[pos], phi[pos]
            x = ((p - 1.0) * fp / yp) ** a / ((2.0 - p) * fp)
            ll = np.array(ll, dtype=np.float64, copy=True)
            ll[pos] += -np.log(yp) + special.log_wright_bessel(-a, 0.0, x)
        return ll

    def invalid_y(self, y):
        if self.var_power == 2.0:
            return ~((y > 0.0) & np.isfinite(y))
        return ~((y >= 0.0) & np.isfinite(y))

    def valid_mu(self, mu):
        return (mu > 0.0) & np.isfinite(mu)


@dataclass(frozen=True)
class NegativeBinomial(Family):
    """Over-dispersed counts with known ``alpha``: V(μ) = μ + αμ², φ = 1."""

    alpha: float = 1.0
    name: ClassVar[str] = "negative_binomial"
    links: ClassVar[tuple] = ("log",)
    default_link: ClassVar[str] = "log"
    estimates_scale: ClassVar[bool] = False
    support: ClassVar[str] = ">= 0 (a count)"
    support_fix: ClassVar[str] = "Counts cannot be negative: check the response column."

    def __post_init__(self):
        object.__setattr__(self, "alpha", check_positive(
            "alpha", self.alpha, fix="The negative binomial dispersion alpha must be positive (V = mu + alpha mu^2)."))

    def describe(self) -> str:
        return f"negative_binomial(alpha={self.alpha:g})"

    def variance(self, mu):
        p = clip_positive(mu)
        return p + self.alpha * p**2

    def variance_deriv(self, mu):
        return 1.0 + 2.0 * self.alpha * clip_positive(mu)

    def unit_deviance(self, y, mu):
        ia = 1.0 / self.alpha
        return 2.0 * (special.xlogy(y, clip_positive(y / mu)) - (y + ia) * np.log((y + ia) / (mu + ia)))

    def loglike_obs(self, y, mu, var_weights=1.0, scale=1.0):
        a = self.alpha
        ll = (special.xlogy(y, a * mu) - (y + 1.0 / a) * np.log1p(a * mu) + special.gammaln(y + 1.0 / a)
              - special.gammaln(1.0 / a) - special.gammaln(y + 1.0))
        return var_weights / scale * ll

    def invalid_y(self, y):
        return ~((y >= 0.0) & np.isfinite(y))

    def valid_mu(self, mu):
        return (mu > 0.0) & np.isfinite(mu)


# ------------------------------------------------------------------ IRLS terms of a chunk
def _maps_into_domain(family: Family, link: Link) -> bool:
    """Whether every finite η gives a mean inside the family's domain (no per-row check needed;
    a non-finite η or μ still shows up as a non-finite deviance)."""
    if isinstance(family, Binomial):
        return link.name in ("logit", "probit", "cloglog")  # inverses clipped to [ε, 1 − ε]
    return family.name == "gaussian" or link.name == "log"


def working_terms(family: Family, link: Link, y, eta, iw, mu=None):
    """The IRLS terms of rows at linear predictor ``eta`` (``mu``: the means, when given):
    ``(r, W, deviance, pearson, mu)`` with the working residuals ``r = (y − μ)/(dμ/dη)``, the
    working weights ``W = iw (dμ/dη)²/V(μ)`` (0, with r, where they underflow), ``Σ iw d(y, μ)``
    and ``Σ iw (y − μ)²/V(μ)``; or, when some μ leaves the family's domain or η overflows, the
    number of such rows (an int)."""
    dmu = None
    if mu is None and link.name == "logit":  # μ and dμ/dη from one expit (not the link's formulas twice)
        q = expit(eta)
        mu, dmu = clip_unit(q), q * (1.0 - q)
    elif mu is None:
        mu = link.inverse(eta)
    if not _maps_into_domain(family, link):  # a mean outside the family's domain: the caller halves the step
        ok = np.isfinite(eta) & family.valid_mu(mu)
        if not ok.all():
            return int(np.count_nonzero(~ok))
    dev = float(iw @ family.unit_deviance(y, mu))
    dmu = link.inverse_deriv(eta) if dmu is None else dmu
    resid = y - mu
    wv = iw / family.variance(mu)
    pearson = float(wv @ (resid * resid))
    if not (math.isfinite(dev) and math.isfinite(pearson)):  # η or μ not finite (an overflowing step)
        return max(1, int(np.count_nonzero(~(np.isfinite(eta) & np.isfinite(mu)))))
    ww, r = wv * dmu * dmu, resid / dmu
    if not (math.isfinite(float(np.sum(ww))) and math.isfinite(float(np.sum(r)))):
        dead = ~(np.isfinite(ww) & np.isfinite(r))  # weights that underflowed carry no information
        ww, r = np.where(dead, 0.0, ww), np.where(dead, 0.0, r)
    return r, ww, dev, pearson, mu


_FAMILIES = {"gaussian": Gaussian, "binomial": Binomial, "poisson": Poisson, "gamma": Gamma,
             "inverse_gaussian": InverseGaussian, "tweedie": Tweedie, "negative_binomial": NegativeBinomial}
FAMILY_NAMES = tuple(_FAMILIES)


def get_family(family, **params) -> Family:
    """A :class:`Family` from a name (``"gaussian"``, ``"binomial"``, ``"poisson"``, ``"gamma"``,
    ``"inverse_gaussian"``, ``"tweedie"``, ``"negative_binomial"``) with its parameters
    (``var_power=`` for Tweedie, ``alpha=`` for the negative binomial), or a Family (returned as is)."""
    if isinstance(family, Family):
        return family
    if not isinstance(family, str) or family not in _FAMILIES:
        valid = ", ".join(repr(k) for k in _FAMILIES)
        raise InputError("family", f"family must be one of {valid}; got family={family!r}.")
    return _FAMILIES[family](**params)


def check_link(family: Family, link) -> Link:
    """The link to use with ``family`` (its default when ``link`` is None); an InputError
    naming the allowed links when the pair is not supported."""
    link = family.link() if link is None else get_link(link)
    if link.name not in family.links:
        valid = ", ".join(repr(k) for k in family.links)
        raise InputError("link", f"link must be one of {valid} for the {family.describe()} family; "
                                 f"got link={link.name!r}. Choose one of those links (the default is "
                                 f"{family.default_link!r}).")
    return link


__all__ = ["CLogLog", "FAMILY_NAMES", "FAST_TERMS", "Binomial", "Family", "Gamma", "Gaussian", "Identity", "Inverse",
           "InverseGaussian", "InverseSquared", "LINK_NAMES", "Link", "Log", "Logit", "NegativeBinomial",
           "Poisson", "Power", "Probit", "Sqrt", "Tweedie", "check_link", "get_family", "get_link", "working_terms"]
