"""Certification against the NIST StRD linear regression datasets (``jaxlm verify``)."""
from __future__ import annotations

import math
from typing import NamedTuple

from .datasets import load_nist, nist_names
from .models.linear import LinearRegression

#: Correct digits required of the worst coefficient (and, for the statistics, of the worst
#: parameter SD, the residual SD and R²). With a float64 design even exact arithmetic gets
#: only 7.6 digits on Filip; every other dataset allows ≥ 13.
REQUIRED_DIGITS = {"Filip": 7.0}
DEFAULT_REQUIRED = 10.0
MAX_DIGITS = 15.0


def lre(estimate: float, certified: float) -> float:
    """Log relative error: the number of correct significant digits, capped at 15.

    ``−log10(|est − cert| / |cert|)``, or ``−log10(|est|)`` when the certified value is 0.
    """
    estimate, certified = float(estimate), float(certified)
    if not math.isfinite(estimate):
        return 0.0
    err = abs(estimate - certified) / abs(certified) if certified != 0 else abs(estimate)
    if err == 0:
        return MAX_DIGITS
    return max(0.0, min(MAX_DIGITS, -math.log10(err)))


class NistRow(NamedTuple):
    dataset: str
    difficulty: str
    coef_digits: float
    sd_digits: float
    residual_sd: float
    residual_sd_digits: float
    r_squared: float
    r_squared_digits: float
    required: float
    solver: str

    @property
    def passed(self) -> bool:
        return min(self.coef_digits, self.sd_digits, self.residual_sd_digits, self.r_squared_digits) >= self.required


def verify_dataset(name: str, *, solver: str = "auto") -> NistRow:
    ds = load_nist(name)
    model = LinearRegression(solver=solver, fit_intercept=ds.intercept).fit(ds.X, ds.y)
    params = ([model.intercept_] if ds.intercept else []) + list(model.coef_)
    cert = ds.certified
    coef_digits = min(lre(p, c["estimate"]) for p, c in zip(params, cert["parameters"]))
    res = model.results_
    sd_digits = min(lre(sd, c["sd"]) for sd, c in zip(res.std_errors, cert["parameters"]))
    resid_sd, r2 = float(res.residual_std), float(res.r_squared)
    return NistRow(name, ds.difficulty, coef_digits, sd_digits, resid_sd, lre(resid_sd, cert["residual_sd"]), r2,
                   lre(r2, cert["r_squared"]), REQUIRED_DIGITS.get(name, DEFAULT_REQUIRED), model.solver_)


def verify(*, solver: str = "auto") -> list[NistRow]:
    """Fit every NIST StRD linear dataset and compare with the certified values."""
    return [verify_dataset(name, solver=solver) for name in nist_names()]
