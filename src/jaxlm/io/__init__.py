"""Real data in and out: tables (CSV, Parquet, Arrow/Feather, DataFrames), formulas, streamed
fits with bounded memory, and versioned JSON model files.

Public names are loaded on first use, so that ``import jaxlm.io`` does not import pyarrow,
formulaic or scikit-learn until they are needed.

``open_table(data)``            a :class:`~jaxlm.io.tables.Source` over a file, directory, glob or DataFrame
``fit_table(data, target=...)`` a fitted :class:`jaxlm.LinearRegression`, streamed batch by batch
``stream_fit(data, ...)``       the same, returning the model with the pass's bookkeeping and sample
``predict_table(model, data)``  predictions, row-aligned with ``data``, as Arrow record batches
``save_model`` / ``load_model`` versioned JSON model files (never pickle)
``FormulaSpec``                 a formula with its factor levels, JSON-serialisable

Import direction: this package imports :mod:`jaxlm.core` (and, inside functions, the
estimator it returns); nothing here imports :mod:`jaxlm.cli`.
"""
from importlib import import_module

_LAZY = {
    "Source": "jaxlm.io.tables",
    "open_table": "jaxlm.io.tables",
    "FormulaSpec": "jaxlm.io.formula",
    "StreamFit": "jaxlm.io.stream",
    "Sample": "jaxlm.io.stream",
    "fit_table": "jaxlm.io.stream",
    "stream_fit": "jaxlm.io.stream",
    "predict_table": "jaxlm.io.stream",
    "save_model": "jaxlm.io.model_file",
    "load_model": "jaxlm.io.model_file",
    "read_model_file": "jaxlm.io.model_file",
    "model_to_dict": "jaxlm.io.model_file",
    "FORMAT_VERSION": "jaxlm.io.model_file",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'jaxlm.io' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
