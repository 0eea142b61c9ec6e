"""A GLM estimator's ``cov_type``: which covariance its statistics use, and the passes computing it
(with the in-memory fit's per-row arrays, whose block layout the cluster pass extends).

``"nonrobust"`` (φ times the inverse information) and ``"HC0"``–``"HC3"`` come from the
statistics' pass (:func:`jaxlm.inference.glm.glm_results`; an HC kind turns its robust part on,
as ``robust=True``); ``"cluster"`` adds one more pass over the rows with the cluster column(s)
(:func:`jaxlm.inference.glm_cluster.glm_clustered_z`: one- or two-way CR1 with statsmodels'
small-sample factor, z and p from the normal distribution as statsmodels' GLM). The cluster
columns are checked as :class:`jaxlm.LinearRegression`'s (:func:`jaxlm.models.covariance.group_columns`).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..core.errors import InputError, check_choice
from ..inference.glm import glm_results
from ..inference.cluster import cluster_label
from ..inference.glm_cluster import glm_clustered_z
from ..reduce import memory
from .covariance import group_columns
from .glm_rules import offsets, row_values

__all__ = ["COV_TYPES", "HC_KINDS", "MemoryRuns", "check_cov_type", "cluster_columns", "glm_statistics",
           "memory_runs", "dask_cluster_run"]

COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster")
HC_KINDS = ("HC0", "HC1", "HC2", "HC3")


def check_cov_type(cov_type) -> str:
    return check_choice("cov_type", cov_type, COV_TYPES)


def cluster_columns(cov_type: str, groups, n: int, *, param: str = "groups") -> list | None:
    """The cluster column(s) of ``groups`` ((n,) or (n, 2), or a DataFrame of one or two columns)
    for ``cov_type="cluster"``, checked (no missing values); None for other kinds, where passing
    ``groups`` is an InputError (it would be ignored)."""
    if cov_type != "cluster":
        if groups is not None:
            raise InputError(param, f"{param}= is used only with cov_type='cluster'; got cov_type={cov_type!r}. Set "
                                    f"cov_type='cluster' to cluster the standard errors by it.")
        return None
    return group_columns(groups, n)


def glm_statistics(sol, run, *, cov_type: str = "nonrobust", robust: bool = False, feature_names=None,
                   cluster_run=None, n_dims: int = 1):
    """The :class:`~jaxlm.inference.glm.GLMResults` of ``sol`` with ``cov_type`` their default:
    the statistics' pass over ``run`` (its HC part when ``robust`` or an HC ``cov_type``), then
    for "cluster" the cluster pass over ``cluster_run`` (blocks ``(X, Y, w, g₁[, g₂], *rest)``,
    ``n_dims`` cluster columns). Fits without inference (ridge, no residual degrees of freedom)
    get a NaN cluster covariance without the pass."""
    cov_type = check_cov_type(cov_type)
    res = glm_results(sol, run, robust=bool(robust) or cov_type in HC_KINDS, feature_names=feature_names)
    if cov_type != "cluster":
        return res.with_cov_type(cov_type)
    if cluster_run is None:
        raise InputError("cov_type", "cov_type='cluster' needs the cluster column(s): pass fit(X, y, groups=...) "
                                     "(jaxlm.fit_table: cluster='column').")
    p = len(res.params)
    if sol.alpha != 0.0 or not res.df_resid > 0:
        return res.with_cov_type("cluster", {"cluster": (np.full((p, p), np.nan), "cluster-robust (not defined "
                                                                                   "for this fit)")})
    cc = glm_clustered_z(cluster_run, sol, n_dims=n_dims)
    return res.with_cov_type("cluster", {"cluster": (cc.cov[0], cluster_label(cc))})


class MemoryRuns(NamedTuple):
    """An in-memory fit's drivers: ``run`` over blocks ``(X, Y, w[, offset[, var_weights]])``
    (absent ones are not passed: the passes skip them), ``cluster_run`` over
    ``(X, Y, w, g₁[, g₂][, offset[, var_weights]])`` (None unless clustered), and
    ``arrays = (X, y, w, offset, var_weights)`` (None for absent ones)."""

    run: object
    cluster_run: object
    n_dims: int
    arrays: tuple


def memory_runs(X, y, sample_weight, offset, exposure, var_weights, *, cov_type: str, groups) -> MemoryRuns:
    """The checked per-row arrays of ``GLM.fit`` (X (n, d) checked, y (n,) numeric) and their drivers."""
    n = X.shape[0]
    w = np.ones(n) if sample_weight is None else row_values(
        "sample_weight", sample_weight, n, rule="a finite number >= 0", ok=lambda a: a >= 0,
        fix="Frequency weights count rows: use 0 to drop a row.")
    if not (w > 0).any():
        raise InputError("sample_weight", "sample_weight must have at least one positive entry; got all zeros.")
    off = offsets(offset, exposure, n)
    vw = None if var_weights is None else row_values(
        "var_weights", var_weights, n, rule="a finite number > 0", ok=lambda a: a > 0,
        fix="Variance weights scale each row's variance; drop rows instead of giving them weight 0.")
    extra = () if off is None and vw is None else (np.zeros(n) if off is None else off,)
    extra += () if vw is None else (vw,)
    cols = cluster_columns(cov_type, groups, n)
    cluster_run = None if cols is None else memory.arrays_runner(X, y[:, None], w, *cols, *extra)
    return MemoryRuns(memory.arrays_runner(X, y[:, None], w, *extra), cluster_run, 1 if cols is None else len(cols),
                      (X, y, w, off, vw))


def dask_cluster_run(X, Y, w, extra: tuple, *, cov_type: str, groups):
    """``(cluster_run, n_dims)`` of Dask input: the Dask driver over blocks ``(X, Y, w, g₁[, g₂],
    *extra)`` (the cluster column(s) dask or NumPy, given X's partitions; missing values counted on
    the workers), or ``(None, 1)`` for other kinds."""
    from ..scale import dask as dask_backend

    cols = cluster_columns(cov_type, groups, int(X.shape[0]))
    if cols is None:
        return None, 1
    return dask_backend.runner(X, Y, w, *cols, *extra), len(cols)
