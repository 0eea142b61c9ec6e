"""A pandas DataFrame's numeric columns as float64 arrays, read straight from the frame.

A formula of bare numeric columns (``y ~ x1 + x2``) needs neither Arrow nor formulaic: its model
matrices are the frame's columns. :func:`frame_matrices` hands them out as views where pandas
holds them so (else one copy), checked for missing, infinite or negative values; :func:`frame_error`
raises the streamed design's error for such a value (:func:`check_finite`, :func:`check_weights`,
:func:`bad_values`: naming the column and its first data row). The absorbed fits
(:mod:`jaxlm.models.absorbed`) use them for data in memory.

:func:`bare_frame` is ``fit_table``'s fast path for such a frame: a :class:`BareFrame`, the
source of the streamed fit (:func:`jaxlm.models.tables.stream_fit`) whose design blocks are views
of the frame's columns (pandas hands out a float64 block as a view: X in Fortran order, as
formulaic gives it; other columns are copied once), cut at the rows where
:class:`~jaxlm.io.sources.FrameSource` cuts the frame's Arrow table. Every pass, book and
statistic of the streamed fit is then computed by the same code on the same numbers, without
converting the frame to Arrow or encoding each block through formulaic. It applies only to clean
data: a missing, infinite or negative value, an integer beyond ±2**53, a column that is not a
plain numeric one, or a formula that computes anything leaves the frame to the streamed fit,
which drops those rows (``missing="drop"``) or raises its own error about them.
"""
from __future__ import annotations

import sys

import numpy as np

from ..core.errors import InputError
from ..io.design import DesignBlock
from ..io.values import BLOCK_ROWS, MAX_EXACT_INT, Block, Source, check_integers

__all__ = ["BareFrame", "bad_values", "bare_frame", "check_finite", "check_weights", "frame_error", "frame_matrices"]


def check_finite(A, names, row=lambda i: i):
    """An InputError naming the first model column of ``A`` with an infinite value, and its data
    row (``row``: block row -> 0-based data row)."""
    ok = np.isfinite(A).all(axis=0)
    if not ok.all():
        j = int(np.flatnonzero(~ok)[0])
        i = int(np.flatnonzero(~np.isfinite(A[:, j]))[0])
        raise InputError("data", f"data must be finite; got {float(A[i, j])!r} in model column {names[j]!r} at data row "
                                 f"{row(i) + 1}. Remove or replace the value.")


def frame_error(df, spec, weights) -> None:
    """Raise the error for the frame's first bad value in a model or weights column: a missing value
    (NaN) naming its column and data row, else an infinite value, else a negative weight (the
    checks of :meth:`FormulaSpec.design`); return if there is none."""
    vals = {c: df[c].to_numpy(dtype=np.float64, na_value=np.nan)
            for c in dict.fromkeys(spec.features + spec.targets + ((weights,) if weights else ()))}
    bad_values(vals, spec)
    check_weights(vals[weights] if weights else np.ones(len(df)), weights)


def check_weights(w, weights, row=lambda i: i) -> None:
    """Weights must be finite and >= 0: an error naming the column and the first bad data row
    (``row``: block row -> 0-based data row)."""
    bad = ~(np.isfinite(w) & (w >= 0)) if weights else None
    if bad is not None and bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError("weights", f"weights must be finite and >= 0; got weights column {weights!r} = "
                                    f"{float(w[i])!r} at data row {row(i) + 1}.")


def bad_values(vals: dict, spec) -> None:
    """The error for the frame's first missing value (NaN), else its first infinite one."""
    from ..io.design import missing_error

    bad = {c: np.isnan(v) for c, v in vals.items()}
    bad = {c: b for c, b in bad.items() if b.any()}
    if bad:
        rows = np.logical_or.reduce(list(bad.values()))
        raise missing_error({c: int(b.sum()) for c, b in bad.items()}, int(rows.sum()), int(np.argmax(rows)))
    for names in (spec.features, spec.targets):
        check_finite(np.column_stack([vals[c] for c in names]), names)


# --------------------------------------------------------------------------- fit_table's fast path


class BareFrame(Source):
    """A DataFrame whose formula is bare, as a source of the streamed fit: ``design(block)`` is the
    rows ``block.start ...`` of the arrays read once (no missing values: nothing is dropped), and
    ``blocks(columns)`` hands out ``BLOCK_ROWS``-row slices that carry Arrow only for the
    ``keys`` (cluster columns, converted from the frame as ``FrameSource`` converts it) among
    ``columns``; the model columns are in the arrays. Made by :func:`bare_frame`."""

    kind = "frame"

    def __init__(self, schema, spec, weights, arrays, keys):
        self.name, self.schema, self.spec, self.weights = "the DataFrame", schema, spec, weights
        self.X, self.Y, self.w = arrays
        self.num_rows = len(self.X)
        self.keys = keys  # pyarrow.Table of the cluster columns (none: only the row count)

    def blocks(self, columns, *, types=None):
        table = self.keys.select([c for c in columns if c in self.keys.column_names])
        for s in range(0, self.num_rows, BLOCK_ROWS):
            yield Block(s, check_integers(table.slice(s, BLOCK_ROWS), s))

    def design(self, block: Block) -> DesignBlock:
        s, b = block.start, block.table.num_rows
        return DesignBlock(self.X[s:s + b], self.Y[s:s + b], self.w[s:s + b], s, b, None, {}, 0)


def _exact_numbers(col) -> bool:
    """Whether a column holds plain numbers that float64 holds exactly: integers or floats (no
    object, boolean or categorical column), 64-bit integers within ±2**53."""
    kind = getattr(col.dtype, "kind", "O")
    if kind not in "iuf":
        return False
    if kind == "f" or col.dtype.itemsize < 8 or len(col) == 0:
        return True
    import pandas as pd

    lo, hi = col.min(), col.max()  # missing values skipped (all missing: NA, nothing to round)
    return bool(pd.isna(lo)) or (-MAX_EXACT_INT <= int(lo) and int(hi) <= MAX_EXACT_INT)


def frame_matrices(df, spec, weights, *, check: bool = True):
    """``(X (n, d), Y (n, m), w (n,))`` of the frame's columns as pandas hands them out: views where
    it holds them as one float64 block (X then in Fortran order, as formulaic gives it), else one
    copy; None when a value is missing or infinite or a weight negative (a check in blocks of rows,
    whose temporaries stay small). ``check=False``: the weights alone are checked (a fit whose sums
    reveal a bad value in X or Y, as the absorbed fit's do, locates it with :func:`frame_error`)."""
    as_float = dict(dtype=np.float64, na_value=np.nan)
    X, Y = df[list(spec.features)].to_numpy(**as_float), df[list(spec.targets)].to_numpy(**as_float)
    w = np.ones(len(df)) if weights is None else df[weights].to_numpy(**as_float)
    for s in range(0, len(df), BLOCK_ROWS):
        part = slice(s, s + BLOCK_ROWS)
        ok = not check or (np.isfinite(X[part]).all() and np.isfinite(Y[part]).all())
        if not (ok and np.all((w[part] >= 0) & (w[part] < np.inf))):  # NaN fails both
            return None
    return X, Y, w


def bare_frame(data, formula: str, *, weights: str | None = None, cluster=None) -> BareFrame | None:
    """``data`` as a :class:`BareFrame` when it is a pandas DataFrame, ``formula`` a formula of its
    bare integer or float columns, and those columns (and ``weights``) hold only finite numbers
    (weights >= 0) that float64 holds exactly; None otherwise (any doubt: the streamed fit reads
    the frame and reports what is wrong)."""
    import pyarrow as pa

    from ..io.formula import FormulaSpec
    from ..io.sources import FrameSource
    from .stream_cov import cluster_names

    pd = sys.modules.get("pandas")
    if pd is None or not isinstance(data, pd.DataFrame) or not isinstance(formula, str):
        return None
    try:
        schema = pa.Schema.from_pandas(data, preserve_index=False)
        head = FrameSource(schema.empty_table())  # the columns and their types: all a bare formula needs
        spec = FormulaSpec.from_source(formula, head, weights=weights)  # categorical columns: no rows, an error
        keys = cluster_names(cluster)
        used = list(dict.fromkeys(spec.outputs + spec.inputs + ((weights,) if weights else ())))
        if not spec.is_bare(head.table, weights) or not all(c in data.columns and _exact_numbers(data[c])
                                                            for c in used):
            return None
        arrays = frame_matrices(data, spec, weights)
        if arrays is None:  # a missing, infinite or negative value
            return None
        table = pa.Table.from_pandas(data[list(keys)], preserve_index=False) if keys else \
            pa.table({"rows": pa.nulls(len(data))}).select([])  # no columns, the rows counted
    except (InputError, KeyError, TypeError, ValueError, pa.ArrowException):
        return None
    return BareFrame(schema, spec, weights, arrays, table)
