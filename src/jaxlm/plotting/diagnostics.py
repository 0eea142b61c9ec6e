"""Regression diagnostics, R's ``plot.lm`` panels, as :class:`matplotlib.figure.Figure` objects.

Pure functions: each builds a new ``Figure`` (no ``pyplot``, no global backend, never
``show``); save one with ``fig.savefig(path)`` (Agg renders it, no display needed).

:func:`diagnostics` computes, for a sample of rows (for a streamed fit, the reservoir sample
kept during the pass — the whole file is never needed), the fitted values, residuals,
leverage and standardised residuals, reading the leverage off the fit's factor of the normal
matrix::

    h_i = w_i (1/Σw + (x_i − x̄)ᵀ Sxx⁻¹ (x_i − x̄))      (with an intercept; x̃ᵀ(XᵀWX)⁻¹x̃ without)
    r_i* = √w_i e_i / (σ̂ √(1 − h_i)),   σ̂² = SSE / (Σw − p)
    Cook's D_i = r_i*² h_i / (p (1 − h_i))

and :func:`diagnostic_figures` draws the five panels (actual vs predicted, residuals vs
fitted, normal Q–Q, scale–location, residuals vs leverage with Cook's distance contours),
plus the scatter with the fitted line and its confidence and prediction bands for a model
with one predictor, and the loss curve of a gradient solver.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .study import new_figure

__all__ = ["Diagnostics", "diagnostics", "diagnostic_figures", "plot_actual_vs_predicted", "plot_fit_line",
           "plot_leverage", "plot_qq", "plot_residuals_vs_fitted", "plot_scale_location"]

_FIGSIZE = (6.4, 4.8)
_POINT = {"s": 9, "alpha": 0.45, "color": "0.3", "edgecolors": "none"}


class Diagnostics(NamedTuple):
    """Per-row diagnostics of one target on a sample of rows (arrays (k,))."""

    y: np.ndarray
    fitted: np.ndarray
    residuals: np.ndarray
    std_residuals: np.ndarray
    leverage: np.ndarray | None   # None when the fit has no factor (gradient solvers)
    cooks: np.ndarray | None
    sigma: float
    n_params: int
    target: str


def _figure(title: str | None):
    fig, ax = new_figure(title, figsize=_FIGSIZE, left=0.13)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _smooth(x: np.ndarray, y: np.ndarray, frac: float = 2 / 3, points: int = 60):
    """A local-linear trend line over the whole range of x (tricube weights on the nearest
    ``frac`` of the points: R's lowess without its robustness iterations), on ``points`` grid
    values from min(x) to max(x)."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 10 or np.ptp(x) == 0:
        return None
    k = max(int(frac * x.size + 1e-10), 5)
    grid = np.linspace(x.min(), x.max(), points)
    out = np.empty(points)
    for i, g in enumerate(grid):
        dist = np.abs(x - g)
        reach = np.partition(dist, k - 1)[k - 1]
        # tricube, with lowess's cut-offs: weight 1 within 0.001·reach, 0 beyond 0.999·reach
        wt = np.where(dist > 0.999 * reach, 0.0,
                      np.where(dist <= 0.001 * reach, 1.0, np.clip(1.0 - (dist / reach) ** 3, 0.0, None) ** 3))
        sw = wt.sum()
        mx, my = wt @ x / sw, wt @ y / sw
        sxx = wt @ (x - mx) ** 2
        slope = (wt @ ((x - mx) * (y - my))) / sxx if sxx > 0 else 0.0
        out[i] = my + slope * (g - mx)
    return grid, out


def _label_extremes(ax, x, y, rows, k: int = 3, score=None):
    """Label the ``k`` points with the largest ``score`` (default |y|) with their row numbers, at
    the points themselves; labels near the right edge are written to the left of their point."""
    if rows is None or x.size == 0:
        return
    score = np.abs(np.nan_to_num(y if score is None else score))
    finite = np.isfinite(x)
    right = np.nanmax(x) if finite.any() else 0.0
    left = np.nanmin(x) if finite.any() else 0.0
    for i in np.argsort(score)[-k:]:
        if not (np.isfinite(x[i]) and np.isfinite(y[i])):
            continue
        near_edge = x[i] > left + 0.85 * (right - left)
        ax.annotate(str(int(rows[i]) + 1), (x[i], y[i]), fontsize="x-small", color="tab:red",
                    xytext=(-3, 3) if near_edge else (3, 3), textcoords="offset points",
                    ha="right" if near_edge else "left")


def diagnostics(model, X, Y, w=None, *, target: int = 0) -> Diagnostics:
    """Diagnostics of ``model`` (a fitted jaxlm.LinearRegression) on rows ``X`` (k, d), ``Y`` (k,) or (k, m)."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64).reshape(len(X), -1)
    w = np.ones(len(X)) if w is None else np.asarray(w, dtype=np.float64)
    coef = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(model.intercept_, dtype=np.float64))
    fitted = X @ coef[target] + intercept[target]
    y = Y[:, target]
    resid = y - fitted
    d = coef.shape[1]
    fit_intercept = bool(getattr(model, "fit_intercept", True))
    p = d + int(fit_intercept)
    sol = getattr(model, "solution_", None)
    factor = getattr(sol, "factor", None)
    state = getattr(sol, "state", None)
    names = getattr(model, "target_names_", None) or ()
    tname = names[target] if len(names) > target else ("y" if coef.shape[0] == 1 else f"y{target}")
    sse = None if sol is None or sol.sse is None else float(np.asarray(sol.sse).reshape(-1)[target])
    if factor is not None and state is not None and sse is not None:
        wsum = float(state.wsum)
        df = wsum - p
        sigma = math.sqrt(sse / df) if df > 0 else math.nan
        xc = X - np.asarray(state.mean_x)[None, :] if fit_intercept else X
        quad = np.sum(xc * factor.solve(xc.T).T, axis=1)
        h = w * (quad + (1.0 / wsum if fit_intercept else 0.0))
        h = np.clip(h, 0.0, 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            std = np.sqrt(w) * resid / (sigma * np.sqrt(1.0 - h))
            cooks = std**2 * h / (p * (1.0 - h))
        return Diagnostics(y, fitted, resid, std, h, cooks, sigma, p, tname)
    df = max(np.sum(w > 0) - p, 1)
    sigma = math.sqrt(float(np.sum(w * resid**2)) / df)
    with np.errstate(divide="ignore", invalid="ignore"):
        std = np.sqrt(w) * resid / sigma
    return Diagnostics(y, fitted, resid, std, None, None, sigma, p, tname)


def plot_actual_vs_predicted(diag: Diagnostics, *, rows=None, title: str | None = None):
    fig, ax = _figure(title or f"Actual vs predicted ({diag.target})")
    ax.scatter(diag.fitted, diag.y, **_POINT, label=f"rows (n = {diag.y.size:,})")
    both = np.concatenate([diag.fitted, diag.y])
    both = both[np.isfinite(both)]
    if both.size:
        lo, hi = both.min(), both.max()
        ax.plot([lo, hi], [lo, hi], color="tab:red", linewidth=1.5, label="y = ŷ")
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.legend(loc="upper left", fontsize="small")
    return fig


def plot_residuals_vs_fitted(diag: Diagnostics, *, rows=None, title: str | None = None):
    fig, ax = _figure(title or "Residuals vs fitted")
    ax.scatter(diag.fitted, diag.residuals, **_POINT)
    ax.axhline(0.0, color="0.2", linewidth=0.8, linestyle=":")
    line = _smooth(diag.fitted, diag.residuals)
    if line is not None:
        ax.plot(*line, color="tab:red", linewidth=1.5, label="lowess trend")
        ax.legend(loc="best", fontsize="small")
    _label_extremes(ax, diag.fitted, diag.residuals, rows)
    ax.set_xlabel("fitted values")
    ax.set_ylabel("residuals")
    return fig


def plot_qq(diag: Diagnostics, *, rows=None, title: str | None = None):
    from scipy import stats

    fig, ax = _figure(title or "Normal Q–Q")
    r = diag.std_residuals[np.isfinite(diag.std_residuals)]
    k = r.size
    if k:
        order = np.sort(r)
        theo = stats.norm.ppf((np.arange(1, k + 1) - 0.5) / k)
        ax.scatter(theo, order, **_POINT)
        q = np.quantile(r, [0.25, 0.75])
        t = stats.norm.ppf([0.25, 0.75])
        slope = (q[1] - q[0]) / (t[1] - t[0])
        ax.plot(theo[[0, -1]], q[0] + slope * (theo[[0, -1]] - t[0]), color="tab:red", linewidth=1.2,
                linestyle="--", label="through the quartiles")
        ax.legend(loc="upper left", fontsize="small")
    ax.set_xlabel("theoretical quantiles")
    ax.set_ylabel("standardised residuals")
    return fig


def plot_scale_location(diag: Diagnostics, *, rows=None, title: str | None = None):
    fig, ax = _figure(title or "Scale–location")
    s = np.sqrt(np.abs(diag.std_residuals))
    ax.scatter(diag.fitted, s, **_POINT)
    line = _smooth(diag.fitted, s)
    if line is not None:
        ax.plot(*line, color="tab:red", linewidth=1.5, label="lowess trend")
        ax.legend(loc="best", fontsize="small")
    ax.set_xlabel("fitted values")
    ax.set_ylabel("√|standardised residuals|")
    return fig


def plot_leverage(diag: Diagnostics, *, rows=None, title: str | None = None):
    fig, ax = _figure(title or "Residuals vs leverage")
    if diag.leverage is None:
        ax.text(0.5, 0.5, "no leverage: the fit has no factor of XᵀWX (gradient solver)", ha="center",
                va="center", transform=ax.transAxes)
        return fig
    h, r = diag.leverage, diag.std_residuals
    ax.scatter(h, r, **_POINT)
    ax.axhline(0.0, color="0.2", linewidth=0.8, linestyle=":")
    hmax = float(np.nanmax(h)) if h.size else 1.0
    hs = np.linspace(max(1e-6, 0.001 * hmax), max(hmax * 1.05, 1e-3), 100)
    p = diag.n_params
    finite = r[np.isfinite(r)]
    lim = max(np.max(np.abs(finite)) * 1.1, 3.0) if finite.size else 3.0
    for level, style in ((0.5, "--"), (1.0, "-.")):
        bound = np.sqrt(level * p * (1 - hs) / hs)
        if bound[-1] > lim:  # entirely off-screen: neither drawn nor in the legend
            continue
        for sign in (1, -1):
            ax.plot(hs, sign * bound, color="tab:red", linewidth=0.9, linestyle=style,
                    label=f"Cook's distance {level:g}" if sign == 1 else None)
    if not ax.get_legend_handles_labels()[0]:
        ax.text(0.98, 0.02, "Cook's distance contours 0.5 and 1 lie beyond this range", ha="right", va="bottom",
                fontsize="x-small", color="tab:red", transform=ax.transAxes)
    ax.set_ylim(-lim, lim)
    _label_extremes(ax, h, r, rows, score=diag.cooks)  # the most influential rows, at their points
    ax.set_xlim(0, hs[-1])
    ax.set_xlabel("leverage")
    ax.set_ylabel("standardised residuals")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize="small")
    return fig


def plot_fit_line(x, y, grid, fitted, *, confidence=None, prediction=None, xlabel: str = "x", ylabel: str = "y",
                  level: float = 0.95, title: str | None = None):
    """Scatter of one predictor against the target with the fitted line and its bands.

    ``grid``/``fitted``: the line; ``confidence``/``prediction``: (lower, upper) on ``grid``.
    """
    fig, ax = _figure(title or f"{ylabel} against {xlabel}")
    ax.scatter(np.asarray(x), np.asarray(y), **_POINT, label=f"rows (n = {np.size(x):,})")
    if prediction is not None:
        ax.fill_between(grid, prediction[0], prediction[1], color="tab:blue", alpha=0.12,
                        label=f"{level:.0%} prediction band")
    if confidence is not None:
        ax.fill_between(grid, confidence[0], confidence[1], color="tab:blue", alpha=0.35,
                        label=f"{level:.0%} confidence band")
    ax.plot(grid, fitted, color="tab:red", linewidth=1.8, label="fitted line")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(loc="best", fontsize="small")
    return fig


def diagnostic_figures(model, X, Y, w=None, *, rows=None, bands=None, level: float = 0.95) -> dict:
    """``{file stem: Figure}``: the five plot.lm panels per target (stems suffixed by the target
    name when there are several), ``fit`` for one predictor, ``loss`` for gradient solvers.

    ``bands``: optional ``(grid, fitted, (conf_lo, conf_hi), (pred_lo, pred_hi))`` for the
    one-predictor plot (computed by the caller from the fit's statistics).
    """
    coef = np.atleast_2d(np.asarray(model.coef_))
    m, d = coef.shape
    figs = {}
    for k in range(m):
        diag = diagnostics(model, X, Y, w, target=k)
        sfx = "" if m == 1 else f"_{diag.target}"
        figs[f"actual_vs_predicted{sfx}"] = plot_actual_vs_predicted(diag, rows=rows)
        figs[f"residuals_vs_fitted{sfx}"] = plot_residuals_vs_fitted(diag, rows=rows)
        figs[f"normal_qq{sfx}"] = plot_qq(diag, rows=rows)
        figs[f"scale_location{sfx}"] = plot_scale_location(diag, rows=rows)
        figs[f"residuals_vs_leverage{sfx}"] = plot_leverage(diag, rows=rows)
    if d == 1 and m == 1:
        names = getattr(model, "feature_names_in_", None)
        xlabel = str(names[0]) if names is not None else "x"
        tnames = getattr(model, "target_names_", None) or ("y",)
        x = np.asarray(X, dtype=np.float64)[:, 0]
        y = np.asarray(Y, dtype=np.float64).reshape(len(x), -1)[:, 0]
        if bands is not None:
            grid, fitted, conf, pred = bands
        else:
            grid = np.linspace(np.min(x), np.max(x), 100) if x.size else np.zeros(0)
            fitted, conf, pred = grid * coef[0, 0] + float(np.atleast_1d(model.intercept_)[0]), None, None
        figs["fit"] = plot_fit_line(x, y, grid, fitted, confidence=conf, prediction=pred, xlabel=xlabel,
                                    ylabel=str(tnames[0]), level=level)
    sol = getattr(model, "solution_", None)
    loss = getattr(sol, "loss_curve", None)
    if loss is not None and np.size(loss) > 0:
        from .study import plot_loss

        figs["loss"] = plot_loss(loss, title=f"{model.solver}: loss per iteration")
    return figs
