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
import statistics
import subprocess
import sys
import time
import warnings
from numbers import Integral
from typing import Callable

import numpy as np

from . import _sklearn_fit
from .core.closed_form import simple_ols
from .core.errors import check_nonnegative, check_positive, check_positive_int, fail
from .datasets import celsius_fahrenheit
from .demo_types import IDEAL, SCHEMA, Distance, Fit, GradientFit, StudyParams, StudyResult, _versions  # noqa: F401

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

#: Upper bounds that keep a mistyped option from exhausting memory.
MAX_READINGS = 10_000_000
MAX_ITER_LIMIT = 10_000_000


# --------------------------------------------------------------------------- parameters


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
    sol = fit_exact(batches, 1, 1)
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

