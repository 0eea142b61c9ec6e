"""The result types of the Celsius→Fahrenheit study (:mod:`jaxlm.demo`): parameters, fits,
distances and the immutable :class:`StudyResult` with its JSON form."""
from __future__ import annotations

import math
import platform
from importlib import metadata
from types import MappingProxyType
from typing import Mapping, NamedTuple

import numpy as np

from .datasets import IDEAL_INTERCEPT, IDEAL_SLOPE


#: The exact conversion F = 9/5·C + 32, as (slope, intercept).
IDEAL = (IDEAL_SLOPE, IDEAL_INTERCEPT)


#: Version of the results.json layout.
SCHEMA = "jaxlm.demo/1"


_METHOD_LABELS = {
    "closed_form": "closed form (statistics)",
    "sklearn": "scikit-learn LinearRegression",
    "gradient_descent": "JAX gradient descent",
}


class StudyParams(NamedTuple):
    """Validated parameters of one study.

    ``tol=None`` stands for the gradient solver's default for ``dtype`` (1e-5 in float32, 1e-10 in
    float64); the value used is recorded in :attr:`GradientFit.tol`. Nothing here imports JAX, so
    that validation and data are ready before the ~1 s ``import jax``.
    """

    seed: int
    start: float
    stop: float
    step: float
    noise_sd: float
    lr: float
    max_iter: int
    tol: float | None
    dtype: str


class Fit(NamedTuple):
    """One exact fit ``F ≈ slope·C + intercept``; ``seconds`` is the median wall time of a fit."""

    method: str
    slope: float
    intercept: float
    seconds: float
    dtype: str = "float64"

    @property
    def label(self) -> str:
        return _METHOD_LABELS[self.method]

    @property
    def error_vs_ideal(self) -> tuple[float, float]:
        """(slope − 9/5, intercept − 32)."""
        return self.slope - IDEAL_SLOPE, self.intercept - IDEAL_INTERCEPT


class GradientFit(NamedTuple):
    """The gradient-descent fit and how its loop ended.

    A diverged run has NaN ``slope`` and ``intercept`` (no fit is presented). ``seconds`` is the
    median wall time of a warm call; ``first_call_seconds`` is the first call in this process,
    which includes tracing and XLA compilation unless JAX had the program cached.
    ``loss_curve`` holds the standardised loss before each step and at the end (``n_iter + 1``
    values).
    """

    slope: float
    intercept: float
    seconds: float
    first_call_seconds: float
    dtype: str
    learning_rate: float
    tol: float
    max_iter: int
    n_iter: int
    converged: bool
    diverged: bool
    grad_norm: float
    loss_curve: np.ndarray

    method = "gradient_descent"
    label = _METHOD_LABELS["gradient_descent"]

    @property
    def status(self) -> str:
        """``"converged"``, ``"diverged"`` or ``"not converged"`` (``max_iter`` ran out)."""
        if self.diverged:
            return "diverged"
        return "converged" if self.converged else "not converged"

    @property
    def error_vs_ideal(self) -> tuple[float, float]:
        return self.slope - IDEAL_SLOPE, self.intercept - IDEAL_INTERCEPT


class Distance(NamedTuple):
    """How far the gradient-descent fit lies from the closed form (NaN when it diverged)."""

    slope_abs: float
    intercept_abs: float
    slope_rel: float
    intercept_rel: float

    @property
    def max_rel(self) -> float:
        return max(self.slope_rel, self.intercept_rel)


def _rel(a: float, ref: float) -> float:
    return abs(a - ref) / abs(ref) if ref != 0 else abs(a - ref)


def _versions() -> Mapping[str, str]:
    out = {"python": platform.python_version()}
    for key, dist in (("jaxlm", "jaxlm"), ("jax", "jax"), ("jaxlib", "jaxlib"), ("numpy", "numpy"),
                      ("optax", "optax"), ("sklearn", "scikit-learn"), ("matplotlib", "matplotlib"),
                      ("rich", "rich")):
        try:
            out[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[key] = None
    import jax

    out["jax_backend"] = jax.default_backend()
    out["platform"] = platform.platform()
    return MappingProxyType(out)


def _json_float(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


class StudyResult(NamedTuple):
    """Everything one study produced; immutable (the arrays are read-only)."""

    params: StudyParams
    celsius: np.ndarray
    fahrenheit: np.ndarray
    closed_form: Fit
    sklearn: Fit
    gradient_descent: GradientFit
    versions: Mapping[str, str]
    #: Inference for the exact line (jaxlm.inference.RegressionResults, terms intercept, celsius).
    statistics: object = None

    @property
    def n(self) -> int:
        return int(self.celsius.shape[0])

    @property
    def ideal(self) -> tuple[float, float]:
        return IDEAL

    @property
    def fits(self) -> tuple:
        """The three fits, in the article's order."""
        return (self.closed_form, self.sklearn, self.gradient_descent)

    @property
    def ok(self) -> bool:
        """True when gradient descent converged (the exact fits always succeed)."""
        return self.gradient_descent.converged

    @property
    def gd_vs_closed_form(self) -> Distance:
        gd, cf = self.gradient_descent, self.closed_form
        return Distance(abs(gd.slope - cf.slope), abs(gd.intercept - cf.intercept),
                        _rel(gd.slope, cf.slope), _rel(gd.intercept, cf.intercept))

    def to_json_dict(self) -> dict:
        """The ``results.json`` document (plain JSON types; non-finite numbers become ``null``)."""
        p = self.params

        def exact(fit: Fit) -> dict:
            es, ei = fit.error_vs_ideal
            return {"slope": fit.slope, "intercept": fit.intercept, "seconds": fit.seconds, "dtype": fit.dtype,
                    "error_vs_ideal": {"slope": es, "intercept": ei}}

        gd = self.gradient_descent
        es, ei = gd.error_vs_ideal
        curve = gd.loss_curve
        gd_doc = {
            "slope": _json_float(gd.slope),
            "intercept": _json_float(gd.intercept),
            "seconds": gd.seconds,
            "first_call_seconds": gd.first_call_seconds,
            "dtype": gd.dtype,
            "n_iter": gd.n_iter,
            "converged": gd.converged,
            "diverged": gd.diverged,
            "status": gd.status,
            "grad_norm": _json_float(gd.grad_norm),
            "tol": gd.tol,
            "learning_rate": gd.learning_rate,
            "max_iter": gd.max_iter,
            "initial_loss": _json_float(curve[0]) if curve.size else None,
            "final_loss": _json_float(curve[-1]) if curve.size else None,
            "error_vs_ideal": {"slope": _json_float(es), "intercept": _json_float(ei)},
        }
        d = self.gd_vs_closed_form
        closed = exact(self.closed_form)
        if self.statistics is not None:  # terms in coef order: intercept, slope
            r = self.statistics
            se, ci = r.std_errors, r.conf_int(0.95)
            closed["std_errors"] = {"intercept": float(se[0]), "slope": float(se[1])}
            closed["conf_int_95"] = {"intercept": [float(ci[0, 0]), float(ci[0, 1])],
                                     "slope": [float(ci[1, 0]), float(ci[1, 1])]}
            closed["r_squared"] = float(r.r_squared)
            closed["residual_std"] = float(r.residual_std)
        return {
            "schema": SCHEMA,
            "seed": p.seed,
            "n": self.n,
            "dtype": p.dtype,
            "data": {"start": p.start, "stop": p.stop, "step": p.step, "noise_sd": p.noise_sd},
            "ideal": {"slope": IDEAL_SLOPE, "intercept": IDEAL_INTERCEPT},
            "methods": {
                "closed_form": closed,
                "sklearn": exact(self.sklearn),
                "gradient_descent": gd_doc,
            },
            "gd_vs_closed_form": {
                "slope_abs": _json_float(d.slope_abs),
                "intercept_abs": _json_float(d.intercept_abs),
                "slope_rel": _json_float(d.slope_rel),
                "intercept_rel": _json_float(d.intercept_rel),
                "max_rel": _json_float(d.max_rel),
            },
            "versions": dict(self.versions),
        }
