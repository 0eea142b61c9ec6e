"""Regression statistics read off the fitted least-squares state and solution.

Public API
----------
``regression_results(solution, *, fit_intercept, weights_kind, alpha, batches, ...)``
    -> tuple of :class:`RegressionResults`, one per target.
``summary(results, *, level=0.95, cov="nonrobust")`` -> :class:`Summary` (text, HTML, DataFrame, dict).
``predict_interval(results, X_new, *, kind="confidence", level=0.95, weights=None)`` -> :class:`Interval`.
``pass_plan(solution, ...)``, ``block_sums(plan, X, Y, w)``, ``PassSums.merge``: the one extra
    pass over the data (HC covariances, Σ log w, refinement of (XᵀWX)⁻¹) as mergeable sums,
    for fits whose data are distributed or streamed; pass the total as ``sums=``.
"""
from ._pass import PassPlan, PassSums, block_sums
from .predict import Interval, predict_interval
from .results import COV_KINDS, WEIGHTS_KINDS, CoefTable, RegressionResults, pass_plan, regression_results
from .summary import Summary, summary

__all__ = ["COV_KINDS", "WEIGHTS_KINDS", "CoefTable", "Interval", "PassPlan", "PassSums", "RegressionResults",
           "Summary", "block_sums", "pass_plan", "predict_interval", "regression_results", "summary"]
