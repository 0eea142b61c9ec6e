"""Regression statistics read off the fitted least-squares state and solution.

Public API
----------
``regression_results(solution, *, fit_intercept, weights_kind, alpha, run, ...)``
    -> tuple of :class:`RegressionResults`, one per target.
``summary(results, *, level=0.95, cov="nonrobust")`` -> :class:`Summary` (text, HTML, DataFrame, dict).
``predict_interval(results, X_new, *, kind="confidence", level=0.95, weights=None)`` -> :class:`Interval`.
``pass_plan(solution, ...)`` and ``stats_reduction(plan)``: the one extra pass over the data (HC
    covariances, Σ log w, refinement of (XᵀWX)⁻¹) as a reduction that any driver of
    :mod:`jaxlm.reduce` runs; ``block_sums`` / ``PassSums.merge`` are its pieces.

Applied econometrics (import the modules): :mod:`.cluster` (one-/two-way cluster-robust),
:mod:`.hac` (Newey–West), :mod:`.hypothesis` (Wald/t/F tests, ``anova``), :mod:`.table` (models
side by side), :mod:`.glm` (GLM statistics).
"""
from ._pass import PassPlan, PassSums, block_sums, stats_reduction
from .predict import Interval, predict_interval
from ._common import COV_KINDS, WEIGHTS_KINDS, CoefTable
from .regression import RegressionResults
from .results import pass_plan, regression_results
from .summary import Summary, summary

__all__ = ["COV_KINDS", "WEIGHTS_KINDS", "CoefTable", "Interval", "PassPlan", "PassSums", "RegressionResults",
           "Summary", "block_sums", "pass_plan", "predict_interval", "regression_results", "stats_reduction", "summary"]
