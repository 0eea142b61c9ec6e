"""The Celsius→Fahrenheit study from the article, end to end, as pure functions.

The data are F = 9/5·C + 32 + N(0, noise_sd²) on C = start, start+step, ... < stop
(:func:`jaxlm.datasets.celsius_fahrenheit`), fitted three ways:

1. ``closed_form`` — the statistics formula α = Σ(x−x̄)(y−ȳ) / Σ(x−x̄)², β = ȳ − α·x̄, float64;
2. ``sklearn`` — ``sklearn.linear_model.LinearRegression``, float64;
3. ``gradient_descent`` — :func:`jaxlm.fit_gradient`: x and y standardised (ddof = 0), MSE loss,
   ``jax.grad``, plain gradient steps of size ``lr`` in one jitted ``lax.while_loop`` that stops at
   gradient norm ≤ ``tol``, mapped back with the exact inverse α = ã·σy/σx, β = ȳ + b̃·σy − α·x̄.
   float32 by default, as in the article (JAX's default dtype); ``x64=True`` gives float64.

:func:`run_study` does it all and returns an immutable :class:`StudyResult`;
:meth:`StudyResult.to_json_dict` is the ``results.json`` written by ``jaxlm demo``.
The steps are public too (:func:`check_params`, :func:`make_data`, :func:`fit_closed_form`,
:func:`fit_sklearn` / :class:`SklearnJob`, :func:`fit_gd`, :func:`assemble`) so that the CLI can
overlap the slow scikit-learn import with JAX's compilation.
"""
from __future__ import annotations

import json
import math
import platform
import statistics
import subprocess
import sys
import time
import warnings
from importlib import metadata
from numbers import Integral
from types import MappingProxyType
from typing import Callable, Mapping, NamedTuple

import numpy as np

from . import _sklearn_fit
from .core.closed_form import simple_ols
from .core.errors import check_nonnegative, check_positive, check_positive_int, fail
from .datasets import IDEAL_INTERCEPT, IDEAL_SLOPE, celsius_fahrenheit

__all__ = [
    "IDEAL",
    "Distance",
    "Fit",
    "GradientFit",
    "SklearnJob",
    "StudyParams",
    "StudyResult",
    "assemble",
    "check_params",
    "fit_closed_form",
    "fit_gd",
    "fit_sklearn",
    "make_data",
    "run_study",
]

#: The exact conversion F = 9/5·C + 32, as (slope, intercept).
IDEAL = (IDEAL_SLOPE, IDEAL_INTERCEPT)
#: Upper bounds that keep a mistyped option from exhausting memory.
MAX_READINGS = 10_000_000
MAX_ITER_LIMIT = 10_000_000
#: Version of the results.json layout.
SCHEMA = "jaxlm.demo/1"

_METHOD_LABELS = {
    "closed_form": "closed form (statistics)",
    "sklearn": "scikit-learn LinearRegression",
    "gradient_descent": "JAX gradient descent",
}


# --------------------------------------------------------------------------- parameters


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


def _check_finite(param: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not math.isfinite(value):
        raise fail(param, "a finite number", value)
    return float(value)


def check_params(*, seed=0, start=-5.0, stop=15.0, step=0.05, noise_sd=3.0, lr=0.1, max_iter=10_000,
                 tol=None, x64=False) -> StudyParams:
    """Validate the study's parameters on the host; raise :class:`InputError` naming the first bad one.

    ``InputError.param`` is the keyword name (``"seed"``, ``"start"``, ``"stop"``, ``"step"``,
    ``"noise_sd"``, ``"lr"``, ``"max_iter"`` or ``"tol"``).
    """
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise fail("seed", "an integer >= 0", seed, "Use a non-negative integer, e.g. --seed 0.")
    start = _check_finite("start", start)
    stop = _check_finite("stop", stop)
    step = check_positive("step", step, fix="Use a positive step, e.g. --step 0.05.")
    noise_sd = check_nonnegative("noise_sd", noise_sd, fix="Use a standard deviation >= 0, e.g. --noise 3.")
    lr = check_positive("lr", lr, fix="Use a positive learning rate, e.g. --lr 0.1.")
    max_iter = check_positive_int("max_iter", max_iter, fix="Use at least 1 iteration, e.g. --max-iter 10000.")
    if max_iter > MAX_ITER_LIMIT:
        raise fail("max_iter", f"at most {MAX_ITER_LIMIT:_}", max_iter)
    dtype = "float64" if x64 else "float32"
    if tol is not None:
        tol = check_positive("tol", tol, fix="Use a positive gradient-norm tolerance, e.g. --tol 1e-5.")
    if start >= stop:
        raise fail("start", f"less than stop={stop!r} (an empty range)", start,
                   "Choose --start below --stop, e.g. --start -5 --stop 15.")
    count = (stop - start) / step
    if count > MAX_READINGS:
        raise fail("step", f"large enough that [start, stop) holds at most {MAX_READINGS:_} readings "
                   f"(this one would hold about {count:.3g})", step)
    if count <= 1:  # the grid start + k·step < stop holds a single reading
        raise fail("step", f"small enough that [start, stop) = [{start!r}, {stop!r}) holds at least 2 "
                   "readings", step, "A line needs two points.")
    return StudyParams(int(seed), start, stop, step, noise_sd, lr, max_iter, tol, dtype)


def make_data(params: StudyParams) -> tuple[np.ndarray, np.ndarray]:
    """The study's readings (celsius, fahrenheit): read-only float64 arrays of shape (n,)."""
    c, f = celsius_fahrenheit(seed=params.seed, start=params.start, stop=params.stop, step=params.step,
                              noise_sd=params.noise_sd)
    if c.shape[0] < 2:  # the count check above is approximate at its edge
        raise fail("step", "small enough that [start, stop) holds at least 2 readings", params.step)
    c.setflags(write=False)
    f.setflags(write=False)
    return c, f


# --------------------------------------------------------------------------- fits


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


def _timed(fn: Callable, *, repeats: int, budget_s: float = 0.25):
    """(last result, median seconds) over up to ``repeats`` calls, fewer if they exceed ``budget_s``."""
    times: list[float] = []
    spent = 0.0
    while not times or (len(times) < repeats and spent < budget_s):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        spent += times[-1]
    return out, statistics.median(times)


def fit_closed_form(celsius, fahrenheit, *, repeats: int = 5) -> Fit:
    """Fit 1, the statistics formula (:func:`jaxlm.simple_ols`), in float64."""
    (slope, intercept), seconds = _timed(lambda: simple_ols(celsius, fahrenheit), repeats=repeats)
    return Fit("closed_form", slope, intercept, seconds)


def fit_sklearn(celsius, fahrenheit, *, repeats: int = 5) -> Fit:
    """Fit 2, ``sklearn.linear_model.LinearRegression`` in this process."""
    r = _sklearn_fit.fit(celsius, fahrenheit, repeats=repeats)
    return Fit("sklearn", r["slope"], r["intercept"], r["seconds"])


class SklearnJob:
    """Fit 2 started now, collected later by :meth:`result`.

    With ``subprocess=True`` (and scikit-learn not yet imported here) it runs in a fresh Python
    process, so that the ~2 s ``import sklearn`` overlaps with work done meanwhile in this one;
    any failure of that process falls back to fitting in this process. Otherwise the fit runs
    when :meth:`result` is called.
    """

    def __init__(self, celsius, fahrenheit, *, subprocess: bool = False, repeats: int = 5):
        self._c = np.asarray(celsius, dtype=np.float64)
        self._f = np.asarray(fahrenheit, dtype=np.float64)
        self._repeats = repeats
        self._proc = None
        self._fit: Fit | None = None
        if subprocess and not _sklearn_imported():
            self._proc = self._spawn()

    def _spawn(self):
        if not sys.executable or not _sklearn_fit.__file__:
            return None
        try:
            # -P: do not put the script's directory (inside the package) on sys.path.
            proc = _popen([sys.executable, "-P", _sklearn_fit.__file__])
        except (OSError, ValueError):
            return None
        try:
            proc.stdin.write(np.concatenate([self._c, self._f]).tobytes())
            proc.stdin.close()
        except OSError:  # it died early: fit in this process instead
            proc.kill()
            proc.wait()
            proc.stdout.close()
            return None
        return proc

    def result(self) -> Fit:
        if self._fit is None:
            self._fit = self._collect() if self._proc is not None else None
            if self._fit is None:
                self._fit = fit_sklearn(self._c, self._f, repeats=self._repeats)
        return self._fit

    def _collect(self) -> Fit | None:
        proc, self._proc = self._proc, None
        try:
            r = json.loads(proc.stdout.readline())
            return Fit("sklearn", float(r["slope"]), float(r["intercept"]), float(r["seconds"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        finally:
            proc.stdout.close()
            proc.wait()

    def close(self) -> None:
        """Stop the helper process if it is still running (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()
            proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _sklearn_imported() -> bool:
    """A second process only pays off while this one has not imported scikit-learn yet."""
    return "sklearn" in sys.modules


def _popen(cmd):
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def fit_gd(celsius, fahrenheit, *, lr: float = 0.1, max_iter: int = 10_000, tol: float | None = None,
           dtype: str = "float32", repeats: int = 5) -> GradientFit:
    """Fit 3, :func:`jaxlm.fit_gradient` with ``method="gd"``; the first call is timed separately.

    ``tol=None`` uses the solver's default for ``dtype``. Imports JAX on first use.
    """
    from .core.gradient import DEFAULT_TOL, fit_gradient

    X = np.asarray(celsius, dtype=np.float64)[:, None]
    Y = np.asarray(fahrenheit, dtype=np.float64)[:, None]
    tol = DEFAULT_TOL[dtype] if tol is None else tol

    def call():
        with warnings.catch_warnings():  # the status is reported in the result, not as a warning
            warnings.simplefilter("ignore")
            return fit_gradient(X, Y, method="gd", dtype=dtype, learning_rate=lr, tol=tol, max_iter=max_iter)

    t0 = time.perf_counter()
    sol = call()
    first = time.perf_counter() - t0
    seconds = first
    if repeats > 1:
        _, seconds = _timed(call, repeats=repeats - 1)
    diverged = bool(sol.diverged)
    slope = float("nan") if diverged else float(sol.coef[0, 0])
    intercept = float("nan") if diverged else float(sol.intercept[0])
    curve = np.asarray(sol.loss_curve, dtype=np.float64).copy()
    curve.setflags(write=False)
    return GradientFit(slope, intercept, seconds, first, sol.dtype, float(lr), float(tol), int(max_iter),
                       int(sol.n_iter), bool(sol.converged) and not diverged, diverged, float(sol.grad_norm),
                       curve)


# --------------------------------------------------------------------------- result


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


def fit_statistics(celsius, fahrenheit):
    """Standard errors, t, p, 95% intervals, R², F ... of the least-squares line.

    Read off jaxlm's exact solver (the same line as the closed form, to rounding) by
    :mod:`jaxlm.inference`; scikit-learn is not involved (nor imported).
    """
    from .core.exact import fit_exact
    from .inference import regression_results

    X = np.asarray(celsius, dtype=np.float64)[:, None]
    Y = np.asarray(fahrenheit, dtype=np.float64)[:, None]
    w = np.ones(X.shape[0])
    batches = lambda: [(X, Y, w)]  # noqa: E731
    sol = fit_exact(batches, 1, 1, size=X.size)
    return regression_results(sol, fit_intercept=True, batches=batches, feature_names=["celsius"],
                              target_names=["fahrenheit"], robust=False)[0]


def assemble(params: StudyParams, celsius, fahrenheit, closed_form: Fit, sklearn: Fit,
             gradient_descent: GradientFit, statistics=None) -> StudyResult:
    """Bundle the pieces into a :class:`StudyResult` (records the library versions)."""
    return StudyResult(params, celsius, fahrenheit, closed_form, sklearn, gradient_descent, _versions(),
                       statistics)


def run_study(*, seed: int = 0, start: float = -5.0, stop: float = 15.0, step: float = 0.05,
              noise_sd: float = 3.0, lr: float = 0.1, max_iter: int = 10_000, tol: float | None = None,
              x64: bool = False, repeats: int = 5) -> StudyResult:
    """Generate the article's data and fit it three ways; see the module docstring.

    Parameters
    ----------
    seed, start, stop, step, noise_sd : the data (:func:`jaxlm.datasets.celsius_fahrenheit`).
    lr, max_iter, tol : gradient-descent step size, iteration bound and gradient-norm tolerance
        (``tol=None``: 1e-5 in float32, 1e-10 in float64).
    x64 : run gradient descent in float64 instead of float32 (the two exact fits are float64).
    repeats : each fit's ``seconds`` is the median of up to this many calls.

    Raises
    ------
    InputError
        for a bad parameter, before any work is done; ``.param`` names it.

    Examples
    --------
    >>> r = run_study(seed=0)                                   # doctest: +SKIP
    >>> r.gradient_descent.converged, r.gd_vs_closed_form.max_rel < 1e-5   # doctest: +SKIP
    (True, True)
    """
    p = check_params(seed=seed, start=start, stop=stop, step=step, noise_sd=noise_sd, lr=lr,
                     max_iter=max_iter, tol=tol, x64=x64)
    c, f = make_data(p)
    cf = fit_closed_form(c, f, repeats=repeats)
    sk = fit_sklearn(c, f, repeats=repeats)
    gd = fit_gd(c, f, lr=p.lr, max_iter=p.max_iter, tol=p.tol, dtype=p.dtype, repeats=repeats)
    return assemble(p, c, f, cf, sk, gd, fit_statistics(c, f))

