"""Dask inputs: arrays and DataFrames turned into row-chunked float64 arrays, and the exact fit
on them through the Dask driver (:mod:`jaxlm.reduce.dask`).

Every pass of the fit (the state, the refinement gradients, the statistics' pass) is a
reduction that the driver runs as one accumulator per partition on the worker that holds it,
merged pairwise in a tree on the workers, so only d×d summaries reach the client. The answer
equals the in-memory fit (same reductions, same solve), on the threaded scheduler or on
``dask.distributed``; a lost worker is recomputed by Dask's own retries.

Bad values are named as the in-memory fit names them, with their 0-based row among all rows
(partition offsets come from the chunk sizes): a NaN or inf is located by a second pass over
the partitions only when the merged state is not finite (no cost otherwise); a DataFrame
column of text is checked before the fit, naming its first value that is not a number.

dask is an optional dependency: ``pip install "jaxlm[dask]"``.
"""
from __future__ import annotations

import numpy as np

from ..core import exact
from ..core.errors import InputError

_MISSING = ("dask is not installed; install the optional extra with pip install \"jaxlm[dask]\" "
            "to fit dask arrays or DataFrames.")


def _dask():
    try:
        import dask
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(_MISSING) from exc
    return dask, da


def is_dask_collection(obj) -> bool:
    """True for dask arrays, DataFrames and Series (without importing dask if absent)."""
    mod = type(obj).__module__
    if not (mod.startswith("dask") or mod.startswith("dask_expr")):
        return False
    try:
        import dask
    except ImportError:
        return False
    return dask.is_dask_collection(obj)


def as_dask_arrays(X, y, sample_weight=None):
    """Row-chunked dask arrays X (n, d), Y (n, m), w (n,) and the feature names (or None).

    Column chunks of X are merged (one chunk across columns) so a block holds whole rows.
    """
    _, da = _dask()
    names = None
    if hasattr(X, "columns"):  # dask DataFrame
        names = np.asarray([str(c) for c in X.columns], dtype=object)
        _check_column_dtypes(X, "X")
        X = X.to_dask_array(lengths=True)
    if hasattr(y, "to_dask_array"):
        _check_column_dtypes(y, "y")
        y = y.to_dask_array(lengths=True)
    X = da.asarray(X)
    y = da.asarray(y)
    if X.ndim != 2:
        raise InputError("X", f"X must be 2-D (n, d); got a dask array of shape {X.shape}.")
    one_d = y.ndim == 1
    Y = y[:, None] if one_d else y
    if any(np.isnan(c) for c in X.chunks[0]):
        X = X.compute_chunk_sizes()
    if any(np.isnan(c) for c in Y.chunks[0]):
        Y = Y.compute_chunk_sizes()
    if X.shape[0] != Y.shape[0]:
        raise InputError("y", f"y must have one row per row of X ({X.shape[0]}); got {Y.shape[0]}.")
    X = _as_float64(X.rechunk({1: -1}), "X", names)
    Y = _as_float64(Y.rechunk({0: X.chunks[0], 1: -1}), "y", None)
    if sample_weight is None:
        w = da.ones(X.shape[0], chunks=X.chunks[0], dtype=np.float64)
    else:
        w = da.asarray(sample_weight).astype(np.float64)
        if w.ndim != 1 or w.shape[0] != X.shape[0]:
            raise InputError("sample_weight", f"sample_weight must have one entry per row of X ({X.shape[0]}); "
                                              f"got shape {w.shape}.")
        w = w.rechunk(X.chunks[0])
        import dask

        lo, finite, positive = dask.compute(w.min(), da.isfinite(w).all(), (w > 0).any())
        if not finite:
            raise InputError("sample_weight", "sample_weight must be finite; got NaN/inf.")
        if lo < 0:
            raise InputError("sample_weight", f"sample_weight must be >= 0; got a minimum of {float(lo)!r}.")
        if not positive:
            raise InputError("sample_weight", "sample_weight must have at least one positive entry; got all zeros.")
    return X, Y, w, one_d, names


def _check_column_dtypes(frame, param: str) -> None:
    """A DataFrame's (or Series') columns must be numbers or text that may hold numbers (checked
    value by value later); dates, categories and the like are refused by name."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype, is_object_dtype, is_string_dtype

    dtypes = frame.dtypes  # a Series per column of a DataFrame, one dtype for a Series
    dtypes = dtypes.items() if hasattr(dtypes, "items") else [(frame.name, dtypes)]
    other = [f"{c!r} ({t})" for c, t in dtypes
             if not (is_numeric_dtype(t) or is_bool_dtype(t) or is_object_dtype(t) or is_string_dtype(t))]
    if other:
        raise InputError(param, f"{param} must have numeric columns only; got non-numeric column(s) "
                                f"{', '.join(other)}. Encode them (e.g. one-hot) first.")


def _first_non_number(block: np.ndarray):
    """``(row, column, value)`` of the first value of a text/object block that is not a number
    (missing values pass: they become NaN); None when every value is one."""
    import pandas as pd

    B = block.reshape(len(block), -1)
    hit = None
    for j in range(B.shape[1]):
        col = pd.Series(B[:, j], dtype=object)
        bad = pd.to_numeric(col, errors="coerce").isna().to_numpy() & col.notna().to_numpy()
        if bad.any():
            i = int(np.argmax(bad))
            if hit is None or i < hit[0]:
                hit = (i, j, col.iloc[i])
    return hit


def _numbers(block: np.ndarray) -> np.ndarray:
    """A text/object block as float64 (missing values as NaN)."""
    import pandas as pd

    B = block.reshape(len(block), -1)
    out = np.column_stack([pd.to_numeric(pd.Series(B[:, j], dtype=object), errors="coerce").to_numpy(np.float64)
                           for j in range(B.shape[1])]) if B.shape[1] else np.empty(B.shape)
    return out.reshape(block.shape)


def _as_float64(A, param: str, names):
    """A row-chunked (n, k) dask array as float64. Text or objects are first checked partition by
    partition: the first value that is not a number is an InputError naming its column and row."""
    dask, _ = _dask()
    from dask import delayed

    if A.dtype.kind not in "OUS":
        return A.astype(np.float64)
    hits = dask.compute(*[delayed(_first_non_number, pure=True)(b) for b in A.to_delayed().ravel()])
    offset = 0
    for hit, n in zip(hits, A.chunks[0]):
        if hit is not None:
            i, j, value = hit
            col = f"column {names[j]!r}" if names is not None else f"column {j}"
            raise InputError(param, f"{param} must hold numbers; got {value!r} in {col} at row {offset + i}. Fix "
                                    f"that value, or encode a text column (e.g. one-hot) first.")
        offset += n
    return A.map_blocks(_numbers, dtype=np.float64)


def _nonfinite_block(X, Y):
    """Per block: for X and Y, (NaN count per column, inf count per column, rows with either, first such row)."""
    out = []
    for A in (X, Y):
        nan, inf = np.isnan(A), np.isinf(A)
        rows = (nan | inf).any(axis=1)
        out.append((nan.sum(axis=0), inf.sum(axis=0), int(rows.sum()), int(np.argmax(rows)) if rows.any() else -1))
    return out


def _locate_nonfinite(X, Y, names=None) -> None:
    """Find the NaN/inf that made the merged state non-finite and raise the in-memory fit's error
    (``X contains NaN in column(s) b (1 row(s), first at row 77); ...``) with rows among all rows."""
    dask, _ = _dask()
    from dask import delayed

    parts = dask.compute(*[delayed(_nonfinite_block, pure=True)(x, y) for x, y in
                           zip(X.to_delayed().ravel(), Y.to_delayed().ravel())])
    offsets = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]])
    for k, param in enumerate(("X", "y")):
        rows = sum(p[k][2] for p in parts)
        if not rows:
            continue
        first = min(int(o) + p[k][3] for p, o in zip(parts, offsets) if p[k][3] >= 0)
        nan = sum(p[k][0] for p in parts)
        inf = sum(p[k][1] for p in parts)
        kinds = " and ".join(w for w, c in (("NaN", nan), ("inf", inf)) if c.any())
        cols = ""
        if param == "X" or len(nan) > 1:
            idx = np.flatnonzero((nan + inf) > 0)
            labels = [str(names[i]) if names is not None and param == "X" else str(i) for i in idx[:10]]
            cols = f" in column(s) {', '.join(labels)}{' ...' if len(idx) > 10 else ''}"
        raise InputError(param, f"{param} contains {kinds}{cols} ({rows} row(s), first at row {first}); a linear "
                                f"model needs finite values. Drop or impute those rows.")


def fit_dask(X, Y, w, *, solver="auto", alpha=0.0, fit_intercept=True, dtype="float64", names=None,
             refine_data=None):
    """Exact fit of row-chunked dask arrays (see :func:`as_dask_arrays`): :func:`jaxlm.core.exact.fit_reduced`
    with the Dask driver (:func:`jaxlm.reduce.dask.runner`). Returns a Solution.

    ``names``: the feature names, for messages (a NaN or inf is reported with its column and row);
    ``refine_data`` as :func:`~jaxlm.core.exact.fit_reduced`'s.
    """
    return exact.fit_reduced(runner(X, Y, w), X.shape[1], Y.shape[1], solver=solver, alpha=alpha,
                             fit_intercept=fit_intercept, refine_data=refine_data, dtype=dtype,
                             on_nonfinite=lambda: _locate_nonfinite(X, Y, names), feature_names=names)


def _per_row(a, X, name: str):
    """A per-row option as a float64 dask array with X's row chunks."""
    _, da = _dask()
    if hasattr(a, "to_dask_array"):
        a = a.to_dask_array(lengths=True)
    a = da.asarray(a).astype(np.float64)
    if a.ndim == 0:
        a = da.full(X.shape[0], a, chunks=X.chunks[0])
    if any(np.isnan(c) for c in a.chunks[0]):
        a = a.compute_chunk_sizes()
    if a.ndim != 1 or a.shape[0] != X.shape[0]:
        raise InputError(name, f"{name} must have one entry per row of X ({X.shape[0]}); got shape {a.shape}.")
    return a.rechunk(X.chunks[0])


def glm_extras(X, offset=None, exposure=None, var_weights=None) -> tuple:
    """The GLM blocks' optional columns ``(offset[, var_weights])`` as dask arrays with X's row
    chunks (``offset + log(exposure)``; absent ones left out, as the in-memory fit leaves them
    out). The exposure is checked (finite, > 0) before its log is taken; the fit's first pass
    checks the rest row by row."""
    dask, da = _dask()
    off = None if offset is None else _per_row(offset, X, "offset")
    if exposure is not None:
        e = _per_row(exposure, X, "exposure")
        lo, finite = dask.compute(e.min(), da.isfinite(e).all())
        if not (finite and lo > 0):
            raise InputError("exposure", f"exposure must be a finite number > 0 on every row; got a minimum of "
                                         f"{float(lo)!r}{'' if finite else ' and NaN/inf values'}. Exposure is the "
                                         f"time or size at risk; drop rows with none.")
        off = da.log(e) if off is None else off + da.log(e)
    vw = None if var_weights is None else _per_row(var_weights, X, "var_weights")
    if off is None and vw is None:
        return ()
    return (da.zeros(X.shape[0], chunks=X.chunks[0]) if off is None else off,) + (() if vw is None else (vw,))


def binary_codes(est, y):
    """A binary classifier's dask target coded 0/1 (the second of the sorted labels is 1);
    ``est.classes_`` is set from the labels (computed: only the distinct values reach the client)."""
    from sklearn.utils.multiclass import type_of_target

    _, da = _dask()
    if hasattr(y, "to_dask_array"):
        y = y.to_dask_array(lengths=True)
    y = da.asarray(y)
    classes = np.unique(np.asarray(da.unique(y.ravel()).compute()))
    kind = type_of_target(classes, input_name="y") if len(classes) else "unknown"
    if kind not in ("binary", "multiclass") or len(classes) != 2:
        raise InputError("y", f"y must hold exactly two class labels; got {len(classes)} distinct value(s) "
                              f"{classes[:5].tolist()} ({kind}). Use a regressor (e.g. GLM) for a continuous "
                              f"response, or fit one model per class.")
    est.classes_ = classes
    return (y == classes[1]).astype(np.float64)


def _missing_count(block) -> int:
    import pandas as pd

    return int(pd.isna(np.asarray(block, dtype=object) if block.dtype.kind == "O" else block).sum())


def group_columns(groups, n: int, chunks=None) -> list:
    """The cluster column(s) of dask ``groups`` (an array (n,) or (n, 2), a Series, a DataFrame of
    one or two columns, or a list of such columns) as 1-D dask arrays, each with ``chunks`` (X's
    row chunks) when given; missing values are an InputError (counted on the workers)."""
    dask, da = _dask()
    if hasattr(groups, "columns"):
        cols = [groups[c] for c in groups.columns]
    elif isinstance(groups, (list, tuple)):
        cols = list(groups)
    else:
        cols = [groups]
    out = []
    for c in cols:
        a = c.to_dask_array(lengths=True) if hasattr(c, "to_dask_array") else da.asarray(c)
        if a.ndim == 2:
            out.extend(a[:, j] for j in range(a.shape[1]))
        else:
            out.append(a)
    if not 1 <= len(out) <= 2 or any(a.ndim != 1 or a.shape[0] != n for a in out):
        raise InputError("groups", f"groups must have one value per row of X ({n}), in one column (one-way) or two "
                                   f"(two-way clustering); got {len(out)} column(s) of shape(s) "
                                   f"{[tuple(a.shape) for a in out]}.")
    if chunks is not None:
        out = [a.rechunk(chunks) for a in out]
    from dask import delayed

    counts = dask.compute(*[[delayed(_missing_count, pure=True)(b) for b in a.to_delayed().ravel()] for a in out])
    for k, per in enumerate(counts):
        if sum(per):
            raise InputError("groups", f"groups must have no missing values (a row without a cluster cannot be "
                                       f"assigned); got {sum(per)} in column {k}. Drop those rows or give them a "
                                       f"cluster.")
    return out


def runner(X, Y, w, *extra):
    """The Dask driver over these arrays: ``run(reduction)`` (:mod:`jaxlm.reduce.dask`). ``extra``
    per-row columns (dask or NumPy, e.g. cluster values) are given X's row chunks."""
    _, da = _dask()
    from ..reduce import dask as rdask

    chunks = X.chunks[0]
    extra = tuple(e.rechunk(chunks) if is_dask_collection(e) else da.from_array(np.asarray(e), chunks=chunks)
                  for e in extra)
    return rdask.runner(X, Y, w, *extra)
