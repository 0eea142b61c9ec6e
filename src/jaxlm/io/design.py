"""Blocks of a table → the float64 ``(X, Y, w)`` arrays of the core, for a list of columns.

:func:`select_columns` resolves ``target`` / ``features`` / ``weights`` by name (unknown names
get the closest matches; a non-numeric column among the features is an error that names it);
:func:`numeric_design` turns blocks into :class:`DesignBlock` s, applying the missing-value
policy. Formulas are the other design (:mod:`jaxlm.io.formula`, behind the closed grammar of
:mod:`jaxlm.io.grammar`); both give the same :class:`DesignBlock`.
"""
from __future__ import annotations

from typing import Callable, Iterable, NamedTuple, Sequence

import numpy as np
import pyarrow as pa

from ..core.errors import InputError

from .values import Block, MISSING, Source, _is_numeric, _is_text, _text_column_error, to_float64, to_matrix


# --------------------------------------------------------------------------- locating bad values


# --------------------------------------------------------------------------- column selection


class Selection(NamedTuple):
    """Columns of a plain (formula-free) model: the targets, the features and the weights."""

    targets: tuple
    features: tuple
    weights: str | None
    one_d: bool  # the target was given as one name (1-D y), not a list


def _as_names(value, param: str) -> list[str]:
    if isinstance(value, str):
        names = [v.strip() for v in value.split(",")] if param == "features" else [value]
    else:
        try:
            names = list(value)
        except TypeError:
            raise InputError(param, f"{param} must be a column name or a list of them; got {param}={value!r}.") from None
    if not names or any(not isinstance(v, str) or not v for v in names):
        raise InputError(param, f"{param} must name at least one column (non-empty strings); got {param}={value!r}.")
    dup = sorted({v for v in names if names.count(v) > 1})
    if dup:
        raise InputError(param, f"{param} must name each column once; got {param}={value!r} (repeats "
                                f"{', '.join(map(repr, dup))}).")
    return names


def check_numeric(source: Source, columns: Sequence[str], param: str, how: str = "") -> None:
    for c in columns:
        t = source.schema.field(c).type
        if _is_numeric(t):
            continue
        if _is_text(t):
            raise _text_column_error(source, c, param, how)
        raise InputError(param, f"{param} must be numeric; got {how}column {c!r} of type {t}. Choose other "
                                f"columns, or convert it to numbers first.")


def select_columns(source: Source, *, target, features=None, weights=None) -> Selection:
    """Resolve the targets, features and weights of a model by column name.

    ``target``: one name (1-D y) or a list (multi-output). ``features``: a list of names or
    a comma-separated string; default every column that is not a target or the weights — a
    non-numeric one among them is an error naming it, never silently dropped.
    """
    if target is None:
        raise InputError("target", "target must name the column(s) to predict; got target=None.")
    one_d = isinstance(target, str)
    targets = _as_names(target, "target")
    source.require(targets, "target")
    w = None
    if weights is not None:
        if not isinstance(weights, str) or not weights:
            raise InputError("weights", f"weights must be one column name; got weights={weights!r}.")
        source.require([weights], "weights")
        if weights in targets:
            raise InputError("weights", f"weights must not be a target column; got weights={weights!r}.")
        w = weights
    if features is None:
        feats = [c for c in source.column_names if c not in targets and c != w]
        if not feats:
            raise InputError("features", f"features must be at least one column besides the target; got "
                                         f"{source.name} with only {', '.join(map(repr, source.column_names))}.")
        how = "the default (every other column) includes "
    else:
        feats = _as_names(features, "features")
        source.require(feats, "features")
        both = [c for c in feats if c in targets or c == w]
        if both:
            raise InputError("features", f"features must not include the target or weights column; got "
                                         f"features containing {', '.join(map(repr, both))}.")
        how = ""
    check_numeric(source, targets, "target")
    check_numeric(source, feats, "features", how)
    if w is not None:
        check_numeric(source, [w], "weights")
    return Selection(tuple(targets), tuple(feats), w, one_d)


def float_types(source: Source, columns: Iterable[str]) -> dict:
    """CSV conversion types: every named column as float64."""
    return {c: pa.float64() for c in columns}


# --------------------------------------------------------------------------- design blocks


class DesignBlock(NamedTuple):
    """Float64 arrays for the core, with the bookkeeping of one source block.

    ``rows`` holds the 0-based source row of each kept row when rows were dropped (None:
    ``start + arange(len(X))``). ``missing`` maps a column to its number of missing values
    in the block; ``n_missing`` counts the rows with any. With ``missing="raise"`` a block
    with missing values is ``void`` (its arrays are not to be used).
    """

    X: np.ndarray
    Y: np.ndarray
    w: np.ndarray
    start: int
    n_read: int
    rows: np.ndarray | None
    missing: dict
    n_missing: int
    first_missing: int = -1  # 0-based source row of the block's first row with a missing value
    void: bool = False

    def source_row(self, i: int) -> int:
        return int(self.rows[i]) if self.rows is not None else self.start + int(i)


def plural(k: int, word: str) -> str:
    """``"1 row"``, ``"1,000 rows"``."""
    return f"{k:,} {word}{'' if k == 1 else 's'}"


def missing_error(counts: dict, rows: int, first: int, *, complete: bool = True) -> InputError:
    """The error of missing values (missing="raise"): ``counts`` per model column, ``rows`` with
    any, the first at 0-based data row ``first``; ``complete=False``: counted up to the block that
    stopped the fit, not over all the data."""
    parts = ", ".join(f"{c!r} ({plural(k, 'row')})" for c, k in sorted(counts.items(), key=lambda kv: -kv[1]))
    return InputError("missing", f"data must have no missing values with missing='raise'; got missing values "
                                 f"(empty, null or NaN) in column(s) {parts}: {plural(rows, 'row')} "
                                 f"{'in all' if complete else 'in the rows read so far'}, the "
                                 f"first at data row {first + 1}. Use missing='drop' to fit without those rows "
                                 f"(absorbed fixed-effect fits: drop them from the data first), or fill them in.")


def check_missing(missing: str) -> str:
    if missing not in MISSING:
        raise InputError("missing", f"missing must be 'raise' or 'drop'; got missing={missing!r}.")
    return missing


def _nan_counts(arrays_names) -> tuple[dict, np.ndarray]:
    counts, bad = {}, None
    for A, names in arrays_names:
        nan = np.isnan(A)
        per = nan.sum(axis=0)
        for name, k in zip(names, per):
            if k:
                counts[name] = counts.get(name, 0) + int(k)
        rows = nan.any(axis=1)
        bad = rows if bad is None else (bad | rows)
    return counts, bad


def finish_design(X, Y, w, block: Block, names: tuple, missing: str, null_cols: dict,
                  param_w: str | None) -> DesignBlock:
    """Apply the missing-value policy and check the weights of one block of float arrays.

    ``names`` = (feature names, target names, weights name or None). With ``missing="raise"``
    only Arrow nulls are looked for here (free: a count kept by Arrow); NaN values show up as a
    non-finite least-squares state, which is then located (see ``stream``).
    """
    n = X.shape[0]
    fnames, tnames, wname = names
    if missing == "drop":
        groups = [(X, fnames), (Y, tnames)] + ([(w[:, None], (wname,))] if wname else [])
        counts, bad = _nan_counts(groups)
        if bad is not None and bad.any():
            keep = ~bad
            rows = block.start + np.flatnonzero(keep)
            X, Y, w = X[keep], Y[keep], w[keep]
            dropped, first = int(bad.sum()), block.start + int(np.argmax(bad))
        else:
            rows, dropped, counts, first = None, 0, {}, -1
        dblock = DesignBlock(X, Y, w, block.start, n, rows, counts, dropped, first)
    elif null_cols:
        groups = [(X, fnames), (Y, tnames)] + ([(w[:, None], (wname,))] if wname else [])
        counts, bad = _nan_counts(groups)
        return DesignBlock(X, Y, w, block.start, n, None, counts, int(bad.sum()), block.start + int(np.argmax(bad)),
                           void=True)
    else:
        dblock = DesignBlock(X, Y, w, block.start, n, None, {}, 0)
    if wname is not None and dblock.w.size:
        neg = dblock.w < 0
        if neg.any():
            i = int(np.flatnonzero(neg)[0])
            raise InputError(param_w or "weights", f"weights must be >= 0; got weights column {wname!r} = "
                                                   f"{float(dblock.w[i])!r} at data row {dblock.source_row(i) + 1}.")
    return dblock


def numeric_design(sel: Selection, missing: str) -> Callable[[Block], DesignBlock]:
    """Block -> DesignBlock for plain column selections (one float64 copy of each column)."""
    check_missing(missing)
    used = sel.features + sel.targets + ((sel.weights,) if sel.weights else ())

    def design(block: Block) -> DesignBlock:
        t = block.table
        null_cols = {c: k for c, k in ((c, t.column(c).null_count) for c in used) if k}
        X = to_matrix(t, sel.features, block.start)
        Y = to_matrix(t, sel.targets, block.start)
        w = to_float64(t.column(sel.weights), sel.weights, block.start) if sel.weights else np.ones(t.num_rows)
        return finish_design(X, Y, w, block, (sel.features, sel.targets, sel.weights), missing, null_cols,
                             "weights")

    return design
