"""Link functions of generalised linear models (``g``: mean → linear predictor).

Small immutable objects of pure NumPy functions, with statsmodels' ``genmod.families.links``
formulas (so that fits agree with it to rounding):

    ``__call__(mu)``        η = g(μ)
    ``inverse(eta)``        μ = g⁻¹(η)
    ``deriv(mu)``           g'(μ) = dη/dμ
    ``inverse_deriv(eta)``  dμ/dη, evaluated from η (accurate in the tails, no round trip)
    ``deriv2(mu)``          g''(μ) (the observed information of a non-canonical link)

:class:`Identity`, :class:`Log`, :class:`Logit`, :class:`Probit`, :class:`CLogLog` and
:class:`Power` (``Power(-1)`` is the inverse link, ``Power(-2)`` the inverse square, ``Power(½)``
the square root). The probability links' inverses keep μ in [ε, 1 − ε] (as R's
``binomial()$linkinv``), so that a fitted probability is never exactly 0 or 1.
:func:`get_link` builds one from its name.

Also here, the numerics on the link's side of an IRLS pass: :func:`linear_predictor` (η), and
:data:`FAST_TERMS`, the IRLS terms of a chunk of rows for the two canonical links with a fast
path (logit for 0/1 outcomes, log for Poisson counts): the families' formulas evaluated in
place, each transcendental once per row (the general ones are
:func:`jaxlm.core.families.working_terms`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import special

from .errors import InputError

FLOAT_EPS = np.finfo(np.float64).eps
_SQRT_2PI = math.sqrt(2.0 * math.pi)


def clip_unit(p):
    """p clipped to [ε, 1 − ε] (statsmodels' ``_clean``; maximum/minimum: faster than np.clip)."""
    return np.minimum(np.maximum(p, FLOAT_EPS), 1.0 - FLOAT_EPS)


def clip_positive(x):
    """x clipped to [ε, ∞)."""
    return np.maximum(x, FLOAT_EPS)


def expit(eta):
    """1 / (1 + exp(−η)) with NumPy's vectorised exp (3× scipy's ``expit`` on a chunk; equal to rounding)."""
    with np.errstate(over="ignore"):  # exp(−η) = inf for η < −709: μ = 0, as expit
        q = np.exp(np.negative(eta))
    if not isinstance(q, np.ndarray):
        return 1.0 / (1.0 + q)
    q += 1.0
    return np.reciprocal(q, out=q)


@dataclass(frozen=True)
class Link:
    """A link function (see the module docstring for the five functions)."""

    name: ClassVar[str] = "link"

    def __call__(self, mu):
        raise NotImplementedError

    def inverse(self, eta):
        raise NotImplementedError

    def deriv(self, mu):
        raise NotImplementedError

    def inverse_deriv(self, eta):
        return 1.0 / self.deriv(self.inverse(eta))

    def deriv2(self, mu):
        raise NotImplementedError


@dataclass(frozen=True)
class Power(Link):
    """η = μ^power (power 1: identity, −1: inverse, −2: inverse square, ½: square root)."""

    power: float = 1.0

    @property
    def name(self) -> str:  # type: ignore[override]
        return {1.0: "identity", -1.0: "inverse", -2.0: "inverse_squared", 0.5: "sqrt"}.get(
            float(self.power), f"power({self.power:g})")

    def __call__(self, mu):
        return mu if self.power == 1 else np.power(mu, self.power)

    def inverse(self, eta):
        return eta if self.power == 1 else np.power(eta, 1.0 / self.power)

    def deriv(self, mu):
        if self.power == 1:
            return np.ones_like(mu)
        return self.power * np.power(mu, self.power - 1.0)

    def inverse_deriv(self, eta):
        if self.power == 1:
            return np.ones_like(eta)
        return np.power(eta, (1.0 - self.power) / self.power) / self.power

    def deriv2(self, mu):
        if self.power == 1:
            return np.zeros_like(mu)
        return self.power * (self.power - 1.0) * np.power(mu, self.power - 2.0)


def Identity() -> Power:  # noqa: N802 - a link "class" like the others
    """η = μ."""
    return Power(1.0)


def Inverse() -> Power:  # noqa: N802
    """η = 1/μ (the canonical link of the Gamma family)."""
    return Power(-1.0)


def InverseSquared() -> Power:  # noqa: N802
    """η = 1/μ² (the canonical link of the inverse Gaussian family)."""
    return Power(-2.0)


@dataclass(frozen=True)
class Log(Link):
    """η = log μ."""

    name: ClassVar[str] = "log"

    def __call__(self, mu):
        return np.log(clip_positive(mu))

    def inverse(self, eta):
        return np.exp(eta)

    def deriv(self, mu):
        return 1.0 / clip_positive(mu)

    def inverse_deriv(self, eta):
        return np.exp(eta)

    def deriv2(self, mu):
        return -1.0 / clip_positive(mu) ** 2


@dataclass(frozen=True)
class Logit(Link):
    """η = log(μ / (1 − μ))."""

    name: ClassVar[str] = "logit"

    def __call__(self, mu):
        p = clip_unit(mu)
        return np.log(p / (1.0 - p))

    def inverse(self, eta):
        return clip_unit(expit(eta))

    def deriv(self, mu):
        p = clip_unit(mu)
        return 1.0 / (p * (1.0 - p))

    def inverse_deriv(self, eta):
        p = expit(eta)  # μ(1 − μ): the same product as the binomial variance, so W r = y − μ exactly
        return p * (1.0 - p)

    def deriv2(self, mu):
        v = mu * (1.0 - mu)
        return (2.0 * mu - 1.0) / v**2


@dataclass(frozen=True)
class Probit(Link):
    """η = Φ⁻¹(μ), Φ the standard normal distribution function."""

    name: ClassVar[str] = "probit"

    def __call__(self, mu):
        return special.ndtri(clip_unit(mu))

    def inverse(self, eta):
        return clip_unit(special.ndtr(eta))

    def deriv(self, mu):
        return 1.0 / self.inverse_deriv(special.ndtri(clip_unit(mu)))

    def inverse_deriv(self, eta):
        return np.exp(-0.5 * np.square(eta)) / _SQRT_2PI

    def deriv2(self, mu):
        eta = special.ndtri(clip_unit(mu))
        return eta / self.inverse_deriv(eta) ** 2


@dataclass(frozen=True)
class CLogLog(Link):
    """η = log(−log(1 − μ))."""

    name: ClassVar[str] = "cloglog"

    def __call__(self, mu):
        return np.log(-np.log1p(-clip_unit(mu)))

    def inverse(self, eta):
        return clip_unit(-np.expm1(-np.exp(eta)))

    def deriv(self, mu):
        p = clip_unit(mu)
        return 1.0 / ((p - 1.0) * np.log1p(-p))

    def inverse_deriv(self, eta):
        return np.exp(eta - np.exp(eta))

    def deriv2(self, mu):
        p = clip_unit(mu)
        fl = np.log1p(-p)
        return -1.0 / ((1.0 - p) ** 2 * fl) * (1.0 + 1.0 / fl)


def Sqrt() -> Power:  # noqa: N802
    """η = √μ."""
    return Power(0.5)


# ------------------------------------------------------------------- the linear predictor
def linear_predictor(X, coef, intercept, offset, out=None):
    """η = Xβ + β₀ + offset (offset may be None; into ``out`` when given)."""
    eta = np.matmul(X, coef, out=out)
    eta += intercept
    if offset is not None:
        eta += offset
    return eta


# ---------------------------------------------- IRLS terms of two canonical links, in place
def _sum(iw, a, b=None) -> float:
    """Σ iw a (b); ``iw`` None: weights 1."""
    if b is None:
        return float(a.sum() if iw is None else iw @ a)
    return float(a @ b if iw is None else (iw * a) @ b)


def logit_terms(y, ones, eta, iw, ww, r, mu, tmp):
    """:func:`~jaxlm.core.families.working_terms` of 0/1 outcomes (``ones``: the mask y = 1) under
    the logit link, in place, with one transcendental per row for μ (``exp``) and one for the
    deviance (``log``; the Binomial's formula): μ into ``mu``, ``W = iw μ(1 − μ)`` into ``ww``,
    ``r = (y − μ)/(μ(1 − μ))`` into ``r`` (V(μ) = dμ/dη here); returns ``(deviance, pearson)``, or
    None when some μ leaves [ε, 1 − ε] (the general formulas, which clip, then take the chunk).
    ``iw`` None: weights 1; ``tmp``: scratch."""
    np.exp(np.negative(eta, out=mu), out=mu)
    mu += 1.0
    np.reciprocal(mu, out=mu)                       # expit(η), with NumPy's vectorised exp
    if not (mu.min() >= FLOAT_EPS and mu.max() <= 1.0 - FLOAT_EPS):  # also False for NaN
        return None
    np.subtract(1.0, mu, out=tmp)
    p = np.where(ones, mu, tmp)                     # P(y): μ or 1 − μ
    p += 1e-20
    deviance = -2.0 * _sum(iw, np.log(p, out=p))
    np.multiply(tmp, mu, out=ww)                    # μ(1 − μ)
    np.divide(np.subtract(y, mu, out=tmp), ww, out=r)
    pearson = _sum(iw, tmp, r)
    if iw is not None:
        ww *= iw
    return deviance, pearson


def poisson_log_terms(y, ones, eta, iw, ww, r, mu, tmp):
    """:func:`logit_terms` of the Poisson family and log link: μ = exp(η) once (also dμ/dη and
    V(μ)), ``W = iw μ``, ``r = (y − μ)/μ``, ``log`` for ``xlogy``; None when some μ is 0 or
    infinite or a sum is not finite (``ones`` unused)."""
    np.exp(eta, out=mu)
    if not (mu.min() > 0.0 and mu.max() < np.inf):
        return None
    np.log(np.maximum(np.divide(y, mu, out=r), FLOAT_EPS, out=r), out=r)
    r *= y                                          # xlogy(y, y/μ) (0 where y = 0)
    r -= np.subtract(y, mu, out=tmp)
    deviance = 2.0 * _sum(iw, r)
    pearson = _sum(iw, tmp, np.divide(tmp, mu, out=r))
    np.multiply(mu, 1.0 if iw is None else iw, out=ww)
    return (deviance, pearson) if math.isfinite(deviance) and math.isfinite(pearson) else None


#: (family name, link name) -> its in-place chunk terms (the binomial entry: 0/1 outcomes only).
FAST_TERMS = {("binomial", "logit"): logit_terms, ("poisson", "log"): poisson_log_terms}


_LINKS = {"identity": Identity, "log": Log, "logit": Logit, "probit": Probit, "cloglog": CLogLog,
          "inverse": Inverse, "inverse_squared": InverseSquared, "sqrt": Sqrt}
LINK_NAMES = tuple(_LINKS)


def get_link(link) -> Link:
    """A :class:`Link` from a name (``"identity"``, ``"log"``, ``"logit"``, ``"probit"``,
    ``"cloglog"``, ``"inverse"``, ``"inverse_squared"``, ``"sqrt"``) or a Link (returned as is)."""
    if isinstance(link, Link):
        return link
    if not isinstance(link, str) or link not in _LINKS:
        valid = ", ".join(repr(k) for k in _LINKS)
        raise InputError("link", f"link must be one of {valid}; got link={link!r}.")
    return _LINKS[link]()


__all__ = ["CLogLog", "FAST_TERMS", "FLOAT_EPS", "Identity", "Inverse", "InverseSquared", "LINK_NAMES", "Link",
           "Log", "Logit", "Power", "Probit", "Sqrt", "clip_positive", "clip_unit", "expit", "get_link",
           "linear_predictor", "logit_terms", "poisson_log_terms"]
