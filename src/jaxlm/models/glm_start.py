"""The subsample start of a large in-memory (or Dask) GLM fit (:func:`jaxlm.models.glm.fit_glm`):
IRLS first on every ``step``-th row, whose answer (a few standard errors from the MLE) starts
the full-data IRLS, with that fit's information matrix as the curvature of its first,
quasi-Newton, steps (:class:`jaxlm.core.irls_steps.Curvature`).

In memory the subsample is copied once into contiguous arrays (a strided read of every
``step``-th row costs nearly a full read each pass); other drivers thin each block as they pass
it (:func:`jaxlm.core.glm_passes.thinned`).
"""
from __future__ import annotations

import warnings

import numpy as np

from ..core import irls, irls_steps
from ..core.glm_passes import thinned
from ..reduce import memory

__all__ = ["subsample_start"]


def _sub_runner(run, arrays, step: int):
    """``run`` over every ``step``-th row: contiguous copies of the in-memory rows, or thinned blocks."""
    X = None if arrays is None else arrays[0]
    if not isinstance(X, np.ndarray):  # a driver (or a sparse X): thin its blocks
        return lambda reduction: run(thinned(reduction, step))
    X, y, w, offset, vw = (None if a is None else np.ascontiguousarray(a[::step]) for a in arrays)
    extra = () if offset is None and vw is None else (np.zeros(len(w)) if offset is None else offset,)
    return memory.arrays_runner(X, y[:, None], w, *extra, *(() if vw is None else (vw,)))


def subsample_start(run, d, family, link, data, *, fit_intercept, alpha, max_iter, arrays, min_rows: int,
                    step: int, tol: float, quasi_newton: bool):
    """``((coef, intercept), curvature or None)`` of the fit on a systematic row subsample, or
    ``(None, None)`` (fewer than ``min_rows`` rows or 50 rows a coefficient in the subsample, or
    the subsample's fit warned or failed: then IRLS starts from statsmodels' start as usual).
    ``arrays``: ``(X, y, w, offset, var_weights)`` in memory (None for other drivers)."""
    if data.rows < min_rows or data.nobs // step < 50 * (d + 1):
        return None, None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # separation, rank, non-convergence: no start from it
            sub = irls.fit_irls(_sub_runner(run, arrays, step), d, family=family, link=link,
                                fit_intercept=fit_intercept, alpha=alpha / step, tol=tol, max_iter=max_iter)
    except (Warning, ValueError, ArithmeticError, np.linalg.LinAlgError):
        return None, None
    if not sub.converged or sub.rank < d or not np.all(np.isfinite(sub.coef)):
        return None, None
    curvature = irls_steps.curvature_of(sub, data.wnobs / sub.data.wnobs) if quasi_newton else None
    return (sub.coef, sub.intercept), curvature
