"""Tables handed to a fitted model's ``predict``: a model fitted with a formula applies it.

A model fitted by ``jaxlm.fit_table(data, formula=...)`` (or read from a model file with a
formula) has ``formula_``; its features are the formula's columns (``C(firm)[T.GM]``,
``np.log(x)``), not the data's. Given a pandas or polars DataFrame, or a pyarrow Table, its
``predict`` encodes the data with the stored formula and levels (a level the fit did not see is
refused, with its row), then predicts from the model matrix. A table that holds the model
matrix's own columns (and not the formula's inputs) is taken as the model matrix.
"""
from __future__ import annotations

import numpy as np

from ..core.errors import InputError


def _as_arrow(X):
    """``X`` as a pyarrow Table if it is a table (pandas, polars, pyarrow), else None."""
    import sys

    if "pyarrow" in sys.modules:
        import pyarrow as pa

        if isinstance(X, pa.Table):
            return X
        if isinstance(X, pa.RecordBatch):
            return pa.Table.from_batches([X])
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(X, pd.DataFrame):
        import pyarrow as pa

        return pa.Table.from_pandas(X, preserve_index=False)
    pl = sys.modules.get("polars")
    if pl is not None and isinstance(X, pl.DataFrame):
        return X.to_arrow()
    return None


def formula_design(model, X):
    """The model matrix of table ``X`` under ``model.formula_`` (float64, (n, d)); None when the
    model has no formula or ``X`` is not a table (then ``X`` is the model matrix itself)."""
    spec = getattr(model, "formula_", None)
    if spec is None:
        return None
    table = _as_arrow(X)
    if table is None:
        return None
    missing = [c for c in spec.inputs if c not in table.column_names]
    features = getattr(model, "feature_names_in_", None)
    if missing and features is not None and all(str(f) in table.column_names for f in features):
        return None  # the model matrix itself, with its column names (scikit-learn's way)
    if missing:
        raise InputError("X", f"X must have the columns the model's formula reads ({', '.join(map(repr, spec.inputs))});"
                              f" got a table without {missing[0]!r} (formula {spec.formula!r}). Pass the data "
                              f"columns, not the model matrix.")
    table = table.select(list(spec.inputs))
    for i, name in enumerate(table.column_names):
        if table.column(i).null_count:
            row = int(np.flatnonzero(table.column(i).is_null().to_numpy(zero_copy_only=False))[0])
            raise InputError("X", f"X column {name!r} must have no missing values to predict; got one at row {row}. "
                                  f"Drop or fill those rows first.")
    spec.check_levels(table, 0)
    design, _ = spec.encode(table, targets=False)
    return design
