"""Figures for the Celsius→Fahrenheit study, returned as :class:`matplotlib.figure.Figure`.

Pure functions: each builds a new ``Figure`` directly (no ``pyplot``, no global backend, never
``show``), so they work without a display and leave matplotlib's state alone. Save one with
``fig.savefig(path)``. matplotlib is imported on first use, not when this module is imported.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

__all__ = ["plot_data", "plot_fits", "plot_loss", "warm_up"]

_FIGSIZE = (6.4, 4.4)
_DPI = 100
#: Line styles for successive fits; they can coincide, so each is drawn differently.
_STYLES = (
    {"color": "tab:blue", "linestyle": "-", "linewidth": 4.0, "alpha": 0.55},
    {"color": "tab:orange", "linestyle": "--", "linewidth": 2.2},
    {"color": "tab:green", "linestyle": ":", "linewidth": 2.2},
    {"color": "tab:purple", "linestyle": "-.", "linewidth": 1.6},
)


def warm_up() -> None:
    """Import matplotlib and render a tiny figure once (fonts, log axis, legend, PNG writer).

    The first figure of a process otherwise pays for all of that. Meant to run in a background
    thread while the main thread waits on something that releases the GIL (XLA compiling);
    join that thread before plotting in the main thread.
    """
    import io

    fig, ax = new_figure("warm up")
    ax.plot([1.0, 2.0], [1.0, 10.0], marker=".", label="x")
    ax.scatter([1.0], [2.0], s=4, label="y")
    ax.set_xlabel("x")
    ax.set_yscale("log")
    ax.legend()
    fig.savefig(io.BytesIO(), format="png", dpi=10)


def new_figure(title: str | None, *, figsize=_FIGSIZE, left: float = 0.12):
    """A display-free matplotlib Figure with one Axes (no pyplot, so no GUI backend)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=_DPI)
    fig.subplots_adjust(left=left, right=0.97, bottom=0.12, top=0.90)
    ax = fig.add_subplot()
    if title:
        ax.set_title(title)
    return fig, ax


def _scatter(ax, celsius, fahrenheit):
    c = np.asarray(celsius, dtype=np.float64)
    f = np.asarray(fahrenheit, dtype=np.float64)
    if c.shape != f.shape or c.ndim != 1:
        raise ValueError(f"celsius and fahrenheit must be 1-D of equal length; got shapes {c.shape} and {f.shape}.")
    ax.scatter(c, f, s=8, alpha=0.5, color="0.35", edgecolors="none", label=f"readings (n = {c.size})")
    ax.set_xlabel("Celsius")
    ax.set_ylabel("Fahrenheit")
    ax.grid(True, alpha=0.3)
    return c, f


def _span(c: np.ndarray) -> np.ndarray:
    return np.array([c.min(), c.max()]) if c.size else np.array([0.0, 1.0])


def plot_data(celsius, fahrenheit, ideal: Sequence[float] = (9 / 5, 32.0), *, title: str | None = None):
    """Scatter of the readings with the ideal line ``F = slope·C + intercept``.

    Parameters
    ----------
    celsius, fahrenheit : arrays of shape (n,)
    ideal : (slope, intercept) of the exact conversion, by default (9/5, 32).
    """
    fig, ax = new_figure(title or "Readings and the exact conversion")
    c, _ = _scatter(ax, celsius, fahrenheit)
    slope, intercept = map(float, ideal)
    xs = _span(c)
    ax.plot(xs, slope * xs + intercept, color="tab:red", linewidth=2,
            label=f"ideal F = {slope:g}·C + {intercept:g}")
    ax.legend(loc="upper left")
    return fig


def plot_fits(celsius, fahrenheit, fits: Mapping[str, Sequence[float]], *, ideal: Sequence[float] | None = None,
              title: str | None = None):
    """Scatter of the readings with one line per fit.

    Parameters
    ----------
    celsius, fahrenheit : arrays of shape (n,)
    fits : mapping label -> (slope, intercept). A fit with a non-finite slope or intercept
        (a diverged run) gets no line; its legend entry says so.
    ideal : optional (slope, intercept) drawn thin and grey for reference.
    """
    fig, ax = new_figure(title or "Three fits of the same readings")
    c, _ = _scatter(ax, celsius, fahrenheit)
    xs = _span(c)
    for i, (label, (slope, intercept)) in enumerate(fits.items()):
        style = _STYLES[i % len(_STYLES)]
        slope, intercept = float(slope), float(intercept)
        if math.isfinite(slope) and math.isfinite(intercept):
            ax.plot(xs, slope * xs + intercept, label=f"{label}: {slope:.5f}·C + {intercept:.4f}", **style)
        else:
            ax.plot([], [], label=f"{label}: no fit (diverged)", **style)
    if ideal is not None:
        s, b = map(float, ideal)
        ax.plot(xs, s * xs + b, color="0.2", linewidth=0.8, label=f"ideal: {s:g}·C + {b:g}")
    ax.legend(loc="upper left", fontsize="small")
    return fig


def plot_loss(loss_curve, *, converged: bool = False, title: str | None = None):
    """Loss per iteration on a log scale.

    Parameters
    ----------
    loss_curve : array of shape (k,), the loss before each step (and at the end). Non-finite
        or non-positive values cannot be shown on a log axis and are left out.
    converged : when True the final loss is the minimum, and the excess ``loss − final loss``
        is drawn too: the loss itself levels off at the residual variance, the excess shows
        the rate of convergence.
    """
    from matplotlib.ticker import FormatStrFormatter, MaxNLocator, NullLocator

    fig, ax = new_figure(title or "Gradient descent: loss per iteration")
    loss = np.asarray(loss_curve, dtype=np.float64).ravel()
    it = np.arange(loss.size)
    ok = np.isfinite(loss) & (loss > 0)
    ax.set_xlabel("iteration")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("mean squared error (standardised units)")
    ax.grid(True, which="major", alpha=0.3)
    if not ok.any():
        ax.text(0.5, 0.5, "no finite positive loss to show", ha="center", va="center", transform=ax.transAxes)
        return fig
    marker = "." if ok.sum() <= 200 else None
    ax.plot(it[ok], loss[ok], color="tab:green", marker=marker, label=f"loss ({loss.size - 1} iterations)")
    shown_values = loss[ok]
    if converged:
        excess = loss - loss[ok][-1]
        shown = ok & (excess > 0)
        if shown.sum() >= 2:
            ax.plot(it[shown], excess[shown], color="tab:blue", linestyle="--", marker=marker, markersize=3,
                    label="loss − final loss")
            shown_values = np.concatenate([shown_values, excess[shown]])
    ax.set_yscale("log")
    if shown_values.max() > 100 * shown_values.min():
        ax.yaxis.set_minor_locator(NullLocator())  # many decades: minor ticks only cost time
    else:  # within two decades the minor ticks carry the labels; keep them short
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
    ax.legend(loc="best")
    if (~ok).any():
        ax.annotate(f"{int((~ok).sum())} non-finite value(s) not shown", xy=(0.99, 0.02),
                    xycoords="axes fraction", ha="right", va="bottom", fontsize="small", color="tab:red")
    return fig
