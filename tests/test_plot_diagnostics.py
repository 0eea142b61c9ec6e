"""The diagnostic panels show what they claim: labels at their points, the trend line over the
whole range, Cook's contours in the legend only when drawn."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import jaxlm  # noqa: E402
from jaxlm.plotting.diagnostics import diagnostic_figures, diagnostics  # noqa: E402


@pytest.fixture(scope="module")
def skewed():
    """Fitted values mostly below 640 and a few up to ~1400 (as the Grunfeld data)."""
    rng = np.random.default_rng(1)
    x = np.r_[rng.uniform(0, 300, 190), rng.uniform(500, 700, 10)]
    y = 2.0 * x + 40 + rng.normal(0, 30, x.size)
    y[5] += 250  # an outlier with some leverage
    X = x[:, None]
    return jaxlm.LinearRegression().fit(X, y), X, y[:, None]


def _figs(model, X, Y):
    return diagnostic_figures(model, X, Y, rows=np.arange(len(X)))


def test_leverage_labels_sit_on_their_points(skewed):
    model, X, Y = skewed
    diag = diagnostics(model, X, Y)
    ax = _figs(model, X, Y)["residuals_vs_leverage"].axes[0]
    labels = [t for t in ax.texts if t.get_text().isdigit()]
    assert len(labels) == 3
    top = set(np.argsort(diag.cooks)[-3:] + 1)
    assert {int(t.get_text()) for t in labels} == top  # the most influential rows
    for t in labels:
        i = int(t.get_text()) - 1
        assert t.xy == pytest.approx((diag.leverage[i], diag.std_residuals[i]))
        if diag.leverage[i] > 0.85 * np.max(diag.leverage):
            assert t.get_ha() == "right"  # not clipped at the right edge


def test_cooks_contours_in_the_legend_only_when_visible(skewed):
    model, X, Y = skewed
    ax = _figs(model, X, Y)["residuals_vs_leverage"].axes[0]
    ylo, yhi = ax.get_ylim()
    legend = ax.get_legend()
    names = [t.get_text() for t in legend.get_texts()] if legend is not None else []
    for line in ax.get_lines():
        if line.get_label().startswith("Cook"):
            assert np.min(np.abs(line.get_ydata())) <= yhi  # drawn ones reach the plotted range
    for level in ("0.5", "1"):
        shown = f"Cook's distance {level}" in names
        drawn = any(line.get_label() == f"Cook's distance {level}" for line in ax.get_lines())
        assert shown == drawn


def test_trend_line_spans_all_fitted_values(skewed):
    model, X, Y = skewed
    diag = diagnostics(model, X, Y)
    for stem in ("residuals_vs_fitted", "scale_location"):
        ax = _figs(model, X, Y)[stem].axes[0]
        trend = [ln for ln in ax.get_lines() if len(ln.get_xdata()) > 2]
        assert trend, stem
        xs = trend[0].get_xdata()
        assert xs.min() == pytest.approx(diag.fitted.min()) and xs.max() == pytest.approx(diag.fitted.max())


def test_trend_line_is_lowess_without_robustness_iterations():
    """The trend line equals statsmodels' lowess (frac 2/3, no robustness iterations) on the grid."""
    lowess = pytest.importorskip("statsmodels.nonparametric.smoothers_lowess").lowess
    from jaxlm.plotting.diagnostics import _smooth

    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, 400)
    y = x**2 + rng.normal(0, 0.1, 400)
    gx, gy = _smooth(x, y)
    want = lowess(y, x, frac=2 / 3, it=0, delta=0.0, xvals=gx)
    np.testing.assert_allclose(gy, want, rtol=1e-9, atol=1e-9)
