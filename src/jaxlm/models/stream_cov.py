"""Cluster-robust and HAC covariances of a streamed fit: one more pass over the source.

The cluster pass (:func:`jaxlm.inference.cluster.cluster_reduction`) needs each row's cluster
value(s) beside its design row; the fit's own passes read only the model's columns, so the
pass here reads the source again with the cluster column(s) added, turns each block into the
same design rows as the fit (the same missing-value policy, so the rows line up) and hands the
stream driver ``(X, Y, w, g₁[, g₂])``. Per-cluster score sums merge by key, so a cluster spread
over any number of row groups or CSV blocks gives the in-memory answer; memory is ``G · m · p``
floats for ``G`` clusters.

The HAC pass (:func:`jaxlm.inference.hac.hac`) needs only the rows in their file order, which the
stream driver keeps (the reader thread hands blocks over in order): it runs over the fit's own
passes, carrying the last ``L`` scores from one block to the next.

A cluster column may hold numbers or text; it is read as it is stored (CSV: as text, so that the
clusters are the distinct strings written in the file). A missing value in it is an InputError
naming the column and the data row.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from ..core.errors import InputError

__all__ = ["cluster_names", "check_request", "streamed_cov"]


def cluster_names(cluster) -> tuple[str, ...]:
    """``cluster=`` as a tuple of one or two column names (a name, ``"a,b"``, or a list), checked."""
    if cluster is None:
        return ()
    names = tuple(c.strip() for c in cluster.split(",")) if isinstance(cluster, str) else tuple(cluster)
    if not 1 <= len(names) <= 2 or len(set(names)) != len(names) or not all(isinstance(c, str) and c for c in names):
        raise InputError("cluster", f"cluster must name one column, or two different ones (two-way clustering); got "
                                    f"cluster={cluster!r}.")
    return names


def check_request(params: dict, cluster) -> tuple[str, ...]:
    """The cluster column names of a streamed fit's ``cov_type``/``cluster=``, checked before any
    data is read: ``cluster`` with ``cov_type="cluster"`` only, and an exact solver for both
    ``"cluster"`` and ``"HAC"``."""
    names = cluster_names(cluster)
    cov_type = params.get("cov_type", "nonrobust")
    if names and cov_type != "cluster":
        raise InputError("cluster", f"cluster= is used only with cov_type='cluster'; got cov_type={cov_type!r}. Set "
                                    f"cov_type='cluster' to cluster the standard errors by {', '.join(names)}.")
    if cov_type == "cluster" and not names:
        raise InputError("cluster", "cov_type='cluster' needs the cluster column: pass cluster='firm' (or two "
                                    "names, cluster=['firm', 'year'], for two-way clustering).")
    return names


def _keys(block, name: str, rows) -> np.ndarray:
    """The cluster values of the design's rows of one source block (``rows``: their positions in
    the block, None for all), missing values refused with their data row."""
    col = block.table.column(name)
    if col.null_count:
        valid = np.asarray(col.is_valid())
        i = int(np.flatnonzero(~valid)[0])
        raise InputError("cluster", f"cluster column {name!r} must have a value on every row (a row without a "
                                    f"cluster cannot be assigned); got a missing value at data row "
                                    f"{block.start + i + 1}. Drop those rows or give them a cluster.")
    keys = col.to_numpy()
    if keys.dtype.kind == "f" and np.isnan(keys).any():
        i = int(np.flatnonzero(np.isnan(keys))[0])
        raise InputError("cluster", f"cluster column {name!r} must have a value on every row; got NaN at data row "
                                    f"{block.start + i + 1}. Drop those rows or give them a cluster.")
    return keys if rows is None else keys[rows]


def _cluster_items(passes, names: tuple[str, ...]) -> Iterator:
    """``((X, Y, w, g₁[, g₂]), n_read)`` per block of the source, the design as in the fit."""
    import pyarrow as pa

    columns = list(dict.fromkeys(list(passes.columns) + list(names)))
    types = passes.types
    if types is not None:  # CSV: the cluster columns as text, exactly as written
        types = {**{c: pa.string() for c in names}, **types}
    for block in passes.source.blocks(columns, types=types):
        blk = passes.design(block)
        if blk.void or not len(blk.X):
            yield (blk.X[:0], blk.Y[:0], blk.w[:0]) + tuple(np.empty(0) for _ in names), blk.n_read
            continue
        rows = None if blk.rows is None else np.asarray(blk.rows) - block.start
        yield (blk.X, blk.Y, blk.w) + tuple(_keys(block, c, rows) for c in names), blk.n_read


def streamed_cov(results: tuple, params: dict, solution, passes, names: tuple[str, ...], *, progress, depth: int):
    """``results`` (one per target) with the streamed fit's ``cov_type`` ("cluster" or "HAC") as
    their default covariance, after its pass over the source. Returns ``(results, passes made)``."""
    from ..inference.cluster import cluster_label, clustered
    from ..inference.hac import hac, hac_label, newey_west_lags
    from ..reduce import stream

    cov_type = params["cov_type"]
    if not results[0].has_inference:  # positive=True: no t/F inference at all
        return results, 0
    if cov_type == "cluster":
        run = stream.runner(lambda k: _cluster_items(passes, names), progress=progress, depth=depth)
        cc = clustered(run, solution, fit_intercept=params["fit_intercept"], weights_kind=params["weights_kind"],
                       n_dims=len(names))
        extra = [{"cluster": (cc.cov[k], cc.df, cluster_label(cc, names))} for k in range(len(results))]
    else:
        n_rows = passes.n_rows
        lags = newey_west_lags(n_rows) if params.get("hac_maxlags") is None else int(params["hac_maxlags"])
        if lags >= n_rows:
            raise InputError("hac_maxlags", f"hac_maxlags must be smaller than the number of rows (periods); got "
                                            f"hac_maxlags={lags} with {n_rows} rows. Use fewer lags, or None for the "
                                            f"automatic rule ({newey_west_lags(n_rows)} here).")
        run = stream.runner(passes, progress=progress, depth=depth)
        run.passes = 1  # passes(k > 1): the fit's rows again, in file order
        cov = hac(run, solution, fit_intercept=params["fit_intercept"], weights_kind=params["weights_kind"],
                  maxlags=lags)
        extra = [{"HAC": (cov[k], r.df_resid, hac_label(lags))} for k, r in enumerate(results)]
    return tuple(r.with_cov_type(cov_type, e) for r, e in zip(results, extra)), 1
