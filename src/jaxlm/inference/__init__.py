"""Regression statistics read off the fitted least-squares state and solution.

Public API
----------
``regression_results(solution, *, fit_intercept, weights_kind, alpha, batches, ...)``
    -> tuple of :class:`RegressionResults`, one per target.
``summary(results, *, level=0.95, cov="nonrobust")`` -> :class:`Summary` (text, HTML, DataFrame, dict).
``predict_interval(results, X_new, *, kind="confidence", level=0.95, weights=None)`` -> :class:`Interval`.
"""
from .predict import Interval, predict_interval
from .results import COV_KINDS, WEIGHTS_KINDS, CoefTable, RegressionResults, regression_results
from .summary import Summary, summary

__all__ = ["COV_KINDS", "WEIGHTS_KINDS", "CoefTable", "Interval", "RegressionResults", "Summary",
           "predict_interval", "regression_results", "summary"]
