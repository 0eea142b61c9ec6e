"""Predictions for the rows of a table, streamed block by block: :func:`predict_table`.

The model's formula (or its feature list) is applied to each block of the source; rows with a
missing value either raise (``missing="raise"``, naming the column and row) or get empty
predictions (``missing="keep"``), so the output stays aligned with the input's rows.
"""
from __future__ import annotations

import warnings
from typing import Callable, Iterator

import numpy as np

from ..core.errors import InputError
from ..io.design import check_numeric, float_types
from ..io.sources import open_table
from ..io.values import Source, closest_names, to_matrix
from ..reduce.stream import Progress, prefetch

__all__ = ["INTERVALS", "PREDICT_MISSING", "output_names", "predict_table"]


INTERVALS = ("confidence", "prediction")
PREDICT_MISSING = ("raise", "keep")


def output_names(model, interval: str | None) -> list[str]:
    targets = tuple(getattr(model, "target_names_", ()) or ())
    multi = np.ndim(model.coef_) == 2
    if not multi:
        base = ["prediction"]
    else:
        targets = targets if len(targets) == np.shape(model.coef_)[0] else tuple(
            f"y{k}" for k in range(np.shape(model.coef_)[0]))
        base = [f"prediction_{t}" for t in targets]
    if interval is None:
        return base
    out = []
    for b in base:
        suffix = b[len("prediction"):]
        out += [b, f"lower{suffix}", f"upper{suffix}"]
    return out


def predict_table(model, data, *, interval: str | None = None, level: float = 0.95, missing: str = "raise",
                  interval_fn: Callable | None = None, progress: bool | None = None, offset=None, exposure=None,
                  kind: str = "mean") -> Iterator:
    """Predictions for every row of ``data``, in order, as ``pyarrow.RecordBatch`` es.

    Columns: ``prediction`` (one target; ``prediction_<name>`` for each of several), and with
    ``interval`` ("confidence" or "prediction") ``lower`` / ``upper`` at ``level``.
    The model's formula (``model.formula_``) is re-applied to the data's columns; without one
    the data must hold the model's ``feature_names_in_``. ``missing="raise"`` refuses rows with
    a missing feature; ``"keep"`` gives them null predictions (rows stay aligned).

    ``interval_fn(X, kind, level) -> (lower, upper)`` computes the bounds; default the model's
    ``predict_interval`` method. Columns are checked before anything is read.

    A GLM (``jaxlm.GLM`` and the other GLM estimators) predicts the mean (``kind="mean"``) or the
    linear predictor (``kind="link"``), with ``interval="confidence"`` the confidence interval of
    the mean (``predict_interval``; there is no prediction interval). ``offset`` / ``exposure``
    name the columns of the offset and exposure (> 0) of each row; None (default): the columns
    the model was fitted with (``model.data_columns_``, stored in its model file), False: none
    (the mean at offset 0 and exposure 1).
    """
    import pyarrow as pa

    if missing not in PREDICT_MISSING:
        raise InputError("missing", f"missing must be 'raise' or 'keep' for predictions (rows stay aligned with the "
                                    f"data); got missing={missing!r}.")
    if interval is not None and interval not in INTERVALS and not hasattr(model, "family_"):
        raise InputError("interval", f"interval must be 'confidence' or 'prediction'; got interval={interval!r}.")
    if not hasattr(model, "coef_"):
        raise InputError("model", "model must be fitted; got an unfitted model. Call fit first.")
    if interval is not None and interval_fn is None and not hasattr(model, "family_"):
        method = getattr(model, "predict_interval", None)
        if method is None:
            raise InputError("interval", f"interval needs a model with prediction intervals; got interval={interval!r} "
                                         f"for a {type(model).__name__} without predict_interval.")

        def interval_fn(X, kind, level):
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="X does not have valid feature names")
                res = method(X, kind=kind, level=level)
            return (res.lower, res.upper) if hasattr(res, "lower") else (res[1], res[2])
    glm = _glm_options(model, offset, exposure, interval, kind)
    source = open_table(data)
    spec = getattr(model, "formula_", None)
    if spec is not None:
        needed = list(spec.inputs)
        for c in needed:
            if c not in source.column_names:
                raise _missing_feature(c, source)
        types = spec.read_types(source, needed)
    else:
        names = getattr(model, "feature_names_in_", None)
        if names is None:
            raise InputError("model", "model must have been fitted on named columns to predict from a table; got a "
                                      "model without feature_names_in_.")
        needed = [str(c) for c in names]
        for c in needed:
            if c not in source.column_names:
                raise _missing_feature(c, source)
        check_numeric(source, needed, "data")
        types = float_types(source, needed) if source.kind == "csv" else None
    cols = output_names(model, interval)
    read = list(needed)
    if glm is not None:
        for c in glm["columns"].values():
            if c not in source.column_names:
                raise _missing_feature(c, source)
            check_numeric(source, [c], "data")
            read += [] if c in read else [c]
        if types is not None:
            types = {**types, **float_types(source, [c for c in read if c not in types])}
    bar = Progress(progress, source.name, source.estimated_rows())

    def gen():
        bar.start("predicting")
        try:
            for block in prefetch(lambda: source.blocks(read, types=types)):
                yield _predict_block(model, spec, block, needed, interval, level, missing, interval_fn, cols, pa, glm)
                bar.advance(block.table.num_rows)
        finally:
            bar.close()

    return gen()


def _missing_feature(c: str, source: Source) -> InputError:
    near = closest_names(c, source.column_names)
    hint = f" Did you mean {' or '.join(repr(x) for x in near)}?" if near else ""
    return InputError("data", f"data must have every column the model needs; got {source.name!r} without {c!r}.{hint}")


def _glm_options(model, offset, exposure, interval, kind):
    """None for a linear model; for a GLM ``{"columns": {"offset": col, "exposure": col}, "kind": kind}``."""
    if not hasattr(model, "family_"):
        if offset is not None or exposure is not None or kind != "mean":
            raise InputError("offset" if offset is not None else "exposure" if exposure is not None else "kind",
                             f"offset, exposure and kind are options of a GLM's predictions; got them for a "
                             f"{type(model).__name__}.")
        return None
    if kind not in ("mean", "link"):
        raise InputError("kind", f"kind must be 'mean' or 'link'; got kind={kind!r}.")
    if interval not in (None, "confidence") or (interval is not None and kind != "mean"):
        raise InputError("interval", f"interval must be 'confidence' (the interval of the mean, with kind='mean') for "
                                     f"a GLM; got interval={interval!r} with kind={kind!r}.")
    stored = dict(getattr(model, "data_columns_", None) or {})
    columns = {}
    for name, given in (("offset", offset), ("exposure", exposure)):
        col = stored.get(name) if given is None else (None if given is False else given)
        if col is not None and (not isinstance(col, str) or not col):
            raise InputError(name, f"{name} must be a column name, None or False; got {name}={given!r}.")
        if col:
            columns[name] = col
    return {"columns": columns, "kind": kind}


def _predict_block(model, spec, block, needed, interval, level, missing, interval_fn, cols, pa, glm=None):
    import pyarrow.compute as pc
    from ..io.values import to_float64

    t = block.table
    n = t.num_rows
    ext = {} if glm is None else {k: to_float64(t.column(c), c, block.start) for k, c in glm["columns"].items()}
    ext_bad = np.zeros(n, bool)
    for a in ext.values():
        ext_bad |= np.isnan(a)
    used = needed + [c for c in (glm or {}).get("columns", {}).values() if c not in needed]
    if spec is not None:
        spec.check_levels(t, block.start)
        from ..io.formula import _missing_mask

        mask = _missing_mask(t, needed)
        bad = (np.zeros(n, bool) if mask is None else mask.to_numpy(zero_copy_only=False)) | ext_bad
        if bad.any():
            if missing == "raise":
                _raise_missing_predict(t, used, bad, block.start)
            t = t.filter(pa.array(~bad))
        X, _ = spec.encode(t, targets=False)
    else:
        X = to_matrix(t, needed, block.start)
        bad = np.isnan(X).any(axis=1) | ext_bad
        if bad.any():
            if missing == "raise":
                _raise_missing_predict(t, used, bad, block.start)
            X = X[~bad]
    ext = {k: a[~bad] for k, a in ext.items()}
    if "exposure" in ext and len(X) and not (ext["exposure"] > 0).all():
        i = int(np.flatnonzero(~(ext["exposure"] > 0))[0])
        raise InputError("exposure", f"exposure must be > 0; got column {glm['columns']['exposure']!r} = "
                                     f"{float(ext['exposure'][i])!r} at data row "
                                     f"{block.start + int(np.flatnonzero(~bad)[i]) + 1}. Drop rows without exposure.")
    opts = {} if glm is None else {"offset": ext.get("offset"), "exposure": ext.get("exposure")}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        if not len(X):
            pred = np.zeros((0,) + np.shape(model.coef_)[:-1])
        else:
            pred = np.asarray(model.predict(X, **opts, **({} if glm is None else {"kind": glm["kind"]})),
                              dtype=np.float64)
    parts = [pred.reshape(len(X), -1)]
    if interval is not None and glm is not None and len(X):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            res = model.predict_interval(X, **opts, level=level)
        parts += [np.asarray(res.lower, np.float64).reshape(len(X), -1),
                  np.asarray(res.upper, np.float64).reshape(len(X), -1)]
    elif interval is not None:
        lo, hi = interval_fn(X, interval, level) if len(X) else (pred, pred)
        parts += [np.asarray(lo, np.float64).reshape(len(X), -1), np.asarray(hi, np.float64).reshape(len(X), -1)]
    k = parts[0].shape[1]
    arrays = []
    for j in range(k):
        for P in parts:
            col = np.full(n, np.nan)
            col[~bad] = P[:, j]
            arrays.append(float_array(col, bad if bad.any() else None, pa))
    return pa.RecordBatch.from_arrays(arrays, names=cols)


def float_array(values: np.ndarray, missing: np.ndarray | None, pa):
    """``pa.array(values, mask=missing)`` for float64 ``values``, built from its buffers: the same
    array, without ``pa.array``'s import of pandas (~0.2 s of a command-line prediction)."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    if missing is None:
        return pa.Array.from_buffers(pa.float64(), len(values), [None, pa.py_buffer(values)], null_count=0)
    validity = pa.py_buffer(np.packbits(~np.asarray(missing, dtype=bool), bitorder="little"))
    return pa.Array.from_buffers(pa.float64(), len(values), [validity, pa.py_buffer(values)],
                                 null_count=int(np.count_nonzero(missing)))


def _raise_missing_predict(t, needed, bad, start):
    import pyarrow.compute as pc

    cols = [c for c in needed if pc.any(pc.is_null(t.column(c), nan_is_null=True)).as_py()]
    first = start + int(np.argmax(bad)) + 1
    raise InputError("missing", f"data must have no missing values in the model's columns with missing='raise'; got "
                                f"missing values in {', '.join(map(repr, cols))}, the first at data row {first}. Use "
                                f"missing='keep' for empty predictions on those rows, or fill them in.")
