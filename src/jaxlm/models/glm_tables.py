"""Fit a generalised linear model from a table too big for memory: every IRLS iteration is one
pass of the stream driver (:mod:`jaxlm.reduce.stream`) over the source.

``jaxlm.fit_table(path, formula="claims ~ age + C(region)", family="poisson", exposure="years")``
lands here (:func:`jaxlm.models.tables.fit_table` dispatches on ``family``). The source is read
block by block (one Parquet row group, one CSV block, one Arrow record batch at a time); each
block becomes the float64 GLM blocks ``(X, Y, w[, offset[, var_weights]])`` of
:mod:`jaxlm.core.irls` (the design of :mod:`jaxlm.io.design` or a formula of
:mod:`jaxlm.io.formula`, plus the offset, exposure and variance-weight columns), and
:func:`jaxlm.models.glm.fit_glm` runs its passes (the check pass, the start, one per IRLS
iteration and step halving, the statistics' pass, the null model's when there is an offset)
through the driver: each re-reads the file instead of holding it. The coefficients are those of
the in-memory ``GLM().fit`` on the same rows to rounding (the sums are added in another order).

Memory: a few blocks, whatever the size of the file, except that data whose first pass decodes
to at most ``KEEP_BYTES`` are kept for the later passes (re-reading and re-encoding a small file
a dozen times would cost more than holding it). The in-memory fit's subsample start (IRLS first
on every 20th row) is turned off here: thinning the rows of a streamed file would still read
and decode all of it, so it would save nothing.

Per-row columns: ``weights`` (frequency weights, >= 0), ``offset`` (added to the linear
predictor), ``exposure`` (> 0; adds ``log(exposure)``), ``var_weights`` (> 0). Rows with a
missing value in any used column raise (``missing="raise"``, naming the column and data row) or
are left out (``missing="drop"``). A bad value (a response outside the family's support, an
exposure <= 0, ...) is an InputError naming its column and data row.

Clustered standard errors: ``cov_type="cluster", cluster="firm"`` (or two names: two-way) add one
pass after the IRLS passes, whose blocks carry the cluster column(s) as stored (any type: integers,
strings, dictionary-encoded; a CSV's as text) after the weights
(:func:`jaxlm.inference.glm_cluster.glm_clustered_z`); the per-cluster score sums are keyed by
value, so clusters spread over any number of row groups or files give the in-memory answer. Rows
with a missing cluster value are missing rows as above (``missing="drop"`` leaves them out of
the whole fit).
"""
from __future__ import annotations

import time
import warnings
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..core.errors import InputError
from ..io.design import (DesignBlock, check_missing, check_numeric, float_types, missing_error, numeric_design, plural,
                         select_columns)
from ..io.formula import FormulaSpec
from ..io.sources import open_table
from ..io.values import to_float64
from ..reduce import stream
from ..reduce.stream import Progress
from .glm import GLM, fit_glm
from .stream_cov import check_request, held_bytes, key_types

__all__ = ["GLMStreamFit", "KEEP_BYTES", "fit_glm_table", "stream_glm"]

#: Data whose first pass decodes to at most this many bytes of float64 blocks are kept in memory
#: for the later passes instead of being read and decoded again (the streamed linear fit's bound).
KEEP_BYTES = stream.KEEP_BYTES
#: The per-row columns of a GLM besides the weights: (parameter, rule, test, fix).
_EXTRAS = (("offset", "a finite number", np.isfinite, "Drop or impute those rows."),
           ("exposure", "a finite number > 0", lambda a: np.isfinite(a) & (a > 0),
            "Exposure is the time or size at risk; drop rows with none."),
           ("var_weights", "a finite number > 0", lambda a: np.isfinite(a) & (a > 0),
            "Variance weights scale each row's variance; drop rows instead of giving them weight 0."))


class GLMStreamFit(NamedTuple):
    """A streamed GLM fit: the fitted estimator and what the passes over the data saw."""

    model: object              # fitted jaxlm.GLM (formula_, target_names_, data_columns_ set)
    n_read: int                # data rows read
    n_rows: int                # rows fitted
    n_dropped: int             # rows left out for missing values (missing="drop")
    dropped_by_column: dict    # column -> missing values found in it
    passes: int                # passes over the data (the levels pass of a formula included)
    seconds: float
    feature_names: tuple
    target_names: tuple
    formula: FormulaSpec | None


def _bad_row(param: str, column: str, rule: str, values, ok, rows_of, fix: str) -> None:
    """InputError naming the first row of ``values`` that fails ``ok`` (its data row)."""
    with np.errstate(invalid="ignore"):
        bad = ~ok(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(param, f"{param} must be {rule}; got column {column!r} = {float(values[i])!r} at data row "
                                f"{rows_of(i) + 1} ({plural(int(bad.sum()), 'row')} in this block). {fix}")


class _Passes:
    """The source's passes for the stream driver: ``passes(k)`` yields ``(block, n_read)`` with
    ``block = (X, Y, w[, offset[, var_weights]])``; the first pass also keeps the books."""

    def __init__(self, source, columns, types, design, *, extras: dict, family, missing: str, target: str,
                 clusters: tuple = ()):
        self.source, self.columns, self.types, self.design = source, columns, types, design
        self.extras, self.family, self.missing, self.target = extras, family, missing, target
        self.clusters = clusters
        self.grouped = False  # later passes yield (X, Y, w, g₁[, g₂], *rest): the cluster pass
        self.n_read = self.n_rows = self.n_dropped = self.void_rows = 0
        self.first_missing = -1
        self.dropped_by_column: dict = {}
        self.kept: list | None = []
        self.kept_bytes = 0
        self.complete = False

    # -- one block --------------------------------------------------------------------------
    def _block(self, source_block) -> tuple[tuple | None, tuple, DesignBlock, int]:
        """``(GLM block or None, cluster columns, design block, rows dropped for missing per-row columns)``."""
        blk = self.design(source_block)
        if blk.void:
            return None, (), blk, 0
        idx = None if blk.rows is None else blk.rows - blk.start
        vals, miss = {}, {}
        for kind, col in self.extras.items():
            a = to_float64(source_block.table.column(col), col, blk.start)
            vals[kind] = a if idx is None else a[idx]
            miss[col] = np.isnan(vals[kind])
        groups = []
        for col in self.clusters:
            g, m = _cluster_values(source_block.table.column(col))
            groups.append(g if idx is None else g[idx])
            miss[col] = m if idx is None else m[idx]
        X, Y, w, rows = blk.X, blk.Y, blk.w, blk.rows
        dropped = 0
        missing = np.zeros(len(X), bool)
        for col, m in miss.items():
            if m.any():
                self.dropped_by_column[col] = self.dropped_by_column.get(col, 0) + int(m.sum())
                missing |= m
        if missing.any():
            first = blk.source_row(int(np.flatnonzero(missing)[0])) + 1
            if self.missing == "raise":
                raise missing_error({c: int(m.sum()) for c, m in miss.items() if m.any()}, int(missing.sum()),
                                    first - 1, complete=False)
            keep = ~missing
            src = np.asarray([blk.source_row(i) for i in np.flatnonzero(keep)], dtype=np.int64)
            X, Y, w, rows = X[keep], Y[keep], w[keep], src
            vals = {k: a[keep] for k, a in vals.items()}
            groups = [g[keep] for g in groups]
            dropped = int(missing.sum())
        rows_of = (lambda i: blk.start + i) if rows is None else (lambda i: int(rows[i]))
        y = Y[:, 0]
        _bad_row("y", self.target, f"{self.family.support} for the {self.family.describe()} family", y,
                 lambda a: ~self.family.invalid_y(a), rows_of, self.family.support_fix)
        for kind, rule, ok, fix in _EXTRAS:
            if kind in vals:
                _bad_row(kind, self.extras[kind], rule, vals[kind], ok, rows_of, fix)
        off = vals.get("offset")
        if "exposure" in vals:  # as the in-memory fit: offset + log(exposure)
            off = np.log(vals["exposure"]) if off is None else off + np.log(vals["exposure"])
        vw = vals.get("var_weights")
        extra = () if off is None and vw is None else (np.zeros(len(y)) if off is None else off,)
        extra += () if vw is None else (vw,)
        return (X, Y, w) + extra, tuple(groups), blk, dropped

    # -- the passes -------------------------------------------------------------------------
    def _blocks(self):
        for source_block in self.source.blocks(self.columns, types=self.types):
            out = self._block(source_block)
            del source_block
            yield out

    def __call__(self, k: int):
        return self._first() if k == 1 else self._again()

    def _again(self):
        items = self.kept if self.complete else (
            (block if block is not None else _EMPTY, groups, blk.n_read) for block, groups, blk, _ in self._blocks())
        for block, groups, n_read in items:
            yield (block[:3] + groups + block[3:] if self.grouped else block), n_read

    def _first(self):
        for block, groups, blk, dropped in self._blocks():
            self.n_read += blk.n_read
            for c, k in blk.missing.items():
                self.dropped_by_column[c] = self.dropped_by_column.get(c, 0) + k
            if blk.void:
                self.void_rows += blk.n_missing
                self.first_missing = blk.first_missing if self.first_missing < 0 else self.first_missing
                block = _EMPTY
            else:
                self.n_dropped += blk.n_missing + dropped
                self.n_rows += len(block[0])
            self._keep(block, groups, blk.n_read)
            yield block, blk.n_read
        if self.void_rows:
            raise missing_error(self.dropped_by_column, self.void_rows, self.first_missing)
        if self.n_rows == 0:
            raise InputError("data", f"data must have at least one row to fit; got {self.source.name!r} with "
                                     f"{plural(self.n_read, 'row')} read and none left to fit.")
        self.complete = self.kept is not None

    def _keep(self, block, groups, n_read: int) -> None:
        if self.kept is None:
            return
        self.kept_bytes += sum(held_bytes(a) for a in block + groups)  # text cluster keys: their strings too
        if self.kept_bytes > KEEP_BYTES:
            self.kept = None
        else:
            self.kept.append((block, groups, n_read))


def _cluster_values(col) -> tuple[np.ndarray, np.ndarray]:
    """A cluster column of one block as NumPy (dictionary-decoded; integers int64, text as
    objects) and its missing mask (null, or NaN)."""
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    miss = np.asarray(pc.is_null(col, nan_is_null=True).to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_integer(col.type):
        col = pc.fill_null(col.cast(pa.int64()), 0)
    return np.asarray(col.to_numpy(zero_copy_only=False)), miss


#: a block with no rows to reduce (all dropped, or void with missing="raise")
_EMPTY = (np.zeros((0, 0)), np.zeros((0, 1)), np.zeros(0))


def _per_row_columns(source, *, weights, offset, exposure, var_weights) -> dict:
    """{"offset": col, "exposure": col, "var_weights": col} of the given ones, checked to exist and be numeric."""
    out = {}
    for kind, col in (("offset", offset), ("exposure", exposure), ("var_weights", var_weights)):
        if col is None:
            continue
        if not isinstance(col, str) or not col:
            raise InputError(kind, f"{kind} must be one column name; got {kind}={col!r}.")
        source.require([col], kind)
        check_numeric(source, [col], kind)
        out[kind] = col
    if weights is not None:
        source.require([weights], "weights")
        check_numeric(source, [weights], "weights")
    return out


def _design_of(source, *, target, features, formula, weights, extras: dict, fit_intercept, missing):
    """(design, columns to read, CSV types, feature names, target names, spec, fit_intercept, levels pass)."""
    if formula is not None:
        if target is not None or features is not None:
            raise InputError("formula", "formula must be given instead of target and features, not with them; got "
                                        f"formula={formula!r} and {'target' if target is not None else 'features'}.")
        spec = FormulaSpec.from_source(formula, source, missing=missing, weights=weights)
        if fit_intercept is not None and bool(fit_intercept) != spec.fit_intercept:
            raise InputError("fit_intercept", f"fit_intercept must agree with the formula; got "
                                              f"fit_intercept={fit_intercept!r} for formula={formula!r}, which "
                                              f"{'has' if spec.fit_intercept else 'has no'} intercept (write '- 1' "
                                              f"in the formula to remove it).")
        if len(spec.targets) != 1:
            raise InputError("formula", f"formula must have one response for a GLM; got {list(spec.targets)} on the "
                                        f"left of '~' in formula={formula!r}.")
        for kind, col in extras.items():
            if col in spec.outputs or col == weights:
                raise InputError(kind, f"{kind} must not be the response or the weights; got {kind}={col!r}.")
        columns = list(dict.fromkeys(spec.outputs + spec.inputs + ((weights,) if weights else ())
                                     + tuple(extras.values())))
        return (spec.design(missing, weights), columns, spec.read_types(source, columns), spec.features,
                spec.targets, spec, spec.fit_intercept, 1 if spec.levels else 0)
    if not isinstance(target, str):
        raise InputError("target", f"target must name the one response column of a GLM; got target={target!r}.")
    for kind, col in extras.items():
        if col == target or col == weights:
            raise InputError(kind, f"{kind} must not be the target or the weights; got {kind}={col!r}.")
    if features is None:  # every other column but the per-row ones
        used = {target, weights, *extras.values()}
        features = [c for c in source.column_names if c not in used]
    sel = select_columns(source, target=target, features=features, weights=weights)
    columns = list(dict.fromkeys(sel.features + sel.targets + ((sel.weights,) if sel.weights else ())
                                 + tuple(extras.values())))
    types = float_types(source, columns) if source.kind == "csv" else None
    return (numeric_design(sel, missing), columns, types, sel.features, sel.targets, None,
            True if fit_intercept is None else bool(fit_intercept), 0)


def stream_glm(data, *, family, link=None, target=None, features=None, formula: str | None = None,
               weights: str | None = None, offset: str | None = None, exposure: str | None = None,
               var_weights: str | None = None, missing: str = "raise", progress: bool | None = None,
               fit_intercept: bool | None = None, prefetch_depth: int = 1, cluster=None, **params) -> GLMStreamFit:
    """Fit :class:`jaxlm.GLM` to a table, streamed: one pass over the source per IRLS iteration.

    Parameters
    ----------
    data : path, directory, glob, DataFrame or :class:`~jaxlm.io.values.Source`
    family, link : as :class:`jaxlm.GLM` (``family="poisson"``, ``link=None`` for its default).
    target, features, formula, weights, missing, progress, fit_intercept : as
        :func:`jaxlm.fit_table` (a GLM has one response).
    offset, exposure, var_weights : str, optional
        Columns of the offset, the exposure (> 0; adds ``log(exposure)`` to the offset) and the
        variance weights (> 0), as the ``fit`` options of :class:`jaxlm.GLM`.
    cluster : str or a list of two str, optional
        The cluster column(s) of ``cov_type="cluster"`` (one: one-way; two: two-way), as
        :func:`jaxlm.fit_table`'s absorbed fit names them; one more pass over the data.
    **params : the other :class:`jaxlm.GLM` parameters (``power``, ``nb_alpha``, ``alpha``,
        ``tol``, ``max_iter``, ``robust``, ``cov_type``; ``solver`` must be "irls").
    """
    t_start = time.perf_counter()
    missing = check_missing(missing)
    if "groups" in params:
        raise InputError("groups", f"a file's cluster columns are named with cluster= (e.g. cluster='firm'); got "
                                   f"groups={params['groups']!r}.")
    unknown = sorted(set(params) - set(GLM().get_params()) - {"family", "link", "fit_intercept"})
    if unknown:
        raise InputError("params", f"params must be GLM parameters; got {unknown} (GLM takes "
                                   f"{sorted(GLM().get_params())}).")
    est = GLM(family=family, link=link, **params)
    fam, lnk = est._check_params()
    if est.solver != "irls":
        raise InputError("solver", f"a streamed fit needs solver='irls' (one pass over the file per iteration); got "
                                   f"solver={est.solver!r}.")
    clusters = check_request({"cov_type": est.cov_type}, cluster)
    source = open_table(data)
    extras = _per_row_columns(source, weights=weights, offset=offset, exposure=exposure, var_weights=var_weights)
    source.require(clusters, "cluster")
    design, columns, types, feature_names, target_names, spec, fi, levels_pass = _design_of(
        source, target=target, features=features, formula=formula, weights=weights, extras=extras,
        fit_intercept=fit_intercept, missing=missing)
    est.set_params(fit_intercept=fi)
    columns = list(dict.fromkeys(columns + list(clusters)))
    passes = _Passes(source, columns, key_types(source, clusters, types), design, extras=extras, family=fam,
                     missing=missing, target=target_names[0], clusters=clusters)
    bar = Progress(progress, source.name, source.estimated_rows())
    try:
        run = stream.runner(passes, progress=bar, depth=prefetch_depth)
        names = np.asarray(feature_names, dtype=object)
        with warnings.catch_warnings(record=True) as caught:  # re-raised at the caller's line below
            warnings.simplefilter("always")
            sol, res = fit_glm(run, len(feature_names), family=fam, link=lnk, fit_intercept=fi, alpha=float(est.alpha),
                               tol=float(est.tol), max_iter=int(est.max_iter), robust=bool(est.robust),
                               feature_names=names, subsample=False, cov_type=est.cov_type,
                               cluster_run=_grouped(run, passes) if clusters else None, n_dims=max(len(clusters), 1))
    except InputError as e:  # the cluster pass speaks of groups=, a file's fit of cluster=
        if e.param != "groups":
            raise
        raise InputError("cluster", f"{e} (cluster={list(clusters)})") from None
    finally:
        bar.close()
    for w_ in caught:
        warnings.warn(w_.message, w_.category, stacklevel=3)
    est.feature_names_in_ = names
    est.n_features_in_ = len(feature_names)
    est.target_names_ = tuple(target_names)
    est.formula_ = spec
    est.data_columns_ = {"weights": weights, **{k: extras.get(k) for k in ("offset", "exposure", "var_weights")}}
    est._set_solution(sol, res, names)  # (warns when X is rank deficient, as GLM.fit)
    return GLMStreamFit(est, passes.n_read, passes.n_rows, passes.n_dropped, dict(passes.dropped_by_column),
                        run.passes + levels_pass, time.perf_counter() - t_start, tuple(feature_names),
                        tuple(target_names), spec)


def _grouped(run, passes: _Passes):
    """The driver ``run`` for the cluster pass: its blocks carry the cluster column(s) after w."""
    def cluster_run(reduction):
        passes.grouped = True
        try:
            return run(reduction)
        finally:
            passes.grouped = False
    return cluster_run


def fit_glm_table(data, **kwargs):
    """The fitted :class:`jaxlm.GLM` of :func:`stream_glm` (what ``jaxlm.fit_table(..., family=...)`` returns)."""
    return stream_glm(data, **kwargs).model
