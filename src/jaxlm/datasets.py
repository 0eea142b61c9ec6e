"""Data sets: the article's Celsius/Fahrenheit readings, synthetic problems, NIST StRD."""
from __future__ import annotations

import json
from importlib import resources
from typing import NamedTuple

import numpy as np

from .core.errors import check_nonnegative, check_positive, fail

IDEAL_SLOPE = 9.0 / 5.0
IDEAL_INTERCEPT = 32.0


def celsius_grid(*, start: float = -5.0, stop: float = 15.0, step: float = 0.05) -> np.ndarray:
    """``start, start+step, ...`` up to but not including ``stop`` (computed as start + k·step)."""
    step = check_positive("step", step, fix="Use a positive step, e.g. --step 0.05.")
    if not (np.isfinite(start) and np.isfinite(stop)) or start >= stop:
        raise fail("start", f"less than stop={stop!r} (an empty range)", start,
                   "Choose --start below --stop, e.g. --start -5 --stop 15.")
    count = int(np.ceil((stop - start) / step - 1e-9))
    return start + step * np.arange(count, dtype=np.float64)


def celsius_fahrenheit(*, seed: int = 0, start: float = -5.0, stop: float = 15.0, step: float = 0.05,
                       noise_sd: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """The article's data: F = 9/5·C + 32 + N(0, noise_sd²), reproducible from ``seed``.

    Returns (celsius, fahrenheit), float64 arrays of shape (n,); n = 400 with the defaults.
    """
    noise_sd = check_nonnegative("noise_sd", noise_sd, fix="Use a standard deviation >= 0, e.g. --noise 3.")
    c = celsius_grid(start=start, stop=stop, step=step)
    rng = np.random.default_rng(seed)
    f = IDEAL_SLOPE * c + IDEAL_INTERCEPT + rng.normal(0.0, noise_sd, size=c.shape)
    return c, f


def make_linear(n: int, d: int, m: int = 1, *, noise: float = 1.0, seed: int = 0, intercept: float = 1.0):
    """A well-conditioned random problem: X ~ N(0, 1) (n, d), coef ~ N(0, 1) (m, d).

    Returns (X, Y, coef, intercept) with Y of shape (n, m).
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    coef = rng.normal(size=(m, d))
    b = np.full(m, float(intercept))
    Y = X @ coef.T + b + noise * rng.normal(size=(n, m))
    return X, Y, coef, b


class NistDataset(NamedTuple):
    name: str
    difficulty: str
    X: np.ndarray            # design columns except the intercept, float64, as a user builds them
    y: np.ndarray
    columns: tuple            # names of X's columns ("x", "x**2", ... or "x1".."x6")
    intercept: bool
    certified: dict           # the certified JSON as published (estimates, sds, residual_sd, r_squared)


def _nist_dir():
    return resources.files("jaxlm") / "data" / "nist"


def nist_names() -> list[str]:
    return [row["dataset"] for row in json.loads((_nist_dir() / "index.json").read_text())]


def load_nist(name: str) -> NistDataset:
    """Load a NIST StRD linear regression dataset with its certified values.

    The design is built in float64 exactly as a user would: the CSV's decimal strings
    parsed to float64, polynomial columns as ``x**k``.
    """
    names = nist_names()
    if name not in names:
        raise fail("name", f"one of {', '.join(names)}", name)
    cert = json.loads((_nist_dir() / f"{name}.certified.json").read_text())
    text = (_nist_dir() / cert["csv"]).read_text().strip().splitlines()
    data = np.array([[float(v) for v in line.split(",")] for line in text[1:]], dtype=np.float64)
    model = cert["model"]
    cols = [c for c in model["design_columns"] if c != "1"]
    if model["kind"] == "polynomial":
        x = data[:, 0]
        X = np.column_stack([x**k for k in range(1, model["degree"] + 1)])
    else:
        X = data[:, :-1]
    return NistDataset(name, cert["difficulty"], X, data[:, -1], tuple(cols), bool(model["intercept"]), cert)
