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

import sys
from typing import Iterator

import numpy as np

from ..core.errors import InputError

__all__ = ["KeyedPasses", "check_request", "cluster_names", "held_bytes", "key_types", "keyed_items", "no_void",
           "streamed_cov"]


def cluster_names(cluster) -> tuple[str, ...]:
    """``cluster=`` as a tuple of one or two column names (a name, ``"a,b"``, or a list), checked."""
    if cluster is None:
        return ()
    names = tuple(c.strip() for c in cluster.split(",")) if isinstance(cluster, str) else \
        tuple(cluster) if isinstance(cluster, (list, tuple)) else ()
    if not 1 <= len(names) <= 2 or len(set(names)) != len(names) or not all(isinstance(c, str) and c for c in names):
        raise InputError("cluster", f"cluster must name one column, or two distinct ones for two-way clustering; got "
                                    f"cluster={cluster!r}.")
    return names


def check_request(params: dict, cluster) -> tuple[str, ...]:
    """The cluster column names of a streamed fit's ``cov_type``/``cluster=``, checked before any
    data is read: ``cluster=`` with ``cov_type="cluster"`` only, and always with it."""
    names = cluster_names(cluster)
    cov_type = params.get("cov_type", "nonrobust")
    if names and cov_type != "cluster":
        raise InputError("cluster", f"cluster= is used only with cov_type='cluster'; got cov_type={cov_type!r}. Set "
                                    f"cov_type='cluster' to cluster the standard errors by {', '.join(names)}.")
    if cov_type == "cluster" and not names:
        raise InputError("cluster", "cov_type='cluster' needs cluster= (the cluster column name, e.g. "
                                    "cluster='firm', or two names, cluster=['firm', 'year'], for two-way clustering).")
    return names


def _keys(block, name: str, rows, what: str) -> np.ndarray:
    """The key values (cluster or level) of the design's rows of one source block (``rows``: their
    positions in the block, None for all), missing values refused with their data row."""
    col = block.table.column(name)
    if col.null_count:
        valid = np.asarray(col.is_valid())
        i = int(np.flatnonzero(~valid)[0])
        raise InputError(what.split()[0], f"{what} {name!r} must have a value on every row (a row without one cannot "
                                          f"be assigned); got a missing value at data row {block.start + i + 1}. Drop "
                                          f"those rows or give them a value.")
    keys = col.to_numpy()
    if keys.dtype.kind == "f" and np.isnan(keys).any():
        i = int(np.flatnonzero(np.isnan(keys))[0])
        raise InputError(what.split()[0], f"{what} {name!r} must have a value on every row; got NaN at data row "
                                          f"{block.start + i + 1}. Drop those rows or give them a value.")
    return keys if rows is None else keys[rows]


def key_types(source, names, types: dict | None, *, text: bool = True) -> dict | None:
    """CSV conversion types with the key columns ``names`` added: as text (``text``, cluster
    columns: the distinct strings written in the file, so ``007`` and ``7`` are two clusters and
    ids beyond 2^53 stay exact), or as the CSV schema infers them (fixed-effect levels, which
    ``predict`` looks up in a DataFrame read the same way). A column the fit reads keeps its type."""
    if source.kind != "csv" or not names:
        return types
    import pyarrow as pa

    out = {}
    for c in names:
        t = source.schema.field(c).type
        is_text = pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t)
        out[c] = pa.string() if text or is_text else t
    return {**out, **(types or {})}


def no_void(blk, *, complete: bool = False):
    """``blk`` (a DesignBlock), unless missing="raise" voided it for a missing value in a model column
    (``complete``: the block is all the data, so its counts are the totals)."""
    if blk.void:
        from ..io.design import missing_error

        raise missing_error(blk.missing, blk.n_missing, blk.first_missing, complete=complete)
    return blk


def keyed_items(source, columns, types, design, names, what: str = "cluster column", *, text: bool = True) -> Iterator:
    """``((X, Y, w, k₁, ..., k_K), n_read)`` per block of the source: the design as in the fit,
    then the values of the key columns ``names`` on its rows (CSV: :func:`key_types`)."""
    columns = list(dict.fromkeys(list(columns) + list(names)))
    for block in source.blocks(columns, types=key_types(source, names, types, text=text)):
        blk = no_void(design(block))
        if not len(blk.X):
            yield (blk.X[:0], blk.Y[:0], blk.w[:0]) + tuple(np.empty(0) for _ in names), blk.n_read
            continue
        rows = None if blk.rows is None else np.asarray(blk.rows) - block.start
        yield (blk.X, blk.Y, blk.w) + tuple(_keys(block, c, rows, what) for c in names), blk.n_read


def held_bytes(a) -> int:
    """Memory an array keeps alive: ``nbytes``, plus for an object array (text keys) the objects it
    points to, estimated from up to 1,000 evenly spaced elements (``nbytes`` counts only pointers)."""
    n = int(getattr(a, "nbytes", 0))
    if getattr(a, "dtype", None) == object and a.size:
        sample = a.ravel()[:: max(1, a.size // 1000)]
        n += int(sum(sys.getsizeof(v) for v in sample) * (a.size / sample.size))
    return n


class KeyedPasses:
    """Re-readable keyed blocks of a source (:func:`keyed_items`), kept in memory after the first
    pass while they total at most ``keep_bytes``; ``runner(order)`` is the stream driver over blocks
    ``(X, Y, w, *[keys in order])`` (``order``: names among ``names``). ``n_rows`` counts the rows
    of the last complete pass."""

    def __init__(self, source, columns, types, design, names, what: str, keep_bytes: int, *, text: bool = True):
        self.args = (source, columns, types, design, tuple(names), what, text)
        self.names = tuple(names)
        self.keep_bytes = keep_bytes
        self.kept: list | None = None
        self.n_rows = 0

    def _items(self):
        if self.kept is not None:
            yield from self.kept
            return
        kept, size, rows = [], 0, 0
        source, columns, types, design, names, what, text = self.args
        for item in keyed_items(source, columns, types, design, names, what, text=text):
            rows += len(item[0][0])
            if kept is not None:
                size += sum(held_bytes(a) for a in item[0])
                kept = kept if size <= self.keep_bytes else None
                if kept is not None:
                    kept.append(item)
            yield item
        self.n_rows, self.kept = rows, kept

    def runner(self, order, *, progress=None, depth: int = 1):
        from ..reduce import stream

        pick = [self.names.index(n) for n in order]

        def passes(k):
            for block, n_read in self._items():
                yield block[:3] + tuple(block[3 + i] for i in pick), n_read

        return stream.runner(passes, progress=progress, depth=depth)


def _cluster_items(passes, names: tuple[str, ...]) -> Iterator:
    """``((X, Y, w, g₁[, g₂]), n_read)`` per block of a streamed fit's source, the design as in the fit."""
    return keyed_items(passes.source, passes.columns, passes.types, passes.design, names)


def streamed_cov(results: tuple, params: dict, solution, passes, names: tuple[str, ...], *, progress, depth: int):
    """``results`` (one per target) with the streamed fit's ``cov_type`` ("cluster" or "HAC") as
    their default covariance, after its pass over the source. Returns ``(results, passes made)``."""
    from ..inference.cluster import cluster_label, clustered
    from ..inference.hac import hac, hac_label, resolve_lags
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
        lags = resolve_lags(params.get("hac_maxlags"), passes.n_rows)
        run = stream.runner(passes, progress=progress, depth=depth)
        run.passes = 1  # passes(k > 1): the fit's rows again, in file order
        cov = hac(run, solution, fit_intercept=params["fit_intercept"], weights_kind=params["weights_kind"],
                  maxlags=lags)
        extra = [{"HAC": (cov[k], r.df_resid, hac_label(lags))} for k, r in enumerate(results)]
    return tuple(r.with_cov_type(cov_type, e) for r, e in zip(results, extra)), 1
