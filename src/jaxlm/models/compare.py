"""Comparing fitted models: nested-model tests (:func:`anova`) and tables side by side (:func:`table`).

Both take fitted estimators (``jaxlm.LinearRegression``, a model read by ``jaxlm.load``) or their
:class:`jaxlm.inference.RegressionResults`, one target each, and call the plain-array functions
of :mod:`jaxlm.inference.hypothesis` and :mod:`jaxlm.inference.table`.
"""
from __future__ import annotations

from ..core.errors import InputError


def _results(m, i: int):
    res = getattr(m, "results_", m)
    if isinstance(res, (tuple, list)):
        if len(res) != 1:
            raise InputError("models", f"models must each have one target; model {i + 1} has {len(res)}. Compare "
                                       f"one target at a time (model.results_[k]).")
        res = res[0]
    if type(res).__name__ == "GLMResults":
        raise InputError("models", f"models must be linear models (or absorbed fixed-effects fits) for now; model "
                                   f"{i + 1} is a GLM.")
    if not hasattr(res, "term_names"):
        raise InputError("models", f"models must be fitted linear models or their results; model {i + 1} is a "
                                   f"{type(m).__name__}.")
    return res


def anova(*models, scale: float | None = None):
    """F and likelihood-ratio tests of nested models fitted to the same rows, smallest first
    (statsmodels ``anova_lm``, R ``anova``); ``str()`` or ``.to_frame()`` of the result."""
    from ..inference.hypothesis import anova as _anova

    return _anova(*(_results(m, i) for i, m in enumerate(models)), scale=scale)


def table(models, *, titles=None, stars: bool = True, digits: int = 3, cov: str | None = None):
    """Models side by side (fixest ``etable``, statsmodels ``summary_col``): coefficients with
    standard errors under each model's ``cov_type`` (or ``cov``), N, R² and the covariance kind;
    ``str(t)`` or ``t.render("html" | "markdown" | "latex")``."""
    from ..inference.table import record, table as _table

    models = list(models)
    if titles is not None and len(titles) != len(models):
        raise InputError("titles", f"titles must name each of the {len(models)} models; got {len(titles)}.")
    records = []
    for i, m in enumerate(models):
        res = _results(m, i)
        records.append(record(res, cov=cov, title=None if titles is None else str(titles[i]),
                              fe=tuple(getattr(res, "fixed_effects", ()))))
    return _table(records, stars=stars, digits=digits)
