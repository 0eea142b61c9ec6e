"""The textbook closed form for one predictor (the article's "solving with statistics")."""
from __future__ import annotations

import numpy as np


def simple_ols(x, y) -> tuple[float, float]:
    """Slope and intercept of y ≈ α·x + β by the covariance formula, in float64.

    α = Σ(x−x̄)(y−ȳ) / Σ(x−x̄)²,  β = ȳ − α·x̄.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    xc = x - x.mean()
    slope = float(np.dot(xc, y - y.mean()) / np.dot(xc, xc))
    return slope, float(y.mean() - slope * x.mean())
