"""The estimator's ``cov_type``: which covariance its statistics use, and the pass that computes it.

``"nonrobust"`` (σ̂²(X̃ᵀWX̃)⁻¹) and ``"HC0"``–``"HC3"`` come from the statistics' pass
(:mod:`jaxlm.inference.results`); ``"cluster"`` runs the cluster-score reduction over the rows
with the cluster column(s) as extra per-row arrays (:func:`jaxlm.inference.cluster.clustered`:
one- or two-way CR1, statsmodels' small-sample factor, ``G − 1`` degrees of freedom);
``"HAC"`` the Newey–West reduction over the rows in their order
(:func:`jaxlm.inference.hac.hac`: Bartlett kernel, lag ``hac_maxlags`` or statsmodels' rule
``floor(4 (n/100)^(2/9))``, no small-sample correction).
"""
from __future__ import annotations

import numpy as np

from ..core.errors import InputError




def group_columns(groups, n: int) -> list[np.ndarray]:
    """The cluster column(s) of ``groups`` (n,) or (n, 2): one array per grouping, checked."""
    if groups is None:
        raise InputError("groups", "cov_type='cluster' needs the cluster column: pass fit(X, y, groups=...) with "
                                   "one value per row (or two columns for two-way clustering).")
    from ..scale.dask import group_columns as dask_group_columns, is_dask_collection

    if is_dask_collection(groups) or (isinstance(groups, (list, tuple)) and any(map(is_dask_collection, groups))):
        return dask_group_columns(groups, n)  # dask arrays, checked on the workers
    if hasattr(groups, "columns"):  # a DataFrame: its columns
        cols = [np.asarray(groups[c]) for c in groups.columns]
    else:
        a = np.asarray(groups)
        cols = [a] if a.ndim == 1 else [a[:, j] for j in range(a.shape[1])] if a.ndim == 2 else []
    if not 1 <= len(cols) <= 2 or any(len(c) != n for c in cols):
        shape = np.shape(groups)
        raise InputError("groups", f"groups must have one value per row of X ({n}), in one column (one-way) or two "
                                   f"(two-way clustering); got shape {shape}.")
    for k, c in enumerate(cols):
        missing = _missing(c)
        if missing.any():
            row = int(np.flatnonzero(missing)[0])
            raise InputError("groups", f"groups must have no missing values (a row without a cluster cannot be "
                                       f"assigned); got one in column {k} at row {row}. Drop those rows or give "
                                       f"them a cluster.")
    return cols


def _missing(c: np.ndarray) -> np.ndarray:
    if c.dtype.kind == "f":
        return np.isnan(c)
    if c.dtype.kind == "O":
        return np.array([v is None or (isinstance(v, float) and v != v) for v in c], dtype=bool)
    return np.zeros(len(c), dtype=bool)


def with_cov_type(results: tuple, cov_type: str, *, solution, run_with, fit_intercept: bool, weights_kind: str,
                  groups=None, hac_maxlags=None, n_rows: int) -> tuple:
    """``results`` (one per target) with ``cov_type`` as their default covariance, computing the
    cluster or HAC covariance first (``run_with(*extra)``: a driver over the fit's rows with
    ``extra`` per-row arrays). Fits without inference (ridge, gradient) keep ``"nonrobust"``."""
    if cov_type == "nonrobust" or not results[0].has_inference:
        return results
    if cov_type in ("cluster", "HAC") and run_with is None:
        raise InputError("cov_type", f"cov_type={cov_type!r} needs a pass over the fit's rows, which these results "
                                     f"cannot make; fit with the data (LinearRegression.fit, jaxlm.fit_table with "
                                     f"cluster= for a file), or use cov_type='HC1'.")
    extra = [None] * len(results)
    if cov_type == "cluster":
        from ..inference.cluster import cluster_label, clustered

        cols = group_columns(groups, n_rows)
        cc = clustered(run_with(*cols), solution, fit_intercept=fit_intercept, weights_kind=weights_kind,
                       n_dims=len(cols))
        extra = [{"cluster": (cc.cov[k], cc.df, cluster_label(cc))} for k in range(len(results))]
    elif cov_type == "HAC":
        from ..inference.hac import hac, hac_label, resolve_lags

        lags = resolve_lags(hac_maxlags, n_rows)
        cov = hac(run_with(), solution, fit_intercept=fit_intercept, weights_kind=weights_kind, maxlags=lags)
        extra = [{"HAC": (cov[k], r.df_resid, hac_label(lags))} for k, r in enumerate(results)]
    return tuple(r.with_cov_type(cov_type, e) for r, e in zip(results, extra))


#: The HC kinds that the statistics' pass computes for an HC ``cov_type`` (HC0 and HC1 share one meat).
HC_ROUTE = {"HC0": ("HC0", "HC1"), "HC1": ("HC0", "HC1"), "HC2": ("HC2",), "HC3": ("HC3",)}


def needs_hc(params: dict) -> tuple[str, ...]:
    """The HC kinds the statistics' pass must compute for these estimator parameters (its
    ``robust=``): all four with ``robust=True``, else those an HC ``cov_type`` reads (each kind's
    meat costs one ``syrk`` per block, and HC0/HC1 need no leverages), else none (empty: falsy)."""
    if params.get("robust"):
        return ("HC0", "HC1", "HC2", "HC3")
    return HC_ROUTE.get(params.get("cov_type"), ())


def apply_params(results: tuple, params: dict, *, solution, run_with=None, groups=None, n_rows: int = 0,
                 data: bool = True) -> tuple:
    """``results`` (one per target) as the estimator's parameters ask: no t/F inference for
    ``positive=True`` (constrained estimates), else :func:`with_cov_type` of ``cov_type``
    (``run_with`` None: only the kinds the statistics' pass computed, an InputError otherwise).
    ``data=False`` (a model read from a file: no rows to pass over): a robust ``cov_type`` that
    needs the data leaves the results non-robust, with a note saying so."""
    from dataclasses import replace

    kind = params.get("cov_type", "nonrobust")
    if not data and kind != "nonrobust" and not params.get("positive") and results and results[0].has_inference:
        note = (f"The model was fitted with cov_type={kind!r}; its covariance needs the data, which a model file "
                f"does not hold: the statistics here are non-robust. Refit on the data for {kind} errors.")
        return tuple(replace(r, notes=tuple(r.notes) + (note,)) for r in results)
    if params.get("positive"):
        note = ("positive=True: the estimates are constrained to be >= 0, so the t and F statistics of least "
                "squares do not apply.")
        return tuple(replace(r, inference_note=note, _design=r._design._replace(bread=None)) for r in results)
    return with_cov_type(results, params.get("cov_type", "nonrobust"), solution=solution, run_with=run_with,
                         fit_intercept=params["fit_intercept"], weights_kind=params["weights_kind"], groups=groups,
                         hac_maxlags=params.get("hac_maxlags"), n_rows=n_rows)
